"""StyleGAN2 training of a generator for a domain without a published one.

Non-saturating logistic loss, R1 penalty on reals and optional path-length regularisation,
both lazy (every ``r1_interval`` / ``pl_interval`` steps, scaled by the interval, with the
optimisers' learning rate and betas adjusted as in Karras et al. 2020), style mixing, and an
exponential moving average of the generator (the stage's output). Each of G main, G reg,
D main and D reg is a phase with its own backward pass and optimiser step.
Axis letters: b batch, l W+ layers, w latent width.
"""

from __future__ import annotations

import copy
import logging
import math
from typing import Any, cast

import torch
from torch import nn
from torch.utils.data import Dataset

from styletalker_core.interfaces.generator import Discriminator, Generator
from styletalker_core.interfaces.stage import OptimizerGroup, Phase, StageContext, TrainingStage
from styletalker_core.io.progress import progress_enabled
from styletalker_domain.adversarial import discriminator_loss, generator_loss, lazy_adam_settings, r1_penalty
from styletalker_domain.clock import ResourceClock
from styletalker_domain.frames import dataset_images, images_of

LOG = logging.getLogger(__name__)


class StyleGANStage(TrainingStage):
    """StyleGAN2 GAN training (non-saturating loss, lazy R1 and path-length regularisation, EMA of G).

    Options: ``r1_gamma`` (R1 weight), ``pl_weight`` (0 disables path-length regularisation),
    ``style_mixing`` (probability), ``ema_kimg`` (EMA half-life in thousands of images) with
    ``ema_rampup`` (half-life at most this fraction of the images seen so far), ``beta1``/``beta2``
    of both Adam optimisers. The stage's ``lr`` is the StyleGAN learning rate of G and D.
    """

    def __init__(
        self,
        r1_gamma: float = 1.0,
        r1_interval: int = 16,
        pl_weight: float = 0.0,
        pl_interval: int = 4,
        pl_decay: float = 0.01,
        style_mixing: float = 0.9,
        ema_kimg: float = 10.0,
        ema_rampup: float = 0.05,
        beta1: float = 0.0,
        beta2: float = 0.99,
        eval_items: int = 64,
        projection_steps: int = 100,
    ) -> None:
        self.r1_gamma, self.r1_interval = r1_gamma, r1_interval
        self.pl_weight, self.pl_interval, self.pl_decay = pl_weight, pl_interval, pl_decay
        self.style_mixing = style_mixing
        self.ema_kimg, self.ema_rampup = ema_kimg, ema_rampup
        self.beta1, self.beta2 = beta1, beta2
        self.eval_items, self.projection_steps = eval_items, projection_steps
        self.images_seen = 0
        self.pl_mean = 0.0

    def setup(self, context: StageContext) -> None:
        self.context = context
        self.clock = ResourceClock()
        self.generator = cast("Generator", context.component("generator"))
        self.discriminator = cast("Discriminator", context.component(
            "discriminator", resolution=self.generator.resolution, img_channels=self.generator.img_channels,
            c_dim=self.generator.c_dim,
        ))
        self.generator_ema = copy.deepcopy(self.generator).eval().requires_grad_(False)
        self.data = context.dataset("train")
        self.batch_size = context.config.batch_size

    def dataset(self) -> Dataset:
        return self.data

    def trainable(self) -> dict[str, nn.Module]:
        return {"generator": self.generator, "discriminator": self.discriminator}

    def buffers_to_save(self) -> dict[str, nn.Module]:
        return {"generator_ema": self.generator_ema}

    def extra_state(self) -> dict[str, Any]:
        return {"images_seen": self.images_seen, "pl_mean": self.pl_mean}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.images_seen = int(state.get("images_seen", 0))
        self.pl_mean = float(state.get("pl_mean", 0.0))

    def optimizer_groups(self) -> dict[str, OptimizerGroup]:
        groups = {}
        for name, module, interval in (("generator", self.generator, self.pl_interval if self.pl_weight > 0 else 0),
                                       ("discriminator", self.discriminator, self.r1_interval if self.r1_gamma > 0 else 0)):
            lr_scale, betas = lazy_adam_settings(interval, self.beta1, self.beta2)
            groups[name] = OptimizerGroup([p for p in module.parameters()], lr_scale=lr_scale, betas=betas)
        return groups

    def phases(self, step: int) -> list[Phase]:
        phases = [Phase("G", "generator")]
        if self.pl_weight > 0 and step % self.pl_interval == 0:
            phases.append(Phase("G_pl", "generator"))
        phases.append(Phase("D", "discriminator"))
        if self.r1_gamma > 0 and step % self.r1_interval == 0:
            phases.append(Phase("D_r1", "discriminator"))
        return phases

    # -- losses ---------------------------------------------------------------------------
    def _latents(self, batch: int, update_emas: bool = False) -> torch.Tensor:
        """Random W+ codes [b, l, w] with style mixing."""
        device = self.context.device
        z = torch.randn(batch, self.generator.z_dim, device=device)
        ws = self.generator.mapping(z, None, update_emas=update_emas)
        if self.style_mixing > 0:
            mix = torch.rand((), device=device) < self.style_mixing
            cutoff = int(torch.randint(1, ws.shape[1], ()))
            if bool(mix):
                other = self.generator.mapping(torch.randn_like(z), None, update_emas=False)
                ws = torch.cat([ws[:, :cutoff], other[:, cutoff:]], dim=1)
        return ws

    def loss(self, phase: str, batch: dict[str, Any], step: int) -> tuple[torch.Tensor, dict[str, float]]:
        self.generator.requires_grad_(phase.startswith("G"))
        self.discriminator.requires_grad_(phase.startswith("D"))
        real = images_of(batch, self.generator.resolution)
        b = real.shape[0]
        if phase == "G":
            fake = self.generator.synthesis(self._latents(b, update_emas=True), noise_mode="random")
            logits = self.discriminator(fake)
            loss = generator_loss(logits)
            return loss, {"g_adv": float(loss.detach()), "fake_logit": float(logits.detach().mean())}
        if phase == "G_pl":
            return self._path_length(max(1, b // 2))
        if phase == "D":
            with torch.no_grad():
                fake = self.generator.synthesis(self._latents(b), noise_mode="random")
            fake_logits = self.discriminator(fake)
            real_logits = self.discriminator(real)
            loss = discriminator_loss(real_logits, fake_logits)
            return loss, {"d_adv": float(loss.detach()), "real_logit": float(real_logits.detach().mean())}
        if phase == "D_r1":
            penalty = r1_penalty(self.discriminator, real)
            loss = penalty.mean() * (self.r1_gamma / 2) * self.r1_interval
            return loss, {"r1": float(penalty.detach().mean())}
        raise ValueError(f"unknown phase {phase!r}")

    def _path_length(self, batch: int) -> tuple[torch.Tensor, dict[str, float]]:
        ws = self._latents(batch)
        images = self.generator.synthesis(ws, noise_mode="random")
        noise = torch.randn_like(images) / math.sqrt(images.shape[2] * images.shape[3])
        (gradient,) = torch.autograd.grad((images * noise).sum(), ws, create_graph=True)
        lengths = gradient.pow(2).sum(dim=2).mean(dim=1).sqrt()
        self.pl_mean += self.pl_decay * (float(lengths.detach().mean()) - self.pl_mean)
        penalty = (lengths - self.pl_mean).pow(2).mean()
        loss = penalty * self.pl_weight * self.pl_interval
        return loss, {"pl_penalty": float(penalty.detach()), "pl_mean": self.pl_mean}

    @torch.no_grad()
    def after_step(self, step: int) -> None:
        if step % 50 == 0:
            self.clock.sample()
        self.images_seen += self.batch_size * self.context.runtime.world_size
        half_life = self.ema_kimg * 1000
        if self.ema_rampup > 0:
            half_life = min(half_life, self.images_seen * self.ema_rampup)
        beta = 0.5 ** (self.batch_size * self.context.runtime.world_size / max(half_life, 1e-8))
        for ema, live in zip(self.generator_ema.parameters(), self.generator.parameters()):
            ema.copy_(live.detach().lerp(ema, beta))
        for ema_buffer, live_buffer in zip(self.generator_ema.buffers(), self.generator.buffers()):
            ema_buffer.copy_(live_buffer)

    def outputs(self) -> dict[str, nn.Module]:
        return {"generator": self.generator_ema, "discriminator": self.discriminator}

    def produces(self) -> tuple[str, ...]:
        return ("generator", "discriminator")

    def evaluate(self) -> dict[str, float]:
        """Held-out projection PSNR: how well the EMA generator can reproduce held-out frames when
        W+ codes are optimised for them (``projection_steps`` Adam steps from w_avg); measures the
        generator alone, before any encoder exists."""
        from styletalker_domain.projection import project

        cost = {f"train_{k}": v for k, v in self.clock.numbers().items()}
        split = "val" if self.context.recipe.data.val is not None else "train"
        dataset = self.context.dataset("val") if split == "val" else self.data
        images = dataset_images(dataset, self.eval_items, self.generator.resolution).to(self.context.device)
        LOG.info("stage %s: evaluating: projecting %d %s images, %d steps each (eval_items, projection_steps)",
                 self.context.stage_name, len(images), split, self.projection_steps)
        numbers = project(self.generator_ema, images, steps=self.projection_steps, progress=progress_enabled())
        return {**{(k if split == "val" else f"train_{k}"): v for k, v in numbers.items()}, **cost}
