"""PSNR, SSIM and CPBD against their definitions."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import skimage.data
import torch
from scipy import ndimage
from skimage.metrics import structural_similarity

from styletalker_core.errors import StyleTalkerError
from styletalker_core.interfaces.metric import EvalItem
from styletalker_metrics.fidelity import PSNR, SSIM
from styletalker_metrics.sharpness import CPBD, cpbd


def astronaut_frames(count: int = 3, size: int = 96) -> torch.Tensor:
    """[count, 3, size, size] in [-1, 1]: crops of skimage's astronaut, shifted by 2 px each."""
    image = skimage.data.astronaut()
    crops = [image[40 + 2 * i : 40 + 2 * i + size, 160 : 160 + size] for i in range(count)]
    return torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def item(frames: torch.Tensor, reference: torch.Tensor | None = None) -> EvalItem:
    return EvalItem(frames=frames, audio=torch.zeros(1600), reference_frames=reference)


def test_psnr_of_identical_frames_is_the_cap() -> None:
    frames = astronaut_frames()
    assert PSNR().compute(item(frames, frames.clone())) == {"psnr": pytest.approx(100.0)}
    assert PSNR(max_db=60.0).compute(item(frames, frames.clone()))["psnr"] == pytest.approx(60.0)


def test_psnr_of_a_constant_offset_and_of_noise_follow_the_formula() -> None:
    reference = torch.zeros(2, 3, 16, 16)  # 0.5 in [0, 1]
    shifted = reference + 0.2  # +0.1 in [0, 1]: MSE 0.01 -> 20 dB
    assert PSNR().compute(item(shifted, reference))["psnr"] == pytest.approx(20.0, abs=1e-4)
    generator = torch.Generator().manual_seed(0)
    noisy = (reference + 0.1 * torch.randn(reference.shape, generator=generator)).clamp(-1, 1)
    mse = (((noisy + 1) / 2 - (reference + 1) / 2) ** 2).flatten(1).mean(1)
    expected = float((10 * torch.log10(1 / mse)).mean())
    assert PSNR().compute(item(noisy, reference))["psnr"] == pytest.approx(expected, rel=1e-5)
    assert expected == pytest.approx(10 * math.log10(1 / 0.05**2), abs=0.3)  # std 0.05 in [0, 1]


def test_psnr_pairs_common_length_and_resizes_the_reference() -> None:
    frames = torch.zeros(4, 3, 16, 16)
    reference = torch.zeros(5, 3, 32, 32)  # one frame longer, twice the size, same content
    assert PSNR().compute(item(frames, reference))["psnr"] == pytest.approx(100.0)


def test_ssim_is_one_for_identical_frames_and_matches_skimage() -> None:
    frames = astronaut_frames()
    assert SSIM().compute(item(frames, frames.clone()))["ssim"] == pytest.approx(1.0, abs=1e-5)
    generator = torch.Generator().manual_seed(1)
    noisy = (frames + 0.1 * torch.randn(frames.shape, generator=generator)).clamp(-1, 1)
    ours = SSIM().compute(item(noisy, frames))["ssim"]
    expected = np.mean([
        structural_similarity(
            ((a + 1) / 2).permute(1, 2, 0).double().numpy(), ((b + 1) / 2).permute(1, 2, 0).double().numpy(),
            channel_axis=2, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0,
        )
        for a, b in zip(noisy, frames)
    ])
    assert ours == pytest.approx(expected, abs=1e-4)
    assert ours < 0.95


def test_ssim_rejects_a_window_larger_than_the_frames() -> None:
    tiny = torch.zeros(1, 3, 8, 8)
    with pytest.raises(StyleTalkerError, match="window_size"):
        SSIM().compute(item(tiny, tiny))
    with pytest.raises(StyleTalkerError, match="odd"):
        SSIM(window_size=4)


def test_cpbd_falls_as_the_image_is_blurred() -> None:
    gray = skimage.data.camera().astype(np.float64)
    values = [cpbd(ndimage.gaussian_filter(gray, sigma) if sigma else gray) for sigma in (0, 0.7, 1.5, 3.0)]
    assert all(a > b for a, b in itertools.pairwise(values)), values
    assert values[0] > 0.4 and values[-1] < 0.05


def test_cpbd_metric_prefers_sharp_frames_and_is_nan_without_edges() -> None:
    frames = astronaut_frames(2, 128)
    blurred = torch.from_numpy(ndimage.gaussian_filter(frames.numpy(), sigma=(0, 0, 1.5, 1.5)))
    sharp_value = CPBD().compute(item(frames))["cpbd"]
    assert sharp_value > CPBD().compute(item(blurred))["cpbd"] + 0.2
    assert math.isnan(CPBD().compute(item(torch.zeros(2, 3, 64, 64)))["cpbd"])
