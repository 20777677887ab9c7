"""Converting NVlabs StyleGAN3 pickles (built here in the original format, with filters designed
by scipy as NVlabs does) and checking the converted generator against a plain implementation
of NVlabs' StyleGAN3 maths."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from styletalker_core.checkpoint import load_checkpoint
from styletalker_core.checkpoint.convert import ConversionError, convert_checkpoint
from styletalker_core.nn.reference import filtered_lrelu_reference
from test_convert_builders import (
    PAYLOAD_FILE_NAME,
    Node,
    _fc,
    nvlabs_mapping,
    nvlabs_mapping_reference,
    nvlabs_stylegan2_discriminator,
    write_nvlabs_pickle,
)

signal = pytest.importorskip("scipy.signal")
special = pytest.importorskip("scipy.special")

SMALL = dict(img_resolution=32, z_dim=16, w_dim=16, channel_base=512, channel_max=16, num_layers=6, margin_size=6)


def design(numtaps, cutoff, width, fs, radial=False):
    """NVlabs SynthesisLayer.design_lowpass_filter, with scipy."""
    if numtaps == 1:
        return None
    if not radial:
        return torch.as_tensor(signal.firwin(numtaps=numtaps, cutoff=cutoff, width=width, fs=fs), dtype=torch.float32)
    x = (np.arange(numtaps) - (numtaps - 1) / 2) / fs
    r = np.hypot(*np.meshgrid(x, x))
    f = special.j1(2 * cutoff * (np.pi * r)) / (np.pi * r)
    beta = signal.kaiser_beta(signal.kaiser_atten(numtaps, width / (fs / 2)))
    w = np.kaiser(numtaps, beta)
    f *= np.outer(w, w)
    f /= np.sum(f)
    return torch.as_tensor(f, dtype=torch.float32)


def nvlabs_stylegan3_generator(config: str = "t", **overrides) -> tuple[Node, list[dict]]:
    """(G node, per-layer settings for the reference)."""
    kw = dict(SMALL, **overrides)
    res, num_layers, critical = kw["img_resolution"], kw["num_layers"], 2
    conv_kernel, radial = (3, False) if config == "t" else (1, True)
    last_cutoff = res / 2
    exponents = np.minimum(np.arange(num_layers + 1) / (num_layers - critical), 1)
    cutoffs = 2 * (last_cutoff / 2) ** exponents
    stopbands = 2 ** 2.1 * (last_cutoff * 2 ** 0.3 / 2 ** 2.1) ** exponents
    rates = np.exp2(np.ceil(np.log2(np.minimum(stopbands * 2, res))))
    half_widths = np.maximum(stopbands, rates / 2) - cutoffs
    sizes = rates + kw["margin_size"] * 2
    sizes[-2:] = res
    channels = np.rint(np.minimum((kw["channel_base"] / 2) / cutoffs, kw["channel_max"]))
    channels[-1] = 3
    w_dim = kw["w_dim"]
    c0 = int(channels[0])
    freqs = torch.randn(c0, 2)
    freqs = freqs / freqs.norm(dim=1, keepdim=True) * cutoffs[0] * torch.rand(c0, 1)
    children = {"input": Node("SynthesisInput", dict(w_dim=w_dim, channels=c0, size=int(sizes[0])),
                              params={"weight": torch.randn(c0, c0)},
                              buffers={"transform": torch.eye(3), "freqs": freqs, "phases": torch.rand(c0) - 0.5},
                              children={"affine": _fc(w_dim, 4)},
                              attributes={"size": np.broadcast_to(np.asarray(int(sizes[0])), [2]),
                                          "sampling_rate": np.float64(rates[0]), "bandwidth": np.float64(cutoffs[0])})}
    layers = []
    for idx in range(num_layers + 1):
        prev = max(idx - 1, 0)
        torgb = idx == num_layers
        k = 1 if torgb else conv_kernel
        tmp = max(rates[prev], rates[idx]) * (1 if torgb else 2)
        up, down = int(round(tmp / rates[prev])), int(round(tmp / rates[idx]))
        up_taps = 6 * up if up > 1 and not torgb else 1
        down_taps = 6 * down if down > 1 and not torgb else 1
        fu = design(up_taps, cutoffs[prev], half_widths[prev] * 2, tmp)
        fd = design(down_taps, cutoffs[idx], half_widths[idx] * 2, tmp, radial and idx < num_layers - critical)
        pad_total = (sizes[idx] - 1) * down + 1 - (sizes[prev] + k - 1) * up + up_taps + down_taps - 2
        pad_lo = (pad_total + up) // 2
        cin, cout = int(channels[prev]), int(channels[idx])
        name = f"L{idx}_{int(sizes[idx])}_{cout}"
        children[name] = Node(
            "SynthesisLayer", dict(w_dim=w_dim, is_torgb=torgb, in_channels=cin, out_channels=cout),
            params={"weight": torch.randn(cout, cin, k, k), "bias": torch.randn(cout) * 0.1},
            buffers={"magnitude_ema": torch.rand([]) + 0.5, "up_filter": fu, "down_filter": fd},
            children={"affine": _fc(w_dim, cin, bias_init=1.0)},
            attributes={"in_size": np.broadcast_to(np.asarray(int(sizes[prev])), [2]), "up_factor": up,
                        "tmp_sampling_rate": np.float64(tmp)})
        layers.append(dict(name=name, torgb=torgb, k=k, up=up, down=down,
                           padding=[int(pad_lo), int(pad_total - pad_lo)] * 2))
    init = dict(z_dim=kw["z_dim"], c_dim=0, w_dim=w_dim, img_resolution=res, img_channels=3,
                mapping_kwargs=dict(num_layers=2), channel_base=kw["channel_base"], channel_max=kw["channel_max"],
                magnitude_ema_beta=0.5 ** (32 / 20000), num_fp16_res=4, conv_clamp=256,
                num_layers=num_layers, margin_size=kw["margin_size"])
    if config == "r":
        init.update(conv_kernel=1, use_radial_filters=True)
    synthesis = Node("SynthesisNetwork", {}, children=children)
    node = Node("Generator", init, children={"synthesis": synthesis,
                                             "mapping": nvlabs_mapping(kw["z_dim"], 0, w_dim, num_layers + 2, 2)})
    return node, layers, dict(size=int(sizes[0]), rate=float(rates[0]), bandwidth=float(cutoffs[0]))


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


@pytest.mark.parametrize("config", ["t", "r"])
def test_nvlabs_stylegan3_pickle_converts_with_parity(tmp_path, monkeypatch, config):
    torch.manual_seed(0)
    marker = tmp_path / PAYLOAD_FILE_NAME
    g_node, layers, inp = nvlabs_stylegan3_generator(config)
    d_node = nvlabs_stylegan2_discriminator()
    source = write_nvlabs_pickle(tmp_path / f"stylegan3-{config}.pkl",
                                 {"G": g_node, "D": d_node, "G_ema": g_node, "augment_pipe": None,
                                  "training_set_kwargs": {"path": "ffhq.zip"}}, monkeypatch, marker)
    checkpoint = load_checkpoint(convert_checkpoint(source, tmp_path / "sg3.safetensors"))
    assert not marker.exists()
    generator = checkpoint["generator"].eval()
    assert generator.config == config and generator.num_ws == 8
    assert checkpoint["discriminator"].resolution == 32
    state = g_node.state_dict()
    z = torch.randn(3, 16)
    with torch.no_grad():
        ws = generator.mapping(z, truncation_psi=0.5)
        torch.testing.assert_close(ws, nvlabs_mapping_reference(state, z, 2, 8, psi=0.5), atol=1e-5, rtol=1e-5)
        images = generator.synthesis(ws)
        expected = stylegan3_reference(state, ws, layers, inp)
    assert images.shape == expected.shape == (3, 3, 32, 32)
    assert (images - expected).abs().max() < 1e-4


def test_mixed_stylegan3_settings_are_refused(tmp_path, monkeypatch):
    g_node, _, _ = nvlabs_stylegan3_generator("t")
    g_node.init_kwargs["use_radial_filters"] = True
    source = write_nvlabs_pickle(tmp_path / "mixed.pkl", {"G_ema": g_node}, monkeypatch, tmp_path / "m")
    with pytest.raises(ConversionError, match="neither config T"):
        convert_checkpoint(source, tmp_path / "mixed.safetensors")


def test_stylegan2_converter_points_to_stylegan3(tmp_path, monkeypatch):
    g_node, _, _ = nvlabs_stylegan3_generator("t")
    source = write_nvlabs_pickle(tmp_path / "g.pkl", {"G_ema": g_node}, monkeypatch, tmp_path / "m")
    with pytest.raises(ConversionError, match="nvlabs-stylegan3"):
        convert_checkpoint(source, tmp_path / "g.safetensors", format_name="nvlabs-stylegan2")
