"""Progress bars: one switch (a terminal on stderr, STYLETALKER_PROGRESS, the commands' --no-progress),
and the held-out evaluations of the lip-sync, main and prior stages show a bar with an ETA."""

from __future__ import annotations

import io
import sys

from test_motion_stages import main_stage, recipe
from test_talking_head_toys import toy_registries, write_toy_dataset

from styletalker_core.io import progress
from styletalker_core.recipe import structure
from styletalker_core.train import train_recipe


class Terminal(io.StringIO):
    """A stderr that says it is a terminal and keeps what was written."""

    def isatty(self) -> bool:
        return True


def test_bars_show_on_a_terminal_unless_switched_off(monkeypatch):
    monkeypatch.setenv(progress.PROGRESS_ENV, "1")  # restored afterwards
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert not progress.progress_enabled()  # a log file or a pipe
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert progress.progress_enabled()
    assert list(progress.progress_bar(range(3), total=3, desc="work", unit="clip")) == [0, 1, 2]
    assert "work: 100%" in terminal.getvalue() and "3/3" in terminal.getvalue()
    progress.hide_progress()
    assert not progress.progress_enabled()
    assert list(progress.progress_bar(range(2), total=2, desc="hidden")) == [0, 1]
    assert "hidden" not in terminal.getvalue()


def test_train_no_progress_hides_every_bar(monkeypatch):
    from styletalker_core.cli import main as cli_main

    monkeypatch.setenv(progress.PROGRESS_ENV, "1")  # restored afterwards
    monkeypatch.setattr(sys, "stderr", Terminal())
    assert progress.progress_enabled()
    # the flag acts before anything is read: a recipe that does not exist still leaves the switch off
    assert cli_main.main(["train", "no_such_recipe", "--no-progress"]) != 0
    assert not progress.progress_enabled()


def test_the_stage_evaluations_show_a_bar_over_their_clips(tmp_path, monkeypatch):
    registries = toy_registries()
    data_root = write_toy_dataset(tmp_path / "data", clips=6, frames=40)
    engine = {"batch_size": 2, "checkpoint_every": 2, "log_every": 1}
    stages = {
        "lipsync": {"name": "lipsync_pretrain", "steps": 1, **engine, "windows_per_clip": 2, "negatives": 2,
                    "min_negative_offset": 3, "eval_clips": 2, "eval_max_offset": 2},
        "main": main_stage(steps=1, eval_clips=2, **engine),
        "prior": {"name": "prior_only", "steps": 1, **engine, "eval_clips": 2},
    }
    monkeypatch.setenv(progress.PROGRESS_ENV, "1")  # restored afterwards
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    train_recipe(structure(recipe(data_root, tmp_path / "run", stages), registries), registries)
    shown = terminal.getvalue()
    for stage in ("lipsync", "main", "prior"):
        assert f"{stage}: evaluate: 100%" in shown and "2/2 [" in shown, stage
    assert "clip/s" in shown or "s/clip" in shown  # a rate, hence an ETA while it runs
