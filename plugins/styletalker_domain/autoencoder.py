"""Joint generator + encoder autoencoding, optionally adversarial, for small domains.

The reconstruction objective (objective.py) trains encoder and generator together. Pixel
losses alone teach the generator the coarse layout, colours and silhouettes quickly but
small, position-dependent features (eyes, lips) slowly: the blurry average is a strong
attractor for a generator that places everything through style modulation. With
``adversarial_weight`` > 0 a StyleGAN2 discriminator judges the reconstructions against the real
frames (non-saturating loss, lazy R1), which makes those features appear. Phases per step:
``autoencode`` (encoder + generator), then ``D`` and, every ``r1_interval`` steps, ``D_r1``.
Axis letters: b batch, l W+ layers, w latent width.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch import nn

from styletalker_core.interfaces.stage import OptimizerGroup, Phase, StageContext
from styletalker_core.recipe.options import extends_options
from styletalker_domain.adversarial import discriminator_loss, generator_loss, lazy_adam_settings, r1_penalty
from styletalker_domain.frames import dataset_images
from styletalker_domain.reconstruction import ReconstructionStage


class AutoencoderStage(ReconstructionStage):
    """Joint generator + encoder autoencoding (optionally with an adversarial term) for small domains.

    The reconstruction objective trains both; ``adversarial_weight`` > 0 adds a StyleGAN2
    discriminator (recipe role ``discriminator``) on the reconstructions, with R1 weight
    ``r1_gamma`` every ``r1_interval`` steps and Adam betas (0, 0.99) scaled for the lazy
    regulariser. At the end the generator's w_avg (its truncation centre) is set to the mean
    encoded code of ``eval_items`` training frames, since the mapping network did not make the codes.
    """

    trains_generator = True
    renamed_options: ClassVar[Mapping[str, str]] = {**ReconstructionStage.renamed_options,
                                                    "adversarial": "adversarial_weight"}

    @extends_options(ReconstructionStage.__init__)
    def __init__(self, adversarial_weight: float = 0.0, r1_gamma: float = 0.1, r1_interval: int = 16,
                 **options: Any) -> None:
        super().__init__(**options)
        self.adversarial_weight, self.r1_gamma, self.r1_interval = adversarial_weight, r1_gamma, r1_interval
        self._last: tuple[torch.Tensor, torch.Tensor] | None = None  # (images, reconstruction) of this step
        self._live: torch.Tensor | None = None  # this step's reconstruction, in the graph

    def setup(self, context: StageContext) -> None:
        super().setup(context)
        self.discriminator: nn.Module | None = None
        if self.adversarial_weight > 0:
            self.discriminator = context.component(
                "discriminator", resolution=self.generator.resolution, img_channels=self.generator.img_channels,
                c_dim=0,
            )

    def trainable(self) -> dict[str, nn.Module]:
        modules = super().trainable()
        if self.discriminator is not None:
            modules["discriminator"] = self.discriminator
        return modules

    def optimizer_groups(self) -> dict[str, OptimizerGroup]:
        autoencoder = [p for role, module in self.trainable().items() if role != "discriminator"
                       for p in module.parameters() if p.requires_grad]
        groups = {"main": OptimizerGroup(autoencoder)}
        if self.discriminator is not None:
            lr_scale, betas = lazy_adam_settings(self.r1_interval if self.r1_gamma > 0 else 0, 0.0, 0.99)
            groups["discriminator"] = OptimizerGroup(list(self.discriminator.parameters()), lr_scale=lr_scale, betas=betas)
        return groups

    def phases(self, step: int) -> list[Phase]:
        if self.discriminator is None:
            return [Phase("main")]
        phases = [Phase("autoencode", "main"), Phase("D", "discriminator")]
        if self.r1_gamma > 0 and step % self.r1_interval == 0:
            phases.append(Phase("D_r1", "discriminator"))
        return phases

    def reconstruct(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        ws, reconstruction = super().reconstruct(images)
        self._last = (images.detach(), reconstruction.detach())
        self._live = reconstruction
        return ws, reconstruction

    def loss(self, phase: str, batch: dict[str, Any], step: int) -> tuple[torch.Tensor, dict[str, float]]:
        if self.discriminator is None:
            return super().loss(phase, batch, step)
        if phase == "autoencode":
            self.discriminator.requires_grad_(False)
            loss, values = super().loss(phase, batch, step)
            adversarial = generator_loss(self.discriminator(self._live))
            self._live = None
            values["g_adv"] = float(adversarial.detach())
            return loss + self.adversarial_weight * adversarial, values
        self.discriminator.requires_grad_(True)
        assert self._last is not None  # kept by this step's autoencode phase
        images, reconstruction = self._last
        if phase == "D":
            real_logits = self.discriminator(images)
            loss = discriminator_loss(real_logits, self.discriminator(reconstruction))
            return loss, {"d_adv": float(loss.detach()), "real_logit": float(real_logits.detach().mean())}
        if phase == "D_r1":
            penalty = r1_penalty(self.discriminator, images)
            return penalty.mean() * (self.r1_gamma / 2) * self.r1_interval, {"r1": float(penalty.detach().mean())}
        raise ValueError(f"unknown phase {phase!r}")

    def finalize(self) -> None:
        """The generator's w_avg becomes the mean encoded code of ``eval_items`` training frames; then
        the encoder's out-of-domain threshold (ReconstructionStage.finalize)."""
        self.encoder.eval()
        with torch.no_grad():
            images = dataset_images(self.data, self.eval_items, self.generator.resolution).to(self.context.device)
            codes = torch.cat([self.encoder.encode(chunk) for chunk in images.split(self.eval_batch)])
            self.generator.w_avg.copy_(codes[:, 0].mean(dim=0).to(self.generator.w_avg))
        super().finalize()
