"""Datasets of talking-face clips."""

from __future__ import annotations

import abc
from typing import Any

from torch.utils.data import Dataset


class ClipDataset(Dataset, abc.ABC):
    """Random windows of talking-face clips.

    Items are dicts; keys present in every implementation:
        frames [t, 3, h, w] float in [-1, 1]; audio [s] float at 16 kHz covering the same
        time span; clip_id str; start_frame int.
    Optional keys: ws [t, l, w] (cached latents), landmarks [t, 68, 2], labels (dict of [t, ...]).
    Attributes: fps (25), sample_rate (16000), window_frames (t).

    Indexing: ``dataset[i]`` for any i >= 0 is valid. Index i selects the same clip as
    ``i % len(dataset)`` and seeds the item's randomness (window start, augmentation) with i,
    so items are deterministic by index and a training sampler can pass ``epoch * len + i``
    to get a fresh window each epoch. Plain indices below ``len`` (DataLoader,
    DistributedSampler) work as usual.
    """

    fps: int = 25
    sample_rate: int = 16000
    window_frames: int

    @abc.abstractmethod
    def __len__(self) -> int: ...

    @abc.abstractmethod
    def __getitem__(self, index: int) -> dict[str, Any]: ...
