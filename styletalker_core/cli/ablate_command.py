"""``styletalker ablate RECIPE... [--model FILE ...] [--set k=v ...] [--clips N] [--metrics a,b] [--data DIR] [--split S]
[--seeds 0,1,2] [--speech espeak,phone,flite,festival] [--out DIR]``."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "ablate",
        help="train (or reuse) several recipes, or take model files, evaluate them on the same held-out clips, compare",
        description="For each recipe: run its training (finished stages are skipped, so a rerun only evaluates; "
        "--model evaluates a given model file instead), "
        "generate the same held-out clips with the trained model audio-driven and motion-controllable, and "
        "evaluate them with the recipe's [evaluate] metrics. Writes DIR/ablation.md (tables with the command), "
        "DIR/ablation_<mode>.png, DIR/ablation.json, and per recipe the evaluation reports and first videos.",
    )
    parser.add_argument("recipes", nargs="*", metavar="RECIPE", help="recipe files or names (each needs its own name)")
    parser.add_argument("--model", dest="models", action="append", default=[], metavar="FILE",
                        help="evaluate this trained model file instead of training: one per RECIPE in order, or "
                        "without recipes each with the recipe stored in it (e.g. checkpoints/synthetic_64_model.safetensors)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="PATH=VALUE",
                        help="override a field in every recipe, e.g. --set stages.main.steps=200")
    parser.add_argument("--clips", type=int, metavar="N", help="held-out clips to evaluate (default: the first recipe's evaluate.clips)")
    parser.add_argument("--metrics", metavar="A,B,...", help="metrics to run (default: each recipe's [evaluate] metrics)")
    parser.add_argument("--data", metavar="DIR", help="clip dataset to evaluate on (default: the dataset of the recipe's "
                        "data.val, else data.train)")
    parser.add_argument("--split", default="test", help="split of the dataset to evaluate on: test (default) for "
                        "reported numbers, val for every choice made during development (datasets of the older "
                        "layout: both are its heldout clips)")
    parser.add_argument("--modes", default="audio,motion,reconstruction", metavar="M,N",
                        help="inference modes: audio (audio-driven), motion (motion-controllable), reconstruction "
                             "(encoder + generator on the clip's own frames: the bound of the other two); default all")
    parser.add_argument("--runs", metavar="DIR", help="put each recipe's run in DIR/<recipe name> (default: its output_dir)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the audio-driven samples (clip i uses seed + i)")
    parser.add_argument("--seeds", metavar="S,T,...", help="train and evaluate every recipe once per training seed (the "
                        "recipe's seed overridden; run folders <run>_seed<S>); the tables then give the mean and 95 %% "
                        "bootstrap interval over clips and seeds, e.g. --seeds 0,1,2")
    parser.add_argument("--speech", default="espeak", metavar="A,B,...",
                        help="speech conditions of the audio-driven mode: espeak (the clips' own speech, default), phone "
                        "(8 kHz band), flite, festival (the clips' sentences spoken by those engines: apt-get install -y "
                        "flite festival); conditions other than espeak are scored with mouth_envelope too")
    parser.add_argument("--videos", type=int, default=1, metavar="N", help="generated videos to keep per recipe and mode")
    parser.add_argument("--out", default="out/ablation", metavar="DIR", help="folder for the comparison (default: out/ablation)")
    parser.set_defaults(func=run)


def command_line(args: argparse.Namespace) -> list[str]:
    """The arguments of an equivalent ``styletalker ablate`` command (recorded in the table)."""
    parts = ["styletalker", "ablate", *args.recipes]
    for model in args.models:
        parts += ["--model", model]
    for override in args.overrides:
        parts += ["--set", override]
    for flag, value in (("--clips", args.clips), ("--metrics", args.metrics), ("--data", args.data), ("--runs", args.runs)):
        if value is not None:
            parts += [flag, str(value)]
    if args.split != "test":
        parts += ["--split", args.split]
    if args.modes != "audio,motion,reconstruction":
        parts += ["--modes", args.modes]
    if args.seed:
        parts += ["--seed", str(args.seed)]
    if args.seeds:
        parts += ["--seeds", args.seeds]
    if args.speech != "espeak":
        parts += ["--speech", args.speech]
    if args.videos != 1:
        parts += ["--videos", str(args.videos)]
    return [*parts, "--out", args.out]


def run(args: argparse.Namespace) -> int:
    from styletalker_core.ablate import AblationSettings, quote_command, run_ablation
    from styletalker_core.ablate.speech import parse_conditions
    from styletalker_core.errors import StyleTalkerError
    from styletalker_core.plugin_host import get_registries
    from styletalker_core.sample.outputs import check_output_folder

    if not args.recipes and not args.models:
        raise StyleTalkerError("give recipes to train and compare, or model files with --model")
    if args.clips is not None and args.clips < 1:
        raise StyleTalkerError(f"--clips {args.clips}: give at least 1")
    if args.videos < 0:
        raise StyleTalkerError(f"--videos {args.videos}: give 0 or more")
    seeds = parse_seeds(args.seeds) if args.seeds is not None else None
    speech = parse_conditions(args.speech)
    check_output_folder(args.out, "--out")
    if args.runs:
        check_output_folder(args.runs, "--runs")
    settings = AblationSettings(
        recipes=list(args.recipes),
        out=Path(args.out),
        overrides=list(args.overrides),
        clips=args.clips,
        modes=tuple(mode.strip() for mode in args.modes.split(",") if mode.strip()),
        metrics=[name.strip() for name in args.metrics.split(",") if name.strip()] if args.metrics else None,
        data=args.data,
        runs=Path(args.runs) if args.runs else None,
        seed=args.seed,
        videos=args.videos,
        command=quote_command(command_line(args)),
        split=args.split,
        models=list(args.models),
        seeds=seeds,
        speech=speech,
    )
    runs = run_ablation(settings, get_registries())
    print((settings.out / "ablation.md").read_text())
    rows = len(dict.fromkeys(run.name for run in runs))
    times = f" x {len(seeds)} seeds" if seeds else ""
    print(f"wrote {settings.out / 'ablation.md'}, ablation.json and the plots ({rows} {'recipes' if args.recipes else 'models'}{times})")
    return 0


def parse_seeds(text: str) -> list[int]:
    """``"0,1,2"`` -> [0, 1, 2]; anything else is a user error naming the flag."""
    from styletalker_core.errors import StyleTalkerError

    try:
        seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise StyleTalkerError(f"--seeds {text}: give whole numbers separated by commas, e.g. 0,1,2") from None
    if not seeds or len(set(seeds)) != len(seeds) or any(seed < 0 for seed in seeds):
        raise StyleTalkerError(f"--seeds {text}: give distinct seeds >= 0, e.g. 0,1,2")
    return seeds
