"""Autoregressive motion prior with a normalizing flow on every step."""

from __future__ import annotations

import math
from typing import Annotated, Any

import attrs
import torch
from torch import nn

from styletalker_core.errors import OptionValueError
from styletalker_core.interfaces import Prior
from styletalker_core.registry import ComponentOf, ComponentSpec
from styletalker_motion.audio_window import AudioWindow

LOG_2PI = math.log(2 * math.pi)


def standard_normal(like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """N(0, 1) noise shaped like ``like``, drawn on the generator's device (a CPU generator can drive
    sampling on a GPU) and moved to ``like``'s device."""
    device = generator.device if generator is not None else like.device
    return torch.randn(like.shape, generator=generator, device=device, dtype=like.dtype).to(like.device)


@attrs.define
class PriorState:
    """Carried between chunks: backbone state, the last z [b, z], the last audio frames [b, history, c]."""

    backbone: Any
    last_z: torch.Tensor
    audio_past: torch.Tensor | None  # None before the first chunk


class AutoregressivePrior(Prior):
    """p(z_t | z_<t, audio): a backbone (a registered ``prior_backbone``: gru, lstm, transformer
    built in) reads z_{t-1} and a window of audio features, and gives a diagonal Gaussian for a
    base sample u_t; a conditional flow maps u_t to z_t.

    log p(z_t) = log N(u_t; mu_t, sigma_t) + log|det du_t/dz_t| (exact). Sampling draws
    u_t = mu_t + temperature * sigma_t * eps step by step.
    """

    def __init__(
        self,
        feature_dim: int,
        z_dim: int = 16,
        hidden: int = 128,
        backbone: Annotated[ComponentSpec, ComponentOf("prior_backbone", by_name=True)] = ComponentSpec("gru"),
        layers: int = 1,
        heads: int = 4,
        window: int = 32,
        audio_hidden: int = 64,
        audio_history: int = 2,
        lookahead: int = 2,
        flow: Annotated[ComponentSpec, ComponentOf("flow")] = ComponentSpec("affine_coupling"),
    ) -> None:
        super().__init__()
        sizes = {"z_dim": z_dim, "hidden": hidden, "layers": layers, "heads": heads, "window": window,
                 "audio_hidden": audio_hidden}
        for option, value in sizes.items():  # named here: torch's own message would not say which option
            if value < 1:
                raise OptionValueError(option, value, "must be at least 1")
        self.z_dim, self.feature_dim, self.lookahead = z_dim, feature_dim, lookahead
        self.audio = AudioWindow(feature_dim, audio_hidden, audio_history, lookahead)
        # a registered prior_backbone, given the sizes it declares of these (the recipe names it: backbone = "gru")
        self.backbone = backbone.build(input_dim=z_dim + audio_hidden, hidden=hidden, layers=layers, heads=heads,
                                       window=window)
        if self.backbone.hidden != hidden:
            raise OptionValueError("backbone", backbone.name, f"gives hidden states of {self.backbone.hidden}, not hidden = {hidden}")
        self.base = nn.Linear(hidden, 2 * z_dim)
        # built from the registries this prior is built from (build_component binds the spec)
        self.flow = flow.build(dim=z_dim, context_dim=hidden)

    def _gaussian(self, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, raw = self.base(hidden).chunk(2, dim=-1)
        return mean, 5.0 * torch.tanh(raw / 5.0)  # log sigma softly kept in [-5, 5]

    def log_prob(
        self, z: torch.Tensor, audio_features: torch.Tensor, future: torch.Tensor | None = None
    ) -> torch.Tensor:
        """z [b, t, z], audio_features [b, t, c] (future [b, f, c] optional) -> log p [b, t] (nats)."""
        b, t, _ = z.shape
        conditioning = self.audio(audio_features, future=future)
        previous = torch.cat([z.new_zeros(b, 1, self.z_dim), z[:, :-1]], dim=1)
        hidden = self.backbone.sequence(torch.cat([previous, conditioning], dim=-1))
        mean, log_sigma = self._gaussian(hidden)
        u, log_det = self.flow.inverse(z.reshape(b * t, -1), hidden.reshape(b * t, -1))
        u = u.view(b, t, -1)
        base = -0.5 * (((u - mean) * (-log_sigma).exp()) ** 2 + LOG_2PI) - log_sigma
        return base.sum(-1) + log_det.view(b, t)

    def sample(
        self,
        audio_features: torch.Tensor,
        temperature: float = 1.0,
        state: Any = None,
        generator: torch.Generator | None = None,
        future: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, PriorState]:
        """audio_features [b, t, c] -> (z [b, t, z], state); see :meth:`Prior.sample`."""
        b, t, _ = audio_features.shape
        if state is None:
            state = PriorState(None, audio_features.new_zeros(b, self.z_dim), None)
        conditioning = self.audio(audio_features, past=state.audio_past, future=future)
        backbone_state, last = state.backbone, state.last_z
        samples = []
        for step in range(t):
            hidden, backbone_state = self.backbone.step(torch.cat([last, conditioning[:, step]], dim=-1), backbone_state)
            mean, log_sigma = self._gaussian(hidden)
            noise = standard_normal(mean, generator)
            last, _ = self.flow(mean + temperature * log_sigma.exp() * noise, hidden)
            samples.append(last)
        z = torch.stack(samples, dim=1) if samples else audio_features.new_zeros(b, 0, self.z_dim)
        return z, PriorState(backbone_state, last, self.audio.carry(state.audio_past, audio_features))
