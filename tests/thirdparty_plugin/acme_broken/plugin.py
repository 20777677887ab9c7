"""Registers prior backbone ``peeking``: its teacher-forced pass mixes in the next input, which a
prior sampling step by step never has (the contract's causality check must fail)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from styletalker_core.interfaces import PriorBackbone
from styletalker_core.plugin_host import hookimpl
from styletalker_core.registry import Registrar


class PeekingBackbone(PriorBackbone):
    """hidden_t = tanh(W x_t + V x_{t+1}) in ``sequence``; ``step`` cannot see x_{t+1}."""

    def __init__(self, input_dim: int, hidden: int) -> None:
        super().__init__()
        self.input_dim, self.hidden = input_dim, hidden
        self.now, self.next = nn.Linear(input_dim, hidden), nn.Linear(input_dim, hidden, bias=False)

    def sequence(self, inputs: torch.Tensor) -> torch.Tensor:
        following = torch.cat([inputs[:, 1:], torch.zeros_like(inputs[:, :1])], dim=1)
        return torch.tanh(self.now(inputs) + self.next(following))

    def step(self, inputs: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        return torch.tanh(self.now(inputs)), state


@hookimpl
def styletalker_register(registrar: Registrar) -> None:
    registrar.register("prior_backbone", "peeking", PeekingBackbone, example_options={"input_dim": 5, "hidden": 8})
