"""The StyleTalker training stages on a small sharded dataset with small components: every stage
of the pipeline runs and hands its outputs on, the main stage resumes exactly, its optional terms."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from test_talking_head_toys import toy_registries, write_toy_dataset

from styletalker_core.checkpoint import read_metadata, read_tensors
from styletalker_core.errors import StyleTalkerError
from styletalker_core.model import TalkingHead
from styletalker_core.recipe import structure
from styletalker_core.registry import ComponentSpec, build_component
from styletalker_core.train import train_recipe
from styletalker_motion.stage_main import StyleTalkerMainStage


@pytest.fixture(autouse=True)
def quiet(monkeypatch):
    monkeypatch.setenv("STYLETALKER_PROGRESS", "0")


@pytest.fixture(scope="module")
def registries():
    return toy_registries()


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> str:
    return write_toy_dataset(tmp_path_factory.mktemp("data"), clips=6, frames=40)


def recipe(data_root: str, out: Path, stages: dict, **model) -> dict:
    data = {"name": "sharded", "root": data_root, "window_frames": 10, "audio_context_frames": 6, "reference": "random"}
    return {
        "name": "toy_styletalker", "seed": 1, "output_dir": str(out), "runtime": {"device": "cpu"},
        "data": {"train": {**data, "split": "train"}, "val": {**data, "split": "val", "window_frames": 12}},
        "model": {
            "generator": {"name": "toy", "resolution": 16},
            "image_encoder": {"name": "toy", "resolution": 16},
            "audio_encoder": {"name": "mel", "feature_dim": 6, "hidden_channels": 8, "num_layers": 2, "norm_groups": 4},
            "lipsync_discriminator": {"name": "contrastive", "embed_dim": 8, "mouth_height": 4, "mouth_width": 8,
                                      "channels": 8, "audio_channels": 8, "n_mels": 16},
            "lip_mapper": {"name": "conv", "context_frames": 2, "hidden": 8},
            "motion_vae": {"name": "sequential", "z_dim": 3, "hidden": 8, "decoder_hidden": 8},
            "prior": {"name": "autoregressive", "hidden": 8, "audio_hidden": 4,
                      "flow": {"name": "affine_coupling", "steps": 1, "hidden": 4}},
            **model,
        },
        "stages": stages,
    }


MAIN = {"name": "styletalker_main", "steps": 4, "batch_size": 2, "render_frames": 6, "eval_clips": 1,
        "checkpoint_every": 2, "log_every": 1, "objective": {"sync_max_offset": 2}}


def main_stage(objective: dict | None = None, **options) -> dict:
    """The MAIN stage table with ``options`` and its objective table extended by ``objective``."""
    return {**MAIN, **options, "objective": {**MAIN["objective"], **(objective or {})}}


def test_main_stage_resumes_exactly(registries, data_root, tmp_path, monkeypatch):
    no_sync = main_stage({"sync_weight": 0.0})
    straight = train_recipe(structure(recipe(data_root, tmp_path / "a", {"main": no_sync}), registries), registries)
    original = StyleTalkerMainStage.loss

    def interrupted(self, phase, batch, step):
        if step == 3:
            raise KeyboardInterrupt
        return original(self, phase, batch, step)

    monkeypatch.setattr(StyleTalkerMainStage, "loss", interrupted)
    second = structure(recipe(data_root, tmp_path / "b", {"main": no_sync}), registries)
    with pytest.raises(KeyboardInterrupt):
        train_recipe(second, registries)
    monkeypatch.setattr(StyleTalkerMainStage, "loss", original)
    resumed = train_recipe(second, registries)
    for role in ("lip_mapper", "motion_vae", "prior", "audio_encoder"):
        a, b = read_tensors(straight.model, f"{role}."), read_tensors(resumed.model, f"{role}.")
        assert all(torch.equal(a[k], b[k]) for k in a), role


def test_adversarial_term_and_generator_fine_tuning(registries, data_root, tmp_path):
    stages = {"main": main_stage({"sync_weight": 0.0, "adversarial_weight": 0.1}, steps=2, train_generator=True,
                                 eval_clips=0)}
    model = {"discriminator": {"name": "stylegan2", "resolution": 16, "channel_base": 128, "channel_max": 16}}
    result = train_recipe(structure(recipe(data_root, tmp_path / "run", stages, **model), registries), registries)
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert {"adversarial", "d_loss", "r1", "loss_generator", "loss_discriminator"} <= set(records[-1])
    held = read_metadata(tmp_path / "run" / "main" / "final.safetensors")["components"]
    assert {"generator", "discriminator"} <= set(held)
    assert result.stages[0].evaluation == {}


def test_region_terms_weight_the_lip_and_eye_landmark_boxes(registries, data_root, tmp_path):
    stages = {"main": main_stage({"sync_weight": 0.0, "mouth_weight": 2.0, "eyes_weight": 1.0}, steps=2, eval_clips=0)}
    spec = recipe(data_root, tmp_path / "run", stages)
    spec["data"]["train"]["landmarks"] = True
    train_recipe(structure(spec, registries), registries)
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert all(record["mouth_l1"] > 0 and record["eyes_l1"] > 0 for record in records)
    spec = recipe(data_root, tmp_path / "no_landmarks", stages)
    with pytest.raises(StyleTalkerError, match=r"objective.mouth_weight and objective.eyes_weight need the frames' 68 "
                                               "landmarks: set landmarks = true"):
        train_recipe(structure(spec, registries), registries)


def test_readings_term_reads_the_rendered_frames_through_a_frozen_oracle(registries, data_root, tmp_path, oracle_file):
    path = oracle_file(16)
    stages = {"main": main_stage({"sync_weight": 0.0, "readings_weight": 5.0, "readings_oracle": str(path),
                                  "readings_factors": ["eye_open"]}, steps=2, eval_clips=0)}
    result = train_recipe(structure(recipe(data_root, tmp_path / "run", stages), registries), registries)
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert all(record["readings"] > 0 for record in records)
    assert "oracle" not in read_metadata(result.stages[0].checkpoint)["components"]  # a loss, not an output
    stages["main"]["objective"]["readings_oracle"] = str(tmp_path / "absent.safetensors")
    with pytest.raises(StyleTalkerError, match=r"readings_oracle '.*absent.safetensors': the readings term needs"):
        train_recipe(structure(recipe(data_root, tmp_path / "absent", stages), registries), registries)


def test_lip_warmup_leaves_the_motion_path_out_first(registries, data_root, tmp_path, caplog):
    stages = {"main": main_stage({"sync_weight": 0.0}, steps=4, lip_warmup_steps=2, kl_warmup_steps=2, eval_clips=0)}
    with caplog.at_level("WARNING", logger="styletalker_core.train.pipeline"):
        result = train_recipe(structure(recipe(data_root, tmp_path / "run", stages), registries), registries)
    # the toy generator and encoder have no weights file and no stage trains them: said, not silent
    assert [r.getMessage().split(":")[1].strip() for r in caplog.records if "untrained" in r.getMessage()] == [
        "no earlier stage produced generator and [model.generator] has no weights file",
        "no earlier stage produced image_encoder and [model.image_encoder] has no weights file"]
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [record["step"] for record in records] == [1, 2, 3, 4]
    assert ["kl" in record for record in records] == [False, False, True, True]  # no z, no KL in the warm-up
    assert all(record["latent"] > 0 for record in records)
    assert set(read_metadata(result.model)["components"]) >= {"lip_mapper", "motion_vae", "prior"}


@pytest.mark.parametrize("mode", ["consistency", "reconstruction"])
def test_audio_augmentation_modes(registries, data_root, tmp_path, mode):
    """consistency: a term pulls the lip offsets of degraded speech to those of clean speech; reconstruction:
    the degraded speech goes through the forward pass (the losses differ from an unaugmented run's)."""
    base = main_stage({"sync_weight": 0.0}, steps=2, eval_clips=0)
    augmented = {**base, "audio_augment": {"probability": 1.0, "band_limit": 1.0, "noise": 1.0}, "augment_mode": mode}
    logs = {}
    for name, stage in (("plain", base), ("augmented", augmented)):
        train_recipe(structure(recipe(data_root, tmp_path / name, {"main": stage}), registries), registries)
        logs[name] = [json.loads(line) for line in (tmp_path / name / "metrics.jsonl").read_text().splitlines()]
    if mode == "consistency":
        assert all(record["augment_consistency"] > 0 for record in logs["augmented"])
        assert logs["augmented"][0]["latent"] == pytest.approx(logs["plain"][0]["latent"])  # clean forward pass
    else:
        assert "augment_consistency" not in logs["augmented"][0]
        assert logs["augmented"][0]["latent"] != pytest.approx(logs["plain"][0]["latent"])


def test_main_stage_needs_enough_audio_context(registries, data_root, tmp_path):
    spec = recipe(data_root, tmp_path / "run", {"main": main_stage({"sync_weight": 0.0}, steps=1)})
    spec["data"]["train"]["audio_context_frames"] = 1
    with pytest.raises(StyleTalkerError, match="audio context"):
        train_recipe(structure(spec, registries), registries)


def test_shipped_synthetic_recipe_runs_every_stage_for_a_few_steps(tmp_path):
    """recipes/synthetic_64.toml with its real components (randomly initialised: no domain weights),
    on small 64 px clips, two steps per stage; each stage hands its outputs on."""
    from styletalker_core.plugin_host import get_registries
    from styletalker_core.recipe import load_recipe

    root = write_toy_dataset(tmp_path / "clips64", clips=3, frames=60, resolution=64)
    overrides = [f"output_dir={tmp_path / 'run'}", "model.generator.weights=", "model.image_encoder.weights="]
    for split in ("train", "val"):
        overrides += [f"data.{split}.root={root}", f"data.{split}.latent_cache=", f"data.{split}.split={split}",
                      f"data.{split}.window_frames=16"]
    for stage in ("lipsync", "main", "prior"):
        overrides += [f"stages.{stage}.steps=2", f"stages.{stage}.batch_size=2", f"stages.{stage}.eval_clips=1"]
    registries = get_registries()
    shipped = load_recipe("recipes/synthetic_64.toml", overrides, registries)
    result = train_recipe(shipped, registries)
    assert [stage.name for stage in result.stages] == ["lipsync", "main", "prior"]
    for name, config in shipped.stages.items():  # each stage handed on the roles it declared
        declared = build_component(registries, "stage", ComponentSpec(config.name, config.options)).produces()
        assert set(declared) == set(json.loads((tmp_path / "run" / name / "done.json").read_text())["roles"]), name
    evaluation = json.loads((tmp_path / "run" / "summary.json").read_text())["evaluation"]
    assert {"offset_accuracy", "lse_d", "lse_c"} <= set(evaluation["lipsync"])
    assert {"prior_nll", "kl", "latent_mse", "l1", "sync_correct", "lse_c"} <= set(evaluation["main"])
    assert set(evaluation["prior"]) == {"prior_nll", "kl"}
    main = tmp_path / "run" / "main" / "final.safetensors"
    assert set(read_metadata(main)["components"]) == {"lip_mapper", "motion_vae", "prior", "audio_encoder"}
    # prior_only changed the prior and nothing else
    main_prior, final_prior = read_tensors(main, "prior."), read_tensors(result.model, "prior.")
    assert any(not torch.equal(main_prior[k], final_prior[k]) for k in main_prior)
    final_vae, main_vae = read_tensors(result.model, "motion_vae."), read_tensors(main, "motion_vae.")
    assert all(torch.equal(final_vae[k], main_vae[k]) for k in main_vae)
    head = TalkingHead.from_checkpoint(result.model, registries)
    assert head.resolution == 64
    assert head.generate(torch.zeros(3, 64, 64), torch.zeros(1600)).shape == (1, 3, 3, 64, 64)
