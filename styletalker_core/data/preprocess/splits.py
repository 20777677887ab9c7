"""Train / val / test splits of preprocessed clips, drawn deterministically by group.

A group is the unit no two splits share: the person when the layout names one (VoxCeleb2's
``idNNNNN`` folders, HDTF's speaker names, a folder per person), else the source video. Groups
are ordered by a hash of their name (so the order of files on disk or of their discovery does
not matter), and the first ``round(test * n)`` go to ``test``, the next ``round(val * n)`` to
``val``, the rest to ``train``. A split with a positive fraction gets at least one group while
``train`` keeps at least one (val before test), so a corpus of a few videos still has a clip to validate and to
test on. Groups a layout already places (VoxCeleb2's official ``test`` folder) keep their split,
and then ``test`` is not drawn from the others.

Each clip's record says ``meta["split"]``, ``meta["identity"]`` (the person, when known) and
``meta["split_group"]`` (what the split was drawn by: ``identity <name>`` or ``video <path>``).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from typing import Any

from styletalker_core.errors import StyleTalkerError

SPLITS = ("train", "val", "test")
SPLIT_BY = ("auto", "identity", "video")


def check_fractions(val: float, test: float) -> None:
    for name, value in (("--val", val), ("--test", test)):
        if not (0.0 <= value < 1.0):
            raise StyleTalkerError(f"{name} {value}: give a fraction from 0 up to (not including) 1")
    if val + test >= 1.0:
        raise StyleTalkerError(f"--val {val} and --test {test} leave no clips to train on; keep their sum below 1")


def split_group(meta: dict[str, Any], relative: str, split_by: str = "auto") -> str:
    """The group a video's clips are split by: ``identity <name>`` when the layout names the person
    (and ``split_by`` is not ``video``), else ``video <relative path>``."""
    if split_by not in SPLIT_BY:
        raise StyleTalkerError(f"--split-by {split_by!r}: choose one of {', '.join(SPLIT_BY)}")
    identity = meta.get("identity")
    if split_by != "video" and identity:
        return f"identity {identity}"
    if split_by == "identity":
        raise StyleTalkerError(
            f"{relative}: --split-by identity, but the layout names no person for it (a folder per person, "
            "VoxCeleb2 or HDTF names); use --split-by video or auto")
    return f"video {relative}"


def _order(group: str) -> str:
    return hashlib.sha256(group.encode()).hexdigest()


def assign_splits(groups: list[str], val: float = 0.1, test: float = 0.1,
                  fixed: dict[str, str] | None = None) -> dict[str, str]:
    """group -> split for every group of ``groups`` (duplicates allowed); ``fixed`` groups keep theirs."""
    check_fractions(val, test)
    fixed = dict(fixed or {})
    free = sorted({g for g in groups if g not in fixed}, key=_order)
    if any(split == "test" for split in fixed.values()):
        test = 0.0  # the layout has its own test set
    count = len(free)
    n_test = round(test * count)
    n_val = round(val * count)
    # a positive fraction gets at least one group while train keeps at least one
    # (val first: training validates on it; then test)
    if val > 0 and n_val == 0 and count - n_test >= 2:
        n_val = 1
    if test > 0 and n_test == 0 and count - n_val >= 2:
        n_test = 1
    while n_test + n_val >= count and n_test + n_val > 0:  # leave train at least one group
        if n_test >= n_val and n_test > 0:
            n_test -= 1
        else:
            n_val -= 1
    assignment = dict(fixed)
    for place, group in enumerate(free):
        assignment[group] = "test" if place < n_test else "val" if place < n_test + n_val else "train"
    return assignment


def summarize(records: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """split -> {"clips": n, "groups": n, "frames": n} over clip records (every split listed)."""
    clips: Counter[str] = Counter()
    frames: Counter[str] = Counter()
    groups: dict[str, set[str]] = {split: set() for split in SPLITS}
    for record in records:
        meta = record.get("meta") or {}
        split = meta.get("split", "")
        clips[split] += 1
        frames[split] += int(record.get("num_frames", 0))
        groups.setdefault(split, set()).add(meta.get("split_group", record.get("clip_id", "")))
    names = [*SPLITS, *sorted(set(clips) - set(SPLITS))]
    return {split: {"clips": clips[split], "groups": len(groups.get(split, ())), "frames": frames[split]} for split in names}
