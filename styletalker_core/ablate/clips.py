"""Held-out clips an ablation evaluates on: which dataset, which split, which clips, read into memory.

Reported numbers come from the ``test`` split; choices made during development (loss weights,
thresholds, which run to keep) use ``val``. In a dataset of the older train / heldout layout
both select its heldout clips.

Axis letters: t frames, s audio samples, h/w pixels.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import torch

from styletalker_core.data.shards import ShardReader, record_split
from styletalker_core.errors import StyleTalkerError
from styletalker_core.evaluate.loading import frames_to_tensor
from styletalker_core.recipe.schema import Recipe

EVALUATION_SPLIT = "test"  # reported numbers; every choice made during development uses "val"


@attrs.define
class HeldoutClip:
    """One evaluation clip: frames [t, 3, h, w] in [-1, 1], audio [s] at 16 kHz, labels name -> [t, ...].

    meta: the clip's metadata (``transcript``, ``speech_start``, ...). aligned: False when the audio was
    replaced by speech with its own timing (another speech engine): frames and labels then no longer
    match the audio, and only the first frame (the reference image) is used."""

    clip_id: str
    frames: torch.Tensor
    audio: torch.Tensor
    labels: dict[str, torch.Tensor]
    meta: dict[str, Any] = attrs.Factory(dict)
    aligned: bool = True


def dataset_root(recipe: Recipe, data: str | None) -> Path:
    """``data`` when given, else the ``root`` option of the recipe's data.val, else of data.train."""
    if data:
        return Path(data)
    for spec in (recipe.data.val, recipe.data.train):
        if spec is not None and "root" in spec.options:
            return Path(str(spec.options["root"]))
    raise StyleTalkerError(f"recipe {recipe.name}: its data sections name no dataset root; give the evaluation clips with --data DIR")


def heldout_clip_ids(reader: ShardReader, explicit: bool, split: str = EVALUATION_SPLIT) -> list[str]:
    """Clips of ``split`` (``meta.split``; ``val`` and ``test`` are the ``heldout`` clips of a dataset of
    the older layout), sorted by clip id; every clip when no clip is marked with any split and the
    dataset was named explicitly (--data), since then the user chose it for evaluation."""
    marked = sorted(reader.split_clip_ids(split))
    if marked:
        return marked
    present = sorted({record_split(record) for record in reader.records.values()} - {""})
    if explicit and not present:
        return sorted(reader.records)
    if present:
        raise StyleTalkerError(f"{reader.root}: no clip is in split {split!r} (its clips are in {', '.join(present)}); "
                               "choose one with --split")
    raise StyleTalkerError(
        f"{reader.root}: no clip is marked as held out (meta.split = {split!r}); evaluating on training clips "
        "would flatter every recipe: give a held-out dataset with --data DIR"
    )


def load_clips(root: Path, count: int, explicit: bool, split: str = EVALUATION_SPLIT) -> list[HeldoutClip]:
    """The first ``count`` clips of ``split`` of the dataset at ``root`` (sorted by clip id)."""
    reader = ShardReader(root)
    return read_clips(reader, heldout_clip_ids(reader, explicit, split)[:count])


def read_clips(reader: ShardReader, ids: list[str]) -> list[HeldoutClip]:
    """The clips ``ids`` of a dataset, read into memory (25 fps, 16 kHz)."""
    root = reader.root
    clips = []
    for clip_id in ids:
        record: dict[str, Any] = reader.records[clip_id]
        if (record["fps"], record["sample_rate"]) != (25, 16000):
            raise StyleTalkerError(f"{root}: clip {clip_id} is at {record['fps']} fps / {record['sample_rate']} Hz; ablations need 25 fps / 16 kHz")
        labels = {name: value.clone() for name, value in reader.labels(clip_id).items()}
        clips.append(HeldoutClip(clip_id, frames_to_tensor(reader.frames(clip_id)), reader.audio(clip_id).float().clone(), labels,
                                 meta=dict(record.get("meta") or {})))
    return clips
