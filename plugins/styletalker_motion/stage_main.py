"""Stage ``styletalker_main``: lip mapper, motion VAE and flow prior trained together."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

import attrs
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from styletalker_core.data.audio_augment import AudioAugmentation
from styletalker_core.interfaces.stage import OptimizerGroup, Phase, TrainingStage
from styletalker_core.losses import (
    DEFAULT_READINGS,
    REGION_MARGIN,
    build_perceptual_loss,
    landmark_box_mask,
    load_frozen_oracle,
    masked_l1,
    reading_error,
    require_landmarks,
    weighted_regions,
)
from styletalker_core.losses.terms import ImageTermsConfig
from styletalker_core.model import TalkingHead, motion_kl, sync_loss
from styletalker_core.recipe.options import structure_options
from styletalker_motion.assembly import talking_head_from_context
from styletalker_motion.batches import batch_context, batch_latents
from styletalker_motion.heldout import heldout_scores


@attrs.define(kw_only=True)
class MainObjectiveConfig(ImageTermsConfig):
    """The main stage's terms (``[stages.main.objective]``): the image terms (:class:`ImageTermsConfig`;
    the latent term compares with the real frames' codes), ``sync_weight`` (the lip-sync term, offsets
    up to ``sync_max_offset``), ``kl_weight``, ``adversarial_weight`` (its discriminator's R1 weight
    ``r1_gamma``) and ``augment_consistency_weight``."""

    perceptual_weight: float = 1.0
    latent_weight: float = 1.0
    sync_weight: float = 0.1
    sync_max_offset: int = 5
    kl_weight: float = 0.01
    adversarial_weight: float = 0.0
    r1_gamma: float = 1.0
    augment_consistency_weight: float = 1.0


class StyleTalkerMainStage(TrainingStage):
    """L = l1_weight * L1(x_hat, x) + perceptual_weight * P(x_hat, x) + latent_weight * ||w_hat - w||^2
    + sync_weight * L_sync + kl_weight * KL(q || p) [+ mouth_weight * L1 in the mouth's landmark box
    + eyes_weight * L1 in the eyes' box] [+ readings_weight * mean_f (O_f(x_hat) - O_f(x))^2]
    [+ adversarial_weight * non-saturating GAN loss]; the weights and the terms' settings are the
    ``objective`` table (:class:`MainObjectiveConfig`), the schedules and the rest stage options.

    The latent term and the KL are both per frame: ||w_hat - w||^2 is summed over the W+ code
    (layers x width) like the KL over z, then both are averaged over frames. (Averaged over
    the code's elements instead, the latent term was about 1/1000 of the KL: the posterior
    collapsed and motion did not transfer.)

    Per step each clip's whole window is composed in W+ (latent and KL terms); a random run of
    ``render_frames`` consecutive frames (0: all) is rendered by the generator for the image
    terms. The KL is the single-sample Monte-Carlo E_q[log q(z) - log p(z)] against the flow
    prior, per frame, reaching full weight ``kl_warmup_steps`` after the motion path starts.
    For the first ``lip_warmup_steps`` steps the motion path is left out (no z, no KL): the lip
    mapper alone explains what audio can, so the motion latents start from what it cannot
    (pose, blinks) instead of taking the lips too, which the posterior, seeing the frames,
    could otherwise learn first. L_sync is the
    cross-entropy of the true offset among -sync_max_offset..sync_max_offset under the
    frozen lip-sync discriminator. The region terms (``mouth_weight``, ``eyes_weight``; they need
    ``landmarks = true`` in [data.train]) are the mean L1 inside the box of the lip (eye)
    landmarks, grown by a quarter of its larger side (styletalker_core.losses.regions). The
    readings term (``readings_weight``) asks the frozen factor oracle of ``readings_oracle`` to
    read the same ``readings_factors`` (mouth and eye openness) from the rendered frames as from
    the real ones: a half-drawn blink costs a few pixels of L1 but a large reading error
    (styletalker_core.losses.readings).
    ``audio_augment`` (a table of :class:`AudioAugmentation` options) makes the lips robust to the
    channel (band limits, mu-law codec, noise, gain, reverberation, pitch), in one of two ways
    (``augment_mode``): "reconstruction" feeds the degraded speech through the whole forward pass
    (lip mapper, posterior); "consistency" keeps the clean speech there and asks the lip mapper's
    offsets from a degraded copy to match its offsets from the clean speech (squared error per
    frame, detached target, weight ``augment_consistency_weight``). With "reconstruction" the lip
    mapper explained less of the lips, the motion latents took the rest, and a motion source then
    moved the lips (motion-controllable lip-sync 0.72 against 0.86 audio-driven, measured);
    "consistency" is meant to keep the lips with the lip mapper.
    ``posterior_audio_dropout`` hides the audio from the posterior for that share of clips, so
    motion sources without audio are in distribution.
    The generator is fine-tuned only with ``train_generator`` (at ``generator_lr_scale``); the
    adversarial term needs ``[model.discriminator]``.
    """

    renamed_options: ClassVar[Mapping[str, str]] = {
        "rec_weight": "objective.l1_weight", "perceptual": "objective.perceptual_kind",
        **{moved: f"objective.{moved}" for moved in (
            "perceptual_weight", "lpips_weights", "latent_weight", "sync_weight", "sync_max_offset", "mouth_weight",
            "eyes_weight", "readings_weight", "readings_oracle", "readings_factors", "kl_weight", "adversarial_weight",
            "r1_gamma", "augment_consistency_weight")}}

    def __init__(
        self,
        objective: MainObjectiveConfig | Mapping[str, Any] | None = None,
        kl_warmup_steps: int = 0,
        lip_warmup_steps: int = 0,
        render_frames: int = 8,
        train_generator: bool = False,
        generator_lr_scale: float = 0.1,
        train_audio_encoder: bool = True,
        posterior_audio_dropout: float = 0.25,
        audio_augment: AudioAugmentation | Mapping[str, Any] | None = None,
        augment_mode: Literal["reconstruction", "consistency"] = "consistency",
        eval_clips: int = 16,
    ) -> None:
        self.objective = structure_options(MainObjectiveConfig, objective, "objective")
        self.regions = weighted_regions(self.objective.mouth_weight, self.objective.eyes_weight)
        self.readings_factors = tuple(self.objective.readings_factors or DEFAULT_READINGS)
        self.kl_warmup_steps = kl_warmup_steps
        self.lip_warmup_steps = lip_warmup_steps
        self.render_frames = render_frames
        self.train_generator, self.generator_lr_scale = train_generator, generator_lr_scale
        self.train_audio_encoder = train_audio_encoder
        self.posterior_audio_dropout = posterior_audio_dropout
        self.audio_augment = AudioAugmentation.from_table(audio_augment)
        self.augment_mode = augment_mode
        self.eval_clips = eval_clips
        self._fake: torch.Tensor | None = None

    # -- set-up ----------------------------------------------------------------------------
    def setup(self, context: Any) -> None:
        self.context = context
        self.seed = context.recipe.seed
        self.head: TalkingHead = talking_head_from_context(context)
        self.head.generator.requires_grad_(self.train_generator)
        if not self.train_generator:
            self.head.generator.eval()
        self.head.image_encoder.requires_grad_(False).eval()
        if not self.train_audio_encoder:
            self.head.audio_encoder.requires_grad_(False)
        self.sync_discriminator = None
        if self.objective.sync_weight > 0 or context.has_component("lipsync_discriminator"):
            self.sync_discriminator = context.component("lipsync_discriminator").requires_grad_(False).eval()
        self.discriminator = context.component("discriminator") if self.objective.adversarial_weight > 0 else None
        self.readings_oracle = None
        if self.objective.readings_weight > 0:
            self.readings_oracle = load_frozen_oracle(self.objective.readings_oracle).to(context.device)
        weights = self.objective
        needs_images = (weights.l1_weight > 0 or weights.perceptual_weight > 0 or weights.sync_weight > 0 or self.regions
                        or self.readings_oracle is not None or self.discriminator)
        self.perceptual = None
        if self.objective.perceptual_weight > 0:
            self.perceptual = build_perceptual_loss(self.objective.perceptual_kind,
                                                    self.objective.lpips_weights or None).to(context.device)
        self.needs_images = bool(needs_images)
        self.data = context.dataset("train")
        self.val = context.dataset("val") if context.recipe.data.val is not None else None

    def dataset(self) -> Dataset:
        return self.data

    def trainable(self) -> dict[str, nn.Module]:
        modules: dict[str, nn.Module] = {"lip_mapper": self.head.lip_mapper, "motion_vae": self.head.motion_vae,
                                         "prior": self.head.prior}
        if any(p.requires_grad for p in self.head.audio_encoder.parameters()):
            modules["audio_encoder"] = self.head.audio_encoder
        if self.train_generator:
            modules["generator"] = self.head.generator
        if self.discriminator is not None:
            modules["discriminator"] = self.discriminator
        return modules

    def optimizer_groups(self) -> dict[str, OptimizerGroup]:
        def params(*modules: nn.Module) -> list[nn.Parameter]:
            return [p for module in modules for p in module.parameters() if p.requires_grad]

        main = [self.head.lip_mapper, self.head.motion_vae, self.head.prior, self.head.audio_encoder]
        groups = {"main": OptimizerGroup(params(*main))}
        if self.train_generator:
            groups["generator"] = OptimizerGroup(params(self.head.generator), lr_scale=self.generator_lr_scale)
        if self.discriminator is not None:
            groups["discriminator"] = OptimizerGroup(params(self.discriminator), betas=(0.0, 0.99))
        return groups

    def phases(self, step: int) -> list[Phase]:
        phases = [Phase("main")]
        if self.train_generator:
            phases = [Phase("main", "main"), Phase("generator", "generator")]
        if self.discriminator is not None:
            phases.append(Phase("discriminator", "discriminator"))
        return phases

    # -- losses ----------------------------------------------------------------------------
    def loss(self, phase: str, batch: dict[str, Any], step: int) -> tuple[torch.Tensor, dict[str, float]]:
        if phase == "discriminator":
            return self._discriminator_loss(batch)
        return self._model_loss(batch, step)

    def _model_loss(self, batch: dict[str, Any], step: int) -> tuple[torch.Tensor, dict[str, float]]:
        frames = batch["frames"]
        b, t = frames.shape[:2]
        ws, w_id = batch_latents(batch, self.head)
        context = batch_context(batch, self.head.samples_per_frame)
        # the step's randomness comes from (seed, step) alone, so a resumed run repeats it exactly
        rng = torch.Generator().manual_seed(self.seed * 1_000_003 + step)
        keep_audio = (torch.rand(b, generator=rng) >= self.posterior_audio_dropout).to(frames.device)
        motion_step = step - self.lip_warmup_steps  # < 0: lip-only warm-up
        audio = batch["audio"]
        if self.audio_augment is not None and self.augment_mode == "reconstruction":
            audio = self.audio_augment(audio.cpu(), rng).to(audio.device)  # the sync term below judges the clean one
        out = self.head.training_latents(ws, w_id, audio, context, posterior_audio=keep_audio, generator=rng,
                                         motion=motion_step >= 0)
        latent = ((out.ws - ws) ** 2).flatten(2).sum(-1).mean()  # per frame, like the KL
        total = self.objective.latent_weight * latent
        values = {"latent": float(latent.detach())}
        if self.audio_augment is not None and self.augment_mode == "consistency":
            consistency = self._augment_consistency(batch, ws, w_id, context, out.dw_lip, rng)
            total = total + self.objective.augment_consistency_weight * consistency
            values["augment_consistency"] = float(consistency.detach())
        if motion_step >= 0:
            kl = motion_kl(self.head.prior, out.z, out.mean, out.log_var, out.features, out.future).mean()
            kl_scale = min(1.0, (motion_step + 1) / self.kl_warmup_steps) if self.kl_warmup_steps > 0 else 1.0
            total = total + kl_scale * self.objective.kl_weight * kl
            values["kl"] = float(kl.detach())
        if self.needs_images:
            count = t if self.render_frames <= 0 else min(self.render_frames, t)
            first = int(torch.randint(0, t - count + 1, (), generator=rng))
            fake = self.head.generator.synthesis(out.ws[:, first:first + count].flatten(0, 1), noise_mode="const")
            real = frames[:, first:first + count].flatten(0, 1)
            error = (fake - real).abs()
            l1 = error.mean()
            total = total + self.objective.l1_weight * l1
            values["l1"] = float(l1.detach())
            for name, points, weight in self.regions:
                region = masked_l1(error, self._region_mask(batch, points, first, count, (fake.shape[-2], fake.shape[-1]))).mean()
                total = total + weight * region
                values[f"{name}_l1"] = float(region.detach())
            if self.readings_oracle is not None:
                readings = reading_error(self.readings_oracle, fake, real, self.readings_factors)
                total = total + self.objective.readings_weight * readings
                values["readings"] = float(readings.detach())
            if self.perceptual is not None:
                perceptual = self.perceptual(fake, real).mean()
                total = total + self.objective.perceptual_weight * perceptual
                values["perceptual"] = float(perceptual.detach())
            if self.objective.sync_weight > 0 and self.sync_discriminator is not None:
                sync, accuracy = sync_loss(self.sync_discriminator, fake.unflatten(0, (b, count)), batch["audio"],
                                           context + first, self.objective.sync_max_offset)
                total = total + self.objective.sync_weight * sync
                values.update(sync=float(sync.detach()), sync_accuracy=float(accuracy))
            if self.discriminator is not None:
                adversarial = F.softplus(-self.discriminator(fake)).mean()
                total = total + self.objective.adversarial_weight * adversarial
                values["adversarial"] = float(adversarial.detach())
                self._fake = fake.detach()
        return total, values

    def _augment_consistency(self, batch: dict[str, Any], ws: torch.Tensor, w_id: torch.Tensor, context: int,
                             clean_lips: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
        """Squared distance per frame between the lip offsets from degraded speech and (detached) from clean speech."""
        audio = batch["audio"]
        assert self.audio_augment is not None  # called only in the consistency mode, with an augmentation
        degraded = self.audio_augment(audio.cpu(), rng).to(audio.device)
        heard = self.head.training_latents(ws, w_id, degraded, context, motion=False)
        return ((heard.dw_lip - clean_lips.detach()) ** 2).flatten(2).sum(-1).mean()

    @staticmethod
    def _region_mask(batch: dict[str, Any], points: slice, first: int, count: int, size: tuple[int, int]) -> torch.Tensor:
        """The landmark boxes of ``points`` in frames first..first+count of every clip -> mask [b count, 1, h, w]."""
        landmarks = require_landmarks(batch, "objective.mouth_weight and objective.eyes_weight need")
        window = landmarks[:, first:first + count].flatten(0, 1)
        frames = batch["frames"]
        return landmark_box_mask(window, points, size, REGION_MARGIN, (frames.shape[-2], frames.shape[-1]))

    def _discriminator_loss(self, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
        assert self.discriminator is not None and self._fake is not None
        r1_gamma = self.objective.r1_gamma
        real = batch["frames"].flatten(0, 1)[: len(self._fake)].detach().requires_grad_(r1_gamma > 0)
        real_logits = self.discriminator(real)
        loss = F.softplus(self.discriminator(self._fake)).mean() + F.softplus(-real_logits).mean()
        values = {"d_loss": float(loss.detach())}
        if r1_gamma > 0:
            (gradient,) = torch.autograd.grad(real_logits.sum(), real, create_graph=True)
            r1 = gradient.pow(2).flatten(1).sum(1).mean()
            loss = loss + 0.5 * r1_gamma * r1
            values["r1"] = float(r1.detach())
        return loss, values

    # -- results ---------------------------------------------------------------------------
    def evaluate(self) -> dict[str, float]:
        if self.val is None:
            return {}
        return heldout_scores(self.head, self.val, self.eval_clips, self.context.device,
                              discriminator=self.sync_discriminator, seed=self.context.recipe.seed,
                              desc=f"{self.context.stage_name}: evaluate")

    def outputs(self) -> dict[str, nn.Module]:
        return self.trainable()

    def consumes(self) -> tuple[str, ...]:
        """The frozen (or fine-tuned) generator and image encoder, and the lip-sync discriminator
        the sync term judges with."""
        return ("generator", "image_encoder") + (("lipsync_discriminator",) if self.objective.sync_weight > 0 else ())

    def produces(self) -> tuple[str, ...]:
        return ("lip_mapper", "motion_vae", "prior", *(("audio_encoder",) if self.train_audio_encoder else ()),
                *(("generator",) if self.train_generator else ()),
                *(("discriminator",) if self.objective.adversarial_weight > 0 else ()))
