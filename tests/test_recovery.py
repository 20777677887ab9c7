"""Recovery from kills: SIGTERM handled like Ctrl-C, stale temporaries removed on the next run,
metrics.jsonl rewound to the resumed checkpoint, and a cut or corrupt checkpoint replaced by the
previous good one.

Signals are real: the commands run as subprocesses (``styletalker train`` of the engine's toy
recipe, ``styletalker sample`` of the toy talking-head model) and are sent SIGTERM or SIGKILL.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import engine_toys
import pytest
import torch

import styletalker_core.plugin_host
from styletalker_core.checkpoint import read_tensors
from styletalker_core.checkpoint.files import safetensors_problem
from styletalker_core.io.atomic import remove_stale_temporaries, temporary_path_for, write_json_atomic
from styletalker_core.recipe import structure
from styletalker_core.recipe.toml_writer import dumps
from styletalker_core.train import train_recipe

TESTS = Path(__file__).resolve().parent

# A plugin for the CLI subprocesses: the engine's toys, optionally slowed down (so a signal lands
# mid-run) or cut by SIGKILL half-way through writing one checkpoint.
RECOVERY_PLUGIN = textwrap.dedent('''
    import os, signal, time
    import engine_toys
    from styletalker_core.plugin_host import hookimpl

    SLEEP = float(os.environ.get("RECOVERY_STEP_SLEEP", "0"))
    KILL_IN = os.environ.get("RECOVERY_KILL_IN_SAVE", "")

    if SLEEP:
        plain_loss = engine_toys.ToyFitStage.loss
        def slow_loss(self, phase, batch, step):
            time.sleep(SLEEP)
            return plain_loss(self, phase, batch, step)
        engine_toys.ToyFitStage.loss = slow_loss

    if KILL_IN:
        import safetensors.torch
        import styletalker_core.train.state as state
        def cut_save_file(tensors, filename, metadata=None):
            safetensors.torch.save_file(tensors, filename, metadata=metadata)
            if KILL_IN in os.path.basename(filename):
                with open(filename, "r+b") as handle:
                    handle.truncate(os.path.getsize(filename) // 2)
                os.kill(os.getpid(), signal.SIGKILL)
        state.save_file = cut_save_file

    @hookimpl
    def styletalker_register(registrar):
        engine_toys.register_toys(registrar)
''')

SAMPLE_DRIVER = textwrap.dedent('''
    import sys, time
    import styletalker_core.plugin_host
    from styletalker_core.media import video_writer
    from test_talking_head_toys import toy_registries

    registries = toy_registries()
    styletalker_core.plugin_host.get_registries = lambda: registries
    plain = video_writer.VideoWriter.write_frames
    def slow_write_frames(self, frames):
        plain(self, frames)
        time.sleep(2.0)
    video_writer.VideoWriter.write_frames = slow_write_frames
    from styletalker_core.cli.main import main
    sys.exit(main(sys.argv[1:]))
''')


@pytest.fixture(autouse=True)
def quiet_progress(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STYLETALKER_PROGRESS", "0")
    engine_toys.INTERRUPT_AT = None


@pytest.fixture(scope="module")
def registries():
    return engine_toys.engine_registries()


def toy_recipe(folder: Path, steps: int = 12) -> dict:
    return {
        "name": "toy",
        "seed": 3,
        "output_dir": str(folder / "run"),
        "runtime": {"device": "cpu"},
        "data": {"train": {"name": "toy_data", "size": 64}},
        "model": {"oracle": {"name": "toy_oracle"}},
        "stages": {"fit": {"name": "toy_fit", "steps": steps, "batch_size": 8, "lr": 0.05, "noise": 0.05,
                           "checkpoint_every": 4, "log_every": 2}},
    }


def cli_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    site = tmp_path / "site"
    if not site.is_dir():
        dist_info = site / "recovery_plugin-0.1.dist-info"
        dist_info.mkdir(parents=True)
        (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: recovery-plugin\nVersion: 0.1\n")
        (dist_info / "entry_points.txt").write_text("[styletalker.plugins]\nrecovery = recovery_plugin\n")
        (site / "recovery_plugin.py").write_text(RECOVERY_PLUGIN)
        (site / "sample_driver.py").write_text(SAMPLE_DRIVER)
    path = os.pathsep.join(filter(None, [str(site), str(TESTS), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, "STYLETALKER_PROGRESS": "0",
            "OMP_NUM_THREADS": "1", **extra}


def wait_for(condition, process: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            raise AssertionError(f"the command ended early ({process.returncode}): {process.stderr.read()[-2000:]}")
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError("timed out waiting for the command")
        time.sleep(0.05)


def temporaries(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob(".*") if p.is_file())


def steps_logged(run: Path) -> list[int]:
    return [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]


def assert_same_final(a: Path, b: Path) -> None:
    first, second = read_tensors(a / "fit/final.safetensors"), read_tensors(b / "fit/final.safetensors")
    assert first.keys() == second.keys()
    for key in first:
        assert torch.equal(first[key], second[key]), key


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, registries) -> Path:
    """The toy recipe trained in one go: what every resumed run must equal."""
    folder = tmp_path_factory.mktemp("straight")
    train_recipe(structure(toy_recipe(folder), registries), registries)
    return folder / "run"


# --- 6: SIGTERM like Ctrl-C, stale temporaries ---------------------------------------------------


def test_sigterm_during_train_stops_cleanly_keeps_the_checkpoint_and_resumes(tmp_path, registries):
    raw = toy_recipe(tmp_path, steps=100)  # 5 s at 0.05 s a step: SIGTERM lands mid-run
    recipe_path = tmp_path / "toy.toml"
    recipe_path.write_text(dumps(raw))
    run = tmp_path / "run"
    command = [sys.executable, "-m", "styletalker_core.cli.main", "train", str(recipe_path)]
    process = subprocess.Popen(command, env=cli_env(tmp_path, RECOVERY_STEP_SLEEP="0.05"),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    pointer = run / "fit/checkpoints/latest.json"
    wait_for(lambda: pointer.is_file() and json.loads(pointer.read_text())["file"] >= "step_00000008", process)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 143, stderr
    assert stderr.splitlines()[-1] == "styletalker: terminated (SIGTERM)", stderr
    assert temporaries(run) == [], "no temporary file is left behind"
    kept = run / "fit/checkpoints" / json.loads(pointer.read_text())["file"]
    assert safetensors_problem(kept) is None and not (run / "fit/done.json").exists()
    # Rerun (in-process, same recipe): resumes from the kept checkpoint and equals a run never stopped.
    straight = tmp_path / "straight"
    train_recipe(structure(toy_recipe(straight, steps=100), registries), registries)
    resumed = train_recipe(structure(raw, registries), registries)
    assert resumed.stages[0].name == "fit"
    assert_same_final(run, straight / "run")
    assert steps_logged(run) == list(range(2, 101, 2)), "no step logged twice"


def run_sample_until_it_writes(tmp_path: Path, inputs, out: Path) -> subprocess.Popen:
    command = [sys.executable, str(tmp_path / "site/sample_driver.py"), "sample", "--image", str(inputs.image),
               "--audio", str(inputs.audio), "--checkpoint", str(inputs.model), "--out", str(out),
               "--chunk-frames", "10", "--no-progress"]
    there = set(out.parent.iterdir())
    process = subprocess.Popen(command, env=cli_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: any(p.name.endswith(".tmp") for p in set(out.parent.iterdir()) - there), process)
    return process


@pytest.fixture(scope="module")
def sample_inputs(tmp_path_factory):
    from sample_toys import make_inputs

    return make_inputs(tmp_path_factory.mktemp("sample_inputs"))


def test_sigkilled_sample_leaves_a_temporary_that_the_next_run_removes(tmp_path, sample_inputs, monkeypatch):
    from styletalker_core.cli.main import main

    out_dir = tmp_path / "out"
    out_dir.mkdir()
    neighbour = out_dir / ".notes.mp4.tmp"  # not a temporary of this output: never touched
    neighbour.write_text("keep")
    out = out_dir / "talk.mp4"
    process = run_sample_until_it_writes(tmp_path, sample_inputs, out)
    process.kill()
    process.communicate(timeout=60)
    left = [name for name in temporaries(out_dir) if name != neighbour.name]
    assert left and not out.exists(), "SIGKILL leaves the partial mp4 temporary (nothing can remove it then)"
    monkeypatch.setattr(styletalker_core.plugin_host, "get_registries", lambda: sample_inputs.registries)
    assert main(["sample", "--image", str(sample_inputs.image), "--audio", str(sample_inputs.audio),
                 "--checkpoint", str(sample_inputs.model), "--out", str(out), "--no-progress"]) == 0
    assert out.is_file()
    assert temporaries(out_dir) == [neighbour.name], "the stale temporary of talk.mp4 is gone, nothing else"


def test_sigterm_during_sample_removes_its_temporaries_and_says_so(tmp_path, sample_inputs):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "talk.mp4"
    process = run_sample_until_it_writes(tmp_path, sample_inputs, out)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 143, stderr
    assert stderr.splitlines()[-1] == "styletalker: terminated (SIGTERM)", stderr
    assert list(out_dir.iterdir()) == []


def test_only_stale_temporaries_of_the_same_output_are_removed(tmp_path):
    finished = subprocess.Popen(["true"])
    finished.wait()
    dead = finished.pid  # a process that has ended (and been reaped)
    target = tmp_path / "x.safetensors"

    def temporary_of(destination: Path, pid: int) -> Path:
        path = temporary_path_for(destination)
        path = path.with_name(path.name.replace(f"-{os.getpid()}.", f"-{pid}."))
        path.write_bytes(b"")  # a zero-byte temporary, as a kill right after creating it leaves
        return path

    stale = temporary_of(target, dead)
    live = temporary_of(target, os.getpid())
    other_output = temporary_of(tmp_path / "y.safetensors", dead)
    nested_stale = temporary_of(temporary_of(target, dead), dead)  # a writer's temporary of a temporary
    unrelated = [tmp_path / ".x.safetensors.notes.tmp", tmp_path / "x.safetensors.bak", tmp_path / ".x.safetensors"]
    for path in unrelated:
        path.write_text("mine")
    write_json_atomic(target, {"a": 1})
    names = {p.name for p in tmp_path.iterdir()}
    assert stale.name not in names and nested_stale.name not in names
    assert {live.name, other_output.name, target.name} | {p.name for p in unrelated} <= names
    assert remove_stale_temporaries(target) == []


# --- 7: metrics.jsonl rewound on resume ------------------------------------------------------------


def test_resume_drops_the_metrics_logged_after_the_checkpoint(tmp_path, registries, uninterrupted):
    recipe = structure(toy_recipe(tmp_path), registries)
    engine_toys.INTERRUPT_AT = 11  # after the step-8 checkpoint and the step-10 log line
    with pytest.raises(KeyboardInterrupt):
        train_recipe(recipe, registries)
    run = tmp_path / "run"
    assert steps_logged(run) == [2, 4, 6, 8, 10]
    before = (run / "metrics.jsonl").read_text().splitlines()
    with (run / "metrics.jsonl").open("a") as handle:
        handle.write('{"stage": "fit", "step": 1')  # a line cut by a kill
    engine_toys.INTERRUPT_AT = None
    train_recipe(recipe, registries)
    after = (run / "metrics.jsonl").read_text().splitlines()
    assert steps_logged(run) == list(range(2, 13, 2))
    assert after[:4] == before[:4], "lines up to the checkpoint's step are kept as they were"
    mse = [json.loads(line)["mse"] for line in after]
    assert mse == [json.loads(line)["mse"] for line in (uninterrupted / "metrics.jsonl").read_text().splitlines()]


# --- 8: a cut or corrupt checkpoint falls back to the previous good one ---------------------------


def test_sigkill_during_a_checkpoint_write_resumes_from_the_previous_one(tmp_path, registries, uninterrupted):
    raw = toy_recipe(tmp_path)
    recipe_path = tmp_path / "toy.toml"
    recipe_path.write_text(dumps(raw))
    run = tmp_path / "run"
    command = [sys.executable, "-m", "styletalker_core.cli.main", "train", str(recipe_path)]
    done = subprocess.run(command, env=cli_env(tmp_path, RECOVERY_KILL_IN_SAVE="step_00000008"),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == -signal.SIGKILL, done.stderr
    checkpoints = run / "fit/checkpoints"
    assert json.loads((checkpoints / "latest.json").read_text())["file"] == "step_00000004.safetensors"
    assert not (checkpoints / "step_00000008.safetensors").exists()
    assert [p.name.startswith(".step_00000008.safetensors.") for p in checkpoints.glob(".*.tmp")] == [True]
    resumed = train_recipe(structure(raw, registries), registries)
    assert resumed.stages[0].name == "fit"
    assert_same_final(run, uninterrupted)
    assert temporaries(run) == [], "the cut temporary was removed when step 8 was written again"
    assert steps_logged(run) == list(range(2, 13, 2))


@pytest.mark.parametrize("damage", ["half", "empty", "header_only", "missing"])
def test_a_corrupt_latest_checkpoint_falls_back_to_the_previous_one(tmp_path, registries, uninterrupted, caplog, damage):
    recipe = structure(toy_recipe(tmp_path), registries)
    engine_toys.INTERRUPT_AT = 11
    with pytest.raises(KeyboardInterrupt):
        train_recipe(recipe, registries)
    engine_toys.INTERRUPT_AT = None
    latest = tmp_path / "run/fit/checkpoints/step_00000008.safetensors"
    data = latest.read_bytes()
    if damage == "missing":
        latest.unlink()
    else:
        header = 8 + int.from_bytes(data[:8], "little")
        latest.write_bytes({"half": data[: len(data) // 2], "empty": b"", "header_only": data[:header]}[damage])
        assert safetensors_problem(latest) is not None
    with caplog.at_level(logging.WARNING, logger="styletalker_core.train"):
        train_recipe(recipe, registries)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "\n" not in warnings[0], warnings
    assert "step_00000008.safetensors" in warnings[0] and "step_00000004.safetensors" in warnings[0]
    assert_same_final(tmp_path / "run", uninterrupted)
    assert steps_logged(tmp_path / "run") == list(range(2, 13, 2))
