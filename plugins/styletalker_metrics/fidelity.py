"""Pixel fidelity against the ground-truth video: PSNR and SSIM, averaged over frames."""

from __future__ import annotations

import math

import torch
from kornia.metrics import ssim as kornia_ssim

from styletalker_core.errors import StyleTalkerError
from styletalker_core.interfaces.metric import EvalItem, Metric
from styletalker_metrics.pairing import paired_frames, unit_range


class PSNR(Metric):
    """Peak signal-to-noise ratio (dB) of each generated frame against its reference frame, averaged.

    Pixels are compared in [0, 1]: PSNR = 10 log10(1 / MSE). Identical frames have MSE 0;
    MSE is floored at 10^(-max_db / 10), so a perfect frame scores ``max_db``.
    """

    requires = ("frames", "reference_frames")

    def __init__(self, max_db: float = 100.0) -> None:
        if max_db <= 0:
            raise StyleTalkerError(f"psnr: max_db must be positive, got {max_db}")
        self.max_db = max_db
        self.higher_is_better = {"psnr": True}

    def compute(self, item: EvalItem) -> dict[str, float]:
        generated, reference = paired_frames(item)
        mse = (unit_range(generated) - unit_range(reference)).pow(2).flatten(1).mean(1).double()  # [t]
        floor = 10.0 ** (-self.max_db / 10.0)
        per_frame = 10.0 * torch.log10(1.0 / mse.clamp_min(floor))
        return {"psnr": float(per_frame.mean())}


class SSIM(Metric):
    """Structural similarity (Wang et al. 2004) of each generated frame against its reference, averaged.

    Gaussian window (sigma 1.5) of ``window_size`` pixels over RGB in [0, 1], constants
    K1 = 0.01 and K2 = 0.03; the SSIM map is averaged over channels and the valid window
    positions (no padding), then over frames. 1 means identical.
    """

    requires = ("frames", "reference_frames")

    def __init__(self, window_size: int = 11) -> None:
        if window_size < 3 or window_size % 2 == 0:
            raise StyleTalkerError(f"ssim: window_size must be odd and at least 3, got {window_size}")
        self.window_size = window_size
        self.higher_is_better = {"ssim": True}

    def compute(self, item: EvalItem) -> dict[str, float]:
        generated, reference = paired_frames(item)
        if min(generated.shape[-2:]) < self.window_size:
            raise StyleTalkerError(
                f"ssim: frames of {tuple(generated.shape[-2:])} pixels are smaller than the {self.window_size}-pixel window; "
                "set a smaller window_size"
            )
        values = []
        for start in range(0, len(generated), 64):  # bounded memory for long videos
            block = slice(start, start + 64)
            ssim_map = kornia_ssim(unit_range(generated[block]), unit_range(reference[block]), self.window_size, max_val=1.0, padding="valid")
            values.append(ssim_map.flatten(1).mean(1))
        value = float(torch.cat(values).mean())
        return {"ssim": value if math.isfinite(value) else float("nan")}
