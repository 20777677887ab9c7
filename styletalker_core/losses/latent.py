"""Regularisers of W+ codes that keep an encoder's output a sensible editing space.

Axis letters: b batch, l W+ layers, w latent width.
"""

from __future__ import annotations

import torch


def latent_distance(ws: torch.Tensor, w_avg: torch.Tensor) -> torch.Tensor:
    """Mean squared distance of codes from the generator's average latent.

    ws [b, l, w]; w_avg [w] or [l, w] -> [b] (mean over layers and width). Penalising it keeps
    encoded codes near the mapping network's distribution, where the generator's edits work.
    """
    return (ws - w_avg).pow(2).mean(dim=(1, 2))


def delta_regularisation(ws: torch.Tensor, layers: int | None = None, p: float = 2.0) -> torch.Tensor:
    """e4e's delta regularisation: norm of each layer's offset from the first layer's code.

    ws [b, l, w]; ``layers`` counts the layers whose deltas are active (e4e's progressive stage;
    None: all) -> [b], the sum over layers 1..layers-1 of ``||ws[:, i] - ws[:, 0]||_p``.
    Small deltas keep W+ codes close to W (one code for all layers), which keeps them editable.
    """
    count = ws.shape[1] if layers is None else min(layers, ws.shape[1])
    if count <= 1:
        return ws.new_zeros(ws.shape[0])
    deltas = ws[:, 1:count] - ws[:, :1]
    return torch.linalg.vector_norm(deltas, ord=p, dim=-1).sum(dim=1)


def latent_l2(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error between two sets of codes [b, l, w] -> [b] (e.g. encoding generated images)."""
    return (predicted - target).pow(2).mean(dim=(1, 2))
