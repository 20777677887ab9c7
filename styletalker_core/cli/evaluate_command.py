"""``styletalker evaluate --generated DIR_OR_FILES [--reference ...] [--metrics a,b] [--recipe R] --out results.json``,
or ``styletalker evaluate --model FILE [--data DIR] [--split test] ... --out results.json``."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="score generated videos with metric plugins (JSON and a table)",
        description="Run metric plugins on generated videos against their references and write the values per "
        "video and their mean, std and count to JSON. A generated video NAME.mp4 pairs with the entry NAME of each "
        "source (a clip dataset folder, a folder of videos/images/audio, or one file for all), or with the longest "
        "entry E such that NAME starts with E followed by _ - or . (see docs/evaluation.md). Metrics that lack an "
        "input (a reference video, labels, ...) are skipped for that video and the reason is recorded. With --model, "
        "a trained model file generates the clips of a dataset split itself (as `styletalker ablate` does) and they "
        "are scored the same way.",
    )
    inputs = parser.add_mutually_exclusive_group(required=True)
    inputs.add_argument("--generated", nargs="+", metavar="PATH", help="generated videos, or folders of them")
    inputs.add_argument("--manifest", metavar="FILE", help="JSON or CSV file, one row per generated video (see docs/evaluation.md)")
    inputs.add_argument("--model", metavar="FILE",
                        help="a trained model file (e.g. checkpoints/synthetic_64_model.safetensors): generate clips of "
                        "--split of --data with it in each of --modes and score them, without training")
    parser.add_argument("--reference", nargs="+", default=[], metavar="PATH",
                        help="ground truth: clip dataset folders, folders of videos/images, or single files")
    parser.add_argument("--motion", nargs="+", default=[], metavar="PATH", help="motion source videos (motion-controllable mode)")
    parser.add_argument("--audio", nargs="+", default=[], metavar="PATH",
                        help="driving audio (default: the generated video's own audio track)")
    parser.add_argument("--metrics", metavar="A,B,...",
                        help="metric plugins to run (default: the recipe's [evaluate] metrics, else "
                        "psnr,ssim,lmd,csim,blink_rate,pose_diversity); see `styletalker plugins --kind metric`")
    parser.add_argument("--recipe", metavar="RECIPE", help="take metrics and their options from this recipe's [evaluate] section")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="PATH=VALUE",
                        help="override a field of --recipe")
    parser.add_argument("--out", required=True, metavar="FILE.json", help="where to write the results")
    model = parser.add_argument_group("with --model")
    model.add_argument("--data", metavar="DIR", help="clip dataset (default: the recipe's data.val, else data.train; the "
                       "recipe is --recipe, else the one stored in the model file)")
    model.add_argument("--split", default="test", help="split to evaluate on: test (default) for reported numbers, val "
                       "for choices made during development (datasets of the older layout: their heldout clips)")
    model.add_argument("--clips", type=int, metavar="N", help="the first N clips of the split (default: the recipe's evaluate.clips)")
    model.add_argument("--modes", default="audio,motion,reconstruction", metavar="M,N",
                       help="audio (audio-driven), motion (motion-controllable), reconstruction (G(E(x))); default all")
    model.add_argument("--seed", type=int, default=0, help="seed of the audio-driven samples (clip i uses seed + i)")
    model.add_argument("--speech", default="espeak", metavar="A,B,...",
                       help="speech conditions of the audio-driven mode: espeak (the clips' own speech, default), phone "
                       "(8 kHz band), flite, festival (the clips' sentences spoken by those engines, which no training "
                       "heard: apt-get install -y flite festival); reported as modes audio@phone, ...; scored with "
                       "mouth_envelope too")
    parser.set_defaults(func=run)


def run_model(args: argparse.Namespace) -> int:
    """``evaluate --model``: generate and score clips of a dataset split with a trained model file."""
    from styletalker_core.ablate import evaluate_model_file
    from styletalker_core.ablate.report import mode_title
    from styletalker_core.ablate.speech import parse_conditions
    from styletalker_core.errors import StyleTalkerError
    from styletalker_core.io.atomic import write_json_atomic
    from styletalker_core.plugin_host import get_registries
    from styletalker_core.recipe import load_recipe
    from styletalker_core.sample.outputs import check_output_file

    if args.reference or args.motion or args.audio:
        raise StyleTalkerError("--model generates the clips of --data itself: drop --reference, --motion and --audio")
    if args.clips is not None and args.clips < 1:
        raise StyleTalkerError(f"--clips {args.clips}: give at least 1")
    check_output_file(args.out, "--out")
    registries = get_registries()
    recipe = load_recipe(args.recipe, args.overrides, registries) if args.recipe else None
    names = [name.strip() for name in args.metrics.split(",") if name.strip()] if args.metrics else None
    modes = [mode.strip() for mode in args.modes.split(",") if mode.strip()]
    speech = parse_conditions(args.speech)
    result = evaluate_model_file(args.model, registries, recipe=recipe, metrics=names, data=args.data, split=args.split,
                                 clips=args.clips, modes=modes, seed=args.seed, speech=speech)
    write_json_atomic(args.out, result.to_json())
    for mode, report in result.reports.items():
        print(f"## {mode_title(mode)}")
        print(report.format_table())
    print(f"wrote {args.out} ({len(result.clips)} clips of split {result.split} of {result.data}, {len(modes)} modes)")
    return 0


def read_evaluation_manifest(path: str):  # noqa: ANN201 - list[styletalker_core.evaluate.EvalJob]
    """The manifest's jobs; a file that is not UTF-8 text, JSON or CSV is a user error naming it."""
    import csv
    import json

    from styletalker_core.errors import StyleTalkerError
    from styletalker_core.evaluate import read_manifest

    try:
        return read_manifest(path)
    except UnicodeDecodeError as error:
        raise StyleTalkerError(f"--manifest {path}: not a text file (byte {error.start} is not UTF-8); "
                               "give a .csv or .json manifest") from None
    except (json.JSONDecodeError, csv.Error, RecursionError) as error:
        kind = "JSON" if str(path).lower().endswith(".json") else "CSV"
        raise StyleTalkerError(f"--manifest {path}: not valid {kind} ({error})") from None


def run(args: argparse.Namespace) -> int:
    from styletalker_core.errors import StyleTalkerError
    from styletalker_core.evaluate import ClipCache, build_metrics, evaluate_items, load_job, metric_specs, pair_inputs
    from styletalker_core.plugin_host import get_registries
    from styletalker_core.recipe import load_recipe
    from styletalker_core.sample.outputs import check_output_file

    if args.overrides and not args.recipe:
        raise StyleTalkerError("--set changes a recipe: give the recipe with --recipe")
    if args.model:
        return run_model(args)
    for flag, value in (("--data", args.data), ("--clips", args.clips), ("--speech", None if args.speech == "espeak" else args.speech)):
        if value is not None:
            raise StyleTalkerError(f"{flag} goes with --model (a model generating the clips it is scored on)")
    if args.manifest and (args.reference or args.motion or args.audio):
        raise StyleTalkerError("--manifest names every input itself: drop --reference, --motion and --audio")
    check_output_file(args.out, "--out")
    registries = get_registries()
    recipe = load_recipe(args.recipe, args.overrides, registries) if args.recipe else None
    names = [name.strip() for name in args.metrics.split(",") if name.strip()] if args.metrics else None
    metrics = build_metrics(registries, metric_specs(names, recipe))
    jobs = read_evaluation_manifest(args.manifest) if args.manifest else pair_inputs(args.generated, args.reference, args.motion, args.audio)
    clips = ClipCache()
    report = evaluate_items(metrics, ((job.name, load_job(job, clips), job.describe()) for job in jobs))
    report.write_json(args.out)
    print(report.format_table())
    skipped: dict[str, set[str]] = {}
    for item in report.items:
        for metric, reason in item.skipped.items():
            skipped.setdefault(f"{metric} ({reason})", set()).add(item.name)
    for what, names_skipped in skipped.items():
        print(f"skipped {what}: {len(names_skipped)} of {len(report.items)} videos")
    print(f"wrote {args.out} ({len(report.items)} videos)")
    return 0
