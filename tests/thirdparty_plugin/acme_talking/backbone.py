"""An Elman recurrence as the prior's backbone: h_t = tanh(W x_t + U h_{t-1})."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from styletalker_core.interfaces import PriorBackbone


class ElmanBackbone(PriorBackbone):
    """inputs [b, t, i] -> hidden [b, t, h]; the state is h [b, h]."""

    def __init__(self, input_dim: int, hidden: int) -> None:
        super().__init__()
        self.input_dim, self.hidden = input_dim, hidden
        self.cell = nn.RNNCell(input_dim, hidden, nonlinearity="tanh")

    def sequence(self, inputs: torch.Tensor) -> torch.Tensor:
        state, outputs = None, []
        for t in range(inputs.shape[1]):
            hidden, state = self.step(inputs[:, t], state)
            outputs.append(hidden)
        return torch.stack(outputs, dim=1)

    def step(self, inputs: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        hidden = self.cell(inputs, state)
        return hidden, hidden
