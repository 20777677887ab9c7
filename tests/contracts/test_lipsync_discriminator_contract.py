"""Contract of the ``lipsync_discriminator`` kind, for every registered one built with its example options."""

from __future__ import annotations

import pytest
import torch

from styletalker_core.checkpoint import load_checkpoint, save_checkpoint
from styletalker_core.interfaces import LipSyncDiscriminator
from styletalker_core.plugin_host import get_registries
from styletalker_core.registry import ComponentSpec, build_component

ENTRIES = list(get_registries()["lipsync_discriminator"])
IDS = [entry.name for entry in ENTRIES]


def build(name: str, seed: int = 0) -> LipSyncDiscriminator:
    torch.manual_seed(seed)
    entry = get_registries()["lipsync_discriminator"].get(name)
    return build_component(get_registries(), "lipsync_discriminator", ComponentSpec(name, dict(entry.example_options)))


def inputs(discriminator: LipSyncDiscriminator, b: int = 3, seed: int = 1):
    rng = torch.Generator().manual_seed(seed)
    waves = torch.randn(b, discriminator.window_samples, generator=rng)
    faces = torch.rand(b, discriminator.window_frames, 3, 32, 32, generator=rng) * 2 - 1
    return waves, faces


def test_builtin_discriminator_is_registered():
    assert "contrastive" in IDS


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_shapes_and_unit_embeddings(entry):
    discriminator = build(entry.name).eval()
    assert discriminator.window_samples == discriminator.window_frames * discriminator.sample_rate // discriminator.fps
    waves, faces = inputs(discriminator)
    mouths = discriminator.mouth_crop(faces)
    assert mouths.shape == (3, discriminator.window_frames, 3, *discriminator.mouth_size)
    audio_embedding, mouth_embedding = discriminator.embed_audio(waves), discriminator.embed_mouth(mouths)
    assert audio_embedding.shape == mouth_embedding.shape == (3, discriminator.embed_dim)
    torch.testing.assert_close(audio_embedding.norm(dim=-1), torch.ones(3))
    torch.testing.assert_close(mouth_embedding.norm(dim=-1), torch.ones(3))
    assert float(discriminator.logit_scale().detach()) > 0


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_gradients_reach_every_parameter(entry):
    discriminator = build(entry.name)
    waves, faces = inputs(discriminator)
    similarity = (discriminator.embed_audio(waves) @ discriminator.embed_mouth(discriminator.mouth_crop(faces)).T)
    (discriminator.logit_scale() * similarity).logsumexp(-1).sum().backward()
    for name, parameter in discriminator.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_checkpoint_round_trip(entry, tmp_path):
    discriminator = build(entry.name).eval()
    path = save_checkpoint(tmp_path / "d.safetensors", {"lipsync_discriminator": discriminator})
    loaded = load_checkpoint(path, get_registries())["lipsync_discriminator"].eval()
    waves, faces = inputs(discriminator)
    assert torch.equal(discriminator.embed_audio(waves), loaded.embed_audio(waves))
    mouths = discriminator.mouth_crop(faces)
    assert torch.equal(discriminator.embed_mouth(mouths), loaded.embed_mouth(mouths))
