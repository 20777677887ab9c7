"""A generator small enough to train on a laptop: z -> W+ codes through one linear layer, codes
-> pixels through another and tanh."""

from __future__ import annotations

import torch
from torch import nn

from styletalker_core.interfaces import Generator


class LinearGenerator(Generator):
    """z [b, w] -> W+ codes [b, l, w] -> images [b, 3, r, r] in (-1, 1); per-layer noise strengths."""

    def __init__(self, resolution: int = 8, num_ws: int = 4, w_dim: int = 16, w_avg_beta: float = 0.99) -> None:
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim = w_dim, 0, w_dim
        self.num_ws, self.resolution, self.img_channels = num_ws, resolution, 3
        self.w_avg_beta = w_avg_beta
        self.register_buffer("w_avg", torch.zeros(w_dim))
        self.mapping_layer = nn.Linear(w_dim, w_dim)
        self.to_pixels = nn.Linear(num_ws * w_dim, 3 * resolution * resolution)
        self.noise_strength = nn.Parameter(torch.full((1,), 0.1))

    def mapping(self, z: torch.Tensor, c: torch.Tensor | None = None, truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None, update_emas: bool = False) -> torch.Tensor:
        w = self.mapping_layer(z)
        if update_emas:
            self.w_avg.copy_(w.detach().mean(0).lerp(self.w_avg, self.w_avg_beta))
        ws = w.unsqueeze(1).repeat(1, self.num_ws, 1)
        cutoff = self.num_ws if truncation_cutoff is None else truncation_cutoff
        truncated = self.w_avg + truncation_psi * (ws[:, :cutoff] - self.w_avg)
        return torch.cat([truncated, ws[:, cutoff:]], dim=1)

    def synthesis(self, ws: torch.Tensor, noise_mode: str = "const", update_emas: bool = False) -> torch.Tensor:
        pixels = self.to_pixels(ws.flatten(1))
        if noise_mode == "random":
            pixels = pixels + self.noise_strength * torch.randn_like(pixels)
        return torch.tanh(pixels).view(ws.shape[0], 3, self.resolution, self.resolution)
