"""Stage ``prior_only``: the flow prior fitted alone to the frozen VAE's posterior."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from styletalker_core.data.audio_augment import AudioAugmentation
from styletalker_core.interfaces.stage import TrainingStage
from styletalker_core.model import TalkingHead
from styletalker_motion.assembly import talking_head_from_context
from styletalker_motion.batches import batch_context, batch_latents
from styletalker_motion.heldout import heldout_scores


class PriorOnlyStage(TrainingStage):
    """Maximum likelihood of the prior on motion latents z ~ q(z | video, audio) of the frozen
    motion VAE (the posterior mean with ``use_posterior_mean``). Everything but the prior stays
    fixed. ``audio_augment`` (see the main stage) degrades the speech the prior is conditioned on.
    Held-out: prior_nll and kl per frame on ``data.val``."""

    def __init__(self, use_posterior_mean: bool = False,
                 audio_augment: AudioAugmentation | Mapping[str, Any] | None = None, eval_clips: int = 16) -> None:
        self.use_posterior_mean = use_posterior_mean
        self.audio_augment = AudioAugmentation.from_table(audio_augment)
        self.eval_clips = eval_clips

    def setup(self, context: Any) -> None:
        self.context = context
        self.head: TalkingHead = talking_head_from_context(context)
        for role in ("generator", "image_encoder", "audio_encoder", "lip_mapper", "motion_vae"):
            getattr(self.head, role).requires_grad_(False).eval()
        self.data = context.dataset("train")
        self.val = context.dataset("val") if context.recipe.data.val is not None else None

    def dataset(self) -> Dataset:
        return self.data

    def trainable(self) -> dict[str, nn.Module]:
        return {"prior": self.head.prior}

    def loss(self, phase: str, batch: dict[str, Any], step: int) -> tuple[torch.Tensor, dict[str, float]]:
        ws, w_id = batch_latents(batch, self.head)
        context = batch_context(batch, self.head.samples_per_frame)
        rng = torch.Generator().manual_seed(self.context.recipe.seed * 1_000_003 + step)  # exact on resume
        audio = batch["audio"]
        if self.audio_augment is not None:  # the posterior reads the clean speech, the prior a degraded copy
            audio = self.audio_augment(audio.cpu(), rng).to(audio.device)
        with torch.no_grad():
            out = self.head.training_latents(ws, w_id, batch["audio"], context, sample=not self.use_posterior_mean,
                                             generator=rng)
        features, future = out.features, out.future
        if self.audio_augment is not None:
            with torch.no_grad():
                heard = self.head.training_latents(ws, w_id, audio, context, sample=False, motion=False)
            features, future = heard.features, heard.future
        nll = -self.head.prior.log_prob(out.z, features, future=future).mean()
        return nll, {"prior_nll": float(nll.detach())}

    def evaluate(self) -> dict[str, float]:
        if self.val is None:
            return {}
        scores = heldout_scores(self.head, self.val, self.eval_clips, self.context.device, render=False,
                                seed=self.context.recipe.seed, desc=f"{self.context.stage_name}: evaluate")
        return {name: scores[name] for name in ("prior_nll", "kl") if name in scores}

    def outputs(self) -> dict[str, nn.Module]:
        return {"prior": self.head.prior}

    def consumes(self) -> tuple[str, ...]:
        # the audio encoder may be a published one that loads its own weights, so it is not required here
        return ("generator", "image_encoder", "lip_mapper", "motion_vae")

    def produces(self) -> tuple[str, ...]:
        return ("prior",)
