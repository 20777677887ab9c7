"""Pictures of the synthetic domain for people: a contact sheet of frames and a clip as mp4.

    python -m styletalker_core.data.synthetic.preview docs/

writes ``synthetic_contact_sheet.png`` and ``synthetic_clip.mp4`` into the folder.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from styletalker_core.data.synthetic.clip import SynthConfig, make_clip
from styletalker_core.data.synthetic.identity import sample_identity
from styletalker_core.data.synthetic.renderer import render_faces

# (yaw, pitch, roll), eye openness, mouth openness, mouth width: one row of the sheet each.
SHEET_ROWS = (
    ((0.0, 0.0, 0.0), 1.0, 0.0, 0.5),
    ((22.0, 0.0, 0.0), 1.0, 0.5, 0.6),
    ((-22.0, 8.0, 4.0), 1.0, 0.95, 0.6),
    ((0.0, -12.0, -8.0), 0.0, 0.3, 0.4),
    ((10.0, 12.0, 0.0), 0.4, 0.4, 0.1),
    ((-8.0, 0.0, 10.0), 1.0, 0.15, 0.9),
)


def contact_sheet(identities: int = 8, seed: int = 0, resolution: int = 64, scale: int = 2) -> np.ndarray:
    """Grid uint8 [rows * size, identities * size, 3]: identities across, SHEET_ROWS down
    (neutral; turned right, talking; turned left, mouth wide open; blink looking down; half-closed
    eyes with rounded lips looking up; tilted with spread lips), upscaled ``scale`` times."""
    identity = torch.stack([torch.from_numpy(sample_identity(seed, k)) for k in range(identities)])
    rows = []
    for pose, eye, mouth, width in SHEET_ROWS:
        images = render_faces(
            identity,
            torch.tensor([pose] * identities),
            torch.full((identities,), eye),
            torch.full((identities,), mouth),
            torch.full((identities,), width),
            resolution=resolution,
        )
        rows.append(images)
    grid = torch.stack(rows)  # [r, n, 3, h, w]
    r, n, _, h, w = grid.shape
    grid = grid.permute(0, 3, 1, 4, 2).reshape(r * h, n * w, 3)
    grid = grid.repeat_interleave(scale, 0).repeat_interleave(scale, 1)
    return (grid * 255 + 0.5).clamp(0, 255).to(torch.uint8).numpy()


def write_previews(folder: str | Path, seed: int = 3) -> list[Path]:
    """Write the contact sheet and one 128 px clip with its audio into ``folder``."""
    from styletalker_core.media import write_image, write_video

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    sheet = folder / "synthetic_contact_sheet.png"
    write_image(sheet, contact_sheet())
    clip = make_clip(SynthConfig(clips=1, seed=seed, resolution=128, seconds=(5.0, 6.0), heldout_fraction=0.0), 0)
    video = folder / "synthetic_clip.mp4"
    write_video(video, clip.frames, clip.audio, fps=clip.fps, sample_rate=clip.sample_rate)
    return [sheet, video]


if __name__ == "__main__":
    for written in write_previews(sys.argv[1] if len(sys.argv) > 1 else "docs"):
        print(written)
