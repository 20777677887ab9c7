"""What StyleGAN-family generators share around their synthesis networks: the mapping
network in ``mapping_network``, the truncation centre ``w_avg``, input checks and the
compute-dtype option."""

from __future__ import annotations

import torch

from styletalker_core.interfaces import Generator
from styletalker_core.nn.mapping import MappingNetwork

COMPUTE_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
NOISE_MODES = ("random", "const", "none")


def compute_dtype(name: str, owner: str) -> torch.dtype:
    """The torch dtype for a ``dtype`` option value ('float32', 'bfloat16', 'float16')."""
    try:
        return COMPUTE_DTYPES[name]
    except KeyError:
        raise ValueError(f"{owner}: dtype {name!r}; use one of {', '.join(COMPUTE_DTYPES)}") from None


def memory_format(channels_last: bool | None, batch: int) -> torch.memory_format:
    """Layout for the activations: ``channels_last`` True/False, or None for automatic
    (channels-last for batches above 1, where it is faster on CPU; contiguous for one sample)."""
    if channels_last is None:
        channels_last = batch > 1
    return torch.channels_last if channels_last else torch.contiguous_format


class StyleGenerator(Generator):
    """A Generator whose subclass sets ``mapping_network`` (a
    :class:`~styletalker_core.nn.MappingNetwork`) and implements ``synthesis``."""

    mapping_network: MappingNetwork

    @property
    def w_avg(self) -> torch.Tensor:  # type: ignore[override]
        """[w_dim] running mean of w, the truncation centre."""
        return self.mapping_network.w_avg

    def mapping(
        self,
        z: torch.Tensor,
        c: torch.Tensor | None = None,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        update_emas: bool = False,
    ) -> torch.Tensor:
        return self.mapping_network(z, c, truncation_psi, truncation_cutoff, update_emas)

    def check_synthesis_inputs(self, ws: torch.Tensor, noise_mode: str) -> None:
        """ws must be [b, num_ws, w_dim]; noise_mode one of NOISE_MODES (ValueError otherwise)."""
        if ws.ndim != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
            raise ValueError(f"synthesis: ws must be [b, {self.num_ws}, {self.w_dim}], got {tuple(ws.shape)}")
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode {noise_mode!r}; use one of {', '.join(NOISE_MODES)}")
