"""Factor supervision of the encoder's W+ codes, for joint autoencoding.

A joint autoencoder learns large features (outline, colours, pose) first. Small features
that change from frame to frame (eyelids, the mouth) carry little pixel error, so the encoder
drops them and the generator then has no reason to draw them: neither side moves first.
Factor supervision breaks that loop from the encoder side: a linear probe must read per-frame
factors (for example mouth openness and eye openness) back from the codes, so the codes carry
them and the reconstruction loss can teach the generator to use them.

The factors are per-frame labels of the dataset (``labels`` of the synthetic domain); the probe
is trained with the stage and not part of the exported model.
Axis letters: b batch, t frames of a window, n images (b * t), l W+ layers, w latent width, k factors.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from styletalker_core.errors import StyleTalkerError


def label_rows(batch: dict[str, Any], names: list[str]) -> torch.Tensor:
    """batch["labels"][name] [b, t, ...] for each of ``names`` -> [n, k]: one row per image, in the image
    order of ``frames.images_of`` (frames flattened over b then t), vector labels flattened into columns."""
    labels = batch.get("labels") or {}
    missing = [name for name in names if name not in labels]
    if missing:
        raise StyleTalkerError(
            f"this stage needs the per-frame labels {', '.join(missing)}; the dataset serves "
            f"{', '.join(sorted(labels)) or 'no labels'} (set labels = true in [data.train], or drop the option "
            "that asks for them)"
        )
    frames = labels[names[0]].shape[0] * labels[names[0]].shape[1]
    return torch.cat([labels[name].float().reshape(frames, -1) for name in names], dim=1)


def factor_targets(batch: dict[str, Any], names: list[str]) -> torch.Tensor:
    """batch["labels"][name] [b, t] (scalar per frame) for each of ``names`` -> targets [n, k], in the
    image order of ``frames.images_of``."""
    labels = batch.get("labels") or {}
    vectors = [name for name in names if name in labels and labels[name].ndim > 2]
    if vectors:
        raise StyleTalkerError(f"factor labels {', '.join(vectors)} have several values per frame; "
                               "factor supervision takes scalar labels (for example mouth_open, eye_open)")
    return label_rows(batch, names)


class FactorProbe(nn.Module):
    """Linear read-out ws [n, l, w] -> factors [n, k], scored against standardised targets.

    ``mean`` and ``std`` [k] standardise the targets so that every factor counts alike."""

    mean: torch.Tensor  # buffer
    std: torch.Tensor  # buffer

    def __init__(self, num_ws: int, w_dim: int, mean: torch.Tensor, std: torch.Tensor) -> None:
        super().__init__()
        self.readout = nn.Linear(num_ws * w_dim, mean.numel())
        self.register_buffer("mean", mean.float().clone())
        self.register_buffer("std", std.float().clamp_min(1e-3).clone())

    def loss(self, ws: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """ws [n, l, w], targets [n, k] -> mean squared error of the standardised targets (scalar)."""
        predicted = self.readout(ws.flatten(1))
        return (predicted - (targets - self.mean) / self.std).pow(2).mean()


def label_statistics(dataset: Any, names: list[str], items: int,
                     rows_of: Callable[[dict[str, Any], list[str]], torch.Tensor] = factor_targets,
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and standard deviation [k] of the label columns ``rows_of(batch, names)`` over
    ``dataset[0..items-1]`` (only a scale for standardising, so a few clips' worth is enough)."""
    rows = [rows_of({"labels": {k: v[None] for k, v in dataset[i].get("labels", {}).items()}}, names)
            for i in range(min(items, len(dataset)))]
    values = torch.cat(rows)
    return values.mean(0), values.std(0)
