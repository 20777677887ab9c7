"""Converted NVlabs networks reproduce the outputs of NVIDIA's own code.

The reference data (tests/reference/nvlabs, see its README.md and PROVENANCE.md) holds, for
five small configs from both NVIDIA repositories (stylegan2-ada-pytorch ``training.networks``,
stylegan3 ``training.networks_stylegan2`` / ``networks_stylegan3``), NVIDIA's state dicts under
NVIDIA's key names, the recorded constructor kwargs, the module tree with class paths, and the
inputs and outputs NVIDIA's networks computed (ws, images, discriminator logits), plus a
"perturbed" variant with random biases, noise strengths, w_avg, magnitude EMAs and a non-identity
StyleGAN3 input transform.

Each test pickle is structured as NVIDIA's training loop writes one (G, D, G_ema, augment_pipe,
training_set_kwargs; every network object through torch_utils.persistence), with the attribute
tree, class names and kwargs taken from the reference JSON, never from this project's modules.
It goes through the real ``styletalker convert`` command, and the converted components must give
NVIDIA's outputs within 1e-4 (float32, noise mode const).
"""

from __future__ import annotations

import logging

import pytest
import torch
from test_convert_builders import (
    PAYLOAD_FILE_NAME,
    REFERENCE_CONFIGS,
    nvlabs_reference_pickle,
    reference_facts,
    reference_io,
    reference_network,
    reference_state,
    write_nvlabs_pickle,
)

from styletalker_core.checkpoint import load_checkpoint, read_metadata
from styletalker_core.checkpoint.convert import ConversionError, convert_checkpoint, map_state
from styletalker_core.checkpoint.nvlabs_pickle import PersistentRecord, load_nvlabs_pickle
from styletalker_core.cli.main import main
from styletalker_core.plugin_host import get_registries
from styletalker_core.registry.components import ComponentSpec, build_component

ATOL = 1e-4
OUTPUTS = ("ws", "ws_psi07", "img", "img_psi07", "img_b1", "d_logits", "d_logits_psi07")


def is_stylegan3(config: str) -> bool:
    return config.startswith("sg3")


def run_like_nvidia(generator, discriminator, io: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The calls that produced the reference outputs (README "How the tensors were made")."""
    z = io["z"]
    c = io["c"] if io["c"].shape[1] > 0 else None
    first = c[:1] if c is not None else None
    with torch.no_grad():
        return {
            "ws": generator.mapping(z, c, truncation_psi=1),
            "ws_psi07": generator.mapping(z, c, truncation_psi=0.7),
            "img": generator.synthesis(io["ws"], noise_mode="const"),
            "img_psi07": generator.synthesis(io["ws_psi07"], noise_mode="const"),
            "img_b1": generator(z[:1], first, noise_mode="const"),
            "d_logits": discriminator(io["img"], c),
            "d_logits_psi07": discriminator(io["img_psi07"], c),
        }


def assert_matches_nvidia(outputs: dict[str, torch.Tensor], io: dict[str, torch.Tensor], label: str) -> None:
    problems = []
    for name, value in outputs.items():
        expected = io[name]
        assert value.shape == expected.shape, f"{label} {name}: shape {tuple(value.shape)} != {tuple(expected.shape)}"
        error = (value.float() - expected).abs().max().item()
        if not error <= ATOL:
            problems.append(f"{name}: max |diff| {error:.3g}")
    assert not problems, f"{label}: differs from NVIDIA's outputs: " + "; ".join(problems)


@pytest.mark.parametrize("perturbed", [False, True], ids=["init", "perturbed"])
@pytest.mark.parametrize("config", REFERENCE_CONFIGS)
def test_converted_pickle_reproduces_nvidia_outputs(tmp_path, monkeypatch, capsys, config, perturbed):
    marker = tmp_path / PAYLOAD_FILE_NAME
    source = nvlabs_reference_pickle(tmp_path / f"network-snapshot-{config}.pkl", config, monkeypatch, marker,
                                     perturbed=perturbed)
    destination = tmp_path / f"{config}.safetensors"
    assert main(["convert", str(source), str(destination)]) == 0
    assert not marker.exists()  # the embedded source code never ran
    printed = capsys.readouterr().out
    assert "also in the source, not converted: G, augment_pipe, training_set_kwargs" in printed

    metadata = read_metadata(destination)
    components = metadata["components"]
    assert set(components) == {"generator", "discriminator"}
    assert components["generator"]["name"] == ("stylegan3" if is_stylegan3(config) else "stylegan2")
    assert components["discriminator"]["name"] == "stylegan2"
    conversion = metadata["extra"]["conversion"]
    assert conversion["generator"]["network"] == "G_ema" and conversion["discriminator"]["network"] == "D"
    assert conversion["generator"]["format"] == ("nvlabs-stylegan3" if is_stylegan3(config) else "nvlabs-stylegan2")
    if is_stylegan3(config):
        assert components["generator"]["options"]["config"] == config[3]

    checkpoint = load_checkpoint(destination)
    generator, discriminator = checkpoint["generator"].eval(), checkpoint["discriminator"].eval()
    c_dim = reference_facts(config)["generator"]["init_kwargs"]["c_dim"]
    assert generator.c_dim == c_dim and discriminator.c_dim == c_dim
    io = reference_io(config, perturbed)
    assert_matches_nvidia(run_like_nvidia(generator, discriminator, io), io, f"{config} ({'perturbed' if perturbed else 'init'})")


def test_perturbed_reference_really_differs():
    """The perturbed variant changes the outputs (so its test checks biases, noise, w_avg, transform)."""
    for config in REFERENCE_CONFIGS:
        plain, perturbed = reference_io(config), reference_io(config, perturbed=True)
        for name in ("ws_psi07", "img", "d_logits"):
            assert (plain[name] - perturbed[name]).abs().max() > 1e-2, (config, name)


def test_g_ema_is_the_generator_converted(tmp_path, monkeypatch):
    """G (the raw training weights) differs from G_ema in a real snapshot; G_ema is converted."""
    config = "sg2_64"
    torch.manual_seed(0)
    raw = {k: (v + torch.randn_like(v) if v.is_floating_point() and not k.endswith("resample_filter") else v)
           for k, v in reference_state(config, "G").items()}
    source = nvlabs_reference_pickle(tmp_path / "snapshot.pkl", config, monkeypatch, tmp_path / "m", g_state=raw)
    checkpoint = load_checkpoint(convert_checkpoint(source, tmp_path / "out.safetensors"))
    io = reference_io(config)
    assert_matches_nvidia(run_like_nvidia(checkpoint["generator"].eval(), checkpoint["discriminator"].eval(), io),
                          io, config)


def test_pickle_without_g_ema_converts_g(tmp_path, monkeypatch, caplog):
    config = "sg3t_64"
    source = nvlabs_reference_pickle(tmp_path / "g_only.pkl", config, monkeypatch, tmp_path / "m", entries=("G", "D"))
    with caplog.at_level(logging.WARNING):
        path = convert_checkpoint(source, tmp_path / "g.safetensors", format_name="nvlabs-stylegan3")
    assert "no G_ema" in caplog.text
    assert read_metadata(path)["extra"]["conversion"]["generator"]["network"] == "G"
    generator = load_checkpoint(path)["generator"].eval()
    io = reference_io(config)
    with torch.no_grad():
        torch.testing.assert_close(generator.synthesis(io["ws"]), io["img"], atol=ATOL, rtol=0)


@pytest.mark.parametrize("protocol", [2, 5])
def test_other_pickle_protocols(tmp_path, monkeypatch, protocol):
    """Protocol 5 (Python 3.14's default) stores contiguous numpy arrays through _frombuffer."""
    config = "sg3r_64"
    source = nvlabs_reference_pickle(tmp_path / "p.pkl", config, monkeypatch, tmp_path / "m", protocol=protocol,
                                     perturbed=True)
    assert (b"_frombuffer" in source.read_bytes()) == (protocol == 5)
    data = load_nvlabs_pickle(source)
    assert data["G_ema"].child("synthesis").children()["L14_64_3"].state["out_size"].array.tolist() == [0, 0]
    generator = load_checkpoint(convert_checkpoint(source, tmp_path / "p.safetensors"))["generator"].eval()
    io = reference_io(config, perturbed=True)
    with torch.no_grad():
        torch.testing.assert_close(generator.synthesis(io["ws"]), io["img"], atol=ATOL, rtol=0)


def test_records_are_matched_by_class_name_not_module_path(tmp_path, monkeypatch):
    """The reader sees NVIDIA's class names (the last part of the JSON class paths) and tree."""
    config = "sg2_64_cond"
    source = nvlabs_reference_pickle(tmp_path / "c.pkl", config, monkeypatch, tmp_path / "m")
    data = load_nvlabs_pickle(source)
    facts = reference_facts(config)
    for network, key in (("G", "G_ema"), ("D", "D")):
        expected = {path[len(network) + 1:]: cls.rsplit(".", 1)[-1] for path, cls in facts["modules"]
                    if path == network or path.startswith(network + ".")}
        assert data[key].class_tree() == expected
    assert data["D"].children_of_class("DiscriminatorEpilogue").keys() == {"b4"}


def test_unexpected_classes_are_reported_by_name(tmp_path, monkeypatch):
    d = reference_network("sg2_64", "D")
    d.children["b4"].class_name = "ProjectionHead"
    g = reference_network("sg2_64", "G")
    source = write_nvlabs_pickle(tmp_path / "odd.pkl", {"G_ema": g, "D": d}, monkeypatch, tmp_path / "m")
    with pytest.raises(ConversionError, match=r"b4: class ProjectionHead \(expected DiscriminatorBlock or "
                                              r"DiscriminatorEpilogue\)"):
        convert_checkpoint(source, tmp_path / "odd.safetensors")
    g.children["synthesis"].class_name = "SynthesisNet"
    source = write_nvlabs_pickle(tmp_path / "odd_g.pkl", {"G_ema": g}, monkeypatch, tmp_path / "m")
    with pytest.raises(ConversionError, match=r"synthesis: class SynthesisNet \(expected SynthesisNetwork\)"):
        convert_checkpoint(source, tmp_path / "odd_g.safetensors")


# --- the key tables, applied straight to NVIDIA's state dicts ----------------------------------

def _tables(config: str):
    """(generator plugin, options, table) and (options, table) for the discriminator of ``config``."""
    from styletalker_stylegan2 import convert_nvlabs as sg2
    from styletalker_stylegan3 import convert_nvlabs as sg3

    facts = reference_facts(config)
    g_record = PersistentRecord("Generator", {"_init_kwargs": facts["generator"]["init_kwargs"]})
    d_record = PersistentRecord("Discriminator", {"_init_kwargs": facts["discriminator"]["init_kwargs"]})
    if is_stylegan3(config):
        generator = ("stylegan3", sg3.generator_options(g_record, config), sg3.GENERATOR_TABLE)
    else:
        options = sg2.generator_options(g_record, config)
        generator = ("stylegan2", options, sg2.generator_table(options["resample_filter"]))
    d_options = sg2.discriminator_options(d_record, config)
    return generator, (d_options, sg2.discriminator_table(d_options["resample_filter"], "b4"))


# NVIDIA key -> ours, for keys of every kind (from the reference's state_dict_keys).
EXPECTED_GENERATOR_KEYS = {
    "sg2_64_cond": {
        "synthesis.b4.const": "synthesis_network.b4.const",
        "synthesis.b4.conv1.noise_const": "synthesis_network.b4.conv1.noise_const",
        "synthesis.b8.conv0.affine.weight": "synthesis_network.b8.conv0.affine.weight",
        "synthesis.b64.torgb.bias": "synthesis_network.b64.torgb.bias",
        "mapping.embed.weight": "mapping_network.embed.weight",
        "mapping.fc1.bias": "mapping_network.fc1.bias",
        "mapping.w_avg": "mapping_network.w_avg",
    },
    "sg3r_64": {
        "synthesis.input.transform": "synthesis_network.input.transform",
        "synthesis.input.affine.weight": "synthesis_network.input.affine.weight",
        "synthesis.L0_36_128.weight": "synthesis_network.L0_36_128.weight",
        "synthesis.L5_52_128.down_filter": "synthesis_network.L5_52_128.down_filter",
        "synthesis.L14_64_3.magnitude_ema": "synthesis_network.L14_64_3.magnitude_ema",
        "mapping.w_avg": "mapping_network.w_avg",
    },
}
EXPECTED_DISCRIMINATOR_KEYS = {
    "b64.fromrgb.weight": "b64.fromrgb.weight",
    "b32.conv1.bias": "b32.conv1.bias",
    "b8.skip.weight": "b8.skip.weight",
    "b4.conv.weight": "epilogue.conv.weight",
    "b4.fc.bias": "epilogue.fc.bias",
    "b4.out.weight": "epilogue.out.weight",
    "mapping.embed.weight": "mapping.embed.weight",
    "mapping.fc7.bias": "mapping.fc7.bias",
}


@pytest.mark.parametrize("config", REFERENCE_CONFIGS)
def test_key_tables_map_every_nvidia_key(config):
    registries = get_registries()
    (g_name, g_options, g_table), (d_options, d_table) = _tables(config)
    for kind, name, options, table, network in (("generator", g_name, g_options, g_table, "G"),
                                                ("discriminator", "stylegan2", d_options, d_table, "D")):
        module = build_component(registries, kind, ComponentSpec(name, options))
        expected = {k: v.shape for k, v in module.state_dict().items()}
        state = reference_state(config, network)
        mapped, computed = map_state(state, table, expected, f"{config} {network}")  # raises on any leftover
        assert not computed and set(mapped) == set(expected)
        origin = {id(tensor): key for key, tensor in state.items()}
        renamed = {origin[id(tensor)]: key for key, tensor in mapped.items()}
        dropped = set(state) - set(renamed)
        assert all(k.endswith("resample_filter") for k in dropped), dropped
        wanted = EXPECTED_GENERATOR_KEYS.get(config, {}) if network == "G" else EXPECTED_DISCRIMINATOR_KEYS
        for source, destination in wanted.items():
            if source in state:
                assert renamed[source] == destination, (config, source)
        if network == "D":
            assert {k for k in renamed if k.startswith("b4.")} == {k for k in state if k.startswith("b4.") and
                                                                   not k.endswith("resample_filter")}
            assert all(renamed[k].startswith("epilogue.") for k in renamed if k.startswith("b4."))


def test_discriminator_table_without_the_rename_reproduces_the_old_failure():
    """The reported failure: a table keeping NVIDIA's b4.* cannot fill our epilogue.*."""
    from styletalker_core.checkpoint.convert import Drop, KeyTable, Rename

    (_, _, _), (d_options, _) = _tables("sg2_64")
    module = build_component(get_registries(), "discriminator", ComponentSpec("stylegan2", d_options))
    expected = {k: v.shape for k, v in module.state_dict().items()}
    old = KeyTable([Drop("{layer_path}.resample_filter", "derived"), Rename("{rest}", "{rest}")])
    with pytest.raises(ConversionError, match=r"6 destination keys not filled: epilogue.conv.bias.*b4.conv.bias -> "
                                              r"b4.conv.bias"):
        map_state(reference_state("sg2_64", "D"), old, expected, "sg2_64 D")
