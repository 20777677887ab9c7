"""Contract of the ``dataset`` kind: items of ``window_frames`` frames [t, 3, h, w] in [-1, 1] with
audio [(t + 2 context) * 640], deterministic by index (indices past ``len`` pick the same clip
with a fresh window), picklable for loader workers, split by DistributedSampler.

Datasets that read a folder (a ``root`` option left empty) get a tiny clip dataset in the
sharded format, written by :func:`write_tiny_dataset`.
"""

from __future__ import annotations

import pickle
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, DistributedSampler

from styletalker_core.data.shards import Clip, ShardWriter
from styletalker_core.interfaces import ClipDataset
from styletalker_core.testing.factory import ComponentFactory, fail, require


def write_tiny_dataset(root: Path, clips: int = 4, size: int = 16) -> Path:
    """``clips`` clips of 12..20 frames of noise with matching audio, landmarks and a label, in two
    shards; the last clip is in split ``heldout``, the others in ``train``."""
    writer = ShardWriter(root)
    rng = np.random.default_rng(0)
    made = []
    for index in range(clips):
        frames = 12 + 2 * index
        made.append(
            Clip(
                clip_id=f"clip{index}",
                frames=rng.integers(0, 256, (frames, size, size, 3), dtype=np.uint8),
                audio=rng.standard_normal(frames * 640).astype(np.float32) * 0.1,
                landmarks=rng.uniform(0, size, (frames, 68, 2)).astype(np.float32),
                labels={"mouth_open": rng.uniform(0, 1, (frames,)).astype(np.float32)},
                meta={"split": "heldout" if index == clips - 1 else "train"},
            )
        )
    writer.write("shard-0", made[: clips // 2])
    writer.write("shard-1", made[clips // 2 :])
    writer.finalize()
    return root


def build_dataset(factory: ComponentFactory, folder: Path) -> ClipDataset:
    """The dataset, reading a tiny dataset written under ``folder`` when it takes an empty ``root``."""
    if factory.accepts("root") and not factory.options.get("root"):
        return factory(root=str(write_tiny_dataset(folder / "data")))
    return factory()


def same_item(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Items equal key by key (tensors exactly, nested dicts recursively)."""
    if a.keys() != b.keys():
        return False
    for key in a:
        if isinstance(a[key], torch.Tensor):
            if not torch.equal(a[key], b[key]):
                return False
        elif isinstance(a[key], dict):
            if not same_item(a[key], b[key]):
                return False
        elif a[key] != b[key]:
            return False
    return True


def check_dataset_items(factory: ComponentFactory) -> None:
    """Rates, length and the fields of the first items, with their shapes, types and ranges."""
    with tempfile.TemporaryDirectory() as folder:
        dataset = build_dataset(factory, Path(folder))
        require(isinstance(dataset, ClipDataset), factory, f"built a {type(dataset).__qualname__}, not a ClipDataset")
        require((dataset.fps, dataset.sample_rate) == (25, 16000), factory,
                f"(fps, sample_rate) = {(dataset.fps, dataset.sample_rate)}, expected (25, 16000)")
        size = len(dataset)
        require(size > 0, factory, "the dataset is empty")
        t = dataset.window_frames
        for index in range(min(size, 6)):
            item = dataset[index]
            where = f"item {index}"
            frames = item["frames"]
            require(frames.dtype == torch.float32 and frames.ndim == 4 and frames.shape[:2] == (t, 3), factory,
                    f"{where}: frames {tuple(frames.shape)} {frames.dtype}, expected float32 [{t}, 3, h, w]")
            require(frames.min() >= -1.0 and frames.max() <= 1.0, factory, f"{where}: frames outside [-1, 1]")
            context = item.get("audio_context_frames", 0)
            require(item["audio"].dtype == torch.float32 and item["audio"].shape == ((t + 2 * context) * 640,), factory,
                    f"{where}: audio {tuple(item['audio'].shape)}, expected float32 [({t} + 2 * {context}) * 640]")
            require(isinstance(item["clip_id"], str), factory, f"{where}: clip_id must be a string")
            require(isinstance(item["start_frame"], int) and item["start_frame"] >= 0, factory,
                    f"{where}: start_frame must be an int >= 0")
            for name, label in item.get("labels", {}).items():
                require(label.shape[0] == t, factory, f"{where}: label {name} has {label.shape[0]} frames, not {t}")
            if "landmarks" in item:
                require(item["landmarks"].shape == (t, 68, 2), factory, f"{where}: landmarks must be [{t}, 68, 2]")
            if "reference_frame" in item:
                require(item["reference_frame"].shape == frames.shape[1:], factory, f"{where}: reference_frame must be [3, h, w]")
            if "ws" in item:
                require(item["ws"].ndim == 3 and item["ws"].shape[0] == t, factory, f"{where}: ws must be [{t}, l, w]")


def check_dataset_deterministic_by_index(factory: ComponentFactory) -> None:
    """The same index gives the same item, also from a second instance; index + k * len picks the same clip."""
    with tempfile.TemporaryDirectory() as folder:
        dataset = build_dataset(factory, Path(folder))
        size = len(dataset)
        require(same_item(dataset[1], dataset[1]), factory, "reading the same index twice gives different items")
        require(same_item(dataset[1], build_dataset(factory, Path(folder) / "again")[1]), factory,
                "a second instance gives a different item for the same index")
        later = [dataset[index + size * 7]["clip_id"] for index in range(size)]
        first = [dataset[index]["clip_id"] for index in range(size)]
        require(later == first, factory, f"index i + 7 * len gives clips {later}, expected the clips of i: {first}")


def check_dataset_works_with_loader_workers_and_distributed_sampling(factory: ComponentFactory) -> None:
    """Survives pickling, batches in worker processes, and DistributedSampler covers every index."""
    with tempfile.TemporaryDirectory() as folder:
        dataset = build_dataset(factory, Path(folder))
        size = len(dataset)
        try:
            copy = pickle.loads(pickle.dumps(dataset))
        except Exception as error:  # noqa: BLE001 - any failure to pickle is the finding
            fail(factory, f"does not survive pickling (DataLoader workers need it): {type(error).__name__}: {error}")
        require(same_item(copy[2 % size], dataset[2 % size]), factory, "an unpickled copy gives a different item")
        batch = next(iter(DataLoader(dataset, batch_size=2, num_workers=2, shuffle=False)))
        require(batch["frames"].shape[0] == min(2, size), factory, "a loader with 2 workers gave a wrong batch size")
        require(torch.equal(batch["frames"][0], dataset[0]["frames"]), factory, "a loader worker read a different item 0")
        shares: list[list[int]] = [list(DistributedSampler(dataset, num_replicas=2, rank=rank, shuffle=True, seed=3)) for rank in (0, 1)]
        require(set(shares[0] + shares[1]) == set(range(size)), factory, "two DistributedSampler ranks miss some indices")
