"""Converting NVlabs StyleGAN2 pickles and rosinality checkpoints (files built in their original
formats by test_convert_builders: NVlabs pickles with NVIDIA's own module tree, kwargs and
weights from tests/reference/nvlabs) and checking the converted networks against plain
implementations of the originals' maths."""

from __future__ import annotations

import math
import os
import pickle

import pytest
import torch
import torch.nn.functional as F
from test_convert_builders import (
    PAYLOAD_FILE_NAME,
    nvlabs_mapping_reference,
    nvlabs_reference_pickle,
    nvlabs_stylegan2_reference,
    reference_network,
    reference_state,
    rosinality_discriminator_state,
    rosinality_generator_state,
    rosinality_mapping_reference,
    rosinality_reference,
    write_nvlabs_pickle,
    write_rosinality_checkpoint,
    write_rosinality_training_checkpoint,
)

from styletalker_core.checkpoint import load_checkpoint, read_metadata
from styletalker_core.checkpoint.convert import ConversionError, convert_checkpoint
from styletalker_core.checkpoint.safe_pickle import UnsafePickleError
from styletalker_core.cli.main import main
from styletalker_core.errors import CheckpointError
from styletalker_core.nn.reference import conv2d_resample_reference


def nvlabs_discriminator_reference(state: dict, images: torch.Tensor, resolution: int, c=None) -> torch.Tensor:
    """NVlabs resnet discriminator, plain: filters on full-size tensors, explicit residual sums.
    ``state`` uses NVIDIA's names (the last block is ``b4``, class DiscriminatorEpilogue)."""
    f = state[f"b{resolution}.resample_filter"]

    def conv(prefix, x, down=1, act=True, gain=1.0):
        w = state[prefix + ".weight"]
        y = conv2d_resample_reference(x, w / math.sqrt(w[0].numel()), f, down=down, padding=w.shape[-1] // 2)
        if prefix + ".bias" in state:
            y = y + state[prefix + ".bias"].reshape(1, -1, 1, 1)
        return (F.leaky_relu(y, 0.2) * math.sqrt(2) if act else y) * gain

    def fc(prefix, x, act, lr=1.0):
        w = state[prefix + ".weight"]
        y = x @ (w * lr / math.sqrt(w.shape[1])).t() + state[prefix + ".bias"] * lr
        return F.leaky_relu(y, 0.2) * math.sqrt(2) if act else y

    x = conv(f"b{resolution}.fromrgb", images)
    res = resolution
    while res > 4:
        skip = conv(f"b{res}.skip", x, down=2, act=False, gain=math.sqrt(0.5))
        x = conv(f"b{res}.conv1", conv(f"b{res}.conv0", x), down=2, gain=math.sqrt(0.5)) + skip
        res //= 2
    group = x.reshape(4, -1, 1, x.shape[1], 4, 4)
    std = (group.var(dim=0, unbiased=False) + 1e-8).sqrt().mean(dim=[2, 3, 4]).reshape(-1, 1, 1, 1).repeat(4, 1, 4, 4)
    x = conv("b4.conv", torch.cat([x, std], dim=1))
    x = fc("b4.out", fc("b4.fc", x.flatten(1), True), False)
    if c is not None:
        y = fc("mapping.embed", c, False)
        y = y * (y.square().mean(dim=1, keepdim=True) + 1e-8).rsqrt()
        for i in range(8):
            y = fc(f"mapping.fc{i}", y, True, lr=0.01)
        x = (x * y).sum(dim=1, keepdim=True) / math.sqrt(y.shape[1])
    return x


@pytest.mark.parametrize("config", ["sg2ada_64", "sg2_64"], ids=["stylegan2-ada-pytorch", "stylegan3-repo"])
def test_nvlabs_stylegan2_pickle_converts_with_parity(tmp_path, monkeypatch, config):
    """Whole snapshot (G, D, G_ema, augment_pipe, training_set_kwargs) with NVIDIA's tree and
    perturbed weights; the converted networks equal plain implementations of NVlabs' maths."""
    marker = tmp_path / PAYLOAD_FILE_NAME
    source = nvlabs_reference_pickle(tmp_path / "network-snapshot.pkl", config, monkeypatch, marker, perturbed=True)
    destination = convert_checkpoint(source, tmp_path / "converted.safetensors")
    assert not marker.exists()  # the embedded source code never ran
    checkpoint = load_checkpoint(destination)
    generator = checkpoint["generator"].eval()
    discriminator = checkpoint["discriminator"].eval()
    metadata = read_metadata(destination)
    assert metadata["components"]["generator"]["options"]["channel_base"] == 2048
    assert metadata["extra"]["conversion"]["generator"]["format"] == "nvlabs-stylegan2"
    assert metadata["extra"]["conversion"]["generator"]["not_converted"] == ["G", "augment_pipe", "training_set_kwargs"]
    state = reference_state(config, "G", perturbed=True)
    torch.manual_seed(0)
    z = torch.randn(3, 64)
    with torch.no_grad():
        ws = generator.mapping(z, truncation_psi=0.7)
        expected_ws = nvlabs_mapping_reference(state, z, layers=2, num_ws=10, psi=0.7)
        torch.testing.assert_close(ws, expected_ws, atol=1e-5, rtol=1e-5)
        images = generator.synthesis(expected_ws, noise_mode="const")
        expected = nvlabs_stylegan2_reference(state, expected_ws, 64, conv_clamp=256)
        assert (images - expected).abs().max() < 1e-4
        images_d = torch.rand(4, 3, 64, 64) * 2 - 1
        torch.testing.assert_close(discriminator(images_d),
                                   nvlabs_discriminator_reference(reference_state(config, "D", perturbed=True), images_d, 64),
                                   atol=1e-4, rtol=1e-4)


def test_nvlabs_conditional_networks_and_conv_clamp(tmp_path, monkeypatch):
    config = "sg2_64_cond"
    g_node = reference_network(config, "G", perturbed=True)
    g_node.init_kwargs["conv_clamp"] = 0.5  # tiny clamp: the clamp path must matter
    d_node = reference_network(config, "D", perturbed=True)
    source = write_nvlabs_pickle(tmp_path / "cond.pkl", {"G_ema": g_node, "D": d_node}, monkeypatch, tmp_path / "m")
    checkpoint = load_checkpoint(convert_checkpoint(source, tmp_path / "cond.safetensors", format_name="nvlabs-stylegan2"))
    generator, discriminator = checkpoint["generator"].eval(), checkpoint["discriminator"].eval()
    assert generator.c_dim == 4 and discriminator.c_dim == 4
    torch.manual_seed(1)
    z, c = torch.randn(4, 64), torch.eye(4)[[2, 0, 3, 1]]
    g_state, d_state = g_node.state_dict(), d_node.state_dict()
    with torch.no_grad():
        torch.testing.assert_close(generator.mapping(z, c, truncation_psi=0.5),
                                   nvlabs_mapping_reference(g_state, z, 2, 10, psi=0.5, c=c), atol=1e-5, rtol=1e-5)
        ws = torch.randn(2, generator.num_ws, 64)
        assert (generator.synthesis(ws) - nvlabs_stylegan2_reference(g_state, ws, 64, conv_clamp=0.5)).abs().max() < 1e-4
        images = torch.rand(4, 3, 64, 64)
        expected = nvlabs_discriminator_reference(d_state, images, 64, c=c)
        torch.testing.assert_close(discriminator(images, c), expected, atol=1e-4, rtol=1e-4)


def test_unsupported_architecture_is_reported(tmp_path, monkeypatch):
    g_node = reference_network("sg2_64", "G")
    g_node.init_kwargs["architecture"] = "resnet"
    source = write_nvlabs_pickle(tmp_path / "resnet.pkl", {"G_ema": g_node}, monkeypatch, tmp_path / "m")
    with pytest.raises(ConversionError, match="architecture='resnet'"):
        convert_checkpoint(source, tmp_path / "out.safetensors")


def test_nvlabs_leftover_keys_are_listed(tmp_path, monkeypatch):
    g_node = reference_network("sg2ada_64", "G")
    g_node.children["synthesis"].children["b8"].params["extra_scale"] = torch.ones(3)
    del g_node.children["synthesis"].children["b16"].children["conv1"].params["bias"]
    d_node = reference_network("sg2ada_64", "D")
    del d_node.children["b4"].children["fc"].params["bias"]
    source = write_nvlabs_pickle(tmp_path / "odd.pkl", {"G_ema": g_node}, monkeypatch, tmp_path / "m")
    with pytest.raises(ConversionError) as error:
        convert_checkpoint(source, tmp_path / "out.safetensors")
    message = str(error.value)
    assert "synthesis.b8.extra_scale -> synthesis_network.b8.extra_scale" in message
    assert "destination keys not filled: synthesis_network.b16.conv1.bias" in message
    assert not (tmp_path / "out.safetensors").exists()
    source = write_nvlabs_pickle(tmp_path / "odd_d.pkl", {"G_ema": reference_network("sg2ada_64", "G"), "D": d_node},
                                 monkeypatch, tmp_path / "m")
    with pytest.raises(ConversionError, match=r"\[discriminator\]: cannot convert; 1 destination keys not filled: "
                                              r"epilogue.fc.bias"):
        convert_checkpoint(source, tmp_path / "out.safetensors")


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
    with pytest.raises(UnsafePickleError, match=r"posix.system|os.system|nt.system"):
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
    # our names back to NVIDIA's: the last block is NVIDIA's b4 (DiscriminatorEpilogue)
    as_nvlabs = {("b4." + k[len("epilogue."):] if k.startswith("epilogue.") else k): v
                 for k, v in discriminator.state_dict().items()}
    f = torch.tensor([1.0, 3.0, 3.0, 1.0])
    as_nvlabs["b32.resample_filter"] = torch.outer(f, f) / 64
    images = torch.rand(4, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(discriminator.eval()(images), nvlabs_discriminator_reference(as_nvlabs, images, 32),
                                   atol=1e-4, rtol=1e-4)


# Key names of rosinality's files, as its model.py registers them and its convert_weight.py
# fills them (a 32 px generator with n_mlp=2, and its discriminator).
ROSINALITY_GENERATOR_KEYS = {
    "style.1.weight", "style.1.bias", "style.2.weight", "style.2.bias",  # style.0 is PixelNorm
    "input.input",
    "conv1.conv.weight", "conv1.conv.modulation.weight", "conv1.conv.modulation.bias", "conv1.noise.weight",
    "conv1.activate.bias",
    "to_rgb1.conv.weight", "to_rgb1.conv.modulation.weight", "to_rgb1.conv.modulation.bias", "to_rgb1.bias",
    *(f"convs.{i}.{name}" for i in range(6)
      for name in ("conv.weight", "conv.modulation.weight", "conv.modulation.bias", "noise.weight", "activate.bias")),
    "convs.0.conv.blur.kernel", "convs.2.conv.blur.kernel", "convs.4.conv.blur.kernel",  # the up-sampling convs
    *(f"to_rgbs.{i}.{name}" for i in range(3)
      for name in ("upsample.kernel", "conv.weight", "conv.modulation.weight", "conv.modulation.bias", "bias")),
    *(f"noises.noise_{i}" for i in range(7)),
}
ROSINALITY_DISCRIMINATOR_KEYS = {
    "convs.0.0.weight", "convs.0.1.bias",
    *(f"convs.{j}.{name}" for j in (1, 2, 3)
      for name in ("conv1.0.weight", "conv1.1.bias", "conv2.0.kernel", "conv2.1.weight", "conv2.2.bias",
                   "skip.0.kernel", "skip.1.weight")),
    "final_conv.0.weight", "final_conv.1.bias",
    "final_linear.0.weight", "final_linear.0.bias", "final_linear.1.weight", "final_linear.1.bias",
}


def test_rosinality_builders_use_rosinalitys_key_names():
    g, d = rosinality_generator_state(), rosinality_discriminator_state()
    assert set(g) == ROSINALITY_GENERATOR_KEYS
    assert set(d) == ROSINALITY_DISCRIMINATOR_KEYS
    assert g["input.input"].shape == (1, 16, 4, 4) and g["conv1.conv.weight"].shape == (1, 16, 16, 3, 3)
    assert g["conv1.noise.weight"].shape == (1,) and g["to_rgb1.bias"].shape == (1, 3, 1, 1)
    assert g["noises.noise_0"].shape == (1, 1, 4, 4) and g["noises.noise_6"].shape == (1, 1, 32, 32)
    assert g["convs.0.conv.blur.kernel"].sum() == pytest.approx(4.0)  # Blur with upsample_factor 2
    assert d["convs.1.conv2.0.kernel"].sum() == pytest.approx(1.0)
    assert d["final_conv.0.weight"].shape[1] == d["convs.3.conv2.1.weight"].shape[0] + 1  # + the stddev channel


def test_rosinality_convert_weight_file_with_g_and_d(tmp_path):
    """convert_weight.py --gen --disc writes g_ema, latent_avg, g and d; g_ema is converted."""
    torch.manual_seed(6)
    g_ema, g_train = rosinality_generator_state(), rosinality_generator_state()
    latent_avg = torch.randn(16)
    source = write_rosinality_checkpoint(tmp_path / "stylegan2-x-config-f.pt", g_ema, latent_avg,
                                         rosinality_discriminator_state(), g=g_train)
    generator = load_checkpoint(convert_checkpoint(source, tmp_path / "x.safetensors"))["generator"].eval()
    ws = torch.randn(2, 8, 16)
    with torch.no_grad():
        assert (generator.synthesis(ws) - rosinality_reference(g_ema, ws, 32)).abs().max() < 1e-4


def test_rosinality_training_checkpoint_converts(tmp_path):
    """train.py's checkpoint/NNNNNN.pt: g, d, g_ema, g_optim, d_optim, args, ada_aug_p; no latent_avg."""
    torch.manual_seed(7)
    g_ema, d = rosinality_generator_state(), rosinality_discriminator_state()
    source = write_rosinality_training_checkpoint(tmp_path / "010000.pt", g_ema, d)
    checkpoint = load_checkpoint(convert_checkpoint(source, tmp_path / "t.safetensors"))
    generator, discriminator = checkpoint["generator"].eval(), checkpoint["discriminator"].eval()
    z = torch.randn(3, 16)
    with torch.no_grad():
        torch.testing.assert_close(generator.mapping(z)[:, 0], rosinality_mapping_reference(g_ema, z, 2),
                                   atol=1e-5, rtol=1e-5)
        assert torch.isfinite(discriminator(torch.rand(4, 3, 32, 32))).all()
    assert torch.isfinite(generator.w_avg).all()


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _assert_own_refusal(message: str, path) -> None:
    assert message.startswith(f"{path}: refused to load: it asks for ")
    assert "system" in message and "nothing in it was run" in message
    assert "\n" not in message.strip()
    for advice in ("weights_only", "Re-running", "trusted source", "torch.load"):
        assert advice not in message


def test_refused_rosinality_file_gets_our_message_not_torchs_advice(tmp_path, capsys):
    marker = tmp_path / "PWNED"
    path = tmp_path / "evil.pt"
    torch.save({"g_ema": rosinality_generator_state(), "latent_avg": torch.zeros(16), "note": _Payload(marker)}, path)
    with pytest.raises(CheckpointError) as error:
        convert_checkpoint(path, tmp_path / "evil.safetensors")
    _assert_own_refusal(str(error.value), path)
    assert main(["convert", str(path), str(tmp_path / "evil.safetensors")]) == 2
    err = capsys.readouterr().err
    assert "refused to load" in err and "weights_only" not in err and "Re-running" not in err
    assert not marker.exists() and not (tmp_path / "evil.safetensors").exists()


def test_refused_e4e_file_gets_our_message_not_torchs_advice(tmp_path):
    marker = tmp_path / "PWNED"
    path = tmp_path / "e4e_evil.pt"
    torch.save({"state_dict": {"encoder.x": torch.zeros(1)}, "opts": {"payload": _Payload(marker)}}, path)
    with pytest.raises(CheckpointError) as error:
        convert_checkpoint(path, tmp_path / "e4e.safetensors", format_name="e4e")
    _assert_own_refusal(str(error.value), path)
    assert not marker.exists()


def test_unreadable_rosinality_file_message(tmp_path):
    path = tmp_path / "truncated.pt"
    torch.save({"g_ema": rosinality_generator_state()}, path)
    path.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(CheckpointError) as error:
        convert_checkpoint(path, tmp_path / "t.safetensors", format_name="rosinality-stylegan2")
    message = str(error.value)
    assert message.startswith(f"{path}: refused to load: not a readable rosinality stylegan2-pytorch checkpoint")
    assert "weights_only" not in message and "\n" not in message


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
