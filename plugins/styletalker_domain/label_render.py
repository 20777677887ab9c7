"""Stage ``label_render``: train the generator from per-frame labels, for labelled domains.

A joint autoencoder must discover every factor twice: the encoder has to put it in the codes
and the generator has to draw it, and for a small feature such as the mouth neither moves
first (factors.py). Where every frame is a function of known labels (the synthetic domain),
this stage cuts that loop: a label mapper M (label_codes.py) turns the frame's labels into W+
and the generator learns to render the frame from them with the reconstruction objective
(objective.py, mouth-region term included). The image encoder is trained afterwards against
the frozen generator (``e4e_encoder``). On our domain the generator drew open mouths within
about 8000 steps this way; 14 000 joint-autoencoder steps drew none (docs/domain_pretraining.md).
Axis letters: n images, l W+ layers, w latent width.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sized
from typing import Any, cast

import torch
from torch import nn
from torch.utils.data import Dataset

from styletalker_core.errors import StyleTalkerError
from styletalker_core.interfaces.generator import Generator
from styletalker_core.interfaces.stage import StageContext, TrainingStage
from styletalker_core.recipe.options import structure_options
from styletalker_domain.clock import ResourceClock
from styletalker_domain.evaluation import batched, load_oracle, reconstruction_numbers
from styletalker_domain.factors import label_rows
from styletalker_domain.frames import images_of, landmarks_of
from styletalker_domain.label_codes import DEFAULT_LABELS, LabelMapper, build_label_mapper
from styletalker_domain.objective import RENAMED_OPTIONS, ReconstructionObjective, RenderObjectiveConfig

LOG = logging.getLogger(__name__)


class LabelRenderStage(TrainingStage):
    """Generator training from labels: minimise the reconstruction objective of G(M(labels)).

    ``label_names`` are per-frame labels of the dataset (vectors allowed, e.g. ``identity``,
    ``pose``); M has ``mapper_hidden`` units. ``objective`` is the reconstruction objective's table, as
    in the encoder and autoencoder stages, without the latent and delta terms by default
    (``objective.mouth_weight`` needs ``landmarks = true`` in [data.train]). Output: the
    generator, its w_avg set to the mean label code of ``eval_items`` training frames (the
    truncation centre, and the starting code of an encoder trained next). Held-out numbers on
    [data.val], which must serve the same labels: PSNR and factor-oracle R^2 of the renderings.
    """

    renamed_options = RENAMED_OPTIONS

    def __init__(
        self,
        label_names: list[str] | None = None,
        mapper_hidden: int = 256,
        objective: RenderObjectiveConfig | Mapping[str, Any] | None = None,
        eval_items: int = 64,
        eval_batch: int = 64,
        oracle: str = "",
    ) -> None:
        self.label_names = list(label_names or DEFAULT_LABELS)
        self.mapper_hidden = mapper_hidden
        self.objective_config = structure_options(RenderObjectiveConfig, objective, "objective")
        self.eval_items, self.eval_batch, self.oracle_path = eval_items, eval_batch, oracle

    def setup(self, context: StageContext) -> None:
        self.context = context
        self.clock = ResourceClock()
        generator = context.component("generator")
        if not isinstance(generator, Generator):
            raise TypeError(f"stage {context.stage_name}: 'generator' is a {type(generator).__name__}, not a Generator")
        self.generator = generator.requires_grad_(True).train()
        self.data = context.dataset("train")
        self.mapper: LabelMapper = build_label_mapper(self.data, self.label_names, generator.w_avg.detach(),
                                                      generator.num_ws, self.mapper_hidden).to(context.device)
        self.objective = ReconstructionObjective(self.objective_config).to(context.device)

    def dataset(self) -> Dataset:
        return self.data

    def trainable(self) -> dict[str, nn.Module]:
        return {"generator": self.generator, "label_mapper": self.mapper}

    def outputs(self) -> dict[str, nn.Module]:
        return {"generator": self.generator}

    def produces(self) -> tuple[str, ...]:
        return ("generator",)

    def loss(self, phase: str, batch: dict[str, Any], step: int) -> tuple[torch.Tensor, dict[str, float]]:
        images = images_of(batch, self.generator.resolution)
        codes = self.mapper(label_rows(batch, self.label_names).to(images.device))
        rendering = self.generator.synthesis(codes, noise_mode="const")
        landmarks, landmark_size = landmarks_of(batch) if self.objective.needs_landmarks else (None, None)
        loss, values = self.objective(images, rendering, codes, self.mapper.base, None, landmarks, landmark_size)
        if step % 50 == 0:
            self.clock.sample()
        return loss, values

    @torch.no_grad()
    def _images_and_codes(self, dataset: Dataset, items: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Frames [n, 3, r, r] and their label codes [n, l, w] of ``dataset[0..items-1]``."""
        images, codes = [], []
        for index in range(min(items, len(cast("Sized", dataset)))):  # map-style datasets have a length
            item = dataset[index]
            batch = {"frames": item["frames"][None], "labels": {k: v[None] for k, v in item.get("labels", {}).items()}}
            images.append(images_of(batch, self.generator.resolution))
            codes.append(self.mapper(label_rows(batch, self.label_names).to(self.context.device)))
        return torch.cat(images).to(self.context.device), torch.cat(codes)

    def finalize(self) -> None:
        """The generator's w_avg becomes the mean label code of ``eval_items`` training frames."""
        self.generator.eval()
        self.mapper.eval()
        _, train_codes = self._images_and_codes(self.data, self.eval_items)
        self.generator.w_avg.copy_(train_codes[:, 0].mean(dim=0).to(self.generator.w_avg))

    def evaluate(self) -> dict[str, float]:
        """Held-out PSNR and oracle R^2 of G(M(labels)); training cost."""
        self.generator.eval()
        self.mapper.eval()
        cost = {f"train_{k}": v for k, v in self.clock.numbers().items()}
        if self.context.recipe.data.val is None:
            LOG.warning("stage %s: the recipe has no [data.val]; no held-out numbers", self.context.stage_name)
            return cost
        try:
            images, codes = self._images_and_codes(self.context.dataset("val"), self.eval_items)
        except StyleTalkerError as error:
            raise StyleTalkerError(f"stage {self.context.stage_name} scores renderings of [data.val] from its "
                                   f"labels: {error}") from None
        renderings = batched(lambda ws: self.generator.synthesis(ws, noise_mode="const").clamp(-1, 1), codes,
                             self.eval_batch)
        numbers, _ = reconstruction_numbers(images, renderings, load_oracle(self.oracle_path, self.context.device),
                                            self.eval_batch)
        return {**numbers, **cost}
