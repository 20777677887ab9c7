"""The sharded dataset: window contents, audio context, references, latent cache, selection."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from styletalker_core.data.shards import Clip, ShardWriter, latent_path
from styletalker_core.errors import StyleTalkerError
from styletalker_datasets.sharded import ShardedClipDataset

SPF = 640


def make_dataset(root: Path, lengths: tuple[int, ...] = (10, 30, 18), size: int = 8, short_audio: int = 0) -> dict[str, Clip]:
    rng = np.random.default_rng(1)
    clips = {}
    for index, frames in enumerate(lengths):
        clip = Clip(
            clip_id=f"c{index}",
            frames=rng.integers(0, 256, (frames, size, size, 3), dtype=np.uint8),
            audio=rng.uniform(-1, 1, frames * SPF - (short_audio if index == 0 else 0)).astype(np.float32),
            landmarks=rng.uniform(0, size, (frames, 68, 2)).astype(np.float32),
            labels={"pose": rng.normal(size=(frames, 3)).astype(np.float32)} | ({"extra": np.zeros(frames, np.float32)} if index else {}),
            meta={"split": "heldout" if index == 2 else "train"},
        )
        clips[clip.clip_id] = clip
    writer = ShardWriter(root)
    ordered = list(clips.values())
    writer.write("a", ordered[:2])
    writer.write("b", ordered[2:])
    writer.finalize()
    return clips


def test_window_matches_the_stored_clip(tmp_path):
    clips = make_dataset(tmp_path)
    dataset = ShardedClipDataset(str(tmp_path), window_frames=6, landmarks=True)
    for index in range(9):
        item = dataset[index]
        clip, start = clips[item["clip_id"]], item["start_frame"]
        assert 0 <= start <= len(clip.frames) - 6
        expected = torch.from_numpy(clip.frames[start : start + 6]).permute(0, 3, 1, 2).float() / 127.5 - 1
        assert torch.equal(item["frames"], expected)
        assert torch.equal(item["audio"], torch.from_numpy(clip.audio[start * SPF : (start + 6) * SPF]))
        assert torch.equal(item["landmarks"], torch.from_numpy(clip.landmarks[start : start + 6]))
        assert set(item["labels"]) == {"pose"}  # only labels every clip has
        assert torch.equal(item["labels"]["pose"], torch.from_numpy(clip.labels["pose"][start : start + 6]))


def test_audio_context_is_zero_padded_at_clip_edges(tmp_path):
    clips = make_dataset(tmp_path, lengths=(8, 12), short_audio=100)
    dataset = ShardedClipDataset(str(tmp_path), window_frames=8, audio_context_frames=3, clip_ids=["c0"])
    item = dataset[0]  # the window is the whole clip: start 0
    audio = clips["c0"].audio
    assert item["start_frame"] == 0 and item["audio"].shape == ((8 + 6) * SPF,)
    assert torch.all(item["audio"][: 3 * SPF] == 0)
    assert torch.equal(item["audio"][3 * SPF : 3 * SPF + len(audio)], torch.from_numpy(audio))
    assert torch.all(item["audio"][3 * SPF + len(audio) :] == 0)  # short audio and right context
    inner = ShardedClipDataset(str(tmp_path), window_frames=4, audio_context_frames=2, clip_ids=["c1"])
    for index in range(6):
        item = inner[index]
        start = item["start_frame"]
        low = (start - 2) * SPF
        full = np.concatenate([np.zeros(2 * SPF, np.float32), clips["c1"].audio, np.zeros(2 * SPF, np.float32)])
        assert torch.equal(item["audio"], torch.from_numpy(full[low + 2 * SPF : low + 2 * SPF + 8 * SPF]))


def test_indices_are_deterministic_and_seed_fresh_windows(tmp_path):
    make_dataset(tmp_path, lengths=(40,))
    dataset = ShardedClipDataset(str(tmp_path), window_frames=5, windows_per_clip=2, seed=4)
    assert len(dataset) == 2
    starts = [dataset[index]["start_frame"] for index in range(40)]
    assert starts == [dataset[index]["start_frame"] for index in range(40)]
    assert len(set(starts)) > 10  # epoch * len + i gives new windows
    other_seed = ShardedClipDataset(str(tmp_path), window_frames=5, seed=5)
    assert [other_seed[i]["start_frame"] for i in range(40)] != starts
    with pytest.raises(IndexError):
        dataset[-1]


def test_reference_frames_and_latent_cache(tmp_path):
    clips = make_dataset(tmp_path)
    latents = {}
    for clip_id, clip in clips.items():
        latents[clip_id] = torch.randn(len(clip.frames), 4, 6)
        path = latent_path(tmp_path, "e4e", clip_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file({"ws": latents[clip_id]}, str(path))
    first = ShardedClipDataset(str(tmp_path), window_frames=4, reference="first", latent_cache="e4e")
    item = first[1]
    frames = torch.from_numpy(clips[item["clip_id"]].frames[0]).permute(2, 0, 1).float() / 127.5 - 1
    assert torch.equal(item["reference_frame"], frames)
    assert torch.equal(item["reference_ws"], latents[item["clip_id"]][0])
    start = item["start_frame"]
    assert torch.equal(item["ws"], latents[item["clip_id"]][start : start + 4])
    random = ShardedClipDataset(str(tmp_path), window_frames=4, reference="random", latent_cache="e4e")
    matched = 0
    for index in range(12):
        item = random[index]
        ws = latents[item["clip_id"]]
        hits = [k for k in range(len(ws)) if torch.equal(ws[k], item["reference_ws"])]
        assert len(hits) == 1
        reference = torch.from_numpy(clips[item["clip_id"]].frames[hits[0]]).permute(2, 0, 1).float() / 127.5 - 1
        matched += torch.equal(item["reference_frame"], reference)
    assert matched == 12
    assert "reference_frame" not in ShardedClipDataset(str(tmp_path), window_frames=4)[0]


def test_selection_options(tmp_path):
    make_dataset(tmp_path)
    assert ShardedClipDataset(str(tmp_path), split="train", window_frames=4).clips == ["c0", "c1"]
    assert ShardedClipDataset(str(tmp_path), split="heldout", window_frames=4).clips == ["c2"]
    assert ShardedClipDataset(str(tmp_path), clip_ids=["c2", "c1"], window_frames=4).clips == ["c2", "c1"]
    assert ShardedClipDataset(str(tmp_path), window_frames=4, min_frames=15).clips == ["c1", "c2"]
    assert ShardedClipDataset(str(tmp_path), window_frames=12).clips == ["c1", "c2"]  # c0 is too short
    assert ShardedClipDataset(str(tmp_path), window_frames=4, resolution=8).clips == ["c0", "c1", "c2"]
    with pytest.raises(StyleTalkerError, match="--resolution 16"):
        ShardedClipDataset(str(tmp_path), resolution=16)
    with pytest.raises(StyleTalkerError, match="no clip matches"):
        ShardedClipDataset(str(tmp_path), split="val")
    with pytest.raises(StyleTalkerError, match="nope"):
        ShardedClipDataset(str(tmp_path), clip_ids=["nope"])
    with pytest.raises(StyleTalkerError, match="latent cache"):
        ShardedClipDataset(str(tmp_path), latent_cache="missing")
    with pytest.raises(StyleTalkerError, match="reference"):
        ShardedClipDataset(str(tmp_path), reference="last")
    with pytest.raises(StyleTalkerError, match=r"manifest.json"):
        ShardedClipDataset(str(tmp_path / "nowhere"))
