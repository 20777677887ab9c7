"""The autoregressive core of a motion prior (kind ``prior_backbone``)."""

from __future__ import annotations

import abc
from typing import Any

import torch
from torch import nn


class PriorBackbone(nn.Module, abc.ABC):
    """Causal sequence model: inputs [b, t, i] -> hidden states [b, t, h].

    Two modes that agree exactly: ``sequence`` (teacher forcing, every step at once, from the zero
    state) and ``step`` (one step, carrying a state whose size does not grow with the sequence
    length, so sampling long audio runs in bounded memory). Hidden state t depends on inputs
    0..t only.

    Attributes: input_dim (i), hidden (h). A prior builds its backbone with the sizes it knows,
    ``input_dim``, ``hidden``, ``layers``, ``heads`` and ``window``; a factory declares the ones
    it uses (the others are not passed).
    """

    input_dim: int
    hidden: int

    @abc.abstractmethod
    def sequence(self, inputs: torch.Tensor) -> torch.Tensor:
        """inputs [b, t, i] -> hidden [b, t, h], starting from the zero state."""

    @abc.abstractmethod
    def step(self, inputs: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        """inputs [b, i], state (None: the zero state) -> (hidden [b, h], next state)."""
