"""Paste-back: generated face crops composited into the original picture at its own resolution.

The model sees and makes aligned face crops: an affine map ``A`` [2, 3] takes a point of the
original picture (pixel-edge coordinates: pixel (x, y) covers [x, x+1) x [y, y+1), as PIL
uses) to the crop, the FFHQ quad of the face's landmarks (:func:`crop_affine`, the transform
:func:`styletalker_core.data.preprocess.crop_face` samples with) or, without alignment, the
centre square resized (:func:`square_affine`). Pasting back samples the generated crop at
``A`` of every picture pixel's centre (bilinear) and blends it over the picture with a
feathered mask (:func:`face_mask`, 1 on the face, falling smoothly to 0 well inside the crop's
border):

    out = alpha * warped face + (1 - alpha) * picture

Where alpha is 0 the picture's pixel is kept exactly (no resampling, no rounding); where it
is 1 the pixel is the generated face warped back. Only the crop's footprint is computed.

A reference video is a background of many frames: :class:`FrameStore` decodes it once into a
memory-mapped file, so any frame can be read again (a motion looped back and forth reads
frames backwards) while memory stays flat.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

MASK_CENTRE = (0.5, 0.55)  # of the crop side: a little below the middle (the FFHQ crop's face centre)
MASK_RADII = (0.40, 0.42)  # ellipse radii (of the side) where alpha reaches 0
MASK_FEATHER = 0.3  # alpha rises from 0 to 1 over the outer 30 % of the ellipse's radius


def crop_affine(landmarks: np.ndarray, size: int) -> np.ndarray:
    """Affine [2, 3] from picture coordinates to the FFHQ-aligned crop of side ``size`` of the face
    with 68 ``landmarks`` [68, 2] (the crop :func:`~styletalker_core.data.preprocess.crop_face` makes)."""
    from styletalker_core.data.preprocess import ffhq_quad, quad_to_crop

    return quad_to_crop(ffhq_quad(np.asarray(landmarks, np.float64)), size)


def square_affine(height: int, width: int, size: int) -> np.ndarray:
    """Affine [2, 3] from picture coordinates to the centre square resized to ``size`` (``--no-align``)."""
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    scale = size / side
    return np.array([[scale, 0.0, -left * scale], [0.0, scale, -top * scale]])


def face_mask(size: int) -> np.ndarray:
    """Blend weights float32 [size, size] in [0, 1] over the crop: 1 on the face (the inner part of
    an ellipse around the face), falling smoothly (smoothstep) to exactly 0 at the ellipse, which
    stays inside the crop."""
    centres = (np.arange(size) + 0.5) / size
    v, u = np.meshgrid(centres, centres, indexing="ij")
    radius = np.hypot((u - MASK_CENTRE[0]) / MASK_RADII[0], (v - MASK_CENTRE[1]) / MASK_RADII[1])
    ramp = np.clip((1.0 - radius) / MASK_FEATHER, 0.0, 1.0)
    return (ramp * ramp * (3.0 - 2.0 * ramp)).astype(np.float32)


def footprint(affine: np.ndarray, size: int, height: int, width: int) -> tuple[int, int, int, int] | None:
    """(top, bottom, left, right) pixel bounds of the picture that the crop covers (None: none)."""
    forward = np.vstack([affine, [0.0, 0.0, 1.0]])
    inverse = np.linalg.inv(forward)
    corners = np.array([[0, 0, 1], [size, 0, 1], [0, size, 1], [size, size, 1]], np.float64)
    points = corners @ inverse[:2].T
    left, right = max(0, math.floor(points[:, 0].min()) - 1), min(width, math.ceil(points[:, 0].max()) + 1)
    top, bottom = max(0, math.floor(points[:, 1].min()) - 1), min(height, math.ceil(points[:, 1].max()) + 1)
    if left >= right or top >= bottom:
        return None
    return top, bottom, left, right


def warp_to_picture(crop: np.ndarray, affine: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """The crop float [size, size, c] sampled at ``affine`` of the centres of the picture pixels in
    ``box`` (top, bottom, left, right) -> float32 [bottom - top, right - left, c] (0 outside the crop)."""
    top, bottom, left, right = box
    size = crop.shape[0]
    ys, xs = np.meshgrid(np.arange(top, bottom) + 0.5, np.arange(left, right) + 0.5, indexing="ij")
    u = affine[0, 0] * xs + affine[0, 1] * ys + affine[0, 2]
    v = affine[1, 0] * xs + affine[1, 1] * ys + affine[1, 2]
    grid = torch.from_numpy(np.stack([u / size * 2 - 1, v / size * 2 - 1], axis=-1)[None]).float()
    source = torch.from_numpy(np.ascontiguousarray(crop, np.float32)).permute(2, 0, 1)[None]
    warped = F.grid_sample(source, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return warped[0].permute(1, 2, 0).numpy()


def paste_face(picture: np.ndarray, face: np.ndarray, affine: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """``face`` uint8 [size, size, 3] (a generated crop) blended into a copy of ``picture`` uint8
    [h, w, 3] through the crop transform ``affine`` [2, 3] and ``mask`` (default :func:`face_mask`)."""
    size = face.shape[0]
    mask = face_mask(size) if mask is None else mask
    out = np.array(picture, copy=True)
    box = footprint(affine, size, *picture.shape[:2])
    if box is None:
        return out
    top, bottom, left, right = box
    both = np.concatenate([face.astype(np.float32), mask[..., None]], axis=-1)
    warped = warp_to_picture(both, affine, box)
    alpha = np.clip(warped[..., 3:], 0.0, 1.0)
    region = out[top:bottom, left:right]
    blended = np.rint(alpha * warped[..., :3] + (1.0 - alpha) * region).clip(0, 255).astype(np.uint8)
    out[top:bottom, left:right] = np.where(alpha > 0, blended, region)
    return out


def even_size(picture: np.ndarray) -> np.ndarray:
    """The picture cut to even sides (H.264's 4:2:0 needs them): the last row / column of an odd side goes."""
    height, width = picture.shape[:2]
    return picture[: height - height % 2, : width - width % 2]


class FrameStore:
    """Frames of a video at ``fps`` decoded once into a memory-mapped file: random access, flat memory.

    ``frames[i]`` is frame i uint8 [h, w, 3]; the file is removed by :meth:`close` (or ``with``).
    """

    def __init__(self, path: str | Path, fps: float, count: int | None = None) -> None:
        from styletalker_core.media import iter_video_frames

        self._folder = tempfile.TemporaryDirectory(prefix="styletalker-frames-")
        frames: np.ndarray | None = None
        written = 0
        for frame in iter_video_frames(path, fps=fps):
            if count is not None and written >= count:
                break
            if frames is None:
                total = count if count is not None else _count_frames(path, fps)
                frames = np.lib.format.open_memmap(Path(self._folder.name) / "frames.npy", mode="w+",
                                                   dtype=np.uint8, shape=(total, *frame.shape))
            if written >= len(frames):
                break
            frames[written] = frame
            written += 1
        if frames is None:
            frames = np.zeros((0, 2, 2, 3), np.uint8)
        self.frames = frames[:written]

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, index: int) -> np.ndarray:
        return np.asarray(self.frames[index])

    def close(self) -> None:
        self.frames = np.zeros((0, 2, 2, 3), np.uint8)  # drops the memory map before its file goes
        self._folder.cleanup()

    def __enter__(self) -> FrameStore:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _count_frames(path: str | Path, fps: float) -> int:
    from styletalker_core.media import iter_video_frames

    return sum(1 for _ in iter_video_frames(path, fps=fps))


def source_indices(length: int, total: int) -> np.ndarray:
    """Frame of a ``length``-frame source shown at each of ``total`` output frames: trimmed, or looped
    back and forth (0, 1, .., T-1, T-2, .., 1, 0, ..) as a motion source is
    (:func:`styletalker_core.model.fit_motion`)."""
    if length <= 1:
        return np.zeros(total, np.int64)
    period = 2 * (length - 1)
    phase = np.arange(total) % period
    return np.where(phase < length, phase, period - phase).astype(np.int64)


def source_index(length: int, index: int) -> int:
    """``source_indices(length, n)[index]`` for any n > index, without building the others."""
    if length <= 1:
        return 0
    period = 2 * (length - 1)
    phase = index % period
    return phase if phase < length else period - phase


class Backdrop:
    """The pictures generated faces are pasted back into: one image, or the frames of a reference
    video (a :class:`FrameStore`), each with its crop transform. Output frame k uses picture
    ``source_index(len(pictures), k)`` (a video is looped back and forth like a motion source)."""

    def __init__(self, pictures: np.ndarray | FrameStore, affines: np.ndarray) -> None:
        self.pictures = pictures
        self.affines = np.asarray(affines, np.float64).reshape(-1, 2, 3)
        self.still = isinstance(pictures, np.ndarray) and pictures.ndim == 3
        self.mask: np.ndarray | None = None

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) of the output frames (the pictures' cut to even sides)."""
        return even_size(self._source_picture(0)).shape[:2]

    def _source_picture(self, source: int) -> np.ndarray:
        """Picture ``source`` of a video reference, or the one picture of a still one."""
        if self.still and isinstance(self.pictures, np.ndarray):  # still: always an array
            return self.pictures
        return self.pictures[source]

    def picture(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """(picture uint8 [h, w, 3] cut to even sides, affine [2, 3]) for output frame ``index``."""
        source = 0 if self.still else source_index(len(self.pictures), index)
        picture = self._source_picture(source)
        affine = self.affines[0] if len(self.affines) == 1 else self.affines[source]
        return even_size(picture), affine

    def composite(self, faces: np.ndarray, start: int) -> np.ndarray:
        """faces uint8 [n, t, s, s, 3] for output frames start .. start + t -> uint8 [n, t, h, w, 3]."""
        if self.mask is None or self.mask.shape[0] != faces.shape[2]:
            self.mask = face_mask(faces.shape[2])
        out = np.empty((*faces.shape[:2], *self.size, 3), np.uint8)
        for offset in range(faces.shape[1]):
            picture, affine = self.picture(start + offset)
            for sample in range(faces.shape[0]):
                out[sample, offset] = paste_face(picture, faces[sample, offset], affine, self.mask)
        return out

    def close(self) -> None:
        if isinstance(self.pictures, FrameStore):
            self.pictures.close()
