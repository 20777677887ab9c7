"""Training stage of the factor oracle (``stage`` plugin ``synthetic_oracle``).

Setup renders ``train_frames`` labelled frames with random factors (fresh identities) and,
for evaluation, ``eval_frames`` frames of identities from a separate stream plus
``eval_clips`` held-out clips (held-out identities and sentences, natural motion and
blinks). The loss is a weighted mean squared error on the oracle's normalised outputs.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from styletalker_core.interfaces.stage import TrainingStage
from styletalker_synthetic.evaluation import clip_accuracy, frame_accuracy, read_factors
from styletalker_synthetic.frames import LabelledFrames, degrade, render_labelled_frames
from styletalker_synthetic.oracle import SCALAR_FACTORS, SyntheticFactorOracle, normalised_targets

LOG = logging.getLogger(__name__)


class SyntheticOracleStage(TrainingStage):
    """Trains the synthetic factor oracle on rendered frames; evaluates it on held-out identities and clips."""

    def __init__(
        self,
        train_frames: int = 24000,
        eval_frames: int = 2000,
        eval_clips: int = 40,
        seed: int = 0,
        eye_weight: float = 3.0,
        identity_weight: float = 0.5,
    ) -> None:
        self.train_frames = train_frames
        self.eval_frames = eval_frames
        self.eval_clips = eval_clips
        self.seed = seed
        weights = [eye_weight if name == "eye_open" else 1.0 for name in SCALAR_FACTORS]
        self.identity_weight = identity_weight
        self.column_weights = torch.tensor(weights)

    def setup(self, context: Any) -> None:
        self.context = context
        self.oracle = context.component("oracle")
        if not isinstance(self.oracle, SyntheticFactorOracle):
            raise TypeError(f"stage synthetic_oracle trains a synthetic_factors oracle, got {type(self.oracle).__name__}")
        started = time.time()
        self.frames = render_labelled_frames(self.seed, self.train_frames, self.oracle.resolution)
        LOG.info("rendered %d training frames in %.0f s", self.train_frames, time.time() - started)

    def dataset(self) -> Dataset:
        return LabelledFrames(self.frames)

    def trainable(self) -> dict[str, nn.Module]:
        return {"oracle": self.oracle}

    def loss(self, phase: str, batch: dict[str, Any], step: int) -> tuple[torch.Tensor, dict[str, float]]:
        images = degrade(batch["images"], torch.Generator().manual_seed(self.seed * 1_000_003 + step))
        raw = self.oracle.normalised(images)
        target = normalised_targets(batch)
        error = (raw - target) ** 2
        scalars = len(SCALAR_FACTORS)
        weights = self.column_weights.to(error.device)
        scalar_loss = (error[:, :scalars] * weights).mean()
        identity_loss = error[:, scalars:].mean()
        loss = scalar_loss + self.identity_weight * identity_loss
        values = {f"mse_{name}": float(error[:, i].mean().detach()) for i, name in enumerate(SCALAR_FACTORS)}
        values["mse_identity"] = float(identity_loss.detach())
        return loss, values

    def evaluate(self) -> dict[str, float]:
        from styletalker_core.data.synthetic import SynthConfig, make_clip

        frames = render_labelled_frames(self.seed + 1_000_003, self.eval_frames, self.oracle.resolution)
        readings = read_factors(self.oracle, frames["images"])
        result = frame_accuracy(readings, frames, "heldout")
        # Held-out clips: the second half of a dataset with heldout_fraction 0.5 (held-out identities and sentences).
        config = SynthConfig(clips=2 * self.eval_clips, seed=self.seed + 7, seconds=(3.0, 5.0), heldout_fraction=0.5,
                             resolution=self.oracle.resolution)
        clips = [make_clip(config, index) for index in range(self.eval_clips, 2 * self.eval_clips)]
        result.update(clip_accuracy(self.oracle, clips))
        return result

    def outputs(self) -> dict[str, nn.Module]:
        return {"oracle": self.oracle}

    def produces(self) -> tuple[str, ...]:
        return ("oracle",)
