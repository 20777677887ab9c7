"""Held-out clips an ablation evaluates on: which dataset, which clips, read into memory.

Axis letters: t frames, s audio samples, h/w pixels.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import torch

from styletalker_core.data.shards import ShardReader
from styletalker_core.errors import StyleTalkerError
from styletalker_core.evaluate.loading import frames_to_tensor
from styletalker_core.recipe.schema import Recipe

HELDOUT_SPLIT = "heldout"


@attrs.define
class HeldoutClip:
    """One evaluation clip: frames [t, 3, h, w] in [-1, 1], audio [s] at 16 kHz, labels name -> [t, ...]."""

    clip_id: str
    frames: torch.Tensor
    audio: torch.Tensor
    labels: dict[str, torch.Tensor]


def dataset_root(recipe: Recipe, data: str | None) -> Path:
    """``data`` when given, else the ``root`` option of the recipe's data.val, else of data.train."""
    if data:
        return Path(data)
    for spec in (recipe.data.val, recipe.data.train):
        if spec is not None and "root" in spec.options:
            return Path(str(spec.options["root"]))
    raise StyleTalkerError(f"recipe {recipe.name}: its data sections name no dataset root; give the evaluation clips with --data DIR")


def heldout_clip_ids(reader: ShardReader, explicit: bool) -> list[str]:
    """Clips marked ``split = "heldout"`` in the manifest; every clip when none is marked and the
    dataset was named explicitly (--data), since then the user chose it for evaluation."""
    marked = sorted(clip for clip, record in reader.records.items() if record.get("meta", {}).get("split") == HELDOUT_SPLIT)
    if marked:
        return marked
    if explicit:
        return sorted(reader.records)
    raise StyleTalkerError(
        f"{reader.root}: no clip is marked as held out (meta.split = 'heldout'); evaluating on training clips "
        "would flatter every recipe: give a held-out dataset with --data DIR"
    )


def load_clips(root: Path, count: int, explicit: bool) -> list[HeldoutClip]:
    """The first ``count`` held-out clips of the dataset at ``root`` (sorted by clip id)."""
    reader = ShardReader(root)
    ids = heldout_clip_ids(reader, explicit)[:count]
    clips = []
    for clip_id in ids:
        record: dict[str, Any] = reader.records[clip_id]
        if (record["fps"], record["sample_rate"]) != (25, 16000):
            raise StyleTalkerError(f"{root}: clip {clip_id} is at {record['fps']} fps / {record['sample_rate']} Hz; ablations need 25 fps / 16 kHz")
        labels = {name: value.clone() for name, value in reader.labels(clip_id).items()}
        clips.append(HeldoutClip(clip_id, frames_to_tensor(reader.frames(clip_id)), reader.audio(clip_id).float().clone(), labels))
    return clips
