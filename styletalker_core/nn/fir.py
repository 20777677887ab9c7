"""FIR low-pass filter design for anti-aliased resampling.

- :func:`binomial_filter`: a normalised 1-D filter from integer taps ([1, 3, 3, 1] in StyleGAN2).
- :func:`kaiser_lowpass`: Kaiser-windowed sinc (the separable filters of StyleGAN3); the same
  design as ``scipy.signal.firwin(numtaps, cutoff, width=width, fs=fs)``, without scipy.
- :func:`jinc_lowpass`: radially symmetric Kaiser-windowed jinc (StyleGAN3-R's down filters).

Frequencies (``cutoff``, ``width``, ``fs``) share one unit, cycles per image or per pixel,
as long as all three use the same.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch


def binomial_filter(taps: Sequence[float]) -> torch.Tensor:
    """[k] float32 filter ``taps`` normalised to sum 1 (apply along both axes for 2-D)."""
    f = torch.as_tensor(list(taps), dtype=torch.float32)
    if f.ndim != 1 or f.numel() == 0:
        raise ValueError(f"a resampling filter is a non-empty list of taps, got {list(taps)!r}")
    total = f.sum()
    if total == 0:
        raise ValueError(f"resampling filter {list(taps)!r} sums to zero")
    return f / total


def kaiser_attenuation(numtaps: int, width: float) -> float:
    """Stop-band attenuation in dB of a Kaiser FIR of ``numtaps`` with transition ``width``
    (a fraction of the Nyquist frequency)."""
    return 2.285 * (numtaps - 1) * math.pi * width + 7.95


def kaiser_beta(attenuation: float) -> float:
    """Kaiser window shape parameter for a stop-band ``attenuation`` in dB (Kaiser's formula)."""
    if attenuation > 50:
        return 0.1102 * (attenuation - 8.7)
    if attenuation > 21:
        return 0.5842 * (attenuation - 21) ** 0.4 + 0.07886 * (attenuation - 21)
    return 0.0


def kaiser_lowpass(numtaps: int, cutoff: float, width: float, fs: float) -> torch.Tensor:
    """[numtaps] float32 low-pass filter with unit DC gain.

    ``cutoff`` is the -6 dB frequency, ``width`` the transition band width, ``fs`` the
    sampling rate. ``numtaps`` 1 gives the identity filter [1].
    """
    if numtaps < 1:
        raise ValueError(f"numtaps must be >= 1, got {numtaps}")
    if numtaps == 1:
        return torch.ones(1)
    nyquist = fs / 2
    beta = kaiser_beta(kaiser_attenuation(numtaps, width / nyquist))
    m = np.arange(numtaps) - (numtaps - 1) / 2
    relative = cutoff / nyquist
    h = relative * np.sinc(relative * m) * np.kaiser(numtaps, beta)
    h /= h.sum()
    return torch.as_tensor(h, dtype=torch.float32)


def jinc_lowpass(numtaps: int, cutoff: float, width: float, fs: float) -> torch.Tensor:
    """[numtaps, numtaps] float32 radially symmetric low-pass filter with unit DC gain."""
    if numtaps < 1:
        raise ValueError(f"numtaps must be >= 1, got {numtaps}")
    if numtaps == 1:
        return torch.ones(1, 1)
    x = (torch.arange(numtaps, dtype=torch.float64) - (numtaps - 1) / 2) / fs
    r = torch.hypot(x[None, :], x[:, None])
    safe_r = torch.where(r > 0, r, torch.ones_like(r))
    jinc = torch.special.bessel_j1(2 * math.pi * cutoff * safe_r) / (math.pi * safe_r)
    f = torch.where(r > 0, jinc, torch.full_like(r, cutoff))  # limit of J1(2 pi c r) / (pi r) at r = 0
    beta = kaiser_beta(kaiser_attenuation(numtaps, width / (fs / 2)))
    window = torch.as_tensor(np.kaiser(numtaps, beta), dtype=torch.float64)
    f = f * torch.outer(window, window)
    return (f / f.sum()).to(torch.float32)
