"""Accuracy of a factor oracle on held-out data: R^2 per factor and blink detection F1.

Blinks: a frame is "closed" when eye openness < 0.5. Frame F1 scores closed frames; event
F1 scores blinks, a blink being a run of closed frames, matched when a predicted run
overlaps a true one (each used once).
"""

from __future__ import annotations

import numpy as np
import torch

from styletalker_core.interfaces import FactorOracle

CLOSED_BELOW = 0.5


def r_squared(prediction: np.ndarray, truth: np.ndarray) -> float:
    """Coefficient of determination of ``prediction`` for ``truth`` (flattened)."""
    prediction, truth = np.ravel(prediction).astype(np.float64), np.ravel(truth).astype(np.float64)
    total = np.sum((truth - truth.mean()) ** 2)
    if total <= 0:
        return float("nan")
    return float(1 - np.sum((truth - prediction) ** 2) / total)


def closed_runs(eye_open: np.ndarray) -> list[tuple[int, int]]:
    """Runs [start, stop) of frames with eye openness below 0.5 in a sequence [t]."""
    closed = np.concatenate([[False], np.asarray(eye_open) < CLOSED_BELOW, [False]])
    edges = np.flatnonzero(np.diff(closed.astype(np.int8)))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))


def blink_counts(predicted: np.ndarray, truth: np.ndarray) -> tuple[int, int, int]:
    """(true positives, predicted blinks, true blinks) of one sequence's eye openness [t]."""
    predicted_runs, true_runs = closed_runs(predicted), closed_runs(truth)
    used = set()
    hits = 0
    for start, stop in true_runs:
        for j, (p_start, p_stop) in enumerate(predicted_runs):
            if j not in used and p_start < stop and start < p_stop:
                used.add(j)
                hits += 1
                break
    return hits, len(predicted_runs), len(true_runs)


def f1(hits: int, predicted: int, truth: int) -> float:
    if predicted + truth == 0:
        return 1.0
    return 2 * hits / (predicted + truth)


def frame_blink_f1(predicted: np.ndarray, truth: np.ndarray) -> float:
    """F1 of closed-eye frames (openness < 0.5)."""
    p, t = np.asarray(predicted) < CLOSED_BELOW, np.asarray(truth) < CLOSED_BELOW
    return f1(int(np.sum(p & t)), int(p.sum()), int(t.sum()))


@torch.no_grad()
def read_factors(oracle: FactorOracle, images: torch.Tensor, batch_size: int = 256) -> dict[str, np.ndarray]:
    """Oracle readings of images (uint8 [n, 3, h, w] or float [n, 3, h, w] in [-1, 1]) as numpy arrays."""
    was_training = oracle.training
    oracle.eval()
    parts: dict[str, list[np.ndarray]] = {}
    for start in range(0, len(images), batch_size):
        batch = images[start:start + batch_size]
        if batch.dtype == torch.uint8:
            batch = batch.float() / 127.5 - 1
        for name, value in oracle(batch).items():
            parts.setdefault(name, []).append(value.float().cpu().numpy())
    oracle.train(was_training)
    return {name: np.concatenate(values) for name, values in parts.items()}


def frame_accuracy(readings: dict[str, np.ndarray], labels: dict[str, torch.Tensor], prefix: str) -> dict[str, float]:
    """R^2 of every factor and blink frame F1, named ``<prefix>_<factor>_r2`` etc."""
    truth = {name: labels[name].numpy() for name in ("mouth_open", "mouth_width", "eye_open")}
    pose = labels["pose"].numpy()
    truth.update(yaw=pose[:, 0], pitch=pose[:, 1], roll=pose[:, 2])
    out = {f"{prefix}_{name}_r2": r_squared(readings[name], value) for name, value in truth.items()}
    identity = labels["identity"].numpy()
    out[f"{prefix}_identity_r2"] = float(np.mean([r_squared(readings["identity"][:, k], identity[:, k])
                                                  for k in range(identity.shape[1])]))
    out[f"{prefix}_identity_mae"] = float(np.mean(np.abs(readings["identity"] - identity)))
    out[f"{prefix}_pose_mae_deg"] = float(np.mean(np.abs(np.stack([readings[n] for n in ("yaw", "pitch", "roll")], 1) - pose)))
    out[f"{prefix}_blink_frame_f1"] = frame_blink_f1(readings["eye_open"], truth["eye_open"])
    return out


def clip_accuracy(oracle: FactorOracle, clips: list) -> dict[str, float]:
    """Accuracy on whole clips (styletalker Clip objects with labels): pooled R^2 and blink event F1."""
    readings: dict[str, list[np.ndarray]] = {}
    labels: dict[str, list[torch.Tensor]] = {}
    hits = predicted = truth = 0
    for clip in clips:
        images = torch.from_numpy(clip.frames).permute(0, 3, 1, 2)
        reading = read_factors(oracle, images)
        counts = blink_counts(reading["eye_open"], clip.labels["eye_open"])
        hits, predicted, truth = hits + counts[0], predicted + counts[1], truth + counts[2]
        for name, value in reading.items():
            readings.setdefault(name, []).append(value)
        for name in ("mouth_open", "mouth_width", "eye_open", "pose", "identity"):
            labels.setdefault(name, []).append(torch.from_numpy(clip.labels[name]))
    pooled = {name: np.concatenate(values) for name, values in readings.items()}
    out = frame_accuracy(pooled, {name: torch.cat(values) for name, values in labels.items()}, "clips")
    out["clips_blink_event_f1"] = f1(hits, predicted, truth)
    out["clips_blinks"] = float(truth)
    return out
