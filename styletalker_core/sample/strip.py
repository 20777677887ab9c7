"""A side-by-side PNG strip of videos over time: one labelled row per video, the reference first."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from styletalker_core.media import iter_video_frames

GAP = 4  # pixels between tiles
LABEL_HEIGHT = 14  # pixels of text above each row
BACKGROUND = (255, 255, 255)


def frame_indices(num_frames: int, count: int) -> list[int]:
    """``count`` frame numbers spread evenly over ``num_frames`` frames (centres of equal spans)."""
    count = min(count, num_frames)
    return [int((i + 0.5) * num_frames / count) for i in range(count)]


def pick_frames(path: str | Path, indices: list[int], fps: float = 25.0) -> list[np.ndarray]:
    """Frames uint8 [h, w, 3] of the video at ``path`` (read at ``fps``) with the given numbers, in that order.

    The video is streamed; only the wanted frames are kept. A number past the end repeats the last frame.
    """
    wanted = set(indices)
    found: dict[int, np.ndarray] = {}
    last = None
    for index, frame in enumerate(iter_video_frames(path, fps=fps)):
        last = frame
        if index in wanted:
            found[index] = frame
        if index >= max(indices):
            break
    if last is None:
        raise ValueError(f"{path}: the video has no frames")
    return [found.get(index, last) for index in indices]


def _upscale(image: np.ndarray, scale: int) -> np.ndarray:
    return image.repeat(scale, axis=0).repeat(scale, axis=1) if scale > 1 else image


def contact_strip(
    reference: np.ndarray,
    rows: list[tuple[str, list[np.ndarray]]],
    times: list[float],
    scale: int = 2,
) -> np.ndarray:
    """A grid uint8 [H, W, 3]: column 0 the reference (first row only), then one column per time.

    rows: (label, frames uint8 [h, w, 3], one per time); times in seconds label the columns.
    Tiles are enlarged ``scale`` times (nearest neighbour) so small faces stay visible.
    """
    from PIL import Image, ImageDraw

    size = reference.shape[0] * scale
    columns = 1 + len(times)
    width = columns * size + (columns + 1) * GAP
    height = LABEL_HEIGHT + len(rows) * (LABEL_HEIGHT + size + GAP) + GAP
    canvas = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(canvas)

    def left(column: int) -> int:
        return GAP + column * (size + GAP)

    draw.text((left(0), 1), "reference", fill=(0, 0, 0))
    for column, seconds in enumerate(times, start=1):
        draw.text((left(column), 1), f"{seconds:.2f} s", fill=(0, 0, 0))
    top = LABEL_HEIGHT
    for row, (label, frames) in enumerate(rows):
        draw.text((left(1), top + 1), label, fill=(0, 0, 0))
        top += LABEL_HEIGHT
        if row == 0:
            canvas.paste(Image.fromarray(_upscale(reference, scale)), (left(0), top))
        for column, frame in enumerate(frames, start=1):
            tile = np.asarray(Image.fromarray(frame).resize((reference.shape[1], reference.shape[0]))) \
                if frame.shape[:2] != reference.shape[:2] else frame
            canvas.paste(Image.fromarray(_upscale(tile, scale)), (left(column), top))
        top += size + GAP
    return np.asarray(canvas)
