"""Ablation engine: several recipes trained (or reused) and evaluated on the same held-out clips.

- clips: which held-out clips, read into memory
- generation: the clips generated again by a model, audio-driven and motion-controllable
- runs: what was asked (AblationSettings) and what each recipe's part produced (RecipeRun)
- runner: train (or take a given model file), generate, evaluate, for every recipe
- report: markdown table, PNG bar charts, JSON summary
"""

from styletalker_core.ablate.clips import HeldoutClip, dataset_root, load_clips
from styletalker_core.ablate.generation import MODES, fitted_indices, generate_items
from styletalker_core.ablate.runner import (
    ModelEvaluation,
    evaluate_model,
    evaluate_model_file,
    evaluation_clips,
    model_recipe,
    quote_command,
    run_ablation,
)
from styletalker_core.ablate.runs import AblationSettings, RecipeRun

__all__ = [
    "MODES",
    "AblationSettings",
    "HeldoutClip",
    "ModelEvaluation",
    "RecipeRun",
    "dataset_root",
    "evaluate_model",
    "evaluate_model_file",
    "evaluation_clips",
    "fitted_indices",
    "generate_items",
    "load_clips",
    "model_recipe",
    "quote_command",
    "run_ablation",
]
