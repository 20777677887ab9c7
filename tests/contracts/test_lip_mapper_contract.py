"""Contract of the ``lip_mapper`` kind, for every registered lip mapper built with its example options."""

from __future__ import annotations

import pytest
import torch

from styletalker_core.checkpoint import load_checkpoint, save_checkpoint
from styletalker_core.interfaces import LipMapper
from styletalker_core.plugin_host import get_registries
from styletalker_core.registry import ComponentSpec, build_component

ENTRIES = list(get_registries()["lip_mapper"])
IDS = [entry.name for entry in ENTRIES]


def build(name: str, seed: int = 0) -> LipMapper:
    torch.manual_seed(seed)
    entry = get_registries()["lip_mapper"].get(name)
    return build_component(get_registries(), "lip_mapper", ComponentSpec(name, dict(entry.example_options)))


def inputs(mapper: LipMapper, b: int = 2, t: int = 9, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    rng = torch.Generator().manual_seed(seed)
    return (torch.randn(b, t, mapper.feature_dim, generator=rng),
            torch.randn(b, mapper.num_ws, mapper.w_dim, generator=rng))


def test_builtin_lip_mapper_is_registered():
    assert "conv" in IDS


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_shapes_and_attributes(entry):
    mapper = build(entry.name)
    for attribute in ("num_ws", "w_dim", "feature_dim", "context_frames"):
        assert isinstance(getattr(mapper, attribute), int), attribute
    features, w_id = inputs(mapper)
    out = mapper(features, w_id)
    assert out.shape == (2, 9, mapper.num_ws, mapper.w_dim) and torch.isfinite(out).all()


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_receptive_field_is_context_frames(entry):
    """Frame t reads features t - k .. t + k only, so long audio can be mapped in chunks."""
    mapper = build(entry.name).eval()
    k = mapper.context_frames
    t = 2 * k + 9
    features, w_id = inputs(mapper, b=1, t=t)
    base = mapper(features, w_id)
    middle = t // 2
    changed = features.clone()
    changed[:, middle] += 1.0
    moved = (mapper(changed, w_id) - base).abs().amax(dim=(0, 2, 3)) > 0
    assert moved.nonzero().flatten().tolist() == list(range(middle - k, middle + k + 1))


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_gradients_reach_every_parameter(entry):
    mapper = build(entry.name)
    features, w_id = inputs(mapper)
    mapper(features, w_id).pow(2).sum().backward()
    for name, parameter in mapper.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_checkpoint_round_trip(entry, tmp_path):
    mapper = build(entry.name).eval()
    loaded = load_checkpoint(save_checkpoint(tmp_path / "m.safetensors", {"lip_mapper": mapper}),
                             get_registries())["lip_mapper"].eval()
    features, w_id = inputs(mapper)
    assert torch.equal(mapper(features, w_id), loaded(features, w_id))
