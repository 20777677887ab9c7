"""Training engine: recipe stages in order, with checkpoints, exact resume and data parallelism."""

from styletalker_core.train.context import StageContext
from styletalker_core.train.loop import DivergenceError, StageResult, run_stage
from styletalker_core.train.pipeline import MODEL_FILE, TrainResult, train_recipe
from styletalker_core.train.runtime import Runtime, derive_seed, seed_everything, setup_runtime

__all__ = [
    "MODEL_FILE",
    "DivergenceError",
    "Runtime",
    "StageContext",
    "StageResult",
    "TrainResult",
    "derive_seed",
    "run_stage",
    "seed_everything",
    "setup_runtime",
    "train_recipe",
]
