"""Small real components for the model tests: a linear generator and encoder on tiny images,
and registries holding them next to every installed plugin (no tests in this module)."""

from __future__ import annotations

import torch
from torch import nn

from styletalker_core.interfaces import Generator, ImageEncoder
from styletalker_core.plugin_host import build_registries
from styletalker_core.registry import ComponentSpec, Origin, Registries, build_component

TOY_ORIGIN = Origin("styletalker-tests", "0.0.0", "tests.test_talking_head_toys")


class ToyGenerator(Generator):
    """W+ [b, l, w] -> images [b, 3, r, r]: a linear map and tanh."""

    def __init__(self, resolution: int = 16, num_ws: int = 3, w_dim: int = 8) -> None:
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = w_dim, 0, w_dim, num_ws
        self.resolution, self.img_channels = resolution, 3
        self.register_buffer("w_avg", torch.zeros(w_dim))
        self.to_pixels = nn.Linear(num_ws * w_dim, 3 * resolution * resolution)

    def mapping(self, z, c=None, truncation_psi=1.0, truncation_cutoff=None, update_emas=False):
        return z[:, None].repeat(1, self.num_ws, 1)

    def synthesis(self, ws, noise_mode="const", update_emas=False):
        return torch.tanh(self.to_pixels(ws.flatten(1))).view(-1, 3, self.resolution, self.resolution)


class ToyEncoder(ImageEncoder):
    """images [b, 3, r, r] -> W+ [b, l, w]: a linear map."""

    def __init__(self, resolution: int = 16, num_ws: int = 3, w_dim: int = 8) -> None:
        super().__init__()
        self.resolution, self.num_ws, self.w_dim = resolution, num_ws, w_dim
        self.net = nn.Linear(3 * resolution * resolution, num_ws * w_dim)

    def encode(self, images):
        return self.net(images.flatten(1)).view(-1, self.num_ws, self.w_dim)


def toy_registries() -> Registries:
    """Every installed plugin plus generator 'toy' and image_encoder 'toy'."""
    registries = build_registries()
    registries["generator"].register("toy", ToyGenerator, TOY_ORIGIN)
    registries["image_encoder"].register("toy", ToyEncoder, TOY_ORIGIN)
    return registries


def toy_components(registries: Registries, flow: str = "affine_coupling", backbone: str = "gru",
                   resolution: int = 16) -> dict[str, nn.Module]:
    """A complete small model, randomly initialised, built through the registries."""
    torch.manual_seed(0)
    dims = {"num_ws": 3, "w_dim": 8}
    audio = build_component(registries, "audio_encoder", ComponentSpec(
        "mel", {"feature_dim": 6, "hidden_channels": 8, "num_layers": 2, "norm_groups": 4}))
    wired = {**dims, "feature_dim": audio.feature_dim}
    flow_table = {"name": flow} if flow == "none" else {"name": flow, "steps": 2, "hidden": 8}
    return {
        "generator": build_component(registries, "generator", ComponentSpec("toy", {"resolution": resolution, **dims})),
        "image_encoder": build_component(registries, "image_encoder", ComponentSpec("toy", {"resolution": resolution, **dims})),
        "audio_encoder": audio,
        "lip_mapper": build_component(registries, "lip_mapper", ComponentSpec("conv", {"context_frames": 2, "hidden": 16}), **wired),
        "motion_vae": build_component(registries, "motion_vae", ComponentSpec(
            "sequential", {"z_dim": 4, "hidden": 16, "decoder_hidden": 16}), **wired),
        "prior": build_component(registries, "prior", ComponentSpec(
            "autoregressive", {"z_dim": 4, "hidden": 16, "audio_hidden": 8, "backbone": backbone, "window": 6,
                               "heads": 2, "flow": flow_table}), feature_dim=audio.feature_dim),
    }


def toy_clip(clip_id: str, frames: int, resolution: int, seed: int, split: str = "train"):
    """A clip whose lower half brightens with the audio's loudness (a 'mouth') and whose upper half
    drifts smoothly (a 'pose'): frames uint8 [t, r, r, 3], audio [t * 640] at 16 kHz, lip landmarks
    spanning the lower half's centre."""
    import numpy as np

    from styletalker_core.data.shards import Clip

    rng = np.random.default_rng(seed)
    loudness = np.clip(np.convolve(rng.random(frames + 4), np.ones(5) / 5, mode="valid")[:frames] * 2 - 0.4, 0, 1)
    audio = (rng.standard_normal((frames, 640)) * loudness[:, None] * 0.3).astype(np.float32).reshape(-1)
    pose = np.cumsum(rng.standard_normal(frames)) * 0.05
    image = np.zeros((frames, resolution, resolution, 3), dtype=np.float32)
    image[:, : resolution // 2] = 0.5 + 0.3 * np.tanh(pose)[:, None, None, None]
    image[:, resolution // 2:] = 0.1 + 0.8 * loudness[:, None, None, None]
    image[..., 0] += 0.1 * (seed % 3)  # identity: a tint
    pixels = (np.clip(image, 0, 1) * 255).astype(np.uint8)
    labels = {"mouth_open": loudness.astype(np.float32), "yaw": pose.astype(np.float32)}
    landmarks = np.zeros((frames, 68, 2), np.float32)
    landmarks[:, 48:68] = [[resolution * 0.25, resolution * 0.6], [resolution * 0.75, resolution * 0.9]] * 10  # lip box
    return Clip(clip_id, pixels, audio, landmarks=landmarks, labels=labels, meta={"split": split})


def write_toy_dataset(root, clips: int = 6, frames: int = 60, resolution: int = 16) -> str:
    """A sharded dataset of toy clips (the last third in split 'val'); returns its folder."""
    from styletalker_core.data.shards import ShardWriter

    writer = ShardWriter(root)
    items = [toy_clip(f"clip{i}", frames, resolution, seed=i, split="val" if i >= 2 * clips // 3 else "train")
             for i in range(clips)]
    writer.write("shard0", items)
    writer.finalize()
    return str(root)
