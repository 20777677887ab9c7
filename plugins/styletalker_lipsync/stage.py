"""Stage ``lipsync_pretrain``: the contrastive lip-sync discriminator on ground-truth clips."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from styletalker_core.data.audio_augment import AudioAugmentation
from styletalker_core.interfaces.stage import TrainingStage
from styletalker_core.io.progress import progress_bar
from styletalker_core.model.clips import audio_context_frames
from styletalker_core.model.sync import sync_scores
from styletalker_lipsync.contrastive import info_nce_loss, plan_windows

LOG = logging.getLogger(__name__)


class LipSyncPretrainStage(TrainingStage):
    """Trains ``lipsync_discriminator`` with InfoNCE on ground-truth clips of ``data.train``.

    Each clip gives ``windows_per_clip`` random mouth windows; negatives are the other clips'
    audio and ``negatives`` same-clip audio windows at least ``min_negative_offset`` frames off
    (the dataset's audio context widens the range of offsets). Held-out evaluation on
    ``data.val`` (else ``data.train``): the SyncNet offset search over +-``eval_max_offset``
    frames on ``eval_clips`` windows; ``offset_accuracy`` is the share whose AV offset is 0.

    ``audio_augment`` (a table of :class:`AudioAugmentation` options, as the main stage's) degrades
    each training clip's speech (pitch, reverberation, noise, band limit, mu-law codec, gain), so
    the discriminator matches mouths to what is said rather than to the channel: a judge that
    scores videos driven by phone-band or noisy speech. Positives and negatives of a clip come from
    the same degraded copy. The held-out evaluation always hears the clean speech.
    """

    def __init__(self, windows_per_clip: int = 4, negatives: int = 8, min_negative_offset: int = 15,
                 eval_clips: int = 32, eval_max_offset: int = 15,
                 audio_augment: AudioAugmentation | Mapping[str, Any] | None = None) -> None:
        self.windows_per_clip, self.negatives = windows_per_clip, negatives
        self.min_negative_offset = min_negative_offset
        self.eval_clips, self.eval_max_offset = eval_clips, eval_max_offset
        self.audio_augment = AudioAugmentation.from_table(audio_augment)

    def setup(self, context: Any) -> None:
        self.context = context
        self.discriminator = context.component("lipsync_discriminator")
        self.data = context.dataset("train")
        self.val = context.dataset("val") if context.recipe.data.val is not None else self.data
        self.seed = context.recipe.seed

    def dataset(self) -> Dataset:
        return self.data

    def trainable(self) -> dict[str, nn.Module]:
        return {"lipsync_discriminator": self.discriminator}

    def loss(self, phase: str, batch: dict[str, Any], step: int) -> tuple[torch.Tensor, dict[str, float]]:
        frames, audio = batch["frames"], batch["audio"]
        b, t = frames.shape[:2]
        spf = self.discriminator.sample_rate // self.discriminator.fps
        context = audio_context_frames(t, audio.shape[-1], spf)
        generator = torch.Generator().manual_seed(self.seed * 7919 + step)
        plan = plan_windows(b, t, context, self.discriminator.window_frames, self.windows_per_clip, self.negatives,
                            self.min_negative_offset, generator)
        if self.audio_augment is not None:
            # its own stream of (seed, step), so the windows drawn above are the same with and without it
            rng = torch.Generator().manual_seed(self.seed * 1_000_033 + step)
            audio = self.audio_augment(audio.cpu(), rng).to(audio.device)
        return info_nce_loss(self.discriminator, frames, audio, context, plan, self.min_negative_offset)

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        device = self.context.device
        spf = self.discriminator.sample_rate // self.discriminator.fps
        correct, lse_d, lse_c, count = 0, 0.0, 0.0, min(self.eval_clips, len(self.val))
        for index in progress_bar(range(count), total=count, desc=f"{self.context.stage_name}: evaluate", unit="clip"):
            item = self.val[index]
            frames, audio = item["frames"].to(device), item["audio"].to(device)
            context = audio_context_frames(frames.shape[0], audio.shape[-1], spf)
            scores = sync_scores(self.discriminator, frames, audio, self.eval_max_offset, audio_first_frame=context)
            correct += scores.av_offset == 0
            lse_d += scores.lse_d
            lse_c += scores.lse_c
        if count == 0:
            return {}
        return {"offset_accuracy": correct / count, "lse_d": lse_d / count, "lse_c": lse_c / count,
                "eval_clips": float(count)}

    def outputs(self) -> dict[str, nn.Module]:
        return {"lipsync_discriminator": self.discriminator}

    def produces(self) -> tuple[str, ...]:
        return ("lipsync_discriminator",)
