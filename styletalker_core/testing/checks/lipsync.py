"""Contracts of the ``lipsync_discriminator`` kind ((audio window, mouth window) -> unit sync
embeddings) and the ``lip_mapper`` kind (audio features [b, t, c] + w_id [b, l, w] -> lip offsets
[b, t, l, w] with a receptive field of ``context_frames`` either side)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import torch

from styletalker_core.checkpoint import load_checkpoint, save_checkpoint
from styletalker_core.interfaces import LipMapper, LipSyncDiscriminator
from styletalker_core.testing.factory import ComponentFactory, explained, listed, require, without_gradient


def _sync_inputs(discriminator: LipSyncDiscriminator, b: int = 3, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """(waves [b, window_samples], faces [b, window_frames, 3, 32, 32] in [-1, 1])."""
    rng = torch.Generator().manual_seed(seed)
    waves = torch.randn(b, discriminator.window_samples, generator=rng)
    faces = torch.rand(b, discriminator.window_frames, 3, 32, 32, generator=rng) * 2 - 1
    return waves, faces


def check_lipsync_discriminator_shapes_and_unit_embeddings(factory: ComponentFactory) -> None:
    discriminator = factory().eval()
    require(isinstance(discriminator, LipSyncDiscriminator), factory,
            f"built a {type(discriminator).__qualname__}, not a LipSyncDiscriminator")
    expected_samples = discriminator.window_frames * discriminator.sample_rate // discriminator.fps
    require(discriminator.window_samples == expected_samples, factory,
            f"window_samples {discriminator.window_samples} != window_frames * sample_rate / fps = {expected_samples}")
    waves, faces = _sync_inputs(discriminator)
    mouths = discriminator.mouth_crop(faces)
    require(mouths.shape == (3, discriminator.window_frames, 3, *discriminator.mouth_size), factory,
            f"mouth_crop gave {tuple(mouths.shape)}, expected (3, window_frames, 3, *mouth_size)")
    audio_embedding, mouth_embedding = discriminator.embed_audio(waves), discriminator.embed_mouth(mouths)
    require(audio_embedding.shape == mouth_embedding.shape == (3, discriminator.embed_dim), factory,
            f"embeddings {tuple(audio_embedding.shape)} and {tuple(mouth_embedding.shape)}, expected (3, embed_dim)")
    for what, embedding in (("audio", audio_embedding), ("mouth", mouth_embedding)):
        torch.testing.assert_close(embedding.norm(dim=-1), torch.ones(3),
                                   msg=explained(factory, f"{what} embeddings are not unit vectors"))
    require(float(discriminator.logit_scale().detach()) > 0, factory, "logit_scale() must be positive")


def check_lipsync_discriminator_gradients_reach_every_parameter(factory: ComponentFactory) -> None:
    discriminator = factory()
    waves, faces = _sync_inputs(discriminator)
    similarity = discriminator.embed_audio(waves) @ discriminator.embed_mouth(discriminator.mouth_crop(faces)).T
    (discriminator.logit_scale() * similarity).logsumexp(-1).sum().backward()
    missing = without_gradient(discriminator)
    require(not missing, factory, f"no gradient reaches {listed(missing)}")


def check_lipsync_discriminator_checkpoint_round_trip(factory: ComponentFactory) -> None:
    discriminator = factory().eval()
    with tempfile.TemporaryDirectory() as folder:
        path = save_checkpoint(Path(folder) / "d.safetensors", {"lipsync_discriminator": discriminator})
        loaded: Any = load_checkpoint(path, factory.registries)["lipsync_discriminator"].eval()
    waves, faces = _sync_inputs(discriminator)
    mouths = discriminator.mouth_crop(faces)
    require(torch.equal(discriminator.embed_audio(waves), loaded.embed_audio(waves)), factory,
            "the reloaded discriminator embeds audio differently")
    require(torch.equal(discriminator.embed_mouth(mouths), loaded.embed_mouth(mouths)), factory,
            "the reloaded discriminator embeds mouths differently")


def _mapper_inputs(mapper: LipMapper, b: int = 2, t: int = 9, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """(audio features [b, t, c], w_id [b, l, w])."""
    rng = torch.Generator().manual_seed(seed)
    return (torch.randn(b, t, mapper.feature_dim, generator=rng),
            torch.randn(b, mapper.num_ws, mapper.w_dim, generator=rng))


def check_lip_mapper_shapes_and_attributes(factory: ComponentFactory) -> None:
    mapper = factory()
    require(isinstance(mapper, LipMapper), factory, f"built a {type(mapper).__qualname__}, not a LipMapper")
    for attribute in ("num_ws", "w_dim", "feature_dim", "context_frames"):
        require(isinstance(getattr(mapper, attribute, None), int), factory, f"attribute {attribute} must be an int")
    features, w_id = _mapper_inputs(mapper)
    out = mapper(features, w_id)
    require(out.shape == (2, 9, mapper.num_ws, mapper.w_dim), factory,
            f"gave {tuple(out.shape)}, expected (2, 9, {mapper.num_ws}, {mapper.w_dim})")
    require(torch.isfinite(out).all(), factory, "non-finite lip offsets")


def check_lip_mapper_receptive_field_is_context_frames(factory: ComponentFactory) -> None:
    """Frame t reads features t - k .. t + k only (k = context_frames), so long audio maps in chunks."""
    mapper = factory().eval()
    k = mapper.context_frames
    t = 2 * k + 9
    features, w_id = _mapper_inputs(mapper, b=1, t=t)
    base = mapper(features, w_id)
    middle = t // 2
    changed = features.clone()
    changed[:, middle] += 1.0
    moved = ((mapper(changed, w_id) - base).abs().amax(dim=(0, 2, 3)) > 0).nonzero().flatten().tolist()
    expected = list(range(middle - k, middle + k + 1))
    require(moved == expected, factory,
            f"changing frame {middle}'s features moved frames {moved}; with context_frames={k} exactly {expected} must move")


def check_lip_mapper_gradients_reach_every_parameter(factory: ComponentFactory) -> None:
    mapper = factory()
    features, w_id = _mapper_inputs(mapper)
    mapper(features, w_id).pow(2).sum().backward()
    missing = without_gradient(mapper)
    require(not missing, factory, f"no gradient reaches {listed(missing)}")


def check_lip_mapper_checkpoint_round_trip(factory: ComponentFactory) -> None:
    mapper = factory().eval()
    with tempfile.TemporaryDirectory() as folder:
        path = save_checkpoint(Path(folder) / "m.safetensors", {"lip_mapper": mapper})
        loaded = load_checkpoint(path, factory.registries)["lip_mapper"].eval()
    features, w_id = _mapper_inputs(mapper)
    require(torch.equal(mapper(features, w_id), loaded(features, w_id)), factory, "the reloaded lip mapper maps differently")
