"""Run folders help instead of block: a changed recipe reuses the folder, keeps finished stages whose
own configuration is unchanged, refuses a changed finished stage naming --restart-from STAGE, and
--resume needs an existing folder."""

from __future__ import annotations

import json
from pathlib import Path

import engine_toys
import pytest

from styletalker_core.cli.main import main as cli
from styletalker_core.errors import StyleTalkerError
from styletalker_core.recipe import structure
from styletalker_core.train import train_recipe
from styletalker_core.train.pipeline import stage_configuration


@pytest.fixture(autouse=True)
def quiet_progress(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STYLETALKER_PROGRESS", "0")
    engine_toys.INTERRUPT_AT = None


@pytest.fixture(scope="module")
def registries():
    return engine_toys.engine_registries()


def two_stages(tmp_path: Path, first: int = 4, second: int = 4, size: int = 64, **changes) -> dict:
    stage = {"name": "toy_fit", "batch_size": 8, "lr": 0.05, "checkpoint_every": 2, "log_every": 2}
    return {
        "name": "toy",
        "seed": 3,
        "output_dir": str(tmp_path / "run"),
        "runtime": {"device": "cpu"},
        "data": {"train": {"name": "toy_data", "size": size}},
        "model": {"oracle": {"name": "toy_oracle"}},
        "stages": {"first": {**stage, "steps": first}, "second": {**stage, "steps": second}},
        **changes,
    }


def stamp(path: Path) -> int:
    return path.stat().st_mtime_ns


def test_configuration_of_a_stage_is_its_own_and_its_predecessors(tmp_path):
    base = two_stages(tmp_path)
    later = two_stages(tmp_path, second=9, description="other words", evaluate={"clips": 3})
    assert stage_configuration(base, "first") == stage_configuration(later, "first")
    assert stage_configuration(base, "second") != stage_configuration(later, "second")
    assert stage_configuration(base, "first") != stage_configuration(two_stages(tmp_path, size=32), "first")
    cosmetic = two_stages(tmp_path)
    cosmetic["stages"]["first"]["log_every"] = 1
    cosmetic["runtime"]["device"] = "cuda"
    assert stage_configuration(base, "first") == stage_configuration(cosmetic, "first")
    assert stage_configuration(base, "third") is None


def test_changed_later_stage_keeps_the_finished_one(tmp_path, registries):
    train_recipe(structure(two_stages(tmp_path), registries), registries, only_stages=["first"])
    run = tmp_path / "run"
    first_final = stamp(run / "first" / "final.safetensors")
    changed = two_stages(tmp_path, second=6, description="changed", evaluate={"clips": 2})
    result = train_recipe(structure(changed, registries), registries)
    assert result.skipped == ["first"] and [s.name for s in result.stages] == ["second"]
    assert stamp(run / "first" / "final.safetensors") == first_final
    assert "changed" in (run / "recipe.toml").read_text()  # the folder now holds the new recipe
    # a cosmetic change of a finished stage (log interval, device, description) is no change
    cosmetic = two_stages(tmp_path, second=6, description="again")
    cosmetic["stages"]["first"]["log_every"] = 1
    assert train_recipe(structure(cosmetic, registries), registries).skipped == ["first", "second"]


def test_changed_finished_stage_is_refused_naming_restart_from(tmp_path, registries):
    train_recipe(structure(two_stages(tmp_path), registries), registries)
    changed = structure(two_stages(tmp_path, size=32), registries)  # data of every stage
    with pytest.raises(StyleTalkerError, match=r"finished stage first .*data\.train\.size.*--restart-from first"):
        train_recipe(changed, registries)
    result = train_recipe(changed, registries, restart_from="first")
    assert [s.name for s in result.stages] == ["first", "second"] and result.skipped == []
    with pytest.raises(StyleTalkerError, match="--restart-from third: recipe toy has no such stage"):
        train_recipe(changed, registries, restart_from="third")
    # only the second stage changed and it is finished: restart from it, the first is kept
    again = structure(two_stages(tmp_path, size=32, second=5), registries)
    with pytest.raises(StyleTalkerError, match="--restart-from second"):
        train_recipe(again, registries)
    result = train_recipe(again, registries, restart_from="second")
    assert result.skipped == ["first"] and [s.name for s in result.stages] == ["second"]


def test_folder_without_a_finished_stage_is_reused_and_stale_checkpoints_dropped(tmp_path, registries):
    engine_toys.INTERRUPT_AT = 3  # dies in the first stage after its step-2 checkpoint
    with pytest.raises(KeyboardInterrupt):
        train_recipe(structure(two_stages(tmp_path, first=6), registries), registries)
    engine_toys.INTERRUPT_AT = None
    run = tmp_path / "run"
    assert (run / "first" / "checkpoints" / "latest.json").is_file() and not (run / "first" / "done.json").exists()
    result = train_recipe(structure(two_stages(tmp_path, first=6, size=32), registries), registries)
    assert [s.name for s in result.stages] == ["first", "second"]
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert any(r["step"] == 2 for r in records)


def test_resume_needs_an_existing_folder_and_cli_takes_restart_from(tmp_path, capsys, monkeypatch):
    recipe = tmp_path / "toy.toml"
    recipe.write_text(
        'name = "toy_cli"\nseed = 1\n[runtime]\ndevice = "cpu"\n[data.train]\nname = "sharded"\nroot = ""\n'
        '[model.generator]\nname = "stylegan2"\nresolution = 16\nz_dim = 8\nw_dim = 8\nchannel_base = 64\n'
        'channel_max = 8\nmapping_layers = 1\n'
    )
    missing = tmp_path / "nowhere"
    assert cli(["train", str(recipe), "--resume", str(missing)]) == 2
    err = capsys.readouterr().err
    assert f"--resume {missing}: no such run folder" in err and not missing.exists()
    (tmp_path / "file").write_text("x")
    assert cli(["train", str(recipe), "--resume", str(tmp_path / "file")]) == 2
    assert "is a file, not a run folder" in capsys.readouterr().err
    assert cli(["train", str(recipe), "--restart-from", "gan", "--set", f"output_dir={tmp_path / 'out'}"]) == 2
    assert "--restart-from gan: recipe toy_cli has no such stage" in capsys.readouterr().err
