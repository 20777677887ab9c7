"""The fast resampling paths of styletalker_core.nn against the plain reference maths."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from styletalker_core.nn import binomial_filter, conv2d_resample, downsample2d, jinc_lowpass, kaiser_lowpass, upfirdn2d, upsample2d
from styletalker_core.nn.reference import conv2d_resample_reference, upfirdn2d_reference

BINOMIAL = binomial_filter([1, 3, 3, 1])
KAISER = kaiser_lowpass(12, cutoff=3.0, width=2.0, fs=16.0)
CASES = [
    # (up, down, padding, filter)
    (2, 1, (2, 1), BINOMIAL),
    (1, 2, (1, 1), BINOMIAL),
    (1, 1, (1, 2, 0, 3), BINOMIAL),
    (3, 1, (3, 4, 1, -1), KAISER),
    (2, 1, (5, 4), KAISER),
    (4, 1, (7, 9, 8, 10), kaiser_lowpass(24, 3.0, 2.0, 32.0)),
    (1, 2, 0, jinc_lowpass(12, 3.0, 2.0, 16.0)),
    (2, 1, (3, 2), torch.outer(BINOMIAL, BINOMIAL)),
    (2, 2, (3, 3), BINOMIAL),
    ((2, 1), (1, 2), (2, 1, 1, 1), BINOMIAL),
]


@pytest.mark.parametrize("up, down, padding, f", CASES)
@pytest.mark.parametrize("flip_filter", [False, True])
def test_upfirdn2d_equals_zero_insertion_reference(up, down, padding, f, flip_filter):
    torch.manual_seed(0)
    f = f + 0.01 * torch.arange(f.numel()).reshape(f.shape)  # asymmetric: flipping matters
    x = torch.randn(2, 3, 19, 21)
    fast = upfirdn2d(x, f, up=up, down=down, padding=padding, gain=3.0, flip_filter=flip_filter)
    plain = upfirdn2d_reference(x, f, up=up, down=down, padding=padding, gain=3.0, flip_filter=flip_filter)
    assert fast.shape == plain.shape
    torch.testing.assert_close(fast, plain, atol=2e-5, rtol=1e-5)


@pytest.mark.parametrize("up, down, kernel", [(2, 1, 3), (1, 2, 3), (2, 1, 1), (1, 2, 1), (1, 1, 3)])
@pytest.mark.parametrize("flip_weight", [True, False])
@pytest.mark.parametrize("groups", [1, 2])
def test_conv2d_resample_equals_reference(up, down, kernel, flip_weight, groups):
    torch.manual_seed(0)
    x = torch.randn(2, 4, 8, 8)
    w = torch.randn(6, 4 // groups, kernel, kernel)
    f = BINOMIAL + torch.tensor([0.0, 0.01, 0.0, 0.0])
    fast = conv2d_resample(x, w, f, up=up, down=down, padding=kernel // 2, groups=groups, flip_weight=flip_weight)
    plain = conv2d_resample_reference(
        x, w, f, up=up, down=down, padding=kernel // 2, groups=groups, flip_weight=flip_weight
    )
    assert fast.shape == (2, 6, 8 * up // down, 8 * up // down)
    torch.testing.assert_close(fast, plain, atol=2e-5, rtol=1e-5)


def test_resampling_gains_keep_a_constant_image():
    """Up-sampling by 2 with gain up^2 (filter sums to 1) maps a constant to the same constant
    away from the borders; down-sampling too."""
    x = torch.full((1, 2, 16, 16), 0.75)
    up = upsample2d(x, BINOMIAL)
    down = downsample2d(x, BINOMIAL)
    assert up.shape == (1, 2, 32, 32) and down.shape == (1, 2, 8, 8)
    torch.testing.assert_close(up[..., 4:-4, 4:-4], torch.full_like(up[..., 4:-4, 4:-4], 0.75))
    torch.testing.assert_close(down[..., 2:-2, 2:-2], torch.full_like(down[..., 2:-2, 2:-2], 0.75))
    # The total gain of zero-insertion up-sampling is up^2: the image sum grows by 4.
    impulse = torch.zeros(1, 1, 9, 9)
    impulse[..., 4, 4] = 1.0
    assert math.isclose(upsample2d(impulse, BINOMIAL).sum().item(), 4.0, rel_tol=1e-5)
    assert math.isclose(upfirdn2d(impulse, BINOMIAL, padding=2).sum().item(), 1.0, rel_tol=1e-5)


def test_fast_paths_are_differentiable_like_the_reference():
    torch.manual_seed(0)
    x = torch.randn(1, 2, 7, 7, requires_grad=True)
    w = torch.randn(3, 2, 3, 3, requires_grad=True)
    grads = []
    for op in (conv2d_resample, conv2d_resample_reference):
        y = op(x, w, BINOMIAL, up=2, padding=1)
        gx, gw = torch.autograd.grad((y * torch.arange(y.numel()).reshape(y.shape).sin()).sum(), [x, w])
        grads.append((gx, gw))
    torch.testing.assert_close(grads[0][0], grads[1][0], atol=1e-4, rtol=1e-5)
    torch.testing.assert_close(grads[0][1], grads[1][1], atol=1e-4, rtol=1e-5)


@settings(max_examples=25, deadline=None)
@given(
    up=st.integers(1, 4),
    down=st.integers(1, 3),
    taps=st.integers(1, 8),
    separable=st.booleans(),
    pads=st.tuples(*[st.integers(-2, 6)] * 4),
    size=st.tuples(st.integers(5, 12), st.integers(5, 12)),
    seed=st.integers(0, 2 ** 16),
)
def test_upfirdn2d_property(up, down, taps, separable, pads, size, seed):
    """Any factors, filter length and padding (negative crops): fast path == zero insertion."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(1, 2, *size, generator=generator)
    f = torch.randn(taps, generator=generator) if separable else torch.randn(taps, taps, generator=generator)
    out_h = size[0] * up + pads[2] + pads[3] - taps + 1
    out_w = size[1] * up + pads[0] + pads[1] - taps + 1
    if out_h <= 0 or out_w <= 0:
        return
    fast = upfirdn2d(x, f, up=up, down=down, padding=pads)
    plain = upfirdn2d_reference(x, f, up=up, down=down, padding=pads)
    assert fast.shape == plain.shape
    torch.testing.assert_close(fast, plain, atol=1e-4, rtol=1e-4)
