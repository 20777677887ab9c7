"""The training engine: stages, checkpoints, exact resume, divergence stop, 2-process data parallelism."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import engine_toys
import pytest
import torch

from styletalker_core.checkpoint import load_checkpoint, read_tensors
from styletalker_core.errors import StyleTalkerError
from styletalker_core.recipe import structure
from styletalker_core.train import DivergenceError, train_recipe

TESTS = Path(__file__).resolve().parent


@pytest.fixture(autouse=True)
def quiet_progress(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STYLETALKER_PROGRESS", "0")
    engine_toys.INTERRUPT_AT = None


@pytest.fixture(scope="module")
def registries():
    return engine_toys.engine_registries()


def toy_recipe(tmp_path: Path, steps: int = 12, batch: int = 8, **stage_options) -> dict:
    return {
        "name": "toy",
        "seed": 3,
        "output_dir": str(tmp_path / "run"),
        "runtime": {"device": "cpu"},
        "data": {"train": {"name": "toy_data", "size": 64}},
        "model": {"oracle": {"name": "toy_oracle"}},
        "stages": {"fit": {"name": "toy_fit", "steps": steps, "batch_size": batch, "lr": 0.05,
                           "checkpoint_every": 4, "log_every": 2, **stage_options}},
    }


def test_stage_trains_writes_outputs_and_is_skipped_on_rerun(tmp_path, registries):
    recipe = structure(toy_recipe(tmp_path, steps=200), registries)
    result = train_recipe(recipe, registries)
    run = tmp_path / "run"
    assert result.stages[0].evaluation["max_weight_error"] < 0.1  # it learned the true weights
    for name in ("recipe.toml", "metrics.jsonl", "fit/final.safetensors", "fit/done.json", "fit/losses.png",
                 "model.safetensors", "summary.json"):
        assert (run / name).is_file(), name
    assert not list((run / "fit" / "checkpoints").glob("step_*")), "resume checkpoints are removed when done"
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == list(range(2, 201, 2))
    assert records[-1]["mse"] < records[0]["mse"] / 10
    model = load_checkpoint(result.model, registries)
    assert torch.equal(model["oracle"].net.weight, load_checkpoint(run / "fit/final.safetensors", registries)["oracle"].net.weight)
    again = train_recipe(recipe, registries)
    assert again.skipped == ["fit"] and again.stages == []


def test_rerun_with_a_different_recipe_is_refused(tmp_path, registries):
    train_recipe(structure(toy_recipe(tmp_path, steps=2), registries), registries)
    with pytest.raises(StyleTalkerError, match=r"different recipe.*stages"):
        train_recipe(structure(toy_recipe(tmp_path, steps=3), registries), registries)


def test_resumed_run_equals_uninterrupted_run(tmp_path, registries):
    # The stage draws noise from the global RNG each step: resume must restore it exactly.
    straight = structure(toy_recipe(tmp_path / "a", steps=12, noise=0.05), registries)
    train_recipe(straight, registries)
    interrupted = structure(toy_recipe(tmp_path / "b", steps=12, noise=0.05), registries)
    engine_toys.INTERRUPT_AT = 9  # dies after the step-8 checkpoint, mid-way to the next one
    with pytest.raises(KeyboardInterrupt):
        train_recipe(interrupted, registries)
    assert json.loads((tmp_path / "b/run/fit/checkpoints/latest.json").read_text())["file"] == "step_00000008.safetensors"
    engine_toys.INTERRUPT_AT = None
    resumed = train_recipe(interrupted, registries)
    assert resumed.stages[0].name == "fit"
    a = read_tensors(tmp_path / "a/run/fit/final.safetensors")
    b = read_tensors(tmp_path / "b/run/fit/final.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    log_a = [json.loads(line)["mse"] for line in (tmp_path / "a/run/metrics.jsonl").read_text().splitlines()]
    log_b = [json.loads(line)["mse"] for line in (tmp_path / "b/run/metrics.jsonl").read_text().splitlines()]
    assert log_b[-len(log_a[4:]):] == log_a[4:]  # steps 10 and 12 logged identically after the resume


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tmp_path, registries):
    recipe = structure(toy_recipe(tmp_path, steps=12, nan_at=6), registries)
    with pytest.raises(DivergenceError, match=r"diverged at step 6: mse is not finite; last good checkpoint: .*step_00000004"):
        train_recipe(recipe, registries)
    checkpoint = tmp_path / "run/fit/checkpoints/step_00000004.safetensors"
    assert checkpoint.is_file()
    assert all(torch.isfinite(t).all() for t in read_tensors(checkpoint).values() if t.is_floating_point())
    assert not (tmp_path / "run/fit/done.json").exists()


def _write_toy_plugin(root: Path) -> None:
    dist_info = root / "engine_toys_plugin-0.1.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: engine-toys-plugin\nVersion: 0.1\n")
    (dist_info / "entry_points.txt").write_text("[styletalker.plugins]\ntoys = engine_toys\n")


def _run_cli(tmp_path: Path, recipe_path: Path, processes: int) -> None:
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{TESTS}", "STYLETALKER_PROGRESS": "0",
           "OMP_NUM_THREADS": "1"}
    if processes == 1:
        command = [sys.executable, "-m", "styletalker_core.cli.main", "train", str(recipe_path)]
    else:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
                   "-m", "styletalker_core.cli.main", "train", str(recipe_path)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]


def test_two_process_data_parallel_equals_one_process(tmp_path):
    from styletalker_core.recipe.toml_writer import dumps

    _write_toy_plugin(tmp_path)
    finals = []
    for processes in (1, 2):
        raw = toy_recipe(tmp_path / f"p{processes}", steps=6, batch=8)
        raw["model"]["oracle"]["hidden"] = 8  # a non-linear model: averaging must be exact, not just convex
        path = tmp_path / f"p{processes}.toml"
        path.write_text(dumps(raw))
        _run_cli(tmp_path, path, processes)
        finals.append(read_tensors(tmp_path / f"p{processes}/run/fit/final.safetensors"))
        metadata = json.loads((tmp_path / f"p{processes}/run/fit/done.json").read_text())
        assert metadata["world_size"] == processes
    for key in finals[0]:
        assert torch.allclose(finals[0][key], finals[1][key], atol=1e-6), key
    assert not torch.equal(finals[0]["oracle.net.0.weight"], torch.zeros_like(finals[0]["oracle.net.0.weight"]))


def test_finalize_runs_once_before_evaluate_and_a_resumed_run_saves_the_same_file(tmp_path, registries, monkeypatch):
    calls = []

    def finalize(self):  # what is saved beyond the trained weights: the bias moved by the mean residual
        calls.append("finalize")
        with torch.no_grad():
            items = [self.data[index] for index in range(16)]
            images, targets = torch.stack([i["images"] for i in items]), torch.stack([i["target"] for i in items])
            self.model.net.bias += (targets - self.model(images)["target"]).mean()

    def evaluate(self):
        calls.append("evaluate")
        return {"bias": float(self.model.net.bias.detach())}

    monkeypatch.setattr(engine_toys.ToyFitStage, "finalize", finalize)
    monkeypatch.setattr(engine_toys.ToyFitStage, "evaluate", evaluate)
    straight = train_recipe(structure(toy_recipe(tmp_path / "a", steps=12, noise=0.05), registries), registries)
    assert calls == ["finalize", "evaluate"]
    saved = read_tensors(tmp_path / "a/run/fit/final.safetensors")
    assert float(saved["oracle.net.bias"]) == pytest.approx(straight.stages[0].evaluation["bias"])
    interrupted = structure(toy_recipe(tmp_path / "b", steps=12, noise=0.05), registries)
    engine_toys.INTERRUPT_AT = 9
    with pytest.raises(KeyboardInterrupt):
        train_recipe(interrupted, registries)
    engine_toys.INTERRUPT_AT = None
    train_recipe(interrupted, registries)
    assert calls == ["finalize", "evaluate"] * 2  # the interrupted run never reached its end
    resumed = read_tensors(tmp_path / "b/run/fit/final.safetensors")
    assert saved.keys() == resumed.keys() and all(torch.equal(saved[k], resumed[k]) for k in saved)
