"""The ``wav2vec2`` audio encoder: a wav2vec 2.0 / HuBERT model (torchaudio's definition),
one hidden layer or a learned weighted sum of layers, resampled from 50 Hz to 25 fps.

Axis letters: b batch, s samples, n 50 Hz model frames, t video frames, c channels.
"""

from __future__ import annotations

import math
from typing import Any

import attrs
import torch
from torch import nn

from styletalker_audio_wav2vec2.architectures import PRESETS, Wav2Vec2Config, build_backbone
from styletalker_audio_wav2vec2.checkpoints import read_pretrained, read_pretrained_config
from styletalker_core.errors import CheckpointError
from styletalker_core.interfaces import AudioEncoder


class Wav2Vec2AudioEncoder(AudioEncoder):
    """wav2vec 2.0 / HuBERT features at 25 fps, from a chosen layer or a learned mix of layers.

    ``architecture``: a preset (base, large, large_lv60, hubert_base, hubert_large,
    hubert_xlarge), or "auto" to take it from ``pretrained``. Size options left at 0 (or "")
    keep the preset's value, so small custom models need only the sizes that differ.
    ``pretrained``: a Hugging Face model folder or a fairseq ``.pt`` file, imported by
    :meth:`load_pretrained` (never by the constructor).
    ``layer``: hidden state to use, 0 = transformer input, i = output of layer i, negative
    counts from the end (the last state of pre-LN models includes the final layer norm, as in
    Hugging Face's ``hidden_states``). ``weighted_layers``: learn a softmax-weighted sum of all
    states instead. ``freeze``: keep the model fixed (no gradients, always in eval mode).
    ``feature_dim``: add a linear projection to this size (0 keeps the model's width).
    ``attention_window_frames``: 0 attends over the whole input as the published models do;
    N > 0 restricts attention to +-N video frames, which (with a layer-norm feature extractor)
    bounds the receptive field so chunked processing is exact.
    ``normalize_wave``: zero-mean unit-variance input, as some checkpoints expect (see their
    preprocessor_config.json ``do_normalize``).
    """

    def __init__(
        self,
        architecture: str = "base",
        pretrained: str = "",
        layer: int = -1,
        weighted_layers: bool = False,
        freeze: bool = True,
        feature_dim: int = 0,
        attention_window_frames: int = 0,
        normalize_wave: bool = False,
        dropout: float = 0.0,
        embed_dim: int = 0,
        num_layers: int = 0,
        num_heads: int = 0,
        ff_dim: int = 0,
        conv_channels: int = 0,
        pos_conv_kernel: int = 0,
        pos_conv_groups: int = 0,
        extractor_mode: str = "",
    ) -> None:
        super().__init__()
        self.config = self._resolve_config(
            architecture, pretrained, embed_dim, num_layers, num_heads, ff_dim, conv_channels, pos_conv_kernel, pos_conv_groups, extractor_mode
        )
        self.pretrained = pretrained
        self.architecture = architecture
        states = self.config.num_layers + 1
        if not -states <= layer < states:
            raise ValueError(f"layer {layer} does not exist: the model has hidden states 0..{states - 1}")
        self.layer = layer % states
        self.weighted_layers = weighted_layers
        self.freeze = freeze
        self.attention_window_frames = attention_window_frames
        self.normalize_wave = normalize_wave
        self.backbone = build_backbone(self.config, dropout=dropout)
        self.layer_weights = nn.Parameter(torch.zeros(states)) if weighted_layers else None
        self.projection = nn.Linear(self.config.embed_dim, feature_dim) if feature_dim > 0 else nn.Identity()
        self.feature_dim = feature_dim if feature_dim > 0 else self.config.embed_dim
        if freeze:
            self.backbone.requires_grad_(False)
        self.context_frames = self._context_frames()

    @staticmethod
    def _resolve_config(
        architecture: str,
        pretrained: str,
        embed_dim: int,
        num_layers: int,
        num_heads: int,
        ff_dim: int,
        conv_channels: int,
        pos_conv_kernel: int,
        pos_conv_groups: int,
        extractor_mode: str,
    ) -> Wav2Vec2Config:
        if architecture == "auto":
            if not pretrained:
                raise ValueError("architecture 'auto' reads the architecture from 'pretrained'; give a checkpoint path")
            config = read_pretrained_config(pretrained)
        elif architecture in PRESETS:
            config = PRESETS[architecture]
        else:
            raise ValueError(f"unknown wav2vec2 architecture {architecture!r}; choose auto or one of {', '.join(PRESETS)}")
        changes: dict[str, Any] = {
            name: value
            for name, value in (
                ("embed_dim", embed_dim),
                ("num_layers", num_layers),
                ("num_heads", num_heads),
                ("ff_dim", ff_dim),
                ("pos_conv_kernel", pos_conv_kernel),
                ("pos_conv_groups", pos_conv_groups),
                ("extractor_mode", extractor_mode),
            )
            if value
        }
        if conv_channels:
            changes["conv_layers"] = tuple((conv_channels, kernel, stride) for _, kernel, stride in config.conv_layers)
        return attrs.evolve(config, **changes)

    def _context_frames(self) -> int | None:
        """Video frames on each side that influence a frame, or None when unbounded."""
        if self.attention_window_frames <= 0 or self.normalize_wave or self.config.extractor_mode != "layer_norm":
            return None
        layers = self.config.num_layers if self.weighted_layers else self.layer
        radius = self.config.pos_conv_kernel // 2 + layers * 2 * self.attention_window_frames  # model frames
        radius_samples = radius * self.config.stride + self.config.receptive_samples + self.config.stride
        return math.ceil(radius_samples / self.samples_per_frame) + 1

    def train(self, mode: bool = True) -> Wav2Vec2AudioEncoder:
        super().train(mode)
        if self.freeze:
            self.backbone.eval()
        return self

    def load_pretrained(self) -> None:
        """Import the weights of ``pretrained`` (Hugging Face folder or fairseq .pt) into the model."""
        if not self.pretrained:
            return
        config, state = read_pretrained(self.pretrained)
        if config != self.config:
            raise CheckpointError(
                f"{self.pretrained}: its architecture differs from the configured one ({self.architecture}); "
                "set architecture = \"auto\" to take it from the checkpoint"
            )
        missing, unexpected = self.backbone.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise CheckpointError(f"{self.pretrained}: missing weights {missing[:5]}, unexpected {unexpected[:5]}")

    def _attention_mask(self, frames: int, batch: int, like: torch.Tensor) -> torch.Tensor | None:
        if self.attention_window_frames <= 0:
            return None
        window = 2 * self.attention_window_frames  # model frames run at twice the video rate
        index = torch.arange(frames, device=like.device)
        outside = (index[:, None] - index[None, :]).abs() > window
        mask = torch.zeros(frames, frames, dtype=like.dtype, device=like.device).masked_fill(outside, float("-inf"))
        return mask.expand(batch, 1, frames, frames)

    def hidden_states(self, wave: torch.Tensor, upto: int | None = None) -> list[torch.Tensor]:
        """wave [b, s] -> hidden states 0..upto (all when None), each [b, n, embed_dim] at 50 Hz."""
        last = self.config.num_layers if upto is None else upto
        if self.normalize_wave:
            wave = (wave - wave.mean(dim=1, keepdim=True)) / torch.sqrt(wave.var(dim=1, keepdim=True, unbiased=False) + 1e-7)
        features, _ = self.backbone.feature_extractor(wave, None)
        x = self.backbone.encoder.feature_projection(features)
        transformer = self.backbone.encoder.transformer
        x = x + transformer.pos_conv_embed(x)
        if transformer.layer_norm_first:  # torchaudio's flag: True for post-LN (base) models
            x = transformer.layer_norm(x)
        x = transformer.dropout(x)
        mask = self._attention_mask(x.shape[1], x.shape[0], x)
        states = [x]
        for layer in transformer.layers[:last]:
            x, _ = layer(x, mask)
            states.append(x)
        if last == self.config.num_layers and not transformer.layer_norm_first:
            states[-1] = transformer.layer_norm(states[-1])  # pre-LN models end with a layer norm
        return states

    def model_frames(self, wave: torch.Tensor) -> torch.Tensor:
        """wave [b, s] -> the selected (or mixed) hidden state [b, n, embed_dim] at 50 Hz."""
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze):
            states = self.hidden_states(wave, None if self.weighted_layers else self.layer)
        if self.layer_weights is None:
            return states[self.layer]
        weights = torch.softmax(self.layer_weights, dim=0)
        return torch.einsum("l,lbnc->bnc", weights, torch.stack(states))

    def to_video_rate(self, frames: torch.Tensor, num_frames: int) -> torch.Tensor:
        """[b, n, c] at the model's rate -> [b, num_frames, c]: linear interpolation at each video frame's centre."""
        stride, receptive = self.config.stride, self.config.receptive_samples
        centres = (torch.arange(num_frames, dtype=torch.float64) + 0.5) * self.samples_per_frame
        position = ((centres - receptive / 2) / stride).clamp(0, frames.shape[1] - 1)
        low = position.floor().long()
        high = (low + 1).clamp(max=frames.shape[1] - 1)
        weight = (position - low).to(frames.dtype).to(frames.device)[None, :, None]
        return frames[:, low] * (1 - weight) + frames[:, high] * weight

    def features(self, wave: torch.Tensor, num_frames: int) -> torch.Tensor:
        """wave [b, s] at 16 kHz -> features [b, num_frames, feature_dim] at 25 fps."""
        fitted = self.fit_wave(wave, num_frames)
        return self.projection(self.to_video_rate(self.model_frames(fitted), num_frames))
