"""Metric ``lse``: lip-sync by the SyncNet protocol, scored with a trained lip-sync discriminator."""

from __future__ import annotations

from pathlib import Path

import torch

from styletalker_core.errors import StyleTalkerError
from styletalker_core.interfaces import LipSyncDiscriminator, Metric
from styletalker_core.interfaces.metric import EvalItem
from styletalker_core.model.sync import sync_scores
from styletalker_core.paths import find_project_file

# The independent judge (recipes/lipsync_judge.toml): trained on its own synthetic data, other
# seeds and identities, with degraded audio; no training stage loads it.
DEFAULT_JUDGE = "checkpoints/lipsync_judge.safetensors"


class LipSyncErrorMetric(Metric):
    """LSE-D (lower is better), LSE-C (higher), |AV offset| in frames and ``sync_correct`` (1 when the
    AV offset is 0), from offsets -max_offset .. max_offset.

    ``checkpoint`` is a styletalker checkpoint holding a lip-sync discriminator; ``role`` names it
    there. The default is the shipped independent judge (:data:`DEFAULT_JUDGE`), which no model
    trained against; a run's own model.safetensors also works, but then the metric judges the
    model with the network its sync loss optimised. A relative path that does not exist from the
    working directory is looked up in the project folder.
    """

    requires = ("frames", "audio")
    higher_is_better = {"lse_d": False, "lse_c": True, "av_offset_abs": False, "sync_correct": True}  # noqa: RUF012 - Metric.higher_is_better, a class-level default never mutated

    def __init__(self, checkpoint: str = DEFAULT_JUDGE, role: str = "lipsync_discriminator", max_offset: int = 15,
                 device: str = "cpu") -> None:
        self.checkpoint, self.role, self.max_offset, self.device = checkpoint, role, max_offset, device
        self._discriminator: LipSyncDiscriminator | None = None

    def discriminator(self) -> LipSyncDiscriminator:
        """The discriminator, loaded on first use."""
        if self._discriminator is None:
            from styletalker_core.checkpoint import load_checkpoint

            path = find_project_file(self.checkpoint) if self.checkpoint else None
            if path is None or not Path(path).is_file():
                raise StyleTalkerError(f"metric lse: checkpoint = {self.checkpoint!r} is not a file; set it to a file "
                                       f"holding a lip-sync discriminator (default: the shipped judge {DEFAULT_JUDGE}, "
                                       "made by recipes/lipsync_judge.toml)")
            module = load_checkpoint(path, roles=[self.role], map_location=self.device)[self.role]
            if not isinstance(module, LipSyncDiscriminator):
                raise StyleTalkerError(f"metric lse: {self.checkpoint} [{self.role}] is not a lip-sync discriminator")
            self._discriminator = module.eval()
        return self._discriminator

    def compute(self, item: EvalItem) -> dict[str, float]:
        discriminator = self.discriminator()
        if item.sample_rate != discriminator.sample_rate or item.fps != discriminator.fps:
            raise StyleTalkerError(f"metric lse: expects {discriminator.fps} fps and {discriminator.sample_rate} Hz audio, "
                                   f"got {item.fps} fps and {item.sample_rate} Hz")
        frames = item.frames.to(self.device, torch.float32)
        scores = sync_scores(discriminator, frames, item.audio.to(self.device, torch.float32), self.max_offset)
        return {"lse_d": scores.lse_d, "lse_c": scores.lse_c, "av_offset_abs": float(abs(scores.av_offset)),
                "sync_correct": float(scores.av_offset == 0)}
