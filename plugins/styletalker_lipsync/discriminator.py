"""The contrastive lip-sync discriminator."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from styletalker_core.interfaces import LipSyncDiscriminator
from styletalker_lipsync.encoders import AudioTower, MouthTower

MAX_LOGIT_SCALE = 100.0


class ContrastiveSyncDiscriminator(LipSyncDiscriminator):
    """Audio-window and mouth-window encoders with L2-normalised embeddings, trained with InfoNCE
    and a learnable temperature (SyncNet's task, CLIP's loss).

    Audio: 0.2 s of waveform -> 16 log-mel frames at 80 Hz (80 bins) -> 1-D conv net over time.
    Mouth: the lower half of each aligned face, resized to mouth_height x mouth_width, minus
    the window's mean crop (``remove_window_mean``: the tower sees mouth motion, not identity),
    the ``window_frames`` crops stacked as channels -> 2-D conv net. Both towers use batch
    normalisation (running statistics in eval mode).
    """

    def __init__(
        self,
        window_frames: int = 5,
        embed_dim: int = 128,
        mouth_height: int = 32,
        mouth_width: int = 64,
        channels: int = 32,
        audio_channels: int = 64,
        n_mels: int = 80,
        init_temperature: float = 0.07,
        remove_window_mean: bool = True,
    ) -> None:
        super().__init__()
        if window_frames < 1 or not 0 < init_temperature < 1:
            raise ValueError("lip-sync discriminator: window_frames >= 1 and 0 < init_temperature < 1")
        self.window_frames, self.embed_dim = window_frames, embed_dim
        self.mouth_size = (mouth_height, mouth_width)
        self.audio = AudioTower(embed_dim, audio_channels, n_mels)
        self.mouth = MouthTower(window_frames, embed_dim, channels, remove_window_mean)
        self.log_scale = nn.Parameter(torch.tensor(math.log(1 / init_temperature)))

    def embed_audio(self, wave_windows: torch.Tensor) -> torch.Tensor:
        """wave_windows [b, window_samples] -> [b, d] unit vectors."""
        if wave_windows.shape[-1] != self.window_samples:
            raise ValueError(f"audio windows must have {self.window_samples} samples, got {wave_windows.shape[-1]}")
        return self.audio(wave_windows)

    def embed_mouth(self, mouth_windows: torch.Tensor) -> torch.Tensor:
        """mouth_windows [b, window_frames, 3, h, w] -> [b, d] unit vectors."""
        if tuple(mouth_windows.shape[1:]) != (self.window_frames, 3, *self.mouth_size):
            raise ValueError(f"mouth windows must be [b, {self.window_frames}, 3, {self.mouth_size[0]}, "
                             f"{self.mouth_size[1]}], got {tuple(mouth_windows.shape)}")
        return self.mouth(mouth_windows)

    def mouth_crop(self, faces: torch.Tensor) -> torch.Tensor:
        """faces [..., 3, H, W] -> lower halves resized to [..., 3, mouth_height, mouth_width]."""
        height = faces.shape[-2]
        lower = faces[..., height // 2:, :]
        if tuple(lower.shape[-2:]) == self.mouth_size:
            return lower
        flat = lower.reshape(-1, *lower.shape[-3:])
        resized = F.interpolate(flat, size=self.mouth_size, mode="bilinear", align_corners=False, antialias=True)
        return resized.view(*lower.shape[:-2], *self.mouth_size)

    def logit_scale(self) -> torch.Tensor:
        """1 / temperature, learned, at most 100."""
        return self.log_scale.exp().clamp(max=MAX_LOGIT_SCALE)
