"""The ``styletalker`` command: subcommands, one-line user errors (tracebacks only with --debug),
``plugins``, ``recipes list|show|validate`` and ``checkpoint info``."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from styletalker_core.checkpoint import save_checkpoint
from styletalker_core.cli import main as cli_main
from styletalker_core.plugin_host import get_registries
from styletalker_core.recipe import load_recipe, structure
from styletalker_core.registry import ComponentSpec, build_component

GOOD = """
# styletalker recipes show good
name = "good"
description = "a recipe for the CLI tests"
seed = 5

[runtime]
device = "cpu"

[[loggers]]
name = "jsonl"
filename = "cli.jsonl"
"""

BAD = """
name = "bad"
seed = "five"

[runtime]
devise = "cpu"

[[loggers]]
name = "jsnl"
"""


def styletalker_command() -> list[str]:
    script = Path(sys.executable).parent / "styletalker"
    return [str(script)] if script.exists() else [sys.executable, "-m", "styletalker_core.cli.main"]


def run_styletalker(*arguments: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*styletalker_command(), *arguments], capture_output=True, text=True, cwd=cwd, timeout=120,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )


@pytest.fixture
def recipes_here(tmp_path, monkeypatch):
    """A working directory whose ./recipes holds good.toml, bad.toml and child.toml."""
    folder = tmp_path / "recipes"
    folder.mkdir()
    (folder / "good.toml").write_text(GOOD.lstrip())
    (folder / "bad.toml").write_text(BAD.lstrip())
    (folder / "child.toml").write_text('extends = "good.toml"\nname = "child"\ndescription = "inherits good"\n')
    monkeypatch.chdir(tmp_path)
    return folder


def test_help_lists_every_subcommand():
    result = run_styletalker("--help")
    assert result.returncode == 0
    subcommands = cli_main.build_parser()._subparsers._group_actions[0].choices
    assert {"plugins", "recipes", "checkpoint"} <= set(subcommands)
    for name in subcommands:
        assert f"\n    {name} " in result.stdout, name


def test_user_error_is_one_line_without_traceback_and_with_it_under_debug(tmp_path):
    result = run_styletalker("recipes", "show", "no_such_recipe_here", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("styletalker: error: no_such_recipe_here: 1 problem: no such recipe file")
    assert "Traceback" not in result.stderr

    debug = run_styletalker("--debug", "recipes", "show", "no_such_recipe_here", cwd=tmp_path)
    assert debug.returncode != 0
    assert "Traceback (most recent call last)" in debug.stderr
    assert "RecipeError: no_such_recipe_here: 1 problem: no such recipe file" in debug.stderr


def test_unknown_kind_in_plugins_is_a_one_line_error(capsys):
    assert cli_main.main(["plugins", "--kind", "genrator"]) == 2
    captured = capsys.readouterr()
    assert captured.err == "styletalker: error: unknown component kind 'genrator'; closest kinds: generator\n"


def test_internal_error_is_one_line_unless_debug(capsys, monkeypatch):
    from styletalker_core.cli import plugins_command

    def broken(args):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(plugins_command, "run", broken)
    assert cli_main.main(["plugins"]) == 1
    err = capsys.readouterr().err
    assert err == "styletalker: internal error: ZeroDivisionError: division by zero (rerun with --debug for the traceback)\n"
    with pytest.raises(ZeroDivisionError):
        cli_main.main(["--debug", "plugins"])


def test_multi_line_error_messages_are_printed_on_one_line(capsys, monkeypatch):
    from styletalker_core.cli import plugins_command
    from styletalker_core.errors import StyleTalkerError

    def failing(args):
        raise StyleTalkerError("plugin x is broken:\n  hook definition: f(reg)\n\nrename reg to registrar")

    monkeypatch.setattr(plugins_command, "run", failing)
    assert cli_main.main(["plugins"]) == 2
    assert capsys.readouterr().err == (
        "styletalker: error: plugin x is broken: hook definition: f(reg) rename reg to registrar\n"
    )


def test_plugins_lists_kind_name_package_and_version(capsys):
    from importlib.metadata import version

    assert cli_main.main(["plugins", "--kind", "logger"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["kind", "name", "package", "version", "description"]
    jsonl = next(line for line in lines if line.split()[:2] == ["logger", "jsonl"])
    assert jsonl.split()[2:4] == ["styletalker", version("styletalker")]
    assert cli_main.main(["plugins", "--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert len(records) == len(list(get_registries().entries()))
    assert all(set(r) == {"kind", "name", "package", "version", "module", "description"} for r in records)


def test_recipes_list_shows_local_recipes(recipes_here, capsys):
    assert cli_main.main(["recipes", "list"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line for line in out.splitlines()[2:]}
    assert {"good", "bad", "child"} <= set(rows)
    assert "a recipe for the CLI tests" in rows["good"] and str(recipes_here / "good.toml") in rows["good"]
    assert "inherits good" in rows["child"]


def test_recipes_list_marks_an_unreadable_recipe_and_lists_the_others(recipes_here, capsys):
    (recipes_here / "broken.toml").write_text("name = \n")
    assert cli_main.main(["recipes", "list"]) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[2:]}
    assert "unreadable: not valid TOML" in rows["broken"]
    assert "a recipe for the CLI tests" in rows["good"]


def test_recipes_show_prints_toml_that_reads_back_to_the_same_recipe(recipes_here, capsys):
    assert cli_main.main(["recipes", "show", "child", "--set", "seed=9", "--set", "loggers.0.filename=x.jsonl"]) == 0
    text = capsys.readouterr().out
    shown = structure(tomllib.loads(text), get_registries())
    expected = load_recipe("child", ["seed=9", "loggers.0.filename=x.jsonl"])
    assert shown == expected
    assert (shown.name, shown.seed, shown.description) == ("child", 9, "inherits good")
    assert shown.loggers == [ComponentSpec("jsonl", {"filename": "x.jsonl"})]


def test_recipes_validate_reports_each_problem_with_its_path(recipes_here, capsys):
    assert cli_main.main(["recipes", "validate", "good", "child"]) == 0
    assert capsys.readouterr().out.splitlines() == ["ok  good", "ok  child"]

    assert cli_main.main(["recipes", "validate", "good", str(recipes_here / "bad.toml")]) == 2
    captured = capsys.readouterr()
    assert captured.out.splitlines() == ["ok  good"]
    assert captured.err.splitlines() == [
        f"{recipes_here / 'bad.toml'}: 3 problem(s)",
        "  - seed: expected an integer, got string 'five'",
        "  - runtime.devise: unknown field; closest fields: device",
        "  - loggers[0].name: unknown logger 'jsnl'; closest registered names: jsonl",
    ]


def test_recipes_validate_applies_overrides(recipes_here, capsys):
    assert cli_main.main(["recipes", "validate", "good", "--set", "runtime.num_threads=-2"]) == 2
    err = capsys.readouterr().err
    assert "  - runtime.num_threads: " in err and "-2" in err


def test_checkpoint_info_describes_a_checkpoint(tmp_path, capsys, registries):
    generator = build_component(registries, "generator", ComponentSpec("tiny_linear", {"resolution": 4}))
    path = save_checkpoint(tmp_path / "g.safetensors", {"generator": generator}, step=12, extra={"fid": 3.5})
    assert cli_main.main(["checkpoint", "info", str(path)]) == 0
    values = sum(p.numel() for p in generator.state_dict().values())
    assert capsys.readouterr().out.splitlines() == [
        f"{path}: format 1, step 12",
        f"  generator: generator 'tiny_linear', {values:,} values",
        "  fid: 3.5",
    ]
    assert cli_main.main(["checkpoint", "info", "--json", str(path)]) == 0
    assert json.loads(capsys.readouterr().out)["extra"] == {"fid": 3.5}


def test_checkpoint_info_refuses_a_pickle_in_one_line(tmp_path, capsys):
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps({"w": [1.0]}, protocol=4))
    assert cli_main.main(["checkpoint", "info", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"styletalker convert {path} OUT.safetensors" in err


def test_console_script_is_installed():
    script = shutil.which("styletalker", path=str(Path(sys.executable).parent))
    assert script is not None
    result = subprocess.run([script, "--version"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.startswith("styletalker ")
