"""Ablation engine: several recipes trained (or reused) and evaluated on the same held-out clips.

- clips: which held-out clips, read into memory
- generation: the clips generated again by a model, audio-driven and motion-controllable
- runner: train, generate, evaluate, for every recipe
- report: markdown table, PNG bar charts, JSON summary
"""

from styletalker_core.ablate.clips import HeldoutClip, dataset_root, load_clips
from styletalker_core.ablate.generation import MODES, fitted_indices, generate_items
from styletalker_core.ablate.runner import AblationSettings, RecipeRun, evaluate_model, evaluation_clips, quote_command, run_ablation

__all__ = [
    "MODES",
    "AblationSettings",
    "HeldoutClip",
    "RecipeRun",
    "dataset_root",
    "evaluate_model",
    "evaluation_clips",
    "fitted_indices",
    "generate_items",
    "load_clips",
    "quote_command",
    "run_ablation",
]
