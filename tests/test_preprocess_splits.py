"""Preprocessing assigns train / val / test splits: deterministic, disjoint by identity where the
layout names one (else by source video), with --val / --test fractions, recorded per clip and
counted in the summary."""

from __future__ import annotations

import json

import numpy as np
import pytest
from skimage import data

from styletalker_core.cli.main import main as cli
from styletalker_core.data.preprocess import PreprocessSettings, discover_videos, preprocess_folder
from styletalker_core.data.preprocess.splits import assign_splits, split_group
from styletalker_core.data.shards import ShardReader, clip_keys
from styletalker_core.errors import StyleTalkerError
from styletalker_core.media import write_video

SR = 16000


def face_frames(count: int, shift: int = 0, size: int = 240) -> np.ndarray:
    photo = data.astronaut()[::1, ::1]
    frames = []
    for index in range(count):
        dx = round(4 * np.sin((index + shift) / 3))
        frames.append(photo[60 + dx : 60 + dx + size, 100 : 100 + size])
    return np.stack(frames)


def tone(frames: int) -> np.ndarray:
    return (0.2 * np.sin(2 * np.pi * 300 * np.arange(frames * 640) / SR)).astype(np.float32)


def test_assignment_is_deterministic_disjoint_and_keeps_every_split_when_it_can():
    groups = [f"video v{i}.mp4" for i in range(20)]
    first = assign_splits(groups, val=0.1, test=0.2)
    assert first == assign_splits(list(reversed(groups)), val=0.1, test=0.2)  # order of discovery does not matter
    counts = {split: sum(s == split for s in first.values()) for split in ("train", "val", "test")}
    assert counts == {"train": 14, "val": 2, "test": 4}
    # tiny corpora: each positive fraction gets one group while train keeps one
    assert sorted(assign_splits(["a", "b", "c"], 0.1, 0.1).values()) == ["test", "train", "val"]
    assert sorted(assign_splits(["a", "b"], 0.1, 0.1).values()) == ["train", "val"]
    assert list(assign_splits(["a"], 0.1, 0.1).values()) == ["train"]
    assert set(assign_splits(groups, 0.0, 0.0).values()) == {"train"}
    # a layout's own test set is kept, and then test is not drawn from the rest
    fixed = assign_splits(groups, 0.1, 0.2, fixed={"video v0.mp4": "test"})
    assert [g for g, s in fixed.items() if s == "test"] == ["video v0.mp4"]
    with pytest.raises(StyleTalkerError, match="leave no clips to train on"):
        assign_splits(groups, 0.5, 0.5)
    with pytest.raises(StyleTalkerError, match="--val"):
        assign_splits(groups, -0.1, 0.1)


def test_layouts_name_identities(tmp_path):
    people = tmp_path / "people"
    for relative in ("ann/one.mp4", "ann/two.mp4", "bob/x/three.mp4"):
        (people / relative).parent.mkdir(parents=True, exist_ok=True)
        (people / relative).touch()
    jobs = discover_videos(people)
    assert [job.meta.get("identity") for job in jobs] == ["ann", "ann", "bob"]
    assert split_group(jobs[0].meta, jobs[0].relative) == "identity ann"
    assert split_group(jobs[0].meta, jobs[0].relative, "video") == "video ann/one.mp4"
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "a.mp4").touch()
    (flat / "b.mp4").touch()
    job = discover_videos(flat)[0]
    assert "identity" not in job.meta and split_group(job.meta, job.relative) == "video a.mp4"
    with pytest.raises(StyleTalkerError, match="--split-by identity"):
        split_group(job.meta, job.relative, "identity")
    vox = tmp_path / "vox"
    for relative in ("dev/mp4/id00012/abc/00001.mp4", "test/mp4/id00099/xyz/00001.mp4"):
        (vox / relative).parent.mkdir(parents=True, exist_ok=True)
        (vox / relative).touch()
    jobs = discover_videos(vox)
    assert [(j.meta["identity"], j.meta.get("split")) for j in jobs] == [("id00012", None), ("id00099", "test")]


def test_folder_per_person_splits_by_identity_and_the_cli_counts_them(tmp_path, capsys):
    source = tmp_path / "videos"
    for person, shift in (("ann", 0), ("bob", 5), ("cy", 9)):
        for take in range(2):
            write_video(source / person / f"take{take}.mp4", face_frames(8, shift + take), tone(8), preset="ultrafast")
    output = tmp_path / "clips"
    arguments = ["preprocess", str(source), str(output), "--resolution", "32", "--min-clip-seconds", "0.2",
                 "--detect-every", "4", "--no-progress"]
    assert cli(arguments) == 0
    out = capsys.readouterr().out
    assert "splits: train: 2 clips, 1 identities; val: 2 clips, 1 identities; test: 2 clips, 1 identities" in out
    reader = ShardReader(output)
    by_split = {split: reader.split_clip_ids(split) for split in ("train", "val", "test")}
    assert sorted(clip for clips in by_split.values() for clip in clips) == sorted(reader.clip_ids())
    identities = {split: {reader.records[c]["meta"]["identity"] for c in clips} for split, clips in by_split.items()}
    assert all(len(found) == 1 for found in identities.values())
    assert len(set.union(*identities.values())) == 3  # no identity in two splits
    record = reader.records[by_split["val"][0]]
    assert record["meta"]["split_group"] == f"identity {record['meta']['identity']}"
    assert clip_keys(record)["identity"].endswith(record["meta"]["identity"])  # the engine's disjointness check reads it
    report = json.loads((output / "report.json").read_text())
    assert report["summary"]["splits"]["train"] == {"clips": 2, "groups": 1, "frames": 16}
    assert report["splits"] == {"val": 0.1, "test": 0.1, "split_by": "auto"}

    # the same command again gives the same splits; other fractions only rewrite the manifest
    assert cli(arguments) == 0
    assert {s: ShardReader(output).split_clip_ids(s) for s in by_split} == by_split
    capsys.readouterr()
    assert cli([*arguments, "--split-by", "video", "--val", "0", "--test", "0.2"]) == 0
    out, err = capsys.readouterr()
    assert "train: 5 clips, 5 videos; val: 0 clips, 0 videos; test: 1 clips, 1 videos" in out
    assert "no clip in split val" in err
    assert cli([*arguments, "--val", "0.6", "--test", "0.5"]) == 2
    assert "leave no clips to train on" in capsys.readouterr().err


def test_plain_folder_splits_by_source_video(tmp_path):
    source = tmp_path / "videos"
    for index in range(4):
        write_video(source / f"v{index}.mp4", face_frames(8, index), tone(8), preset="ultrafast")
    settings = PreprocessSettings(resolution=32, min_clip_frames=5, detect_every=4)
    report = preprocess_folder(source, tmp_path / "clips", settings, progress=False, val=0.25, test=0.25)
    assert {s: c["clips"] for s, c in report["summary"]["splits"].items()} == {"train": 2, "val": 1, "test": 1}
    metas = [r["meta"] for r in ShardReader(tmp_path / "clips").records.values()]
    assert all(m["split_group"] == f"video {m['video']}" and "identity" not in m for m in metas)
