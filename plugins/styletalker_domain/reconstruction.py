"""Training stages that invert a generator: e4e/pSp encoder training (here) and joint
autoencoding (autoencoder.py, built on the same machinery).

Both minimise the reconstruction objective (objective.py) of x_hat = G.synthesis(E(x)) on
frames of the recipe's training data. ``e4e_encoder`` keeps the generator frozen (the usual
pipeline after GAN training); ``autoencoder`` also trains the generator.
Axis letters: b batch, l W+ layers, w latent width.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, ClassVar, cast

import torch
from torch import nn
from torch.utils.data import Dataset

from styletalker_core.interfaces.generator import Generator
from styletalker_core.interfaces.image_encoder import ImageEncoder, threshold_from_heldout
from styletalker_core.interfaces.stage import StageContext, TrainingStage
from styletalker_core.io.progress import progress_enabled
from styletalker_core.recipe.options import structure_options
from styletalker_domain.clock import ResourceClock
from styletalker_domain.data_kind import has_synthetic_labels, name_encoder_domain
from styletalker_domain.evaluation import load_oracle, reconstruction_report
from styletalker_domain.factors import FactorProbe, factor_targets, label_statistics
from styletalker_domain.frames import dataset_images, images_of, landmarks_of
from styletalker_domain.objective import RENAMED_OPTIONS, ObjectiveConfig, ReconstructionObjective, progressive_stage

LOG = logging.getLogger(__name__)
DEFAULT_FACTORS = ("mouth_open", "mouth_width", "eye_open")
LABEL_STATISTICS_ITEMS = 256


class ReconstructionStage(TrainingStage):
    """Shared machinery of the encoder and autoencoder stages (not registered itself).

    Options: ``objective`` (the reconstruction objective's table, :class:`ObjectiveConfig`);
    ``factors_weight`` (the factor probe's term: the codes must predict the frames'
    ``factor_labels``); e4e's progressive schedule (``progressive_start``, ``progressive_every``);
    the held-out evaluation on ``eval_items`` images in batches of ``eval_batch`` (factor-oracle
    R^2 with ``oracle``), whose per-image PSNR sets the encoder's out-of-domain threshold
    (``ood_quantile``, ``ood_margin_db``).
    """

    trains_generator = False
    renamed_options: ClassVar[Mapping[str, str]] = {**RENAMED_OPTIONS, "factors": "factors_weight"}

    def __init__(
        self,
        objective: ObjectiveConfig | Mapping[str, Any] | None = None,
        factors_weight: float = 0.0,
        factor_labels: list[str] | None = None,
        progressive_start: int = 0,
        progressive_every: int = 0,
        eval_items: int = 64,
        eval_batch: int = 64,
        oracle: str = "",
        ood_quantile: float = 0.02,
        ood_margin_db: float = 3.0,
    ) -> None:
        self.objective_config = structure_options(ObjectiveConfig, objective, "objective")
        self.factors_weight = factors_weight
        self.factor_labels = list(factor_labels or DEFAULT_FACTORS)
        self.progressive_start, self.progressive_every = progressive_start, progressive_every
        self.eval_items, self.eval_batch = eval_items, eval_batch
        self.oracle_path = oracle
        self.ood_quantile, self.ood_margin_db = ood_quantile, ood_margin_db

    # -- set-up ---------------------------------------------------------------------------
    def setup(self, context: StageContext) -> None:
        self.context = context
        self.clock = ResourceClock()
        generator = context.component("generator")
        if not isinstance(generator, Generator):
            raise TypeError(f"stage {context.stage_name}: 'generator' is a {type(generator).__name__}, not a Generator")
        self.generator = generator
        fresh_encoder = "image_encoder" not in context.produced and not context.spec("image_encoder").weights
        self.encoder = cast("ImageEncoder", context.component(
            "image_encoder", resolution=generator.resolution, num_ws=generator.num_ws, w_dim=generator.w_dim
        ))
        if fresh_encoder:
            self.encoder.set_latent_avg(generator.w_avg)
        self.generator.requires_grad_(self.trains_generator)
        self.generator.train(self.trains_generator)
        self.objective = ReconstructionObjective(self.objective_config).to(context.device)
        self.data = context.dataset("train")
        name_encoder_domain(self.encoder, self.data)  # no domain option: named after the training data
        self.factor_probe: FactorProbe | None = None
        if self.factors_weight > 0:
            mean, std = label_statistics(self.data, self.factor_labels, LABEL_STATISTICS_ITEMS)
            self.factor_probe = FactorProbe(generator.num_ws, generator.w_dim, mean, std).to(context.device)

    def dataset(self) -> Dataset:
        return self.data

    def trainable(self) -> dict[str, nn.Module]:
        modules: dict[str, nn.Module] = {"image_encoder": self.encoder}
        if self.trains_generator:
            modules["generator"] = self.generator
        if self.factor_probe is not None:
            modules["factor_probe"] = self.factor_probe
        return modules

    def outputs(self) -> dict[str, nn.Module]:
        return {"generator": self.generator, "image_encoder": self.encoder}

    def consumes(self) -> tuple[str, ...]:
        return () if self.trains_generator else ("generator",)  # inverting a frozen generator needs a trained one

    def produces(self) -> tuple[str, ...]:
        return ("generator", "image_encoder")

    # -- training -------------------------------------------------------------------------
    def _progressive(self, step: int) -> int | None:
        """Set the encoder's e4e progressive stage for ``step``; -> layers with their own code (None: all)."""
        encoder: Any = self.encoder  # progressive stages are the e4e encoder's own (duck-typed)
        setter = getattr(encoder, "set_progressive_stage", None)
        if setter is None:
            return None
        setter(progressive_stage(step, self.progressive_start, self.progressive_every, encoder.num_ws))
        return encoder.active_layers()

    def reconstruct(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """images [b, 3, h, w] -> (ws [b, l, w], reconstruction [b, 3, h, w])."""
        ws = self.encoder(images)
        return ws, self.generator.synthesis(ws, noise_mode="const")

    def loss(self, phase: str, batch: dict[str, Any], step: int) -> tuple[torch.Tensor, dict[str, float]]:
        active = self._progressive(step)
        images = images_of(batch, self.generator.resolution)
        ws, reconstruction = self.reconstruct(images)
        landmarks, landmark_size = landmarks_of(batch) if self.objective.needs_landmarks else (None, None)
        loss, values = self.objective(images, reconstruction, ws, self.encoder.latent_avg, active, landmarks, landmark_size)
        if self.factor_probe is not None:
            factor_loss = self.factor_probe.loss(ws, factor_targets(batch, self.factor_labels))
            values["factors"] = float(factor_loss.detach())
            loss = loss + self.factors_weight * factor_loss
        if active is not None:
            values["active_layers"] = float(active)
        if step % 50 == 0:
            self.clock.sample()
        return loss, values

    # -- end of the stage -----------------------------------------------------------------
    def _heldout(self) -> tuple[Dataset, str]:
        """The clips the threshold and the numbers are measured on: [data.val], else the training clips."""
        if self.context.recipe.data.val is None:
            return self.data, "train"
        return self.context.dataset("val"), "val"

    def finalize(self) -> None:
        """Set the encoder's out-of-domain threshold from the per-image PSNR of the held-out
        reconstructions (``ood_quantile`` percentile minus ``ood_margin_db``)."""
        dataset, _ = self._heldout()
        _, per_image = reconstruct_heldout(self.encoder, self.generator, dataset, self.eval_items, self.eval_batch,
                                           self.context.device)
        self.encoder.set_ood_threshold(threshold_from_heldout(per_image, self.ood_quantile, self.ood_margin_db))

    def evaluate(self) -> dict[str, float]:
        """Held-out PSNR (and oracle R^2 when an oracle checkpoint is given), the encoder's
        out-of-domain threshold, and the training cost (wall and CPU seconds of this run, mean load
        average)."""
        cost = {f"train_{k}": v for k, v in self.clock.numbers().items()}
        dataset, split = self._heldout()
        if split == "train":
            LOG.warning("stage %s: the recipe has no [data.val]; reporting numbers on training clips",
                        self.context.stage_name)
        numbers = evaluate_reconstruction(self.encoder, self.generator, dataset, self.eval_items, self.eval_batch,
                                          self.oracle_path, self.context.device,
                                          prefix="" if split == "val" else "train_")
        return {**numbers, **cost}


@torch.no_grad()
def reconstruct_heldout(encoder: ImageEncoder, generator: Generator, dataset: Dataset, items: int, batch: int,
                        device: torch.device, oracle: nn.Module | None = None) -> tuple[dict[str, float], torch.Tensor]:
    """Encode and re-render ``dataset[0..items-1]`` -> (numbers, per-image PSNR [n]) (evaluation.reconstruction_report)."""
    encoder.eval()
    generator.eval()
    images = dataset_images(dataset, items, generator.resolution).to(device)
    LOG.info("encoding and re-rendering %d held-out images", len(images))
    return reconstruction_report(encoder.encode, lambda ws: generator.synthesis(ws, noise_mode="const"), images,
                                 oracle, batch, progress=progress_enabled())


def evaluate_reconstruction(encoder: ImageEncoder, generator: Generator, dataset: Dataset, items: int, batch: int,
                            oracle_path: str, device: torch.device, prefix: str = "") -> dict[str, float]:
    """Reconstruction numbers on ``dataset[0..items-1]`` and the encoder's out-of-domain threshold
    (set by the stage's finalize); changes nothing."""
    if oracle_path and not has_synthetic_labels(dataset):  # the synthetic oracle reads synthetic faces only
        LOG.info("evaluation: the data have no synthetic labels; the factor oracle %s is not used (no oracle R^2)",
                 oracle_path)
        oracle_path = ""
    numbers, _ = reconstruct_heldout(encoder, generator, dataset, items, batch, device, load_oracle(oracle_path, device))
    numbers["ood_psnr_threshold"] = float(encoder.ood_psnr_threshold)
    return {prefix + k: v for k, v in numbers.items()}


class EncoderStage(ReconstructionStage):
    """Train an e4e/pSp image encoder against a frozen generator: L1 + perceptual (LPIPS or
    MS-SSIM) + latent regularisation, with e4e's progressive deltas and delta regularisation."""
