"""End to end at smoke scale, with the commands a user runs: synthetic data -> domain pretraining
(recipes/domain_synthetic_64.toml) -> latent cache -> recipes/synthetic_64.toml (lip-sync, main and
prior stages) -> `styletalker sample` in both modes and `styletalker demo` with the trained model.

Only steps, sizes of the data windows, evaluation counts and paths are overridden (``--set``); the
components are the shipped recipes' own, so the test trains what the shipped model is made of.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from styletalker_core.checkpoint import read_metadata
from styletalker_core.cli.main import main
from styletalker_core.data.synthetic import SynthConfig, generate_dataset
from styletalker_core.media import probe_video, read_audio, read_video_frames, write_audio
from styletalker_core.model import ROLES
from styletalker_core.sample import shipped

ROOT = Path(__file__).resolve().parent.parent
DOMAIN_RECIPE = ROOT / "recipes" / "domain_synthetic_64.toml"
MODEL_RECIPE = ROOT / shipped.MODEL_RECIPE


def run(*args: object) -> None:
    status = main([str(arg) for arg in args])
    assert status == 0, f"styletalker {' '.join(map(str, args))} exited with {status}"


def sets(overrides: dict[str, object]) -> list[str]:
    return [item for key, value in overrides.items() for item in ("--set", f"{key}={value}")]


@pytest.mark.slow
def test_recipes_train_at_smoke_scale_and_the_model_samples_both_modes(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # the recipes' relative paths (data/, runs/, checkpoints/) land here
    monkeypatch.setenv("STYLETALKER_PROGRESS", "0")

    # 1. data (what `styletalker data synth` does, smaller and with 1x supersampling)
    data = tmp_path / "data" / "smoke"
    generate_dataset(data, SynthConfig(clips=6, seed=1, seconds=(1.2, 1.6), heldout_fraction=0.34, supersample=1),
                     workers=1, progress=False)

    # 2. domain pretraining: the generator from the labels, then the encoder against it, a few steps each
    run("train", DOMAIN_RECIPE, *sets({
        "output_dir": "runs/domain", "data.train.root": data, "data.val.root": data,
        **{f"stages.{stage}.{key}": value for stage in ("render", "encoder") for key, value in {
            "steps": 2, "batch_size": 2, "warmup_steps": 1, "eval_items": 4, "eval_batch": 4, "oracle": ""}.items()},
    }))
    domain_stages = json.loads((tmp_path / "runs/domain/summary.json").read_text())["evaluation"]
    assert set(domain_stages) == {"render", "encoder"}
    domain = tmp_path / "checkpoints" / "synthetic_64_domain.safetensors"
    domain.parent.mkdir()
    shutil.copy(tmp_path / "runs/domain/model.safetensors", domain)  # as the recipe's header says

    # 3. latent cache with the domain encoder
    run("data", "encode", data, "--checkpoint", domain, "--cache", "synthetic_64_domain", "--no-progress")

    # 4. the shipped model's recipe: lip-sync discriminator, main stage, prior alone
    window = {"window_frames": 10, "audio_context_frames": 6}
    run("train", MODEL_RECIPE, *sets({
        "output_dir": "runs/model", "data.train.root": data, "data.val.root": data,
        **{f"data.train.{key}": value for key, value in window.items()},
        **{f"data.val.{key}": value for key, value in window.items()},
        "stages.lipsync.steps": 2, "stages.lipsync.batch_size": 2, "stages.lipsync.min_negative_offset": 3,
        "stages.lipsync.eval_clips": 1, "stages.lipsync.eval_max_offset": 3,
        "stages.main.steps": 2, "stages.main.batch_size": 2, "stages.main.render_frames": 6,
        "stages.main.objective.sync_max_offset": 2, "stages.main.kl_warmup_steps": 1, "stages.main.eval_clips": 1,
        "stages.prior.steps": 2, "stages.prior.batch_size": 2, "stages.prior.eval_clips": 1,
    }))
    model = tmp_path / "runs/model/model.safetensors"
    assert set(ROLES) <= set(read_metadata(model)["components"])
    evaluation = json.loads((tmp_path / "runs/model/summary.json").read_text())["evaluation"]
    assert set(evaluation) == {"lipsync", "main", "prior"}

    # 5. sampling with the trained model, both modes, on the demo's assets
    assets = shipped.require_assets()
    seconds = 2.5
    frames = math.ceil(seconds * 25)
    speech = tmp_path / "speech.wav"
    write_audio(speech, read_audio(assets["speech"])[: int(seconds * 16000)])
    common = ("--checkpoint", model, "--image", assets["reference"], "--audio", speech, "--no-align", "--no-progress")
    run("sample", *common, "--out", "out/driven.mp4", "--num-samples", "2")
    run("sample", *common, "--motion", assets["motion"], "--out", "out/motion.mp4")
    for name in ("driven_0.mp4", "driven_1.mp4", "motion.mp4"):
        info = probe_video(tmp_path / "out" / name)
        assert (info.num_frames, info.width, info.has_audio) == (frames, 64, True), name
    assert (read_video_frames("out/driven_0.mp4") != read_video_frames("out/driven_1.mp4")).any()

    # 6. the demo command with this model
    run("demo", "--checkpoint", model, "--out-dir", "out/demo", "--no-progress")
    assert {p.name for p in (tmp_path / "out/demo").iterdir()} == {"demo.mp4", "demo_motion.mp4", "demo_strip.png"}
    assert "demo finished in" in capsys.readouterr().out
