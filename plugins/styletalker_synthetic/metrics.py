"""Ground-truth metrics of the synthetic domain, read through the factor oracle.

- ``synthetic_lipsync``: Pearson correlation between the oracle's mouth openness of the
  generated video and the viseme track of its driving audio (``labels["mouth_open"]``), the
  best lag (frames, |lag| <= 5) and the mean absolute error.
- ``synthetic_motion_transfer``: correlation of the generated yaw, pitch, roll and eye
  openness with the motion source's (its labels, else the oracle's reading of its frames),
  and the F1 of blink events (runs of eye openness < 0.5; NaN when neither has a blink).
- ``synthetic_identity``: distance between the oracle's identity vector of the generated
  frames and the reference's (``labels["identity"]``, else the oracle on the reference image).
- ``synthetic_motion_realism``: distance between the log power spectra of pose velocity of
  the generated and the ground-truth motion, their speed ratio, and blink rates.

The oracle checkpoint is loaded on first use (construction never loads weights); a relative
path is looked up from the working directory, then from the project folder.
"""

from __future__ import annotations

import numpy as np
import torch

from styletalker_core.errors import StyleTalkerError
from styletalker_core.interfaces import FactorOracle, Metric
from styletalker_core.interfaces.metric import EvalItem
from styletalker_core.losses import load_oracle_checkpoint
from styletalker_core.paths import find_project_file
from styletalker_synthetic.evaluation import blink_counts, closed_runs, f1, read_factors

DEFAULT_ORACLE = "checkpoints/oracle_synthetic.safetensors"
MAX_LAG = 5
POSE = ("yaw", "pitch", "roll")


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two sequences; 0 when either is constant."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    a, b = a - a.mean(), b - b.mean()
    norm = np.sqrt(np.sum(a * a) * np.sum(b * b))
    return float(np.sum(a * b) / norm) if norm > 1e-12 else 0.0


def lagged_correlation(generated: np.ndarray, truth: np.ndarray, max_lag: int = MAX_LAG) -> tuple[int, float]:
    """(lag, correlation) maximising corr(generated[t + lag], truth[t]) over |lag| <= max_lag frames."""
    best = (0, correlation(generated, truth))
    for lag in range(-max_lag, max_lag + 1):
        if lag == 0 or abs(lag) >= len(truth) - 2:
            continue
        value = correlation(generated[lag:], truth[:-lag]) if lag > 0 else correlation(generated[:lag], truth[-lag:])
        if value > best[1]:
            best = (lag, value)
    return best


def velocity_log_spectrum(pose: np.ndarray, bins: int = 16) -> np.ndarray:
    """Log power spectrum of pose velocity [t, 3] (degrees per frame), Hann-windowed, pooled into
    ``bins`` frequency bands from 0 to 12.5 Hz -> [bins, 3]."""
    velocity = np.diff(np.asarray(pose, np.float64), axis=0)
    if len(velocity) < 4:
        return np.zeros((bins, velocity.shape[1] if velocity.ndim == 2 else 3))
    window = np.hanning(len(velocity))[:, None]
    power = np.abs(np.fft.rfft(velocity * window, axis=0)) ** 2 / np.sum(window**2)
    edges = np.linspace(0, len(power), bins + 1).astype(int)
    pooled = np.stack([power[edges[i]:max(edges[i + 1], edges[i] + 1)].mean(0) for i in range(bins)])
    return np.log(pooled + 1e-6)


def blinks_per_minute(eye_open: np.ndarray, fps: int) -> float:
    return 60.0 * len(closed_runs(eye_open)) * fps / max(len(eye_open), 1)


class _OracleMetric(Metric):
    """Shared by the synthetic metrics: a lazily loaded oracle and reading of videos."""

    def __init__(self, oracle: str = DEFAULT_ORACLE, batch_size: int = 64) -> None:
        self.oracle_path = oracle
        self.batch_size = batch_size
        self._oracle: FactorOracle | None = None

    def use_oracle(self, oracle: FactorOracle) -> None:
        """Use an oracle already in memory instead of loading the checkpoint."""
        self._oracle = oracle

    def oracle(self) -> FactorOracle:
        if self._oracle is None:
            path = find_project_file(self.oracle_path)
            if not path.is_file():
                raise StyleTalkerError(
                    f"oracle checkpoint {self.oracle_path!r} not found; train it with "
                    "`styletalker train recipes/oracle_synthetic.toml` or set the metric's oracle option"
                )
            self._oracle = load_oracle_checkpoint(path)
        return self._oracle

    def read(self, frames: torch.Tensor) -> dict[str, np.ndarray]:
        """Oracle readings of frames [t, 3, h, w] in [-1, 1]."""
        return read_factors(self.oracle(), frames.detach().float().cpu(), self.batch_size)

    @staticmethod
    def label(labels: dict, name: str, length: int) -> np.ndarray | None:
        value = labels.get(name)
        if value is None:
            return None
        return np.asarray(value.cpu() if torch.is_tensor(value) else value, dtype=np.float64)[:length]


class LipSyncCorrelation(_OracleMetric):
    """Correlation of the oracle's mouth openness of the generated video with the driving audio's viseme track."""

    requires = ("labels",)
    higher_is_better = {"lipsync_corr": True, "lipsync_best_corr": True, "lipsync_abs_lag": False, "mouth_open_mae": False}  # noqa: RUF012 - Metric.higher_is_better, a class-level default never mutated

    def compute(self, item: EvalItem) -> dict[str, float]:
        truth = self.label(item.labels, "mouth_open", len(item.frames))
        if truth is None:
            raise StyleTalkerError("synthetic_lipsync needs labels['mouth_open'] (the viseme track of the driving audio)")
        generated = self.read(item.frames[: len(truth)])["mouth_open"]
        lag, best = lagged_correlation(generated, truth)
        return {
            "lipsync_corr": correlation(generated, truth),
            "lipsync_best_corr": best,
            "lipsync_abs_lag": float(abs(lag)),
            "mouth_open_mae": float(np.mean(np.abs(generated - truth))),
        }


class MotionTransferCorrelation(_OracleMetric):
    """Correlation of the generated head pose and eye openness with the motion source's."""

    requires = ("motion_frames",)
    higher_is_better = {"yaw_corr": True, "pitch_corr": True, "roll_corr": True, "pose_corr": True,  # noqa: RUF012 - Metric.higher_is_better, a class-level default never mutated
                        "blink_corr": True, "blink_f1": True, "pose_mae_deg": False}

    def compute(self, item: EvalItem) -> dict[str, float]:
        generated = self.read(item.frames)
        length = len(item.frames)
        source_pose = self.label(item.motion_labels, "pose", length)
        source_eyes = self.label(item.motion_labels, "eye_open", length)
        if source_pose is None or source_eyes is None:
            if item.motion_frames is None:
                raise StyleTalkerError("synthetic_motion_transfer needs motion_frames or motion_labels (pose, eye_open)")
            source = self.read(item.motion_frames[:length])
            source_pose = np.stack([source[name] for name in POSE], 1) if source_pose is None else source_pose
            source_eyes = source["eye_open"] if source_eyes is None else source_eyes
        length = min(length, len(source_pose))
        out = {f"{name}_corr": correlation(generated[name][:length], source_pose[:length, i]) for i, name in enumerate(POSE)}
        out["pose_corr"] = float(np.mean([out[f"{name}_corr"] for name in POSE]))
        out["blink_corr"] = correlation(generated["eye_open"][:length], source_eyes[:length])
        hits, predicted, true = blink_counts(generated["eye_open"][:length], source_eyes[:length])
        out["blink_f1"] = f1(hits, predicted, true) if predicted + true else float("nan")
        pose = np.stack([generated[name][:length] for name in POSE], 1)
        out["pose_mae_deg"] = float(np.mean(np.abs(pose - source_pose[:length])))
        return out


class IdentityError(_OracleMetric):
    """Distance between the generated frames' identity factors and the reference's."""

    requires = ("reference_image",)
    higher_is_better = {"identity_mae": False, "identity_l2": False}  # noqa: RUF012 - Metric.higher_is_better, a class-level default never mutated

    def compute(self, item: EvalItem) -> dict[str, float]:
        generated = self.read(item.frames)["identity"]  # [t, k]
        reference = self.label(item.labels, "identity", len(item.frames))
        if reference is None:
            if item.reference_image is None:
                raise StyleTalkerError("synthetic_identity needs labels['identity'] or a reference_image")
            reference = self.read(item.reference_image[None])["identity"]
        reference = reference.reshape(-1, generated.shape[1])[: len(generated)]
        difference = generated - reference
        return {
            "identity_mae": float(np.mean(np.abs(difference))),
            "identity_l2": float(np.mean(np.linalg.norm(difference, axis=1))),
        }


class MotionRealism(_OracleMetric):
    """Pose velocity spectrum and blink rate of the generated video against ground-truth motion."""

    requires = ("labels",)
    higher_is_better = {"pose_spectrum_distance": False, "pose_speed_ratio_error": False, "blink_rate_error": False}  # noqa: RUF012 - Metric.higher_is_better, a class-level default never mutated

    def compute(self, item: EvalItem) -> dict[str, float]:
        truth_labels = item.motion_labels if "pose" in item.motion_labels else item.labels
        truth_pose = self.label(truth_labels, "pose", len(item.frames))
        truth_eyes = self.label(truth_labels, "eye_open", len(item.frames))
        if truth_pose is None or truth_eyes is None:
            raise StyleTalkerError("synthetic_motion_realism needs ground-truth pose and eye_open labels")
        generated = self.read(item.frames)
        pose = np.stack([generated[name] for name in POSE], 1)
        distance = float(np.mean(np.abs(velocity_log_spectrum(pose) - velocity_log_spectrum(truth_pose))))
        speed = np.mean(np.abs(np.diff(pose, axis=0))) if len(pose) > 1 else 0.0
        truth_speed = np.mean(np.abs(np.diff(truth_pose, axis=0))) if len(truth_pose) > 1 else 0.0
        rate = blinks_per_minute(generated["eye_open"], item.fps)
        truth_rate = blinks_per_minute(truth_eyes, item.fps)
        return {
            "pose_spectrum_distance": distance,
            "pose_speed_ratio_error": float(abs(np.log((speed + 1e-3) / (truth_speed + 1e-3)))),
            "blink_rate_error": float(abs(rate - truth_rate)),
        }
