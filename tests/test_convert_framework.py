"""The generic conversion framework: key tables with placeholders, leftover reporting, converter lookup."""

from __future__ import annotations

import pytest
import torch

from styletalker_core.checkpoint.convert import Computed, ConversionError, Drop, KeyTable, Rename, find_converter, map_state
from styletalker_core.errors import CheckpointError, RegistryError
from styletalker_core.interfaces import Converter
from styletalker_core.plugin_host import get_registries

EXPECTED = {
    "mapping.fc0.weight": torch.Size([4, 4]),
    "mapping.fc1.weight": torch.Size([4, 4]),
    "blocks.b8.weight": torch.Size([2, 3]),
    "avg": torch.Size([4]),
}


def test_placeholders_map_families_of_keys():
    tensors = {
        "style.1.weight": torch.ones(4, 4),
        "style.2.weight": torch.full((4, 4), 2.0),
        "layer.1.kernel": torch.zeros(3, 2),
        "filter.7": torch.tensor([1.0]),
    }
    table = KeyTable([
        Rename("style.{i}.weight", lambda g: f"mapping.fc{g['i'] - 1}.weight"),
        Rename("layer.{i}.kernel", lambda g: f"blocks.b{2 ** (g['i'] + 2)}.weight", lambda t: t.t()),
        Drop("filter.{i}", "derived", lambda t, g: g["i"] == 7 and t.item() == 1.0),
        Computed("avg", "computed after loading"),
    ])
    mapped, computed = map_state(tensors, table, EXPECTED, "src")
    assert torch.equal(mapped["mapping.fc1.weight"], torch.full((4, 4), 2.0))
    assert mapped["blocks.b8.weight"].shape == (2, 3)
    assert computed == {"avg"}


def test_subtree_placeholders():
    table = KeyTable([Rename("old.{rest}", "new.{rest}")])
    mapped, _ = map_state({"old.a.b.weight": torch.ones(1)}, table, {"new.a.b.weight": torch.Size([1])}, "src")
    assert list(mapped) == ["new.a.b.weight"]


def test_every_problem_is_listed_at_once():
    tensors = {
        "style.1.weight": torch.ones(4, 4),
        "style.3.weight": torch.ones(4, 4),  # maps to mapping.fc2, which does not exist
        "style.9.bias": torch.ones(4),  # matches no rule
        "dup.weight": torch.ones(4, 4),  # fills fc0 a second time
        "layer.1.kernel": torch.zeros(5, 5),  # wrong shape
        "filter.1": torch.tensor([2.0]),  # fails its check
    }
    table = KeyTable([
        Rename("style.{i}.weight", lambda g: f"mapping.fc{g['i'] - 1}.weight"),
        Rename("dup.weight", "mapping.fc0.weight"),
        Rename("layer.{i}.kernel", "blocks.b8.weight"),
        Drop("filter.{i}", "derived", lambda t, g: t.item() == 1.0),
    ])
    with pytest.raises(ConversionError) as error:
        map_state(tensors, table, EXPECTED, "model.pkl")
    message = str(error.value)
    assert message.startswith("model.pkl: cannot convert")
    assert "source keys not used: style.9.bias" in message
    assert "3 destination keys not filled: avg, blocks.b8.weight, mapping.fc1.weight" in message
    assert "style.3.weight -> mapping.fc2.weight" in message
    assert "mapping.fc0.weight (from style.1.weight and dup.weight)" in message
    assert "layer.1.kernel (5, 5) -> blocks.b8.weight (2, 3)" in message
    assert "filter.1 (derived, but its value differs)" in message


def test_builtin_converters_are_registered_with_the_interface():
    registry = get_registries()["converter"]
    assert {"nvlabs-stylegan2", "rosinality-stylegan2"} <= set(registry.names())
    for entry in registry:
        converter = registry.build(entry.name)
        assert isinstance(converter, Converter) and converter.description


def test_find_converter_errors(tmp_path):
    registries = get_registries()
    with pytest.raises(RegistryError, match="nvlabs-stylegan2"):
        find_converter(tmp_path, registries, "nvlabs-stylegan")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x00" * 64)
    with pytest.raises(CheckpointError, match="pass --format"):
        find_converter(junk, registries)
