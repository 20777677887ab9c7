"""``styletalker evaluate --generated DIR_OR_FILES [--reference ...] [--metrics a,b] [--recipe R] --out results.json``."""

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
        "input (a reference video, labels, ...) are skipped for that video and the reason is recorded.",
    )
    inputs = parser.add_mutually_exclusive_group(required=True)
    inputs.add_argument("--generated", nargs="+", metavar="PATH", help="generated videos, or folders of them")
    inputs.add_argument("--manifest", metavar="FILE", help="JSON or CSV file, one row per generated video (see docs/evaluation.md)")
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
    parser.set_defaults(func=run)


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
    from styletalker_core.plugins import get_registries
    from styletalker_core.recipe import load_recipe
    from styletalker_core.sample.outputs import check_output_file

    if args.overrides and not args.recipe:
        raise StyleTalkerError("--set changes a recipe: give the recipe with --recipe")
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
