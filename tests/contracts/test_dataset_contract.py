"""Contract of the ``dataset`` kind, run for every registered dataset (built from its entry's
example options). Datasets that read a folder (a ``root`` option) get a tiny clip dataset
written by the test in the sharded format."""

from __future__ import annotations

import inspect
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, DistributedSampler

from styletalker_core.data.shards import Clip, ShardWriter
from styletalker_core.interfaces import ClipDataset
from styletalker_core.plugin_host import get_registries
from styletalker_core.registry import ComponentSpec, build_component

DATASETS = list(get_registries()["dataset"])


def write_tiny_dataset(root: Path, clips: int = 4, size: int = 16) -> Path:
    """``clips`` clips of 12..20 frames of noise with matching audio, two shards."""
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


def build(entry, tmp_path: Path) -> ClipDataset:
    options = dict(entry.example_options)
    if "root" in inspect.signature(entry.factory).parameters and not options.get("root"):
        options["root"] = str(write_tiny_dataset(tmp_path / "data"))
    return build_component(get_registries(), "dataset", ComponentSpec(entry.name, options))


def same_item(a: dict, b: dict) -> bool:
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


def test_builtin_datasets_are_registered():
    assert "sharded" in {entry.name for entry in DATASETS}


@pytest.mark.parametrize("entry", DATASETS, ids=[entry.name for entry in DATASETS])
def test_dataset_contract(entry, tmp_path):
    dataset = build(entry, tmp_path)
    assert isinstance(dataset, ClipDataset)
    assert (dataset.fps, dataset.sample_rate) == (25, 16000)
    size = len(dataset)
    assert size > 0
    t = dataset.window_frames
    for index in range(min(size, 6)):
        item = dataset[index]
        frames = item["frames"]
        assert frames.dtype == torch.float32 and frames.ndim == 4 and frames.shape[:2] == (t, 3)
        assert frames.min() >= -1.0 and frames.max() <= 1.0
        context = item.get("audio_context_frames", 0)
        assert item["audio"].dtype == torch.float32 and item["audio"].shape == ((t + 2 * context) * 640,)
        assert isinstance(item["clip_id"], str) and isinstance(item["start_frame"], int) and item["start_frame"] >= 0
        for name, label in item.get("labels", {}).items():
            assert label.shape[0] == t, name
        if "landmarks" in item:
            assert item["landmarks"].shape == (t, 68, 2)
        if "reference_frame" in item:
            assert item["reference_frame"].shape == frames.shape[1:]
        if "ws" in item:
            assert item["ws"].ndim == 3 and item["ws"].shape[0] == t
    # deterministic by index; indices past len pick the same clip with a fresh window seed
    assert same_item(dataset[1], dataset[1])
    assert same_item(dataset[1], build(entry, tmp_path / "again")[1])
    later = [dataset[index + size * 7] for index in range(size)]
    assert [item["clip_id"] for item in later] == [dataset[index]["clip_id"] for index in range(size)]
    # survives pickling (DataLoader workers) and batches with worker processes
    assert same_item(pickle.loads(pickle.dumps(dataset))[2 % size], dataset[2 % size])
    loader = DataLoader(dataset, batch_size=2, num_workers=2, shuffle=False)
    batch = next(iter(loader))
    assert batch["frames"].shape[0] == min(2, size)
    assert torch.equal(batch["frames"][0], dataset[0]["frames"])
    # DistributedSampler splits the indices between ranks
    shares = [list(DistributedSampler(dataset, num_replicas=2, rank=rank, shuffle=True, seed=3)) for rank in (0, 1)]
    assert set(shares[0] + shares[1]) == set(range(size))
