"""Autoregressive backbones of the prior (kind ``prior_backbone``): GRU, LSTM, and a causal
transformer with a sliding window.

Each backbone runs in two modes that agree exactly: ``sequence`` (teacher forcing, all steps
at once, from the zero state) and ``step`` (one step, carrying a state whose size does not
grow with the sequence length); see :class:`styletalker_core.interfaces.PriorBackbone`.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from typing import Any, cast

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from styletalker_core.interfaces import PriorBackbone


class RecurrentBackbone(PriorBackbone):
    """GRU or LSTM with ``layers`` layers; the state is the recurrent state (h, or (h, c))."""

    def __init__(self, cell: str, input_dim: int, hidden: int, layers: int) -> None:
        super().__init__()
        self.input_dim, self.hidden = input_dim, hidden
        rnn = {"gru": nn.GRU, "lstm": nn.LSTM}[cell]
        self.rnn = rnn(input_dim, hidden, num_layers=layers, batch_first=True)

    def sequence(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.rnn(inputs)[0]

    def step(self, inputs: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        output, state = self.rnn(inputs[:, None], state)
        return output[:, 0], state


class GRUBackbone(RecurrentBackbone):
    """GRU with ``layers`` layers; the state is h [layers, b, h]."""

    def __init__(self, input_dim: int, hidden: int, layers: int = 1) -> None:
        super().__init__("gru", input_dim, hidden, layers)


class LSTMBackbone(RecurrentBackbone):
    """LSTM with ``layers`` layers; the state is (h, c), each [layers, b, h]."""

    def __init__(self, input_dim: int, hidden: int, layers: int = 1) -> None:
        super().__init__("lstm", input_dim, hidden, layers)


class WindowAttention(nn.Module):
    """Causal multi-head self-attention over the last ``window`` positions (the current one
    included), with a learned bias per head and distance in place of absolute positions."""

    def __init__(self, dim: int, heads: int, window: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"transformer prior: hidden {dim} is not divisible by heads {heads}")
        self.heads, self.window = heads, window
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.distance_bias = nn.Parameter(torch.zeros(heads, window))

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        return rearrange(x, "b t (n d) -> b n t d", n=self.heads)

    def sequence(self, x: torch.Tensor) -> torch.Tensor:
        """x [b, t, d] -> [b, t, d]."""
        t = x.shape[1]
        q, k, v = (self._split(part) for part in self.qkv(x).chunk(3, dim=-1))
        position = torch.arange(t, device=x.device)
        distance = position[:, None] - position[None, :]  # query minus key
        allowed = (distance >= 0) & (distance < self.window)
        bias = self.distance_bias[:, distance.clamp(0, self.window - 1)]  # [n, t, t]
        bias = bias.masked_fill(~allowed, float("-inf"))
        attended = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.unsqueeze(0))
        return self.out(rearrange(attended, "b n t d -> b t (n d)"))

    def step(self, x: torch.Tensor, cache: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """x [b, d] (newest position), cache [b, m < window, 2d] of earlier keys and values
        -> (output [b, d], updated cache of at most window - 1 positions)."""
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        keys_values = torch.cat([k, v], dim=-1)[:, None]
        if cache is not None:
            keys_values = torch.cat([cache, keys_values], dim=1)
        keys, values = keys_values.chunk(2, dim=-1)
        m = keys.shape[1]
        distance = torch.arange(m - 1, -1, -1, device=x.device)
        bias = self.distance_bias[:, distance][:, None, :].unsqueeze(0)  # [1, n, 1, m]
        attended = F.scaled_dot_product_attention(
            self._split(q[:, None]), self._split(keys), self._split(values), attn_mask=bias
        )
        output = self.out(rearrange(attended, "b n t d -> b t (n d)")[:, 0])
        return output, keys_values[:, -(self.window - 1):] if self.window > 1 else keys_values[:, :0]


class TransformerBlock(nn.Module):
    """Pre-norm block: window attention and an MLP, each with a residual connection."""

    def __init__(self, dim: int, heads: int, window: int) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attention = WindowAttention(dim, heads, window)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))

    def sequence(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attention.sequence(self.norm1(x))
        return x + self.mlp(self.norm2(x))

    def step(self, x: torch.Tensor, cache: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        attended, cache = self.attention.step(self.norm1(x), cache)
        x = x + attended
        return x + self.mlp(self.norm2(x)), cache


class TransformerBackbone(PriorBackbone):
    """Causal transformer whose attention sees the last ``window`` steps; the state is a
    key/value cache of window - 1 steps per layer, so it stays bounded on long sequences."""

    def __init__(self, input_dim: int, hidden: int, layers: int = 1, heads: int = 4, window: int = 32) -> None:
        super().__init__()
        if window < 1:
            raise ValueError("transformer prior: window must be >= 1")
        self.input_dim, self.hidden = input_dim, hidden
        self.embed = nn.Linear(input_dim, hidden)
        self.blocks = nn.ModuleList(TransformerBlock(hidden, heads, window) for _ in range(layers))
        self.norm = nn.LayerNorm(hidden)

    def sequence(self, inputs: torch.Tensor) -> torch.Tensor:
        x = self.embed(inputs)
        for block in cast("Iterable[TransformerBlock]", self.blocks):
            x = block.sequence(x)
        return self.norm(x)

    def step(self, inputs: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        caches = state if state is not None else [None] * len(self.blocks)
        x = self.embed(inputs)
        updated = []
        for block, cache in zip(cast("Iterable[TransformerBlock]", self.blocks), caches):
            x, cache = block.step(x, cache)
            updated.append(cache)
        return self.norm(x), updated


# The registered backbones by name (the plugin registers each; the names are the prior's ``backbone`` values).
BACKBONES: dict[str, type[PriorBackbone]] = {"gru": GRUBackbone, "lstm": LSTMBackbone, "transformer": TransformerBackbone}
# Small instances for the contract tests and as documented examples.
EXAMPLE_OPTIONS: dict[str, dict[str, int]] = {
    "gru": {"input_dim": 5, "hidden": 8, "layers": 2},
    "lstm": {"input_dim": 5, "hidden": 8, "layers": 2},
    "transformer": {"input_dim": 5, "hidden": 8, "layers": 2, "heads": 2, "window": 3},
}


def build_backbone(kind: str, input_dim: int, hidden: int, layers: int, heads: int, window: int) -> PriorBackbone:
    """The built-in backbone ``kind`` (gru, lstm, transformer) with the sizes it takes, outside a registry."""
    if kind not in BACKBONES:
        raise ValueError(f"unknown prior backbone {kind!r}; use {', '.join(BACKBONES)}")
    sizes = {"input_dim": input_dim, "hidden": hidden, "layers": layers, "heads": heads, "window": window}
    factory = BACKBONES[kind]
    accepted = inspect.signature(factory).parameters
    return factory(**{key: value for key, value in sizes.items() if key in accepted})
