"""W+ latent cache: encoding a clip dataset, file layout, resume, encoder mismatch, CLI, and the
sharded dataset serving the cached codes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors import safe_open

from styletalker_core.checkpoint import save_checkpoint
from styletalker_core.cli.main import main
from styletalker_core.data.latent_cache import (
    LATENT_KEY,
    encode_dataset,
    frames_to_images,
    is_cached,
    read_clip_latents,
)
from styletalker_core.data.shards import Clip, ShardReader, ShardWriter, latent_path
from styletalker_core.errors import StyleTalkerError
from styletalker_core.plugin_host import get_registries
from styletalker_core.registry import ComponentSpec, build_component

pytestmark = pytest.mark.usefixtures("single_thread")


FRAMES = {"clip-a": 7, "clip-b": 5, "clip-c": 9}


@pytest.fixture
def dataset(tmp_path):
    root = tmp_path / "data"
    writer = ShardWriter(root)
    rng = np.random.default_rng(0)
    clips = [Clip(clip_id=name, frames=rng.integers(0, 256, (count, 32, 32, 3), dtype=np.uint8),
                  audio=np.zeros(count * 640, np.float32), meta={"split": "train"}) for name, count in FRAMES.items()]
    writer.write("s0", clips[:2])
    writer.write("s1", clips[2:])
    writer.finalize()
    return root


def tiny_encoder(seed: int = 0):
    torch.manual_seed(seed)
    entry = get_registries()["image_encoder"].get("e4e")
    return build_component(get_registries(), "image_encoder", ComponentSpec("e4e", dict(entry.example_options))).eval()


def test_encodes_every_frame_as_float16_beside_the_clips(dataset):
    encoder = tiny_encoder()
    summary = encode_dataset(dataset, encoder, "tiny", batch_size=4, progress=False)
    assert sorted(summary.encoded) == sorted(FRAMES) and summary.skipped == [] and summary.frames == sum(FRAMES.values())
    reader = ShardReader(dataset)
    for clip_id, count in FRAMES.items():
        path = latent_path(dataset, "tiny", clip_id)
        assert path == dataset / "latents" / "tiny" / f"{clip_id}.safetensors"
        with safe_open(str(path), framework="pt") as handle:
            ws = handle.get_tensor(LATENT_KEY)
        assert ws.dtype == torch.float16 and ws.shape == (count, encoder.num_ws, encoder.w_dim)
        with torch.no_grad():
            expected = encoder.encode(frames_to_images(reader.frames(clip_id)))
        torch.testing.assert_close(ws.float(), expected, atol=2e-3, rtol=2e-3)
        torch.testing.assert_close(read_clip_latents(dataset, "tiny", clip_id, 1, 3), ws[1:3])
    assert (dataset / "latents" / "tiny" / "cache.json").is_file()


def test_rerun_resumes_and_re_encodes_only_missing_or_incomplete_clips(dataset):
    encoder = tiny_encoder()
    encode_dataset(dataset, encoder, "tiny", progress=False)
    latent_path(dataset, "tiny", "clip-b").unlink()
    short = latent_path(dataset, "tiny", "clip-c")  # as if an older run had stopped mid-clip
    from safetensors.torch import save_file

    save_file({LATENT_KEY: torch.zeros(2, encoder.num_ws, encoder.w_dim, dtype=torch.float16)}, str(short))
    assert not is_cached(dataset, "tiny", "clip-c", FRAMES["clip-c"])
    before = latent_path(dataset, "tiny", "clip-a").stat().st_mtime_ns
    summary = encode_dataset(dataset, encoder, "tiny", progress=False)
    assert sorted(summary.encoded) == ["clip-b", "clip-c"] and summary.skipped == ["clip-a"]
    assert latent_path(dataset, "tiny", "clip-a").stat().st_mtime_ns == before
    assert read_clip_latents(dataset, "tiny", "clip-c").shape[0] == FRAMES["clip-c"]
    assert encode_dataset(dataset, encoder, "tiny", progress=False).encoded == []


def test_another_encoder_cannot_write_into_the_same_cache(dataset):
    encode_dataset(dataset, tiny_encoder(seed=0), "tiny", progress=False, clip_ids=["clip-a"])
    with pytest.raises(StyleTalkerError, match="another encoder"):
        encode_dataset(dataset, tiny_encoder(seed=1), "tiny", progress=False)
    summary = encode_dataset(dataset, tiny_encoder(seed=1), "other", progress=False)
    assert len(summary.encoded) == 3
    with pytest.raises(StyleTalkerError, match="no clips named"):
        encode_dataset(dataset, tiny_encoder(seed=1), "other", progress=False, clip_ids=["nope"])
    with pytest.raises(StyleTalkerError, match="data encode"):
        read_clip_latents(dataset, "missing", "clip-a")


def test_cli_encodes_resumes_and_the_dataset_serves_the_codes(dataset, tmp_path, capsys):
    encoder = tiny_encoder()
    checkpoint = save_checkpoint(tmp_path / "model.safetensors", {"image_encoder": encoder})
    assert main(["data", "encode", str(dataset), "--checkpoint", str(checkpoint), "--no-progress", "--batch-size", "3"]) == 0
    assert "3 clips encoded" in capsys.readouterr().out
    assert main(["data", "encode", str(dataset), "--checkpoint", str(checkpoint), "--no-progress"]) == 0
    output = capsys.readouterr().out
    assert "0 clips encoded" in output and "3 already cached" in output
    data = build_component(get_registries(), "dataset",
                           ComponentSpec("sharded", {"root": str(dataset), "window_frames": 2, "latent_cache": "model"}))
    item = data[0]
    cached = read_clip_latents(dataset, "model", item["clip_id"], item["start_frame"], item["start_frame"] + 2)
    torch.testing.assert_close(item["ws"], cached.float())
    assert main(["data", "encode", str(dataset), "--checkpoint", str(checkpoint), "--cache", "../x"]) == 2
