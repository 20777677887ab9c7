"""Held-out numbers of domain pretraining: reconstruction PSNR and factor-oracle agreement.

The oracle reads factors (mouth openness, pose, eye openness, ...) from an image; a good
reconstruction gives the same readings as its input, measured by R^2 with the input's
readings as the target. Axis letters: n images, l W+ layers, w latent width.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import torch
from torch import nn

from styletalker_core.interfaces.image_encoder import psnr
from styletalker_core.losses import load_oracle_checkpoint
from styletalker_core.paths import find_project_file

LOG = logging.getLogger(__name__)
# Factors whose agreement the target names (the oracle may read more); pose is either
# one vector factor "pose" or its three angles.
TARGET_FACTORS = ("mouth_open", "pose", "yaw", "pitch", "roll", "eye_open")
POSE_ANGLES = ("yaw", "pitch", "roll")


def r_squared(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Coefficient of determination per column: [n] or [n, k] -> [] or [k]. 1 is perfect agreement."""
    residual = (prediction - target).pow(2).sum(dim=0)
    total = (target - target.mean(dim=0)).pow(2).sum(dim=0).clamp_min(1e-12)
    return 1.0 - residual / total


@torch.no_grad()
def batched(function: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor, batch_size: int,
            progress: bool = False, desc: str = "evaluate") -> torch.Tensor:
    """Apply ``function`` to ``images`` [n, ...] in batches and concatenate (``progress``: a bar with an ETA)."""
    from tqdm import tqdm

    parts = []
    with tqdm(total=len(images), desc=desc, unit="image", disable=not progress, leave=False) as bar:
        for i in range(0, len(images), batch_size):
            parts.append(function(images[i:i + batch_size]))
            bar.update(len(parts[-1]))
    return torch.cat(parts)


@torch.no_grad()
def oracle_agreement(oracle: nn.Module, inputs: torch.Tensor, outputs: torch.Tensor, batch_size: int = 64) -> dict[str, float]:
    """R^2 of every factor the oracle reads, outputs vs inputs ([n, 3, h, w] each), as ``r2_<factor>``;
    vector factors report their mean and, up to 3 components, each component (``r2_pose_0`` ...)."""
    oracle = oracle.eval()
    device = next(oracle.parameters()).device
    readings_in: dict[str, list[torch.Tensor]] = {}
    readings_out: dict[str, list[torch.Tensor]] = {}
    for start in range(0, len(inputs), batch_size):
        for store, images in ((readings_in, inputs), (readings_out, outputs)):
            chunk = images[start:start + batch_size].to(device)
            size = getattr(oracle, "resolution", chunk.shape[-1])  # an oracle may read one resolution
            if chunk.shape[-1] != size:
                chunk = nn.functional.interpolate(chunk, size=(size, size), mode="bilinear",
                                                  align_corners=False, antialias=True)
            for name, value in oracle(chunk).items():
                store.setdefault(name, []).append(value.float().cpu())
    values: dict[str, float] = {}
    for name in readings_in:
        target, prediction = torch.cat(readings_in[name]), torch.cat(readings_out[name])
        r2 = r_squared(prediction, target)
        values[f"r2_{name}"] = float(r2.mean())
        if r2.ndim == 1 and 1 < r2.numel() <= 3:
            values.update({f"r2_{name}_{k}": float(v) for k, v in enumerate(r2)})
    if "r2_pose" not in values and all(f"r2_{angle}" in values for angle in POSE_ANGLES):
        values["r2_pose"] = sum(values[f"r2_{angle}"] for angle in POSE_ANGLES) / len(POSE_ANGLES)
    targets = [values[f"r2_{name}"] for name in TARGET_FACTORS if f"r2_{name}" in values]
    if targets:
        values["r2_min_target_factors"] = min(targets)
    return values


def load_oracle(path: str, device: torch.device) -> nn.Module | None:
    """The frozen ``oracle`` component of the checkpoint at ``path`` (relative paths also looked up
    from the project folder); None (with a log line) when the file is absent."""
    if not path:
        return None
    found = find_project_file(path)
    if not found.is_file():
        LOG.warning("oracle checkpoint %s not found: held-out oracle R^2 is not reported", path)
        return None
    return load_oracle_checkpoint(found).to(device)


@torch.no_grad()
def reconstruction_report(
    encode: Callable[[torch.Tensor], torch.Tensor],
    synthesize: Callable[[torch.Tensor], torch.Tensor],
    images: torch.Tensor,
    oracle: nn.Module | None = None,
    batch_size: int = 64,
    progress: bool = False,
) -> tuple[dict[str, float], torch.Tensor]:
    """Encode and re-render ``images`` [n, 3, h, w] in [-1, 1] -> :func:`reconstruction_numbers`."""
    reconstructions = batched(lambda x: synthesize(encode(x)).clamp(-1, 1), images, batch_size, progress,
                              "evaluate: reconstruction")
    return reconstruction_numbers(images, reconstructions, oracle, batch_size)


@torch.no_grad()
def reconstruction_numbers(images: torch.Tensor, reconstructions: torch.Tensor, oracle: nn.Module | None = None,
                           batch_size: int = 64) -> tuple[dict[str, float], torch.Tensor]:
    """Score ``reconstructions`` of ``images`` (both [n, 3, h, w] in [-1, 1]).

    -> (numbers, per-image PSNR [n]). Numbers: psnr (mean dB over images), psnr_p05 (5th
    percentile), l1, and with an oracle its ``r2_*`` agreement (see :func:`oracle_agreement`).
    """
    per_image = psnr(reconstructions, images)
    numbers = {
        "psnr": float(per_image.mean()),
        "psnr_p05": float(torch.quantile(per_image, 0.05)),
        "l1": float((reconstructions - images).abs().mean()),
        "images": float(len(images)),
    }
    if oracle is not None:
        numbers.update(oracle_agreement(oracle, images, reconstructions, batch_size))
    return numbers, per_image
