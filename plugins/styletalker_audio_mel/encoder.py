"""The ``mel`` audio encoder: log-mel windows per video frame and a learnable 1-D conv stack.

Axis letters: b batch, t video frames, m mel bins (conv channels in), k mel frames, c channels.
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import nn

from styletalker_audio_mel.frontend import LogMelWindows
from styletalker_core.interfaces import AudioEncoder


class ConvBlock(nn.Module):
    """Conv1d over mel frames -> GroupNorm -> LeakyReLU (with a residual path when shapes allow)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, groups: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1)
        self.norm = nn.GroupNorm(groups, out_channels)
        self.act = nn.LeakyReLU(0.2)
        self.residual = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [n, c_in, k] -> [n, c_out, k / stride]."""
        y = self.act(self.norm(self.conv(x)))
        return x + y if self.residual else y


class MelAudioEncoder(AudioEncoder):
    """Log-mel windows (16 mel frames per 5 video frames) encoded per frame by a 1-D conv stack.

    Every frame is encoded from its own window only, so the encoder's receptive field is the
    window's (3 frames on each side with the defaults) and chunked processing is exact.
    Options follow the field's mel conventions (16 kHz, n_fft 800, hop 200, 80 bins, 55-7600 Hz).
    """

    def __init__(
        self,
        feature_dim: int = 256,
        hidden_channels: int = 256,
        num_layers: int = 4,
        n_mels: int = 80,
        n_fft: int = 800,
        win_length: int = 800,
        hop_length: int = 200,
        f_min: float = 55.0,
        f_max: float = 7600.0,
        window_mel_frames: int = 16,
        norm_groups: int = 8,
    ) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be at least 1, got {num_layers}")
        if hidden_channels % norm_groups:
            raise ValueError(f"hidden_channels {hidden_channels} must be divisible by norm_groups {norm_groups}")
        self.feature_dim = feature_dim
        self.windows = LogMelWindows(
            sample_rate=self.sample_rate,
            samples_per_frame=self.samples_per_frame,
            n_fft=n_fft,
            win_length=win_length,
            hop_length=hop_length,
            n_mels=n_mels,
            f_min=f_min,
            f_max=f_max,
            window_mel_frames=window_mel_frames,
        )
        self.context_frames = self.windows.reach_frames
        # First block keeps the mel-frame resolution; each further block halves it.
        blocks = [ConvBlock(n_mels, hidden_channels, stride=1, groups=norm_groups)]
        blocks += [ConvBlock(hidden_channels, hidden_channels, stride=2, groups=norm_groups) for _ in range(num_layers - 1)]
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(hidden_channels, feature_dim)

    def mel_windows(self, wave: torch.Tensor, num_frames: int) -> torch.Tensor:
        """wave [b, s] -> log-mel windows [b, num_frames, n_mels, window_mel_frames] (no learned part)."""
        return self.windows(self.fit_wave(wave, num_frames), num_frames)

    def features(self, wave: torch.Tensor, num_frames: int) -> torch.Tensor:
        """wave [b, s] at 16 kHz -> features [b, num_frames, feature_dim] at 25 fps."""
        windows = self.mel_windows(wave, num_frames)  # [b, t, m, k]
        hidden = self.blocks(rearrange(windows, "b t m k -> (b t) m k"))  # [(b t), c, k']
        encoded = self.head(hidden.mean(dim=2))  # [(b t), feature_dim]
        return rearrange(encoded, "(b t) c -> b t c", b=wave.shape[0])
