"""Train / val / test splits of the synthetic domain (disjoint by identity, sentence and voice), the
older train / heldout layout (still made with --heldout-fraction, still read, val and test both its
heldout clips), and the training engine refusing validation clips that overlap the training ones."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest

from styletalker_core.ablate import load_clips
from styletalker_core.cli.main import main
from styletalker_core.data.shards import Clip, ShardReader, ShardWriter, clip_keys, clips_in_split
from styletalker_core.data.synthetic import SynthConfig, make_clip
from styletalker_core.data.synthetic.speech import VOICES, sentence_split3
from styletalker_core.errors import StyleTalkerError
from styletalker_core.recipe import load_recipe

pytestmark = pytest.mark.usefixtures("single_thread")


def _assignments(config: SynthConfig) -> dict[str, list[tuple[int, int]]]:
    """split -> (identity number, voice number) of each clip, as make_clip assigns them (no rendering)."""
    pool, voices = config.identity_pool(), config.voice_pool()
    out = {}
    for split, _ in config.split_sizes():
        clips = config.split_range(split)
        ids, voice_ids = pool.ids(split), voices.ids(split)
        out[split] = [(ids[(i - clips.start) % len(ids)], voice_ids[(i - clips.start) % len(voice_ids)]) for i in clips]
    return out


def test_default_fractions_give_a_test_set_of_60_clips_30_new_identities_and_every_voice_variant():
    config = SynthConfig(clips=400, seed=1)
    assert config.split_sizes() == [("train", 300), ("val", 40), ("test", 60)]
    assigned = _assignments(config)
    parameters = config.voice_pool().parameters()
    test_identities = {identity for identity, _ in assigned["test"]}
    assert len(assigned["test"]) >= 60 and len(test_identities) >= 30
    assert {parameters[voice][0] for _, voice in assigned["test"]} == set(VOICES)
    assert {parameters[voice][0] for _, voice in assigned["val"]} == set(VOICES)
    for first, second in (("train", "val"), ("train", "test"), ("val", "test")):
        for column in (0, 1):  # identities, voices
            assert {pair[column] for pair in assigned[first]}.isdisjoint(pair[column] for pair in assigned[second])
        # no two splits share a voice's parameters either
        assert {parameters[v] for _, v in assigned[first]}.isdisjoint(parameters[v] for _, v in assigned[second])
    # Identities outside training are far from every training identity (as vectors, not only by number).
    pool = config.identity_pool()
    train = pool.train_vectors()
    for number in sorted(test_identities)[:5]:
        assert np.linalg.norm(train - pool.vector(number), axis=1).min() >= pool.min_distance


def test_small_datasets_keep_a_training_clip():
    assert SynthConfig(clips=1).split_sizes() == [("train", 1), ("val", 0), ("test", 0)]
    assert SynthConfig(clips=3).split_sizes() == [("train", 1), ("val", 1), ("test", 1)]
    with pytest.raises(ValueError, match="leave some clips"):
        SynthConfig(clips=10, val_fraction=0.5, test_fraction=0.5)


def test_sentences_of_the_three_splits_never_coincide():
    from styletalker_core.data.synthetic.speech import sample_sentence

    rng = np.random.default_rng(0)

    def assign(text: str) -> str:
        return sentence_split3(text, 0.1, 0.15)

    made = {split: {sample_sentence(rng, 2, split, assign) for _ in range(100)} for split in ("train", "val", "test")}
    assert made["train"].isdisjoint(made["val"]) and made["train"].isdisjoint(made["test"]) and made["val"].isdisjoint(made["test"])


def test_data_synth_writes_three_disjoint_splits_with_ids(tmp_path, capsys):
    out = tmp_path / "synth"
    assert main(["data", "synth", str(out), "--clips", "6", "--seed", "3", "--seconds", "1:1.2",
                 "--workers", "1", "--no-progress"]) == 0
    assert "6 clips (4 train (1 identities), 1 val (1 identities), 1 test (1 identities))" in capsys.readouterr().out
    reader = ShardReader(out)
    info = reader.info
    assert info["splits"] == {"train": 4, "val": 1, "test": 1}
    assert set(info["identities"]) == set(info["voices"]) == {"train", "val", "test"}
    seen: dict[str, dict[str, set]] = {}
    for clip_id in reader.clip_ids():
        meta = reader.records[clip_id]["meta"]
        assert {"split", "identity_id", "sentence_id", "voice_id", "transcript", "voice"} <= set(meta)
        assert meta["identity_id"] in info["identities"][meta["split"]]
        assert meta["voice_id"] in [row[0] for row in info["voices"][meta["split"]]]
        assert meta["split"] == sentence_split3(meta["transcript"], 0.1, 0.15)
        for kind, key in clip_keys(reader.records[clip_id]).items():
            seen.setdefault(kind, {}).setdefault(meta["split"], set()).add(key)
    for kind in ("identity", "sentence", "voice"):
        by_split = seen[kind]
        assert by_split["train"].isdisjoint(by_split["val"]) and by_split["train"].isdisjoint(by_split["test"])
        assert by_split["val"].isdisjoint(by_split["test"])


def test_heldout_fraction_still_makes_the_older_layout_clip_for_clip(tmp_path, capsys):
    # Clip 5 of the end-to-end test's dataset, as the generator made it before val and test existed.
    config = SynthConfig(clips=6, seed=1, seconds=(1.2, 1.6), heldout_fraction=0.34, supersample=1)
    assert config.legacy and config.split_sizes() == [("train", 4), ("heldout", 2)]
    clip = make_clip(config, 5)
    assert clip.meta["split"] == "heldout" and clip.meta["identity_id"] == 1
    assert clip.meta["transcript"] == "two on only"
    assert clip.meta["voice"] == {"name": "en+f3", "rate": 153, "pitch": 45, "pitch_range": 76}
    assert clip.meta["blink_rate_per_minute"] == 25.459 and len(clip.frames) == 37
    assert "sentence_id" not in clip.meta  # the older records, unchanged
    assert main(["data", "synth", str(tmp_path / "x"), "--clips", "4", "--heldout-fraction", "0.2", "--val-fraction", "0.1"]) == 2
    assert "drop --val-fraction and --test-fraction" in capsys.readouterr().err


def _write(root: Path, rows: list[tuple[str, dict]]) -> Path:
    clips = [Clip(name, np.zeros((30, 8, 8, 3), np.uint8), np.zeros(30 * 640, np.float32), meta=meta) for name, meta in rows]
    writer = ShardWriter(root)
    writer.write("0", clips)
    writer.finalize()
    return root


@pytest.fixture
def older(tmp_path) -> Path:
    """A dataset of the older layout: train and heldout clips."""
    return _write(tmp_path / "older", [("a", {"split": "train", "identity_id": 0, "transcript": "one two"}),
                                       ("b", {"split": "train", "identity_id": 1, "transcript": "three"}),
                                       ("c", {"split": "heldout", "identity_id": 2, "transcript": "four five"})])


def test_older_datasets_serve_val_and_test_from_their_heldout_clips(older, tmp_path):
    from styletalker_datasets.sharded import ShardedClipDataset

    reader = ShardReader(older)
    assert clips_in_split(reader.records, "val") == clips_in_split(reader.records, "test") == ["c"]
    assert reader.split_clip_ids("heldout") == ["c"] and reader.split_clip_ids("train") == ["a", "b"]
    assert ShardedClipDataset(str(older), split="val", window_frames=4).clips == ["c"]
    assert [clip.clip_id for clip in load_clips(older, 5, explicit=False)] == ["c"]  # the test split: heldout
    # A dataset with val and test splits keeps them apart.
    newer = _write(tmp_path / "newer", [("a", {"split": "train"}), ("v", {"split": "val"}), ("t", {"split": "test"})])
    assert ShardReader(newer).split_clip_ids("val") == ["v"] and ShardReader(newer).split_clip_ids("test") == ["t"]
    assert [clip.clip_id for clip in load_clips(newer, 5, explicit=False)] == ["t"]
    assert [clip.clip_id for clip in load_clips(newer, 5, explicit=False, split="val")] == ["v"]
    with pytest.raises(StyleTalkerError, match="no clip is in split 'heldout'"):
        load_clips(newer, 5, explicit=True, split="heldout")


def _recipe(folder: Path, root: Path, train_split: str, val_split: str) -> Path:
    path = folder / f"check_{train_split}_{val_split}.toml"
    path.write_text(textwrap.dedent(f"""
        name = "check"
        output_dir = "{folder / 'run'}"
        [data.train]
        name = "sharded"
        root = "{root}"
        split = "{train_split}"
        window_frames = 4
        [data.val]
        name = "sharded"
        root = "{root}"
        split = "{val_split}"
        window_frames = 4
        [stages.nothing]
        name = "prior_only"
        steps = 1
        enabled = false
    """))
    return path


def test_training_refuses_validation_clips_that_share_identities_or_sentences(tmp_path):
    from styletalker_core.plugin_host import get_registries
    from styletalker_core.train import train_recipe
    from styletalker_core.train.pipeline import check_train_val_disjoint

    root = _write(tmp_path / "data", [
        ("a", {"split": "train", "identity_id": 0, "sentence_id": "s0"}),
        ("b", {"split": "train", "identity_id": 1, "sentence_id": "s1"}),
        ("v", {"split": "val", "identity_id": 2, "sentence_id": "s2"}),
        ("w", {"split": "leaky", "identity_id": 1, "sentence_id": "s3"}),   # a training identity
        ("x", {"split": "echo", "identity_id": 5, "sentence_id": "s0"}),    # a training sentence
    ])
    check_train_val_disjoint(load_recipe(_recipe(tmp_path, root, "train", "val")))
    with pytest.raises(StyleTalkerError) as error:
        check_train_val_disjoint(load_recipe(_recipe(tmp_path, root, "train", "leaky")))
    message = str(error.value)
    assert "\n" not in message and "data.train and data.val" in message and "1 identities (identity 1)" in message
    with pytest.raises(StyleTalkerError, match=r"data.train and data.val overlap: they share 1 sentences \(sentence s0\)"):
        check_train_val_disjoint(load_recipe(_recipe(tmp_path, root, "train", "echo")))
    with pytest.raises(StyleTalkerError, match="share 2 clips"):
        check_train_val_disjoint(load_recipe(_recipe(tmp_path, root, "train", "train")))
    # The engine checks before it writes anything.
    with pytest.raises(StyleTalkerError, match=r"data.train and data.val overlap"):
        train_recipe(load_recipe(_recipe(tmp_path, root, "train", "leaky")), get_registries(), run_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_older_dataset_recipes_pass_the_check(older, tmp_path):
    from styletalker_core.train.pipeline import check_train_val_disjoint

    check_train_val_disjoint(load_recipe(_recipe(tmp_path, older, "train", "val")))
    with pytest.raises(StyleTalkerError, match="identities"):
        check_train_val_disjoint(load_recipe(_recipe(tmp_path, older, "train", "train")))


def test_shipped_synthetic_recipes_validate_on_val():
    for name in ("synthetic_64", "domain_synthetic_64"):
        recipe = load_recipe(name)
        assert recipe.data.val.options["split"] == "val" and recipe.data.train.options["split"] == "train"
