"""Record the shipped model's evaluation numbers on a fixed set of held-out clips, for
tests/test_shipped_model.py (which recomputes them and compares).

    .venv/bin/python tools/record_shipped_numbers.py            # print the table, change nothing
    .venv/bin/python tools/record_shipped_numbers.py --write    # also write tests/reference/shipped_model_numbers.json

Rerun with --write whenever checkpoints/synthetic_64_model.safetensors is replaced (the test says
so when the file's sha256 differs from the recorded one), or when the judges should change
(--metrics-from RECIPE: the [evaluate] metrics of that recipe, recorded with their options).

What it does: renders the first ``--clips`` (8) of the test clips 340..399 of the shipped
model's dataset, exactly as ``styletalker data synth data/synthetic_64 --clips 400 --seed 1``
makes them (clips are deterministic per index, so only these are made), and evaluates the model
file on them the way ``styletalker ablate recipes/synthetic_64.toml --model
checkpoints/synthetic_64_model.safetensors`` does (audio-driven with seed 0 + clip index,
motion-controllable from the next clip, and the encoder's reconstruction), with the metrics and
options stored in the table. ``--clips 60`` evaluates the whole test split: README's numbers come
from the `ablate` command above on the same 60 clips.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "checkpoints" / "synthetic_64_model.safetensors"
TABLE = ROOT / "tests" / "reference" / "shipped_model_numbers.json"
# The shipped model's data: styletalker data synth data/synthetic_64 --clips 400 --seed 1
DATASET = {"clips": 400, "seed": 1}
DATASET_COMMAND = "styletalker data synth data/synthetic_64 --clips 400 --seed 1"
HELDOUT = tuple(range(340, 400))  # its 60 test clips (30 identities; what `ablate` evaluates)
CLIPS = 8  # the test's subset, the first 8 of them (about 25 s of CI); --clips 60 gives README's numbers
MODES = ("audio", "motion", "reconstruction")
SEED = 0


def write_clips(root: Path, dataset: dict[str, Any], indices: list[int]) -> Path:
    """A clip dataset holding only clips ``indices`` of the synthetic dataset ``dataset`` (SynthConfig fields)."""
    from styletalker_core.data.shards import ShardWriter
    from styletalker_core.data.synthetic import SynthConfig, make_clip
    from styletalker_core.data.synthetic.generate import dataset_info

    config = SynthConfig(**dataset)
    writer = ShardWriter(root)
    writer.write("subset", [make_clip(config, index) for index in indices])
    writer.finalize(dataset_info(config))
    return root


def evaluate(table: dict[str, Any], data: Path, model: Path = MODEL) -> dict[str, dict[str, float]]:
    """Mean of every value per mode, as recorded in ``table`` (its clips, modes, seed and metrics)."""
    from styletalker_core.ablate import evaluate_model_file
    from styletalker_core.ablate.clips import EVALUATION_SPLIT
    from styletalker_core.plugin_host import get_registries
    from styletalker_core.recipe import load_recipe, structure, unstructure

    registries = get_registries()
    raw = unstructure(load_recipe("synthetic_64", registries=registries))
    raw["evaluate"]["metrics"] = table["metrics"]
    raw["sample"] = {**raw.get("sample", {}), **table["sample"]}
    recipe = structure(raw, registries, source="the recorded table")
    from styletalker_core.data.synthetic.clip import clip_id

    result = evaluate_model_file(model, registries, recipe=recipe, data=data, split=EVALUATION_SPLIT,
                                 modes=table["modes"], seed=table["seed"],
                                 clip_ids=[clip_id(index) for index in table["clips"]])
    return {mode: {key: summary.mean for key, summary in report.summary.items()} for mode, report in result.reports.items()}


def new_table(metrics_from: str, clips: int = CLIPS) -> dict[str, Any]:
    from styletalker_core.evaluate.judges import file_sha256
    from styletalker_core.recipe import load_recipe, unstructure

    recipe = load_recipe(metrics_from)
    return {
        "model": str(MODEL.relative_to(ROOT)),
        "model_sha256": file_sha256(MODEL),
        "dataset": DATASET,
        "dataset_command": DATASET_COMMAND,
        "clips": list(HELDOUT[:clips]),
        "modes": list(MODES),
        "seed": SEED,
        "sample": {"temperature": recipe.sample.temperature, "pose_scale": recipe.sample.pose_scale},
        "metrics": unstructure(recipe)["evaluate"]["metrics"],
        "recorded_by": "python tools/record_shipped_numbers.py --write",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help=f"write {TABLE.relative_to(ROOT)}")
    parser.add_argument("--clips", type=int, default=CLIPS, choices=range(1, len(HELDOUT) + 1), metavar="N",
                        help=f"the first N of the {len(HELDOUT)} test clips (default {CLIPS}, the test's subset)")
    parser.add_argument("--metrics-from", default="synthetic_64", metavar="RECIPE",
                        help="take the metrics from this recipe's [evaluate] (default: synthetic_64)")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    table = new_table(args.metrics_from, args.clips)
    started = time.time()
    with tempfile.TemporaryDirectory() as folder:
        data = write_clips(Path(folder) / "clips", table["dataset"], table["clips"])
        table["values"] = evaluate(table, data)
    table["recorded"] = time.strftime("%Y-%m-%d")
    print(f"evaluated {MODEL.name} on {len(table['clips'])} clips in {time.time() - started:.0f} s", file=sys.stderr)
    for mode, values in table["values"].items():
        print(f"{mode}: " + ", ".join(f"{key} {value:.4g}" for key, value in values.items()))
    if args.write:
        TABLE.parent.mkdir(parents=True, exist_ok=True)
        TABLE.write_text(json.dumps(table, indent=1) + "\n")
        print(f"wrote {TABLE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
