"""``styletalker train RECIPE [--set k=v ...] [--resume DIR] [--stage NAME ...]``."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="run a recipe's training stages (resumes and skips finished stages)",
        description="Run the recipe's stages in order. Rerunning with the same recipe and output folder "
        "skips finished stages and resumes the interrupted one from its latest checkpoint. A changed recipe "
        "keeps the finished stages whose own configuration is unchanged; --restart-from STAGE retrains from a "
        "changed one. "
        "For several processes or GPUs launch with torchrun, e.g. "
        "`torchrun --nproc_per_node 2 -m styletalker_core.cli.main train RECIPE`.",
    )
    parser.add_argument("recipe", metavar="RECIPE", help="recipe file or name (see `styletalker recipes list`)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="PATH=VALUE",
                        help="override a recipe field, e.g. --set stages.main.steps=100")
    parser.add_argument("--resume", metavar="DIR", help="an existing run folder to continue (default: the recipe's output_dir)")
    parser.add_argument("--restart-from", metavar="STAGE",
                        help="train this stage and every later one again (their folders in the run are replaced); "
                        "needed when a finished stage's configuration changed")
    parser.add_argument("--stage", dest="stages", action="append", metavar="NAME",
                        help="run only this stage (repeatable); finished earlier stages are still used")
    parser.add_argument("--no-progress", action="store_true",
                        help="hide the progress bars of training and of the stages' evaluations (they show only "
                        "when stderr is a terminal)")
    parser.set_defaults(func=run)


def check_inputs(recipe, resume: str | None) -> None:  # noqa: ANN001 - a styletalker_core.recipe.Recipe
    """Before anything is written: the run folder can be written, and the clip datasets the recipe
    names (``sharded`` datasets' ``root``) exist and have a readable manifest."""
    from pathlib import Path

    from styletalker_core.cli.data_encode import check_dataset
    from styletalker_core.errors import StyleTalkerError
    from styletalker_core.sample.outputs import check_output_folder

    if resume is not None and not Path(resume).is_dir():
        what = "is a file, not a run folder" if Path(resume).exists() else "no such run folder"
        raise StyleTalkerError(f"--resume {resume}: {what}; give a folder an earlier `styletalker train` wrote, "
                               f"or drop --resume to train in the recipe's output_dir ({recipe.run_dir()})")
    check_output_folder(resume or recipe.run_dir(), "--resume" if resume else "output_dir")
    for spec in (recipe.data.train, recipe.data.val):
        root = spec.options.get("root") if spec is not None and spec.name == "sharded" else None
        if isinstance(root, str) and root:
            check_dataset(root)


def run(args: argparse.Namespace) -> int:
    from styletalker_core.io.progress import hide_progress
    from styletalker_core.plugin_host import get_registries
    from styletalker_core.recipe import load_recipe
    from styletalker_core.train import train_recipe

    if args.no_progress:
        hide_progress()
    registries = get_registries()
    recipe = load_recipe(args.recipe, args.overrides, registries)
    check_inputs(recipe, args.resume)
    result = train_recipe(recipe, registries, run_dir=args.resume, only_stages=args.stages, restart_from=args.restart_from)
    for stage in result.stages:
        numbers = ", ".join(f"{k}={v:.4g}" for k, v in stage.evaluation.items())
        print(f"stage {stage.name}: {stage.seconds:.0f} s{'; ' + numbers if numbers else ''}")
    for name in result.skipped:
        print(f"stage {name}: already finished, skipped")
    print(f"model: {result.model}")
    return 0
