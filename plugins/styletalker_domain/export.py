"""Export a finished domain-pretraining run as one small checkpoint: generator + image encoder in float16.

    python -m styletalker_domain.export RUN_DIR DESTINATION.safetensors

reads ``RUN_DIR/model.safetensors`` and the stages' ``done.json`` files, keeps the
``generator`` and ``image_encoder`` roles, stores floating-point weights as float16 and
records in the metadata's ``extra``: the training command of every stage, its wall and CPU
time, the machine load, and the held-out numbers.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch

from styletalker_core.checkpoint import load_checkpoint, save_checkpoint
from styletalker_core.errors import StyleTalkerError

ROLES = ("generator", "image_encoder")


def stage_records(run_dir: Path) -> dict[str, dict[str, Any]]:
    """Every finished stage's done.json (command, steps, seconds, evaluation), by stage name."""
    records = {}
    for done in sorted(run_dir.glob("*/done.json")):
        records[done.parent.name] = json.loads(done.read_text())
    return records


def export_domain_checkpoint(run_dir: str | Path, destination: str | Path, notes: dict[str, Any] | None = None) -> Path:
    """Write ``destination`` from the run at ``run_dir`` (see the module docstring); returns its path."""
    run_dir = Path(run_dir)
    model = run_dir / "model.safetensors"
    if not model.is_file():
        raise StyleTalkerError(f"{run_dir}: no model.safetensors; finish the run first (styletalker train ...)")
    checkpoint = load_checkpoint(model, roles=list(ROLES))
    stages = stage_records(run_dir)
    extra = {
        "exported_from": str(run_dir),
        "recipe_name": (checkpoint.recipe or {}).get("name", ""),
        "stages": {name: {key: record.get(key) for key in ("stage_plugin", "steps", "seconds_this_run", "command",
                                                           "resumed_at_step", "evaluation")}
                   for name, record in stages.items()},
        **(notes or {}),
    }
    return save_checkpoint(destination, dict(checkpoint.components), step=checkpoint.step, recipe=checkpoint.recipe,
                           extra=extra, dtype=torch.float16)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m styletalker_domain.export", description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", metavar="RUN_DIR")
    parser.add_argument("destination", metavar="DESTINATION.safetensors")
    parser.add_argument("--note", action="append", default=[], metavar="KEY=VALUE", help="extra metadata (repeatable)")
    args = parser.parse_args(argv)
    notes = dict(note.split("=", 1) for note in args.note)
    path = export_domain_checkpoint(args.run_dir, args.destination, notes)
    size = path.stat().st_size / 2**20
    print(f"wrote {path} ({size:.1f} MiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
