"""Converting NVlabs StyleGAN2 pickles and rosinality checkpoints (files built in their original
formats by test_convert_builders) and checking the converted networks against plain
implementations of the originals' maths."""

from __future__ import annotations

import math
import os
import pickle

import pytest
import torch
import torch.nn.functional as F

from styletalker_core.checkpoint import load_checkpoint, read_metadata
from styletalker_core.checkpoint.convert import ConversionError, convert_checkpoint
from styletalker_core.checkpoint.safe_pickle import UnsafePickleError
from styletalker_core.cli.main import main
from styletalker_core.nn.reference import conv2d_resample_reference
from test_convert_builders import (
    PAYLOAD_FILE_NAME,
    nvlabs_mapping_reference,
    nvlabs_stylegan2_discriminator,
    nvlabs_stylegan2_generator,
    nvlabs_stylegan2_reference,
    rosinality_discriminator_state,
    rosinality_generator_state,
    rosinality_mapping_reference,
    rosinality_reference,
    write_nvlabs_pickle,
    write_rosinality_checkpoint,
)


def nvlabs_discriminator_reference(state: dict, images: torch.Tensor, resolution: int, c=None, cmap_dim=0) -> torch.Tensor:
    """NVlabs resnet discriminator, plain: filters on full-size tensors, explicit residual sums."""
    f = state[f"b{resolution}.resample_filter"]

    def conv(prefix, x, down=1, act=True, gain=1.0):
        w = state[prefix + ".weight"]
        y = conv2d_resample_reference(x, w / math.sqrt(w[0].numel()), f, down=down, padding=w.shape[-1] // 2)
        if prefix + ".bias" in state:
            y = y + state[prefix + ".bias"].reshape(1, -1, 1, 1)
        return (F.leaky_relu(y, 0.2) * math.sqrt(2) if act else y) * gain

    def fc(prefix, x, act):
        w = state[prefix + ".weight"]
        y = x @ (w / math.sqrt(w.shape[1])).t() + state[prefix + ".bias"]
        return F.leaky_relu(y, 0.2) * math.sqrt(2) if act else y

    x = conv(f"b{resolution}.fromrgb", images)
    res = resolution
    while res > 4:
        skip = conv(f"b{res}.skip", x, down=2, act=False, gain=math.sqrt(0.5))
        x = conv(f"b{res}.conv1", conv(f"b{res}.conv0", x), down=2, gain=math.sqrt(0.5)) + skip
        res //= 2
    group = x.reshape(4, -1, 1, x.shape[1], 4, 4)
    std = (group.var(dim=0, unbiased=False) + 1e-8).sqrt().mean(dim=[2, 3, 4]).reshape(-1, 1, 1, 1).repeat(4, 1, 4, 4)
    x = conv("epilogue.conv", torch.cat([x, std], dim=1))
    x = fc("epilogue.out", fc("epilogue.fc", x.flatten(1), True), False)
    if cmap_dim:
        y = fc("mapping.embed", c, False)
        y = y * (y.square().mean(dim=1, keepdim=True) + 1e-8).rsqrt()
        for i in range(8):
            w = state[f"mapping.fc{i}.weight"]
            y = F.leaky_relu(y @ (w * 0.01 / math.sqrt(w.shape[1])).t() + state[f"mapping.fc{i}.bias"] * 0.01, 0.2) * math.sqrt(2)
        x = (x * y).sum(dim=1, keepdim=True) / math.sqrt(cmap_dim)
    return x


@pytest.mark.parametrize("ada", [True, False], ids=["stylegan2-ada-pytorch", "stylegan3-repo"])
def test_nvlabs_stylegan2_pickle_converts_with_parity(tmp_path, monkeypatch, ada):
    torch.manual_seed(0)
    marker = tmp_path / PAYLOAD_FILE_NAME
    g_node = nvlabs_stylegan2_generator(ada=ada)
    d_node = nvlabs_stylegan2_discriminator()
    source = write_nvlabs_pickle(tmp_path / "network-snapshot.pkl",
                                 {"training_set_kwargs": {"resolution": 32}, "G": g_node, "D": d_node,
                                  "G_ema": g_node, "augment_pipe": None}, monkeypatch, marker)
    destination = convert_checkpoint(source, tmp_path / "converted.safetensors")
    assert not marker.exists()  # the embedded source code never ran
    checkpoint = load_checkpoint(destination)
    generator = checkpoint["generator"].eval()
    discriminator = checkpoint["discriminator"].eval()
    metadata = read_metadata(destination)
    assert metadata["components"]["generator"]["options"]["channel_base"] == 256
    assert metadata["extra"]["conversion"]["generator"]["format"] == "nvlabs-stylegan2"
    state = g_node.state_dict()
    z = torch.randn(3, 16)
    with torch.no_grad():
        ws = generator.mapping(z, truncation_psi=0.7)
        expected_ws = nvlabs_mapping_reference(state, z, layers=2, num_ws=8, psi=0.7)
        torch.testing.assert_close(ws, expected_ws, atol=1e-5, rtol=1e-5)
        images = generator.synthesis(expected_ws, noise_mode="const")
        expected = nvlabs_stylegan2_reference(state, expected_ws, 32)
        assert (images - expected).abs().max() < 1e-4
        images_d = torch.rand(4, 3, 32, 32) * 2 - 1
        torch.testing.assert_close(discriminator(images_d),
                                   nvlabs_discriminator_reference(d_node.state_dict(), images_d, 32), atol=1e-4, rtol=1e-4)


def test_nvlabs_conditional_networks_and_conv_clamp(tmp_path, monkeypatch):
    torch.manual_seed(1)
    g_node = nvlabs_stylegan2_generator(c_dim=3, ada=False)
    g_node.init_kwargs["conv_clamp"] = 0.5  # tiny clamp: the clamp path must matter
    d_node = nvlabs_stylegan2_discriminator(c_dim=3)
    source = write_nvlabs_pickle(tmp_path / "cond.pkl", {"G_ema": g_node, "D": d_node}, monkeypatch, tmp_path / "m")
    checkpoint = load_checkpoint(convert_checkpoint(source, tmp_path / "cond.safetensors", format_name="nvlabs-stylegan2"))
    generator, discriminator = checkpoint["generator"].eval(), checkpoint["discriminator"].eval()
    assert generator.c_dim == 3 and discriminator.c_dim == 3
    ws = torch.randn(2, generator.num_ws, 16)
    with torch.no_grad():
        assert (generator.synthesis(ws) - nvlabs_stylegan2_reference(g_node.state_dict(), ws, 32, conv_clamp=0.5)).abs().max() < 1e-4
        images, c = torch.rand(4, 3, 32, 32), torch.randn(4, 3)
        expected = nvlabs_discriminator_reference(d_node.state_dict(), images, 32, c=c, cmap_dim=16)
        torch.testing.assert_close(discriminator(images, c), expected, atol=1e-4, rtol=1e-4)


def test_unsupported_architecture_is_reported(tmp_path, monkeypatch):
    g_node = nvlabs_stylegan2_generator(ada=False)
    g_node.init_kwargs["architecture"] = "resnet"
    source = write_nvlabs_pickle(tmp_path / "resnet.pkl", {"G_ema": g_node}, monkeypatch, tmp_path / "m")
    with pytest.raises(ConversionError, match="architecture='resnet'"):
        convert_checkpoint(source, tmp_path / "out.safetensors")


def test_nvlabs_leftover_keys_are_listed(tmp_path, monkeypatch):
    g_node = nvlabs_stylegan2_generator()
    g_node.children["synthesis"].children["b8"].params["extra_scale"] = torch.ones(3)
    del g_node.children["synthesis"].children["b16"].children["conv1"].params["bias"]
    source = write_nvlabs_pickle(tmp_path / "odd.pkl", {"G_ema": g_node}, monkeypatch, tmp_path / "m")
    with pytest.raises(ConversionError) as error:
        convert_checkpoint(source, tmp_path / "out.safetensors")
    message = str(error.value)
    assert "synthesis.b8.extra_scale -> synthesis_network.b8.extra_scale" in message
    assert "destination keys not filled: synthesis_network.b16.conv1.bias" in message
    assert not (tmp_path / "out.safetensors").exists()


class _Exploit:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (os.system, (f"touch {self.target}",))


@pytest.mark.parametrize("protocol", [2, 4])
def test_malicious_pickle_is_refused_and_nothing_runs(tmp_path, protocol):
    target = tmp_path / "pwned"
    path = tmp_path / "evil.pkl"
    with path.open("wb") as handle:
        pickle.dump({"G_ema": _Exploit(target), "note": "_reconstruct_persistent_obj"}, handle, protocol=protocol)
    with pytest.raises(UnsafePickleError, match="posix.system|os.system|nt.system"):
        convert_checkpoint(path, tmp_path / "out.safetensors", format_name="nvlabs-stylegan2")
    assert not target.exists()
    assert main(["convert", str(path), str(tmp_path / "out.safetensors"), "--format", "nvlabs-stylegan2"]) == 2
    assert not target.exists() and not (tmp_path / "out.safetensors").exists()


def test_rosinality_checkpoint_converts_with_parity(tmp_path):
    torch.manual_seed(2)
    g_state = rosinality_generator_state()
    latent_avg = torch.randn(16)
    d_state = rosinality_discriminator_state()
    source = write_rosinality_checkpoint(tmp_path / "stylegan2-custom.pt", g_state, latent_avg, d_state)
    checkpoint = load_checkpoint(convert_checkpoint(source, tmp_path / "ros.safetensors"))
    generator, discriminator = checkpoint["generator"].eval(), checkpoint["discriminator"].eval()
    assert (generator.resolution, generator.num_ws, generator.w_dim) == (32, 8, 16)
    assert torch.equal(generator.w_avg, latent_avg)
    z = torch.randn(3, 16)
    with torch.no_grad():
        torch.testing.assert_close(generator.mapping(z)[:, 0], rosinality_mapping_reference(g_state, z, 2), atol=1e-5, rtol=1e-5)
        ws = torch.randn(3, 8, 16)
        assert (generator.synthesis(ws) - rosinality_reference(g_state, ws, 32)).abs().max() < 1e-4
        logits = discriminator(torch.rand(4, 3, 32, 32))
    assert logits.shape == (4, 1) and torch.isfinite(logits).all()


def test_rosinality_discriminator_matches_nvlabs_semantics(tmp_path):
    """rosinality's D (Blur then strided conv, (out + skip) / sqrt 2) equals NVlabs' after renaming."""
    torch.manual_seed(3)
    d_state = rosinality_discriminator_state()
    source = write_rosinality_checkpoint(tmp_path / "d.pt", rosinality_generator_state(), torch.zeros(16), d_state)
    discriminator = load_checkpoint(convert_checkpoint(source, tmp_path / "d.safetensors", roles=["discriminator"]))["discriminator"]
    as_nvlabs = {k: v for k, v in discriminator.state_dict().items()}
    f = torch.tensor([1.0, 3.0, 3.0, 1.0])
    as_nvlabs["b32.resample_filter"] = torch.outer(f, f) / 64
    images = torch.rand(4, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(discriminator.eval()(images), nvlabs_discriminator_reference(as_nvlabs, images, 32),
                                   atol=1e-4, rtol=1e-4)


def test_rosinality_without_latent_avg_estimates_it(tmp_path):
    torch.manual_seed(4)
    g_state = rosinality_generator_state()
    source = write_rosinality_checkpoint(tmp_path / "train.pt", g_state, None)
    generator = load_checkpoint(convert_checkpoint(source, tmp_path / "g.safetensors"))["generator"]
    z = torch.randn(20000, 16, generator=torch.Generator().manual_seed(9))
    expected = rosinality_mapping_reference(g_state, z, 2).mean(dim=0)
    assert (generator.w_avg - expected).abs().max() < 0.05 * expected.abs().max()


def test_rosinality_leftovers_and_shapes_are_reported(tmp_path):
    g_state = rosinality_generator_state()
    g_state["convs.1.conv.weight"] = torch.randn(1, 16, 8, 3, 3)  # wrong input channels
    g_state["mystery.weight"] = torch.randn(2)
    source = write_rosinality_checkpoint(tmp_path / "bad.pt", g_state, torch.zeros(16))
    with pytest.raises(ConversionError) as error:
        convert_checkpoint(source, tmp_path / "bad.safetensors")
    assert "source keys not used: mystery.weight" in str(error.value)
    assert "convs.1.conv.weight" in str(error.value)


def test_cli_convert_detects_the_format(tmp_path, capsys):
    torch.manual_seed(5)
    source = write_rosinality_checkpoint(tmp_path / "g.pt", rosinality_generator_state(), torch.zeros(16))
    assert main(["convert", str(source), str(tmp_path / "g.safetensors")]) == 0
    out = capsys.readouterr().out
    assert "generator: generator 'stylegan2'" in out and "resolution=32" in out
    assert main(["convert", str(source), str(tmp_path / "g.bin")]) == 2
    (tmp_path / "junk.bin").write_bytes(b"not a checkpoint at all")
    assert main(["convert", str(tmp_path / "junk.bin"), str(tmp_path / "j.safetensors")]) == 2
    assert "not a checkpoint format styletalker can convert" in capsys.readouterr().err


def test_convert_help_documents_the_formats(capsys):
    with pytest.raises(SystemExit):
        main(["convert", "--help"])
    text = capsys.readouterr().out
    for name in ("nvlabs-stylegan2", "nvlabs-stylegan3", "rosinality-stylegan2"):
        assert name in text
