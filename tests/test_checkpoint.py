"""Checkpoints: safetensors + JSON metadata, rebuilt through the registries, written atomically,
and never unpickled (pickle and torch.save files are refused without running anything)."""

from __future__ import annotations

import json
import os
import pickle
import stat
from pathlib import Path

import pytest
import torch

from styletalker_core.checkpoint import format as checkpoint_format
from styletalker_core.checkpoint import (
    load_checkpoint,
    load_component_weights,
    read_metadata,
    read_tensors,
    save_checkpoint,
    sniff_format,
)
from styletalker_core.errors import CheckpointError
from styletalker_core.io.atomic import atomic_path, write_json_atomic
from styletalker_core.registry import ComponentSpec, build_component


def randomised(module: torch.nn.Module, seed: int) -> torch.nn.Module:
    """``module`` with every parameter and buffer drawn from a seeded normal (so zero-initialised
    buffers such as w_avg are tested too)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for tensor in [*module.parameters(), *module.buffers()]:
            tensor.copy_(torch.randn(tensor.shape, generator=generator))
    return module


@pytest.fixture
def generator(registries):
    spec = ComponentSpec("tiny_linear", {"resolution": 4, "num_ws": 3, "w_dim": 8})
    return randomised(build_component(registries, "generator", spec), seed=1)


@pytest.fixture
def prior(registries):
    spec = ComponentSpec("tiny_prior", {"z_dim": 2, "flow": {"name": "tiny_affine", "hidden": 6}})
    return randomised(build_component(registries, "prior", spec, feature_dim=5), seed=2)


def generator_output(module) -> torch.Tensor:
    ws = torch.randn(2, module.num_ws, module.w_dim, generator=torch.Generator().manual_seed(3))
    z = torch.randn(2, module.w_dim, generator=torch.Generator().manual_seed(4))
    return torch.cat([module.synthesis(ws).flatten(), module.mapping(z, truncation_psi=0.5).flatten()])


def prior_output(module) -> torch.Tensor:
    features = torch.randn(2, 4, 5, generator=torch.Generator().manual_seed(5))
    z, _ = module.sample(features, generator=torch.Generator().manual_seed(6))
    return torch.cat([z.flatten(), module.log_prob(z, features).flatten()])


def test_one_component_round_trip_gives_identical_outputs(tmp_path, registries, generator):
    path = save_checkpoint(tmp_path / "g.safetensors", {"generator": generator})
    loaded = load_checkpoint(path, registries=registries)
    assert list(loaded.components) == ["generator"]
    rebuilt = loaded["generator"]
    assert rebuilt is not generator and type(rebuilt) is type(generator)
    assert rebuilt.component_spec == generator.component_spec
    assert torch.equal(generator_output(rebuilt), generator_output(generator))
    # a fresh build (no weights) really differs, so the equality above is due to loading
    fresh = build_component(registries, "generator", generator.component_spec)
    assert not torch.equal(generator_output(fresh), generator_output(generator))


def test_several_components_with_a_nested_one_round_trip(tmp_path, registries, generator, prior):
    path = save_checkpoint(tmp_path / "both.safetensors", {"generator": generator, "prior": prior}, step=7)
    loaded = load_checkpoint(path, registries=registries)
    assert set(loaded.components) == {"generator", "prior"}
    assert torch.equal(generator_output(loaded["generator"]), generator_output(generator))
    assert torch.equal(prior_output(loaded["prior"]), prior_output(prior))
    assert loaded["prior"].flow.component_spec.options == {"hidden": 6, "dim": 2, "context_dim": 5}
    # one role only
    only = load_checkpoint(path, registries=registries, roles=["prior"])
    assert list(only.components) == ["prior"]
    with pytest.raises(CheckpointError, match=r"has no component 'encoder'; it holds generator, prior"):
        load_checkpoint(path, registries=registries, roles=["encoder"])
    with pytest.raises(CheckpointError, match=r"has no component 'encoder'"):
        loaded["encoder"]


def test_stored_tensors_and_metadata_layout(tmp_path, generator):
    path = save_checkpoint(tmp_path / "g.safetensors", {"generator": generator})
    tensors = read_tensors(path)
    assert set(tensors) == {f"generator.{key}" for key in generator.state_dict()}
    assert torch.equal(tensors["generator.w_avg"], generator.w_avg)
    document = read_metadata(path)
    assert document["format_version"] == checkpoint_format.FORMAT_VERSION
    assert document["components"] == {
        "generator": {"kind": "generator", "name": "tiny_linear", "options": {"resolution": 4, "num_ws": 3, "w_dim": 8}}
    }


def test_fp16_storage_loads_into_fp32_modules(tmp_path, registries, generator):
    full = save_checkpoint(tmp_path / "full.safetensors", {"generator": generator})
    half = save_checkpoint(tmp_path / "half.safetensors", {"generator": generator}, dtype=torch.float16)
    assert all(t.dtype == torch.float16 for t in read_tensors(half).values())
    assert half.stat().st_size < 0.6 * full.stat().st_size
    rebuilt = load_checkpoint(half, registries=registries)["generator"]
    for key, value in rebuilt.state_dict().items():
        assert value.dtype == torch.float32
        assert torch.equal(value, generator.state_dict()[key].half().float())
    assert torch.allclose(generator_output(rebuilt), generator_output(generator), atol=0.05)


def test_metadata_round_trips(tmp_path, registries, generator):
    recipe = {"name": "demo", "seed": 3, "stages": {"fit": {"lr": 0.001, "betas": [0.9, 0.99]}}}
    extra = {"optimizer_steps": [1, 2, 3], "note": "é \" \\ text", "nested": {"ok": True, "none": None}}
    path = save_checkpoint(tmp_path / "m.safetensors", {"generator": generator}, step=1234, recipe=recipe, extra=extra)
    loaded = load_checkpoint(path, registries=registries)
    assert (loaded.step, loaded.recipe, loaded.extra, loaded.path) == (1234, recipe, extra, path)
    document = read_metadata(path)
    assert (document["step"], document["recipe"], document["extra"]) == (1234, recipe, extra)


def test_checkpoint_needing_a_missing_plugin_names_file_role_and_component(tmp_path, registries, generator):
    from conftest import TEST_ORIGIN, TinyGenerator

    from styletalker_core.registry import Registries

    path = save_checkpoint(tmp_path / "g.safetensors", {"generator": generator})
    without_plugin = Registries()
    with pytest.raises(CheckpointError) as raised:
        load_checkpoint(path, registries=without_plugin)
    assert str(raised.value).startswith(
        f"{path} [generator]: cannot rebuild the component: unknown generator 'tiny_linear': no generator is registered"
    )
    # a plugin version whose constructor lost an option
    class OlderGenerator(TinyGenerator):
        def __init__(self, resolution: int = 4, num_ws: int = 2) -> None:
            super().__init__(resolution, num_ws)

    older = Registries()
    older["generator"].register("tiny_linear", OlderGenerator, TEST_ORIGIN)
    with pytest.raises(CheckpointError, match=r"\[generator\]: cannot rebuild .*unexpected keyword argument 'w_dim'"):
        load_checkpoint(path, registries=older)


def test_metadata_that_is_not_json_is_refused_before_writing(tmp_path, generator):
    path = tmp_path / "bad.safetensors"
    with pytest.raises(CheckpointError, match="metadata is not JSON-serialisable"):
        save_checkpoint(path, {"generator": generator}, extra={"tensor": torch.ones(1)})
    assert list(tmp_path.iterdir()) == []


def test_component_not_built_through_the_registries_is_refused(tmp_path):
    from conftest import TinyGenerator

    with pytest.raises(CheckpointError, match=r"component 'generator' \(TinyGenerator\) was not built through the registries"):
        save_checkpoint(tmp_path / "x.safetensors", {"generator": TinyGenerator()})


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch, registries, generator):
    path = save_checkpoint(tmp_path / "g.safetensors", {"generator": generator}, step=1)
    before = path.read_bytes()

    def failing_save_file(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint_format, "save_file", failing_save_file)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, {"generator": randomised(generator, seed=9)}, step=2)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.safetensors"]
    assert load_checkpoint(path, registries=registries).step == 1


def test_atomic_path_replaces_only_on_success(tmp_path):
    target = tmp_path / "sub" / "notes.json"
    write_json_atomic(target, {"a": 1})
    assert json.loads(target.read_text()) == {"a": 1}
    with pytest.raises(RuntimeError), atomic_path(target) as temporary:
        temporary.write_text("partial")
        raise RuntimeError("interrupted")
    assert json.loads(target.read_text()) == {"a": 1}
    assert [p.name for p in target.parent.iterdir()] == ["notes.json"]


def test_written_files_get_the_usual_permissions(tmp_path, generator):
    umask = os.umask(0)
    os.umask(umask)
    path = save_checkpoint(tmp_path / "g.safetensors", {"generator": generator})
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
    write_json_atomic(tmp_path / "x.json", {})
    assert stat.S_IMODE((tmp_path / "x.json").stat().st_mode) == 0o666 & ~umask


def test_shape_mismatch_names_the_keys_and_shapes(tmp_path, registries, generator):
    path = save_checkpoint(tmp_path / "g.safetensors", {"generator": generator})
    wider = build_component(registries, "generator", ComponentSpec("tiny_linear", {"resolution": 8, "num_ws": 3}))
    with pytest.raises(CheckpointError) as raised:
        load_component_weights(wider, path)
    message = str(raised.value)
    assert "weights do not fit TinyGenerator" in message
    assert "to_pixels.weight (checkpoint (48, 24), model (192, 24))" in message
    assert "to_pixels.bias (checkpoint (48,), model (192,))" in message
    assert "missing keys" not in message and "unexpected keys" not in message


def test_key_mismatch_names_missing_and_unexpected_keys(tmp_path, registries, generator, prior):
    path = save_checkpoint(tmp_path / "both.safetensors", {"generator": generator, "prior": prior})
    target = build_component(registries, "generator", generator.component_spec)
    with pytest.raises(CheckpointError) as raised:
        load_component_weights(target, path, role="prior")
    message = str(raised.value)
    assert "[prior]" in message
    assert "missing keys: mapping_layer.bias, mapping_layer.weight, to_pixels.bias, to_pixels.weight, w_avg" in message
    assert "unexpected keys: flow.net.0.bias, flow.net.0.weight" in message


def test_load_component_weights_picks_the_component_of_the_module_kind(tmp_path, registries, generator, prior):
    path = save_checkpoint(tmp_path / "both.safetensors", {"generator": generator, "prior": prior})
    target = build_component(registries, "generator", generator.component_spec)
    load_component_weights(target, path)
    assert torch.equal(generator_output(target), generator_output(generator))
    other = build_component(registries, "generator", generator.component_spec)
    double = save_checkpoint(tmp_path / "two.safetensors", {"a": generator, "b": other})
    with pytest.raises(CheckpointError, match=r"holds a, b; say which one to load"):
        load_component_weights(target, double)


class CreatesFileWhenUnpickled:
    """Unpickling this object opens (so creates) ``marker`` for writing."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def write_pickle(path: Path, marker: Path, protocol: int) -> Path:
    with path.open("wb") as handle:
        pickle.dump({"weights": [1.0, 2.0], "payload": CreatesFileWhenUnpickled(marker)}, handle, protocol=protocol)
    return path


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_pickle_file_is_refused_without_running_it(tmp_path, registries, generator, protocol):
    marker = tmp_path / "pwned"
    path = write_pickle(tmp_path / "model.pt", marker, protocol)
    assert sniff_format(path) == "pickle"
    target = build_component(registries, "generator", ComponentSpec("tiny_linear"))
    for attempt in (
        lambda: load_checkpoint(path, registries=registries),
        lambda: read_metadata(path),
        lambda: read_tensors(path),
        lambda: load_component_weights(target, path),
    ):
        with pytest.raises(CheckpointError) as raised:
            attempt()
        message = str(raised.value)
        assert message.startswith(f"{path}: not a safetensors checkpoint; it is a pickle")
        assert f"styletalker convert {path} OUT.safetensors" in message
    assert not marker.exists()


def test_torch_save_archive_is_refused_without_running_it(tmp_path, registries):
    marker = tmp_path / "pwned"
    path = tmp_path / "model.pth"
    torch.save({"state_dict": {"w": torch.ones(2)}, "payload": CreatesFileWhenUnpickled(marker)}, path)
    assert not marker.exists()
    assert sniff_format(path) == "torch-zip"
    with pytest.raises(CheckpointError, match=r"not a safetensors checkpoint; .*`styletalker convert "):
        load_checkpoint(path, registries=registries)
    assert not marker.exists()


def test_other_files_are_refused_with_a_clear_message(tmp_path, registries):
    with pytest.raises(CheckpointError, match="no such checkpoint file"):
        load_checkpoint(tmp_path / "missing.safetensors", registries=registries)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00\x01garbage")
    assert sniff_format(junk) == "unknown"
    with pytest.raises(CheckpointError, match="unrecognised or truncated"):
        load_checkpoint(junk, registries=registries)


def test_safetensors_file_without_styletalker_metadata_points_to_convert(tmp_path, registries):
    from safetensors.torch import save_file

    path = tmp_path / "raw.safetensors"
    save_file({"w": torch.ones(2)}, str(path))
    assert sniff_format(path) == "safetensors"
    with pytest.raises(CheckpointError, match=r"without styletalker metadata.*styletalker convert"):
        load_checkpoint(path, registries=registries)


def test_newer_format_version_is_refused(tmp_path, registries, generator, monkeypatch):
    monkeypatch.setattr(checkpoint_format, "FORMAT_VERSION", checkpoint_format.FORMAT_VERSION + 1)
    path = save_checkpoint(tmp_path / "future.safetensors", {"generator": generator})
    monkeypatch.undo()
    with pytest.raises(CheckpointError, match="written by a newer styletalker"):
        load_checkpoint(path, registries=registries)


def test_fp16_storage_keeps_tensors_beyond_the_float16_range(tmp_path, registries, generator):
    with torch.no_grad():
        generator.w_avg.fill_(1e5)  # like a BatchNorm running variance above float16's 65504
    half = save_checkpoint(tmp_path / "half.safetensors", {"generator": generator}, dtype=torch.float16)
    tensors = read_tensors(half)
    assert tensors["generator.w_avg"].dtype == torch.float32
    assert all(t.dtype == torch.float16 for key, t in tensors.items() if key != "generator.w_avg")
    rebuilt = load_checkpoint(half, registries=registries)["generator"]
    assert torch.equal(rebuilt.w_avg, generator.w_avg)
