"""CPBD-style sharpness: cumulative probability of blur detection (Narvekar and Karam, 2011).

Per frame (grayscale, 0-255): Canny edge pixels whose gradient is within 45 degrees of
horizontal (near-vertical edges) are kept. Each one's edge width is Marziliano's: the number of
pixels between the intensity extrema on either side of it along its row, times the cosine
of the gradient angle. The frame is cut into blocks; a block with more than 0.2 % edge pixels
is an edge block, and its just-noticeable-blur width is 5 pixels when its contrast
(max - min) is at most 50, else 3. The probability that an edge's blur is detected is
1 - exp(-(w / w_jnb)^3.6); CPBD is the fraction of edge pixels (in edge blocks) whose
probability is at most 1 - 1/e, the just-noticeable level - that is, whose width is at most
w_jnb. 1: every edge sharp; 0: every edge blurred.
"""

from __future__ import annotations

import numpy as np
import torch

from styletalker_core.errors import StyleTalkerError
from styletalker_core.interfaces.metric import EvalItem, Metric
from styletalker_metrics.pairing import check_video, unit_range

BETA = 3.6
EDGE_BLOCK_FRACTION = 0.002


def _run_lengths(steps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Boolean [h, w - 1] (step from column j to j + 1 goes the right way) -> run lengths [h, w]:
    (consecutive such steps to the right of each pixel, and to its left)."""
    height, width = steps.shape[0], steps.shape[1] + 1
    right = np.zeros((height, width), dtype=np.int32)
    left = np.zeros((height, width), dtype=np.int32)
    for column in range(width - 2, -1, -1):
        right[:, column] = steps[:, column] * (1 + right[:, column + 1])
    for column in range(1, width):
        left[:, column] = steps[:, column - 1] * (1 + left[:, column - 1])
    return right, left


def edge_widths(gray: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Grayscale [h, w] in 0-255 -> (near-vertical edge mask [h, w], corrected widths [h, w] in pixels)."""
    from scipy import ndimage
    from skimage.feature import canny

    edges = canny(gray, sigma=sigma)
    gx = ndimage.sobel(gray, axis=1)
    gy = ndimage.sobel(gray, axis=0)
    vertical = edges & (np.abs(gx) >= np.abs(gy)) & (gx != 0)
    differences = np.diff(gray, axis=1)
    rise_right, rise_left = _run_lengths(differences > 0)
    fall_right, fall_left = _run_lengths(differences < 0)
    widths = np.where(gx > 0, rise_right + rise_left, fall_right + fall_left).astype(np.float64)
    cosine = np.abs(gx) / np.maximum(np.hypot(gx, gy), 1e-12)
    return vertical, widths * cosine


def cpbd(gray: np.ndarray, block_size: int = 64, sigma: float = 1.0) -> float:
    """CPBD of one grayscale image [h, w] in 0-255 (NaN when it has no edge block)."""
    edges, widths = edge_widths(gray.astype(np.float64), sigma)
    sharp, total = 0, 0
    height, width = gray.shape
    for top in range(0, height, block_size):
        for left in range(0, width, block_size):
            block = (slice(top, top + block_size), slice(left, left + block_size))
            block_edges = edges[block]
            if block_edges.sum() <= EDGE_BLOCK_FRACTION * block_edges.size:
                continue
            contrast = float(gray[block].max() - gray[block].min())
            jnb_width = 5.0 if contrast <= 50 else 3.0
            block_widths = widths[block][block_edges]
            probability = 1.0 - np.exp(-((block_widths / jnb_width) ** BETA))
            sharp += int((probability <= 1.0 - np.exp(-1.0)).sum())
            total += int(block_edges.sum())
    return sharp / total if total else float("nan")


class CPBD(Metric):
    """Sharpness of the generated frames: CPBD (cumulative probability of blur detection), higher is sharper.

    ``frames_per_video`` evenly spaced frames are scored (0: all) and averaged; ``block_size``
    and the Canny ``sigma`` follow the original method (64-pixel blocks); frames with no edge
    block are left out. See the module notes for the algorithm.
    """

    requires = ("frames",)

    def __init__(self, frames_per_video: int = 16, block_size: int = 64, sigma: float = 1.0) -> None:
        if block_size < 8:
            raise StyleTalkerError(f"cpbd: block_size must be at least 8, got {block_size}")
        self.frames_per_video, self.block_size, self.sigma = frames_per_video, block_size, sigma
        self.higher_is_better = {"cpbd": True}

    def compute(self, item: EvalItem) -> dict[str, float]:
        check_video(item.frames, "generated video")
        count = len(item.frames)
        indices = np.arange(count) if self.frames_per_video <= 0 or count <= self.frames_per_video else (
            np.linspace(0, count - 1, self.frames_per_video).round().astype(int)
        )
        rgb = unit_range(item.frames[torch.as_tensor(indices)]) * 255.0
        gray = (0.299 * rgb[:, 0] + 0.587 * rgb[:, 1] + 0.114 * rgb[:, 2]).cpu().numpy()
        values = np.array([cpbd(frame, self.block_size, self.sigma) for frame in gray])
        values = values[np.isfinite(values)]
        return {"cpbd": float(values.mean()) if len(values) else float("nan")}
