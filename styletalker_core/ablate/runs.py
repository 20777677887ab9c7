"""What ``styletalker ablate`` was asked to do and what each recipe's part produced.

Shared by the runner (which fills them) and the report (which reads them), so neither imports the other.
"""

from __future__ import annotations

from pathlib import Path

import attrs

from styletalker_core.ablate.clips import EVALUATION_SPLIT
from styletalker_core.evaluate.report import EvalReport


@attrs.define
class AblationSettings:
    """What ``styletalker ablate`` was asked to do (every field has a command-line flag)."""

    recipes: list[str]
    out: Path
    overrides: list[str] = attrs.Factory(list)
    clips: int | None = None  # None: the first recipe's evaluate.clips
    modes: tuple[str, ...] = ("audio", "motion", "reconstruction")
    metrics: list[str] | None = None  # None: each recipe's [evaluate] metrics
    data: str | None = None
    runs: Path | None = None  # None: each recipe's output_dir
    seed: int = 0
    videos: int = 1
    command: str = ""
    split: str = EVALUATION_SPLIT  # "test" for reported numbers; "val" for choices made during development
    models: list[str] = attrs.Factory(list)  # model files evaluated instead of training (one per recipe, or alone)
    seeds: list[int] | None = None  # None: each recipe once with its own seed; else once per seed (recipe seed overridden)
    speech: tuple[str, ...] = ("espeak",)  # speech conditions of the audio mode (styletalker_core/ablate/speech.py)


@attrs.define
class RecipeRun:
    """One recipe's part of the ablation."""

    name: str
    source: str
    run_dir: Path
    model: Path
    train_seconds: float
    stages_run: list[str]
    stages_skipped: list[str]
    reports: dict[str, EvalReport] = attrs.Factory(dict)
    clips: list[str] = attrs.Factory(list)
    data: str = ""
    given_model: bool = False  # evaluated as given (--model), not trained here
    seed: int | None = None  # the training seed set by --seeds (None: the recipe's own)
    training_evaluation: dict[str, dict[str, float]] = attrs.Factory(dict)  # stage -> held-out values of training
