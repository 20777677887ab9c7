"""Filter design, modulated convolution, filtered leaky ReLU, equalized layers and the mapping network."""

from __future__ import annotations

import math

import pytest
import torch

from styletalker_core.nn import (
    EqualizedConv2d,
    EqualizedLinear,
    MappingNetwork,
    bias_act,
    binomial_filter,
    demodulation_coefficients,
    filtered_lrelu,
    jinc_lowpass,
    kaiser_lowpass,
    modulated_conv2d,
    normalize_2nd_moment,
)
from styletalker_core.nn.reference import filtered_lrelu_reference, modulated_conv2d_reference


def test_binomial_filter_is_normalised():
    f = binomial_filter([1, 3, 3, 1])
    torch.testing.assert_close(f, torch.tensor([1.0, 3.0, 3.0, 1.0]) / 8)
    with pytest.raises(ValueError):
        binomial_filter([1, -1])


@pytest.mark.parametrize("numtaps, cutoff, width, fs", [(12, 5.0, 3.0, 32.0), (24, 2.0, 1.5, 16.0), (6, 10.0, 8.0, 64.0)])
def test_kaiser_lowpass_matches_scipy_firwin(numtaps, cutoff, width, fs):
    signal = pytest.importorskip("scipy.signal")
    ours = kaiser_lowpass(numtaps, cutoff, width, fs)
    expected = torch.as_tensor(signal.firwin(numtaps=numtaps, cutoff=cutoff, width=width, fs=fs), dtype=torch.float32)
    torch.testing.assert_close(ours, expected, atol=1e-6, rtol=1e-5)
    assert math.isclose(ours.sum().item(), 1.0, rel_tol=1e-6)


def test_jinc_lowpass_is_radial_with_unit_gain():
    f = jinc_lowpass(12, cutoff=4.0, width=3.0, fs=32.0)
    assert f.shape == (12, 12)
    assert math.isclose(f.sum().item(), 1.0, rel_tol=1e-5)
    torch.testing.assert_close(f, f.t())  # symmetric under transposition
    torch.testing.assert_close(f, f.flip(0))
    special = pytest.importorskip("scipy.special")
    signal = pytest.importorskip("scipy.signal")
    import numpy as np

    x = (np.arange(12) - 5.5) / 32.0
    r = np.hypot(*np.meshgrid(x, x))
    expected = special.j1(2 * 4.0 * (np.pi * r)) / (np.pi * r)
    window = np.kaiser(12, signal.kaiser_beta(signal.kaiser_atten(12, 3.0 / 16.0)))
    expected = expected * np.outer(window, window)
    expected /= expected.sum()
    torch.testing.assert_close(f, torch.as_tensor(expected, dtype=torch.float32), atol=1e-6, rtol=1e-4)


def test_demodulation_normalises_every_output_filter():
    torch.manual_seed(0)
    weight = torch.randn(5, 4, 3, 3)
    styles = torch.randn(3, 4) * 3
    d = demodulation_coefficients(weight, styles)
    per_sample = weight[None] * styles[:, None, :, None, None] * d[:, :, None, None, None]
    norms = per_sample.square().sum(dim=[2, 3, 4]).sqrt()
    torch.testing.assert_close(norms, torch.ones(3, 5), atol=1e-5, rtol=1e-5)
    # Scaling the styles does not change a demodulated convolution.
    x = torch.randn(3, 4, 6, 6)
    torch.testing.assert_close(
        modulated_conv2d(x, weight, styles, padding=1), modulated_conv2d(x, weight, styles * 7.0, padding=1),
        atol=1e-5, rtol=1e-5,
    )


@pytest.mark.parametrize("mode", ["grouped", "activation", "auto"])
@pytest.mark.parametrize("up", [1, 2])
@pytest.mark.parametrize("demodulate", [True, False])
def test_modulated_conv2d_modes_equal_per_sample_reference(mode, up, demodulate):
    torch.manual_seed(0)
    x = torch.randn(3, 4, 8, 8)
    weight = torch.randn(5, 4, 3, 3)
    styles = torch.randn(3, 4)
    f = binomial_filter([1, 3, 3, 1])
    noise = torch.randn(3, 1, 8 * up, 8 * up)
    fast = modulated_conv2d(x, weight, styles, demodulate=demodulate, padding=1, up=up, resample_filter=f,
                            flip_weight=(up == 1), input_gain=0.5, noise=noise, mode=mode)
    plain = modulated_conv2d_reference(x, weight, styles, demodulate=demodulate, padding=1, up=up,
                                       resample_filter=f, flip_weight=(up == 1), input_gain=torch.tensor(0.5)) + noise
    torch.testing.assert_close(fast, plain, atol=1e-4, rtol=1e-5)


def test_modulated_conv2d_low_precision_close_to_float32():
    torch.manual_seed(0)
    x = torch.randn(2, 8, 8, 8)
    weight = torch.randn(8, 8, 3, 3)
    styles = torch.randn(2, 8)
    exact = modulated_conv2d(x, weight, styles, padding=1)
    low = modulated_conv2d(x.to(torch.bfloat16), weight, styles, padding=1).float()
    assert (low - exact).abs().max() < 0.05 * exact.abs().max()


def test_filtered_lrelu_equals_reference():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 20, 20)
    fd = jinc_lowpass(12, 5.0, 3.0, 32.0)
    b = torch.randn(3)
    for up, down, padding, f_down in [(2, 2, (5, 4, 5, 4), fd), (4, 2, (11, 10, 11, 10), kaiser_lowpass(24, 5, 3, 64))]:
        fu_case = kaiser_lowpass(6 * up, 5.0, 3.0, 16.0 * up)
        fast = filtered_lrelu(x, fu_case, f_down, b, up=up, down=down, padding=padding, clamp=2.0)
        plain = filtered_lrelu_reference(x, fu_case, f_down, b, up=up, down=down, padding=padding, clamp=2.0)
        torch.testing.assert_close(fast, plain, atol=2e-5, rtol=1e-5)


def test_bias_act_gains_and_inplace_safety():
    x = torch.tensor([[-1.0, 2.0]])
    out = bias_act(x, torch.tensor([0.5, 0.5]), act="lrelu")
    torch.testing.assert_close(out, torch.tensor([[-0.5 * 0.2, 2.5]]) * math.sqrt(2))
    assert torch.equal(x, torch.tensor([[-1.0, 2.0]]))  # not modified without inplace
    y = torch.tensor([[3.0]], requires_grad=True)
    bias_act(y * 1, act="lrelu", clamp=1.0, inplace=True).sum().backward()  # autograd forbids in-place: falls back
    assert y.grad is not None


def test_equalized_layers_scale_by_fan_in():
    torch.manual_seed(0)
    linear = EqualizedLinear(64, 32, lr_multiplier=0.01)
    x = torch.randn(4096, 64)
    y = linear(x)
    assert 0.9 < y.std().item() < 1.1  # unit-variance output at init despite the 1/lr weights
    conv = EqualizedConv2d(8, 8, 3, activation="lrelu", down=2)
    out = conv(torch.randn(2, 8, 16, 16))
    assert out.shape == (2, 8, 8, 8)


def test_mapping_network_truncation_and_normalisation():
    torch.manual_seed(0)
    mapping = MappingNetwork(z_dim=16, c_dim=3, w_dim=8, num_ws=5, num_layers=2)
    z, c = torch.randn(4, 16), torch.randn(4, 3)
    with torch.no_grad():
        mapping.w_avg.copy_(torch.randn(8))
        ws = mapping(z, c)
        assert ws.shape == (4, 5, 8)
        assert torch.equal(ws[:, 0], ws[:, 4])
        assert torch.equal(mapping(z, c, truncation_psi=0), mapping.w_avg.expand(4, 5, 8))
        torch.testing.assert_close(mapping(z * 10, c), ws)  # z is normalised first
    torch.testing.assert_close(normalize_2nd_moment(torch.full((2, 4), 3.0)), torch.ones(2, 4))
    with pytest.raises(ValueError, match="z must be"):
        mapping(torch.randn(4, 15), c)
