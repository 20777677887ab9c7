"""Resume checkpoints: module weights, optimizer, scheduler and scaler states, RNG states, step.

One safetensors file per checkpoint; tensors by prefixed key, everything else as one JSON
document in the header (never pickled). ``latest.json`` beside the checkpoints names the
newest complete one and is replaced atomically after it is written; the two newest are kept.
A resume checks the named file (header and length) and falls back to the newest complete
older one if it is missing, truncated or corrupt, saying so in one warning line.
"""

from __future__ import annotations

import json
import logging
import random
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from styletalker_core.checkpoint import load_state_strict, require_safetensors
from styletalker_core.checkpoint.files import safetensors_problem
from styletalker_core.errors import CheckpointError
from styletalker_core.io.atomic import atomic_path, write_json_atomic

LOG = logging.getLogger(__name__)
META_KEY = "styletalker_training_state"


def _split_tensors(tree: Any, prefix: str, tensors: dict[str, torch.Tensor]) -> Any:
    """Replace tensors in a nested dict/list by {"__tensor__": key}, collecting them in ``tensors``."""
    if isinstance(tree, torch.Tensor):
        tensors[prefix] = tree.detach().cpu().contiguous().clone()
        return {"__tensor__": prefix}
    if isinstance(tree, dict):
        return {str(k): _split_tensors(v, f"{prefix}.{k}", tensors) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return [_split_tensors(v, f"{prefix}.{i}", tensors) for i, v in enumerate(tree)]
    return tree


def _join_tensors(tree: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(tree, dict):
        if set(tree) == {"__tensor__"}:
            return tensors[tree["__tensor__"]]
        return {k: _join_tensors(v, tensors) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_join_tensors(v, tensors) for v in tree]
    return tree


def _optimizer_state(optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    state = optimizer.state_dict()
    # JSON keys are strings; remember that parameter ids are integers.
    return {"state": {str(k): v for k, v in state["state"].items()}, "param_groups": state["param_groups"]}


def _restore_optimizer(optimizer: torch.optim.Optimizer, saved: dict[str, Any]) -> None:
    optimizer.load_state_dict({"state": {int(k): v for k, v in saved["state"].items()}, "param_groups": saved["param_groups"]})


def capture_rng() -> dict[str, Any]:
    """Every RNG the training loop touches: python, numpy, torch CPU and CUDA."""
    numpy_state = cast("tuple[str, np.ndarray, int, int, float]", np.random.get_state())  # legacy=True (default): the tuple
    return {
        "python": [random.getstate()[0], list(random.getstate()[1]), random.getstate()[2]],
        "numpy": {"name": numpy_state[0], "keys": torch.from_numpy(numpy_state[1].astype(np.int64)),
                  "pos": int(numpy_state[2]), "has_gauss": int(numpy_state[3]), "gauss": float(numpy_state[4])},
        "torch": torch.get_rng_state(),
        "cuda": list(torch.cuda.get_rng_state_all()) if torch.cuda.is_available() else [],
    }


def restore_rng(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    numpy_state = state["numpy"]
    np.random.set_state((numpy_state["name"], numpy_state["keys"].numpy().astype(np.uint32), numpy_state["pos"],
                         numpy_state["has_gauss"], numpy_state["gauss"]))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_training_state(
    path: Path,
    *,
    step: int,
    modules: dict[str, nn.Module],
    optimizers: dict[str, torch.optim.Optimizer],
    schedulers: dict[str, Any],
    scaler: torch.amp.GradScaler,
    stage_state: dict[str, Any],
) -> Path:
    """Write a resume checkpoint atomically."""
    tensors: dict[str, torch.Tensor] = {}
    for role, module in modules.items():
        for key, value in module.state_dict().items():
            tensors[f"module.{role}.{key}"] = value.detach().cpu().contiguous().clone()
    document = {
        "step": step,
        "optimizers": {name: _split_tensors(_optimizer_state(o), f"optim.{name}", tensors) for name, o in optimizers.items()},
        "schedulers": {name: s.state_dict() for name, s in schedulers.items()},
        "scaler": _split_tensors(scaler.state_dict(), "scaler", tensors),
        "rng": _split_tensors(capture_rng(), "rng", tensors),
        "stage": stage_state,
    }
    with atomic_path(path) as temporary:
        save_file(tensors, str(temporary), metadata={META_KEY: json.dumps(document)})
    return path


def load_training_state(
    path: Path,
    *,
    modules: dict[str, nn.Module],
    optimizers: dict[str, torch.optim.Optimizer],
    schedulers: dict[str, Any],
    scaler: torch.amp.GradScaler,
) -> tuple[int, dict[str, Any]]:
    """Restore everything ``save_training_state`` wrote; returns (step, stage extra state)."""
    path = require_safetensors(path)
    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata() or {}
        if META_KEY not in metadata:
            raise CheckpointError(f"{path}: not a styletalker training-state checkpoint")
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118 - a safetensors handle is not iterable
    document = json.loads(metadata[META_KEY])
    for role, module in modules.items():
        prefix = f"module.{role}."
        load_state_strict(module, {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}, f"{path} [{role}]")
    for name, optimizer in optimizers.items():
        _restore_optimizer(optimizer, _join_tensors(document["optimizers"][name], tensors))
    for name, scheduler in schedulers.items():
        scheduler.load_state_dict(document["schedulers"][name])
    scaler.load_state_dict(_join_tensors(document["scaler"], tensors))
    restore_rng(_join_tensors(document["rng"], tensors))
    return int(document["step"]), document["stage"]


def _named_latest(directory: Path) -> Path | None:
    try:
        return directory / Path(json.loads((directory / "latest.json").read_text())["file"]).name
    except (OSError, ValueError, KeyError, TypeError):
        return None


def latest_checkpoint(directory: Path) -> Path | None:
    """The newest complete resume checkpoint in ``directory``, or None.

    That is the one ``latest.json`` names, unless it is missing, truncated or corrupt (a kill or
    a crash while it was written): then the newest complete older ``step_*`` file, with one
    warning line naming both.
    """
    named = _named_latest(directory)
    others = sorted((p for p in directory.glob("step_*.safetensors") if p != named), reverse=True)
    candidates = ([named] if named is not None else []) + others
    rejected: list[str] = []
    for path in candidates:
        problem = safetensors_problem(path)
        if problem is None:
            if rejected:
                LOG.warning("%s: %s; resuming from %s instead", directory, ", ".join(rejected), path.name)
            return path
        rejected.append(f"{path.name} is unusable ({problem})")
    if rejected:
        LOG.warning("%s: %s; no usable resume checkpoint, the stage starts again from step 0",
                    directory, ", ".join(rejected))
    return None


def mark_latest(directory: Path, path: Path, keep: int = 2) -> None:
    """Point ``latest.json`` at ``path`` and delete all but the ``keep`` newest checkpoints."""
    write_json_atomic(directory / "latest.json", {"file": path.name})
    for old in sorted(directory.glob("step_*.safetensors"))[:-keep]:
        old.unlink(missing_ok=True)
