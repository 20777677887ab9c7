"""Writing synthetic datasets: the CLI, shard contents, determinism across worker counts, resume."""

from __future__ import annotations

import json

import numpy as np
import pytest

from styletalker_core.cli.main import main
from styletalker_core.data.shards import ShardReader
from styletalker_core.data.synthetic import IDENTITY_DIM, LABEL_NAMES, SynthConfig, generate_dataset


def test_data_synth_command_writes_a_labelled_dataset(tmp_path, capsys):
    out = tmp_path / "synth"
    status = main(["data", "synth", str(out), "--clips", "3", "--seed", "4", "--seconds", "1:1.5",
                   "--heldout-fraction", "0.34", "--workers", "1", "--no-progress"])
    assert status == 0
    assert "3 clips (2 train, 1 held out)" in capsys.readouterr().out
    reader = ShardReader(out)
    assert len(reader.clip_ids()) == 3
    assert reader.info["identity_factors"] and len(reader.info["identity_factors"]) == IDENTITY_DIM
    splits = {}
    for clip_id in reader.clip_ids():
        record = reader.records[clip_id]
        frames = reader.frames(clip_id)
        t = record["num_frames"]
        assert frames.shape == (t, 64, 64, 3) and reader.audio(clip_id).shape == (t * 640,)
        labels = reader.labels(clip_id)
        assert set(labels) == set(LABEL_NAMES)
        assert labels["pose"].shape == (t, 3) and labels["identity"].shape == (t, IDENTITY_DIM)
        meta = record["meta"]
        assert meta["transcript"] and meta["phonemes"] and meta["voice"]["name"]
        splits[clip_id] = (meta["split"], meta["identity_id"])
    train_ids = {i for split, i in splits.values() if split == "train"}
    heldout_ids = {i for split, i in splits.values() if split == "heldout"}
    assert heldout_ids and train_ids.isdisjoint(heldout_ids)
    assert set(reader.info["identities"]["heldout"]) >= heldout_ids


def test_bad_options_are_one_line_user_errors(tmp_path, capsys):
    assert main(["data", "synth", str(tmp_path / "x"), "--clips", "0"]) == 2
    assert "--clips 0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["data", "synth", str(tmp_path / "x"), "--clips", "2", "--seconds", "5:1"])


def test_dataset_is_identical_with_one_or_two_workers_and_resumes(tmp_path):
    config = SynthConfig(clips=4, seed=8, seconds=(1.0, 1.2), heldout_fraction=0.25, clips_per_shard=2)
    one = generate_dataset(tmp_path / "one", config, workers=1, progress=False)
    two = generate_dataset(tmp_path / "two", config, workers=2, progress=False)
    assert json.dumps(one, sort_keys=True) == json.dumps(two, sort_keys=True)
    for shard in sorted((tmp_path / "one" / "shards").glob("*.safetensors")):
        assert shard.read_bytes() == (tmp_path / "two" / "shards" / shard.name).read_bytes()
    # A rerun skips complete shards and rewrites nothing.
    first = tmp_path / "one" / "shards" / "synth-00000.safetensors"
    stamp = first.stat().st_mtime_ns
    again = generate_dataset(tmp_path / "one", config, workers=1, progress=False)
    assert first.stat().st_mtime_ns == stamp and again["clips"] == one["clips"]
    reader = ShardReader(tmp_path / "two")
    assert np.array_equal(reader.frames("synth-000001").numpy(), ShardReader(tmp_path / "one").frames("synth-000001").numpy())
