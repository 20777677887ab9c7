"""A recipe may not train against a file that one of its evaluation judges reads (same content,
sha256): `styletalker recipes validate` and the training engine refuse it, naming both fields;
recipes whose training signals and judges are distinct files pass."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from styletalker_core.cli.main import main
from styletalker_core.errors import RecipeError
from styletalker_core.evaluate.judges import (
    evaluation_judge_files,
    file_sha256,
    judge_problems,
    training_signal_files,
)
from styletalker_core.plugin_host import get_registries
from styletalker_core.recipe import load_recipe

ROOT = Path(__file__).resolve().parents[1]
SCORING_ORACLE = "checkpoints/oracle_synthetic.safetensors"
LOSS_ORACLE = "checkpoints/oracle_synthetic_loss.safetensors"
MODEL = "checkpoints/synthetic_64_model.safetensors"
SHIPPED = sorted((ROOT / "recipes").glob("*.toml"))


def metric_index(name: str) -> int:
    """Where metric ``name`` sits in synthetic_64's [evaluate] list."""
    return [spec.name for spec in load_recipe("synthetic_64").evaluate.metrics].index(name)

pytestmark = pytest.mark.skipif(not (ROOT / SCORING_ORACLE).is_file() or not (ROOT / LOSS_ORACLE).is_file(),
                                reason="the shipped oracles are missing")


def test_a_recipe_that_trains_against_its_own_judge_is_refused_by_recipes_validate(capsys):
    status = main(["recipes", "validate", "domain_synthetic_64",
                   "--set", f"stages.render.objective.readings_oracle={SCORING_ORACLE}"])
    assert status == 2
    err = capsys.readouterr().err
    assert "stages.render.objective.readings_oracle and stages.render.oracle are the same file" in err
    assert "stages.render.objective.readings_oracle and stages.encoder.oracle are the same file" in err


def test_the_same_content_under_another_name_is_refused_too(tmp_path, capsys):
    copy = tmp_path / "my_oracle.safetensors"
    shutil.copyfile(ROOT / SCORING_ORACLE, copy)
    status = main(["recipes", "validate", "synthetic_64", "--set", f"stages.main.objective.readings_oracle={copy}",
                   "--set", "stages.main.objective.readings_weight=1.0"])
    assert status == 2
    err = capsys.readouterr().err
    # the synthetic_* metrics read the scoring oracle by default
    index = metric_index("synthetic_lipsync")
    assert f"stages.main.objective.readings_oracle and evaluate.metrics[{index}].oracle (default) are the same file" in err
    assert str(copy) in err and f"sha256 {file_sha256(copy)[:12]}" in err


def test_a_sync_discriminator_loaded_from_the_lse_judge_is_refused():
    lse = metric_index("lse")
    recipe = load_recipe("synthetic_64", [f"model.lipsync_discriminator.weights={MODEL}",
                                          f"evaluate.metrics.{lse}.checkpoint={MODEL}"])
    problems = judge_problems(recipe, get_registries())
    assert any(p.startswith(f"model.lipsync_discriminator.weights and evaluate.metrics[{lse}].checkpoint are the same file")
               for p in problems), problems


def test_a_perceptual_network_file_that_is_also_a_judge_is_refused(tmp_path):
    weights = tmp_path / "lpips.safetensors"
    weights.write_bytes(b"the same bytes")
    judge = tmp_path / "judge.safetensors"
    judge.write_bytes(b"the same bytes")
    lse = metric_index("lse")
    overrides = [f"stages.main.objective.lpips_weights={weights}", f"evaluate.metrics.{lse}.checkpoint={judge}"]
    [problem] = judge_problems(load_recipe("synthetic_64", overrides), get_registries())
    assert problem.startswith(f"stages.main.objective.lpips_weights and evaluate.metrics[{lse}].checkpoint are the same file")
    judge.write_bytes(b"other bytes")
    assert judge_problems(load_recipe("synthetic_64", overrides), get_registries()) == []


def test_distinct_files_pass(capsys):
    # The domain recipe trains against the second oracle and is scored by the first.
    recipe = load_recipe("domain_synthetic_64")
    signals = dict(training_signal_files(recipe))
    judges = dict(evaluation_judge_files(recipe, get_registries()))
    assert signals["stages.render.objective.readings_oracle"].name == "oracle_synthetic_loss.safetensors"
    assert judges["stages.render.oracle"].name == "oracle_synthetic.safetensors"
    assert judge_problems(recipe, get_registries()) == []
    assert main(["recipes", "validate", "synthetic_64", "--set",
                 f"stages.main.objective.readings_oracle={LOSS_ORACLE}", "--set",
                 "stages.main.objective.readings_weight=1.0"]) == 0
    assert capsys.readouterr().out == "ok  synthetic_64\n"


@pytest.mark.parametrize("path", SHIPPED, ids=[path.stem for path in SHIPPED])
def test_shipped_recipes_train_against_no_judge_of_theirs(path):
    assert judge_problems(load_recipe(path), get_registries()) == []


def test_training_refuses_before_anything_runs(tmp_path):
    from styletalker_core.train import train_recipe

    recipe = load_recipe("domain_synthetic_64", [f"stages.render.objective.readings_oracle={SCORING_ORACLE}",
                                                 f"output_dir={tmp_path / 'run'}"])
    with pytest.raises(RecipeError, match=r"stages.render.objective.readings_oracle and stages.render.oracle are the same file"):
        train_recipe(recipe, get_registries())
    assert not (tmp_path / "run").exists()
