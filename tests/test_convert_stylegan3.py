"""Converting NVlabs StyleGAN3 pickles (built in the original format with NVIDIA's own module
tree, kwargs, designed filters and weights from tests/reference/nvlabs) and checking the
converted generator against a plain implementation of NVlabs' StyleGAN3 maths."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from test_convert_builders import (
    PAYLOAD_FILE_NAME,
    nvlabs_mapping_reference,
    nvlabs_reference_pickle,
    reference_facts,
    reference_network,
    reference_state,
    write_nvlabs_pickle,
)

from styletalker_core.checkpoint import load_checkpoint
from styletalker_core.checkpoint.convert import ConversionError, convert_checkpoint
from styletalker_core.nn.reference import filtered_lrelu_reference


def stylegan3_layer_settings(kwargs: dict) -> tuple[list[dict], dict]:
    """Per-layer settings (name, up/down factors, padding) and the input's size, sampling rate and
    bandwidth that NVlabs' SynthesisNetwork derives from its kwargs (its defaults where absent)."""
    res = kwargs["img_resolution"]
    num_layers, critical = kwargs.get("num_layers", 14), kwargs.get("num_critical", 2)
    margin, filter_size = kwargs.get("margin_size", 10), kwargs.get("filter_size", 6)
    conv_kernel = kwargs.get("conv_kernel", 3)
    last_cutoff = res / 2
    exponents = np.minimum(np.arange(num_layers + 1) / (num_layers - critical), 1)
    cutoffs = kwargs.get("first_cutoff", 2) * (last_cutoff / kwargs.get("first_cutoff", 2)) ** exponents
    first_stopband = kwargs.get("first_stopband", 2 ** 2.1)
    stopbands = first_stopband * (last_cutoff * kwargs.get("last_stopband_rel", 2 ** 0.3) / first_stopband) ** exponents
    rates = np.exp2(np.ceil(np.log2(np.minimum(stopbands * 2, res))))
    sizes = rates + margin * 2
    sizes[-2:] = res
    channels = np.rint(np.minimum((kwargs["channel_base"] / 2) / cutoffs, kwargs["channel_max"]))
    channels[-1] = kwargs.get("img_channels", 3)
    layers = []
    for idx in range(num_layers + 1):
        prev = max(idx - 1, 0)
        torgb = idx == num_layers
        k = 1 if torgb else conv_kernel
        tmp = max(rates[prev], rates[idx]) * (1 if torgb else 2)
        up, down = int(round(tmp / rates[prev])), int(round(tmp / rates[idx]))
        up_taps = filter_size * up if up > 1 and not torgb else 1
        down_taps = filter_size * down if down > 1 and not torgb else 1
        pad_total = (sizes[idx] - 1) * down + 1 - (sizes[prev] + k - 1) * up + up_taps + down_taps - 2
        pad_lo = (pad_total + up) // 2
        layers.append(dict(name=f"L{idx}_{int(sizes[idx])}_{int(channels[idx])}", torgb=torgb, k=k, up=up, down=down,
                           padding=[int(pad_lo), int(pad_total - pad_lo)] * 2))
    return layers, dict(size=int(sizes[0]), rate=float(rates[0]), bandwidth=float(cutoffs[0]))


def stylegan3_reference(state: dict, ws: torch.Tensor, layers: list[dict], inp: dict) -> torch.Tensor:
    """NVlabs StyleGAN3 synthesis, plain (per-sample convolutions, zero-insertion filtering)."""
    def affine(prefix, w):
        weight = state[prefix + ".weight"]
        return w @ (weight / math.sqrt(weight.shape[1])).t() + state[prefix + ".bias"]

    batch = ws.shape[0]
    t = affine("synthesis.input.affine", ws[:, 0])
    t = t / t[:, :2].norm(dim=1, keepdim=True)
    m_r = torch.eye(3).repeat(batch, 1, 1)
    m_r[:, 0, 0], m_r[:, 0, 1], m_r[:, 1, 0], m_r[:, 1, 1] = t[:, 0], -t[:, 1], t[:, 1], t[:, 0]
    m_t = torch.eye(3).repeat(batch, 1, 1)
    m_t[:, 0, 2], m_t[:, 1, 2] = -t[:, 2], -t[:, 3]
    transforms = m_r @ m_t @ state["synthesis.input.transform"].unsqueeze(0)
    freqs = state["synthesis.input.freqs"].unsqueeze(0)
    phases = state["synthesis.input.phases"].unsqueeze(0) + (freqs @ transforms[:, :2, 2:]).squeeze(2)
    freqs = freqs @ transforms[:, :2, :2]
    amplitudes = (1 - (freqs.norm(dim=2) - inp["bandwidth"]) / (inp["rate"] / 2 - inp["bandwidth"])).clamp(0, 1)
    theta = torch.eye(2, 3)
    theta[0, 0] = theta[1, 1] = 0.5 * inp["size"] / inp["rate"]
    grids = F.affine_grid(theta.unsqueeze(0), [1, 1, inp["size"], inp["size"]], align_corners=False)
    x = (grids.unsqueeze(3) @ freqs.permute(0, 2, 1).unsqueeze(1).unsqueeze(2)).squeeze(3)
    x = torch.sin((x + phases.unsqueeze(1).unsqueeze(2)) * (np.pi * 2)) * amplitudes.unsqueeze(1).unsqueeze(2)
    weight = state["synthesis.input.weight"]
    x = (x @ (weight / math.sqrt(weight.shape[0])).t()).permute(0, 3, 1, 2)
    for layer, w in zip(layers, ws[:, 1:].unbind(1)):
        p = "synthesis." + layer["name"]
        s = affine(p + ".affine", w)
        weight = state[p + ".weight"]
        if layer["torgb"]:
            s = s / math.sqrt(weight.shape[1] * layer["k"] ** 2)
        else:
            weight = weight * weight.square().mean([1, 2, 3], keepdim=True).rsqrt()
            s = s * s.square().mean().rsqrt()
        outs = []
        for i in range(batch):
            wi = weight * s[i].reshape(1, -1, 1, 1)
            if not layer["torgb"]:
                wi = wi * (wi.square().sum(dim=[1, 2, 3], keepdim=True) + 1e-8).rsqrt()
            wi = wi * state[p + ".magnitude_ema"].rsqrt()
            outs.append(F.conv2d(x[i:i + 1], wi, padding=layer["k"] - 1))
        x = filtered_lrelu_reference(
            torch.cat(outs), state.get(p + ".up_filter"), state.get(p + ".down_filter"), state[p + ".bias"],
            up=layer["up"], down=layer["down"], padding=layer["padding"],
            gain=1.0 if layer["torgb"] else math.sqrt(2), slope=1.0 if layer["torgb"] else 0.2, clamp=256)
    return x * 0.25


@pytest.mark.parametrize("config", ["sg3t_64", "sg3r_64"])
def test_nvlabs_stylegan3_pickle_converts_with_parity(tmp_path, monkeypatch, config):
    """A whole snapshot with NVIDIA's StyleGAN3 tree and perturbed weights (non-identity input
    transform, random magnitude EMAs); the converted generator equals plain NVlabs maths."""
    marker = tmp_path / PAYLOAD_FILE_NAME
    source = nvlabs_reference_pickle(tmp_path / f"stylegan3-{config}.pkl", config, monkeypatch, marker, perturbed=True)
    checkpoint = load_checkpoint(convert_checkpoint(source, tmp_path / "sg3.safetensors"))
    assert not marker.exists()
    generator = checkpoint["generator"].eval()
    assert generator.config == config[3] and generator.num_ws == 16
    assert checkpoint["discriminator"].resolution == 64
    kwargs = reference_facts(config)["generator"]["init_kwargs"]
    layers, inp = stylegan3_layer_settings(kwargs)
    assert [layer["name"] for layer in layers] == [
        path.rsplit(".", 1)[-1] for path, cls in reference_facts(config)["modules"]
        if cls.endswith(".SynthesisLayer")]  # the settings agree with NVIDIA's layer names
    state = reference_state(config, "G", perturbed=True)
    torch.manual_seed(0)
    z = torch.randn(2, 64)
    with torch.no_grad():
        ws = generator.mapping(z, truncation_psi=0.5)
        torch.testing.assert_close(ws, nvlabs_mapping_reference(state, z, 2, 16, psi=0.5), atol=1e-5, rtol=1e-5)
        images = generator.synthesis(ws)
        expected = stylegan3_reference(state, ws, layers, inp)
    assert images.shape == expected.shape == (2, 3, 64, 64)
    assert (images - expected).abs().max() < 1e-4


def test_mixed_stylegan3_settings_are_refused(tmp_path, monkeypatch):
    g_node = reference_network("sg3t_64", "G")
    g_node.init_kwargs["use_radial_filters"] = True
    source = write_nvlabs_pickle(tmp_path / "mixed.pkl", {"G_ema": g_node}, monkeypatch, tmp_path / "m")
    with pytest.raises(ConversionError, match="neither config T"):
        convert_checkpoint(source, tmp_path / "mixed.safetensors")


def test_stylegan2_converter_points_to_stylegan3(tmp_path, monkeypatch):
    source = write_nvlabs_pickle(tmp_path / "g.pkl", {"G_ema": reference_network("sg3r_64", "G")}, monkeypatch,
                                 tmp_path / "m")
    with pytest.raises(ConversionError, match="nvlabs-stylegan3"):
        convert_checkpoint(source, tmp_path / "g.safetensors", format_name="nvlabs-stylegan2")


def test_stylegan3_converter_points_to_stylegan2(tmp_path, monkeypatch):
    source = write_nvlabs_pickle(tmp_path / "g.pkl", {"G_ema": reference_network("sg2_64", "G")}, monkeypatch,
                                 tmp_path / "m")
    with pytest.raises(ConversionError, match="nvlabs-stylegan2"):
        convert_checkpoint(source, tmp_path / "g.safetensors", format_name="nvlabs-stylegan3")
