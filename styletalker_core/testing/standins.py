"""Small stand-in components that contract checks pair an implementation with (for example the
generator an image encoder's out-of-domain check renders through)."""

from __future__ import annotations

import torch
from torch import nn

from styletalker_core.interfaces import Generator


class LinearGenerator(Generator):
    """W+ codes [b, l, w] -> images [b, 3, r, r]: one linear layer and tanh, any sizes."""

    def __init__(self, resolution: int = 4, num_ws: int = 2, w_dim: int = 8) -> None:
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim = w_dim, 0, w_dim
        self.num_ws, self.resolution, self.img_channels = num_ws, resolution, 3
        self.register_buffer("w_avg", torch.zeros(w_dim))
        self.mapping_layer = nn.Linear(w_dim, w_dim)
        self.to_pixels = nn.Linear(num_ws * w_dim, 3 * resolution * resolution)

    def mapping(self, z: torch.Tensor, c: torch.Tensor | None = None, truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None, update_emas: bool = False) -> torch.Tensor:
        """z [b, w] -> ws [b, l, w]."""
        ws = self.mapping_layer(z).unsqueeze(1).repeat(1, self.num_ws, 1)
        cutoff = self.num_ws if truncation_cutoff is None else truncation_cutoff
        truncated = self.w_avg + truncation_psi * (ws[:, :cutoff] - self.w_avg)
        return torch.cat([truncated, ws[:, cutoff:]], dim=1)

    def synthesis(self, ws: torch.Tensor, noise_mode: str = "const", update_emas: bool = False) -> torch.Tensor:
        """ws [b, l, w] -> images [b, 3, r, r] in (-1, 1)."""
        pixels = torch.tanh(self.to_pixels(ws.flatten(1)))
        return pixels.view(ws.shape[0], 3, self.resolution, self.resolution)
