"""Commands added by plugins (``styletalker.commands`` entry points): ``data synth`` comes from the
styletalker_synthetic plugin, a third-party package adds its own, a broken one is skipped with
one warning line, and building the parser (``--help``) imports no torch."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

from styletalker_core.cli import main as cli_main
from styletalker_core.plugin_host.commands import COMMANDS_GROUP

ROOT = Path(__file__).resolve().parents[1]

HELLO = '''
from styletalker_core.plugin_host import hookimpl


@hookimpl
def styletalker_add_commands(groups):
    hello = groups["styletalker"].add_parser("hello", help="greet")
    hello.add_argument("name")
    hello.set_defaults(func=lambda args: print(f"hello {args.name}") or 7)
'''


def install_commands(site: Path, dist: str, module: str, text: str) -> None:
    """Package ``module`` (one file, commands.py) with a .dist-info declaring it in styletalker.commands."""
    (site / module).mkdir()
    (site / module / "__init__.py").write_text("")
    (site / module / "commands.py").write_text(textwrap.dedent(text))
    info = site / f"{dist.replace('-', '_')}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[{COMMANDS_GROUP}]\n{module} = {module}.commands\n")


def data_actions() -> dict:
    top = cli_main.build_parser()._subparsers._group_actions[0].choices
    return top["data"]._subparsers._group_actions[0].choices


def test_this_distribution_declares_the_synth_command():
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"][COMMANDS_GROUP]
    assert declared == {"synthetic": "styletalker_synthetic.commands"}


def test_data_synth_comes_from_the_synthetic_plugin():
    actions = data_actions()
    assert set(actions) >= {"encode", "synth"}
    assert actions["synth"].get_default("func").__module__ == "styletalker_synthetic.commands"
    args = cli_main.build_parser().parse_args(["data", "synth", "out", "--clips", "3", "--seconds", "2"])
    assert (args.clips, args.seconds, args.resolution, args.seed) == (3, (2.0, 2.0), 64, 0)


def test_a_third_party_command_runs(site, capsys):
    install_commands(site, "acme-hello", "acme_hello", HELLO)
    assert cli_main.main(["hello", "world"]) == 7
    captured = capsys.readouterr()
    assert captured.out == "hello world\n"
    assert captured.err == ""


BROKEN = {
    "import fails": ("import not_a_module_anywhere\n", "ModuleNotFoundError"),
    "hook raises": ("from styletalker_core.plugin_host import hookimpl\n\n@hookimpl\n"
                    "def styletalker_add_commands(groups):\n    raise KeyError('styletalker fancy')\n", "KeyError"),
    "name taken": ("from styletalker_core.plugin_host import hookimpl\n\n@hookimpl\n"
                   "def styletalker_add_commands(groups):\n    groups['styletalker'].add_parser('train')\n", "conflicting subparser: train"),
    "misspelled hook": ("from styletalker_core.plugin_host import hookimpl\n\n@hookimpl\n"
                        "def styletalker_add_command(groups):\n    pass\n", "styletalker_add_command"),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_a_broken_provider_is_skipped_with_one_warning(site, capsys, case):
    text, fragment = BROKEN[case]
    install_commands(site, "broken-commands", "broken_commands", text)
    assert "synth" in data_actions()  # the other providers' commands stay
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("styletalker: warning: plugin commands 'broken_commands' (broken_commands.commands) "
                               "from package broken-commands 1.0 skipped: ")
    assert fragment in lines[0]
    assert lines[0].endswith("fix or uninstall that package")


def test_building_the_parser_imports_no_torch():
    code = ("import sys; from styletalker_core.cli.main import build_parser; build_parser(); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch'))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=dict(os.environ))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "[]\n"
