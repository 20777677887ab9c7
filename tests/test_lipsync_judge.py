"""The independent lip-sync judge (checkpoints/lipsync_judge.safetensors, recipes/lipsync_judge.toml):
it loads, is not the shipped model's discriminator, finds true audio-video offsets on clips
rendered here from a seed neither it nor the model trained on, is what ``lse`` uses by default,
and no recipe trains with it. Also the lip-sync stage's ``audio_augment`` option."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
import torch

from styletalker_core.checkpoint import read_metadata
from styletalker_core.interfaces import LipSyncDiscriminator
from styletalker_core.interfaces.metric import EvalItem
from styletalker_core.plugin_host import get_registries
from styletalker_core.registry import ComponentSpec, build_component
from styletalker_lipsync import judge as judge_module
from styletalker_lipsync.judge import find_offsets, load_discriminator, weights_digest
from styletalker_lipsync.metric import DEFAULT_JUDGE, LipSyncErrorMetric

ROOT = Path(__file__).resolve().parents[1]
JUDGE = ROOT / DEFAULT_JUDGE
MODEL = ROOT / "checkpoints" / "synthetic_64_model.safetensors"
needs_judge = pytest.mark.skipif(not JUDGE.is_file(), reason="the judge file is not committed")


@pytest.fixture(scope="module")
def judge() -> LipSyncDiscriminator:
    return load_discriminator(JUDGE)


@needs_judge
def test_the_judge_file_loads_and_says_how_it_was_made(judge):
    assert isinstance(judge, LipSyncDiscriminator)
    extra = read_metadata(JUDGE)["extra"]
    assert extra["commands"] == list(judge_module.COMMANDS)
    assert any("recipes/lipsync_judge.toml" in command for command in extra["commands"])
    assert extra["weights_sha256"] == weights_digest(judge)
    test = extra["heldout_offset_test"]
    assert test["clean"]["offset_accuracy"] >= 0.95 and test["clean"]["clips"] >= 40
    assert JUDGE.stat().st_size < 2 * 2**20


@needs_judge
@pytest.mark.skipif(not MODEL.is_file(), reason="the shipped model is not committed")
def test_the_judge_is_not_the_models_discriminator(judge):
    model = load_discriminator(MODEL)
    assert weights_digest(judge) != weights_digest(model)
    assert read_metadata(JUDGE)["recipe"]["name"] == "lipsync_judge"
    # other data: the judge's recipe trains on its own dataset
    recipe = read_metadata(JUDGE)["recipe"]
    assert recipe["data"]["train"]["root"] == "data/judge_64"


@needs_judge
@pytest.mark.slow
def test_the_judge_finds_true_offsets_on_fresh_clips(judge):
    """Three clips rendered here (seed 41: neither the judge's data, seed 7, nor the model's, seed 1),
    their audio made to lag the video by -4 .. 4 frames."""
    from styletalker_core.data.synthetic.clip import SynthConfig, make_clip

    config = SynthConfig(clips=3, seed=41, seconds=(2.5, 3.0))
    shifts = (-4, -2, 0, 3, 4)
    found, wrong = 0, []
    for index in range(3):
        clip = make_clip(config, index)
        frames = torch.from_numpy(clip.frames).permute(0, 3, 1, 2).float() / 127.5 - 1
        offsets, lse_c, _ = find_offsets(judge, frames, torch.from_numpy(clip.audio).float(), shifts)
        found += sum(o == s for o, s in zip(offsets, shifts))
        wrong += [(index, s, o) for o, s in zip(offsets, shifts) if o != s]
        assert lse_c > 0
    assert found >= len(shifts) * 3 - 1, f"(clip, true, found): {wrong}"


@needs_judge
def test_lse_uses_the_judge_by_default(judge):
    metric = build_component(get_registries(), "metric", ComponentSpec("lse", {}))
    assert isinstance(metric, LipSyncErrorMetric) and metric.checkpoint == DEFAULT_JUDGE
    assert weights_digest(metric.discriminator()) == weights_digest(judge)
    frames = torch.zeros(12, 3, 64, 64)
    values = metric.compute(EvalItem(frames=frames, audio=torch.zeros(12 * 640)))
    assert set(values) == set(metric.higher_is_better)


def test_a_relative_judge_path_is_found_from_any_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    metric = LipSyncErrorMetric()
    if not JUDGE.is_file():
        pytest.skip("the judge file is not committed")
    assert isinstance(metric.discriminator(), LipSyncDiscriminator)


def _paths(table, prefix=""):
    """Every (field path, string value) of a TOML table."""
    if isinstance(table, dict):
        for key, value in table.items():
            yield from _paths(value, f"{prefix}.{key}" if prefix else key)
    elif isinstance(table, list):
        for index, value in enumerate(table):
            yield from _paths(value, f"{prefix}[{index}]")
    elif isinstance(table, str):
        yield prefix, table


def test_no_recipe_trains_with_the_judge_and_the_synthetic_recipes_score_with_it():
    for path in sorted((ROOT / "recipes").glob("*.toml")):
        raw = tomllib.loads(path.read_text())
        for field, value in _paths(raw):
            if "lipsync_judge.safetensors" in value:
                assert field.startswith("evaluate.metrics"), f"{path.name}: {field} = {value}"
        for metric in raw.get("evaluate", {}).get("metrics", []):
            if metric.get("name") == "lse" and "synthetic" in path.stem:
                assert metric.get("checkpoint", DEFAULT_JUDGE) == DEFAULT_JUDGE, path.name


# -- the lip-sync stage's audio augmentation --------------------------------------------------------

def test_lipsync_stage_degrades_the_training_speech_only_with_audio_augment(monkeypatch):
    from styletalker_lipsync import stage as stage_module

    heard = []
    monkeypatch.setattr(stage_module, "info_nce_loss",
                        lambda d, frames, audio, context, plan, m: heard.append((audio, plan)) or (torch.zeros(()), {}))
    discriminator = build_component(get_registries(), "lipsync_discriminator", ComponentSpec(
        "contrastive", {"embed_dim": 8, "mouth_height": 8, "mouth_width": 16, "channels": 8, "audio_channels": 8, "n_mels": 20}))
    generator = torch.Generator().manual_seed(0)
    batch = {"frames": torch.rand(2, 20, 3, 16, 16, generator=generator) * 2 - 1,
             "audio": 0.3 * torch.randn(2, (20 + 2 * 4) * 640, generator=generator)}
    for table in (None, {"probability": 1.0, "noise": 1.0, "snr_db": [5.0, 5.0], "pitch": 0.0}):
        stage = stage_module.LipSyncPretrainStage(windows_per_clip=2, negatives=2, min_negative_offset=5, audio_augment=table)
        stage.discriminator, stage.seed = discriminator, 3
        stage.loss("main", batch, step=7)
        stage.loss("main", batch, step=7)
    (clean, plan), (clean_again, _), (noisy, noisy_plan), (noisy_again, _) = heard
    assert torch.equal(clean, batch["audio"]) and torch.equal(clean_again, clean)
    assert not torch.allclose(noisy, batch["audio"], atol=1e-3)
    assert torch.equal(noisy, noisy_again)  # the step's draws repeat (resume)
    assert torch.equal(plan.positions, noisy_plan.positions)  # same windows with and without it
    with pytest.raises(ValueError, match="unknown option"):
        stage_module.LipSyncPretrainStage(audio_augment={"reverb_db": 3})
