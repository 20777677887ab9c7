"""The two towers of the contrastive lip-sync discriminator: log-mel audio windows and mouth windows."""

from __future__ import annotations

import torch
import torch.nn.functional as F
import torchaudio
from torch import nn


def conv_block(in_channels: int, out_channels: int, stride: int) -> nn.Sequential:
    """3x3 conv -> BatchNorm -> SiLU. (Batch statistics, as in SyncNet: with per-sample GroupNorm
    the towers stayed at chance on the synthetic domain; see docs/ablations.md.)"""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1),
        nn.BatchNorm2d(out_channels),
        nn.SiLU(),
    )


def conv1d_block(in_channels: int, out_channels: int, stride: int) -> nn.Sequential:
    """Conv1d (kernel 3) -> BatchNorm -> SiLU."""
    return nn.Sequential(
        nn.Conv1d(in_channels, out_channels, 3, stride=stride, padding=1),
        nn.BatchNorm1d(out_channels),
        nn.SiLU(),
    )


class LogMel(nn.Module):
    """wave [b, s] at 16 kHz -> log-mel [b, n_mels, s / hop] (80 Hz with hop 200).

    STFT centred on each hop (n_fft 800, Hann window), power spectrum, mel filter bank
    (55-7600 Hz), natural log. Filters and window are fixed, not saved with the weights.
    """

    filters: torch.Tensor  # buffer
    window: torch.Tensor  # buffer

    def __init__(self, n_mels: int = 80, n_fft: int = 800, hop: int = 200, f_min: float = 55.0,
                 f_max: float = 7600.0, sample_rate: int = 16000) -> None:
        super().__init__()
        self.n_fft, self.hop = n_fft, hop
        filters = torchaudio.functional.melscale_fbanks(n_fft // 2 + 1, f_min, f_max, n_mels, sample_rate, norm="slaney",
                                                        mel_scale="slaney")
        self.register_buffer("filters", filters, persistent=False)  # [freqs, mels]
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        frames = wave.shape[-1] // self.hop
        spectrum = torch.stft(wave, self.n_fft, self.hop, window=self.window, center=True, pad_mode="constant",
                              return_complex=True)
        power = spectrum.abs().pow(2)[..., :frames]  # [b, freqs, frames]
        return torch.log(torch.einsum("bft,fm->bmt", power, self.filters) + 1e-6)


class AudioTower(nn.Module):
    """Audio window [b, s] -> unit embedding [b, d]: 1-D convs over the log-mel frames, mel bins as channels."""

    def __init__(self, embed_dim: int, channels: int, n_mels: int) -> None:
        super().__init__()
        self.mel = LogMel(n_mels=n_mels)
        self.net = nn.Sequential(
            conv1d_block(n_mels, channels, 1),
            conv1d_block(channels, 2 * channels, 2),
            conv1d_block(2 * channels, 2 * channels, 2),
            conv1d_block(2 * channels, 4 * channels, 2),
            nn.AdaptiveAvgPool1d(1),
            nn.Flatten(),
            nn.Linear(4 * channels, embed_dim),
        )

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.net(self.mel(wave)), dim=-1)


class MouthTower(nn.Module):
    """Mouth window [b, k, 3, h, w] -> unit embedding [b, d]; the k frames are stacked as channels.

    With ``remove_window_mean`` the crops' mean over the window is subtracted first, so the
    static appearance (identity, skin, background) is gone and the tower sees the mouth's motion.
    """

    def __init__(self, window_frames: int, embed_dim: int, channels: int, remove_window_mean: bool = True) -> None:
        super().__init__()
        self.remove_window_mean = remove_window_mean
        self.net = nn.Sequential(
            conv_block(3 * window_frames, channels, 1),
            conv_block(channels, 2 * channels, 2),
            conv_block(2 * channels, 4 * channels, 2),
            conv_block(4 * channels, 4 * channels, 2),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(4 * channels, embed_dim),
        )

    def forward(self, mouths: torch.Tensor) -> torch.Tensor:
        if self.remove_window_mean:
            mouths = mouths - mouths.mean(dim=1, keepdim=True)
        return F.normalize(self.net(mouths.flatten(1, 2)), dim=-1)
