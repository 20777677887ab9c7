"""``styletalker recipes list|show|validate``."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("recipes", help="list, show or validate recipes")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="recipes found in ./recipes and the project's recipes/")
    listing.set_defaults(func=run_list)
    for name, helptext, func in (
        ("show", "print the resolved recipe (extends and --set applied) as TOML", run_show),
        ("validate", "check recipes and report every problem with its field path (also: no file a training "
         "loss reads may be one an evaluation metric of the recipe reads), then the world they run in: data "
         "folders and their splits, labels, landmarks and latent caches the stages need, weights files and "
         "their shapes, the device", run_validate),
    ):
        action = actions.add_parser(name, help=helptext)
        action.add_argument("recipes", nargs="+" if name == "validate" else None, metavar="RECIPE")
        action.add_argument("--set", dest="overrides", action="append", default=[], metavar="PATH=VALUE")
        if name == "validate":
            action.add_argument("--schema-only", action="store_true",
                                help="check the recipe only, not the world it runs in (data, files, device)")
            action.add_argument("--strict", action="store_true",
                                help="notes (a data folder not made yet, files only evaluate reads) count as problems")
            action.add_argument("--build", action="store_true",
                                help="also construct every model component (on the meta device: no memory, no time)")
        action.set_defaults(func=func)


def run_list(args: argparse.Namespace) -> int:
    from styletalker_core.errors import RecipeError
    from styletalker_core.io.table import format_table
    from styletalker_core.recipe import list_recipes, load_raw

    rows = []
    for path in list_recipes():
        try:  # one unreadable recipe must not hide the others
            description = str(load_raw(path).get("description", ""))
        except RecipeError as error:
            description = "unreadable: " + "; ".join(error.problems)
        rows.append([path.stem, description, str(path)])
    print(format_table(["recipe", "description", "file"], rows))
    return 0


def run_show(args: argparse.Namespace) -> int:
    from styletalker_core.plugin_host import get_registries
    from styletalker_core.recipe import load_recipe, unstructure
    from styletalker_core.recipe.toml_writer import dumps

    print(dumps(unstructure(load_recipe(args.recipes, args.overrides, get_registries()))), end="")
    return 0


def run_validate(args: argparse.Namespace) -> int:
    import sys

    from styletalker_core.errors import RecipeError
    from styletalker_core.evaluate.judges import check_judge_separation
    from styletalker_core.plugin_host import get_registries
    from styletalker_core.recipe import find_recipe, load_recipe
    from styletalker_core.recipe.roles import stage_order_problems
    from styletalker_core.recipe.world import world_problems

    registries = get_registries()
    failures = 0
    for reference in args.recipes:
        try:
            recipe = load_recipe(reference, args.overrides, registries)
            # No training signal may be a file an evaluation judge of the recipe reads.
            check_judge_separation(recipe, registries, source=str(find_recipe(reference)))
            # every stage's inputs come from an earlier stage or a weights file
            errors = stage_order_problems(recipe, registries)
            # the world: data, splits, labels, files, shapes, device
            found = [] if args.schema_only else world_problems(recipe, registries, build=args.build)
            errors += [p.message for p in found if args.strict or not p.note]
            if errors:
                raise RecipeError(str(find_recipe(reference)), errors)
            for problem in found:
                print(f"styletalker: note: {reference}: {problem.message}", file=sys.stderr)
            print(f"ok  {reference}")
        except RecipeError as error:
            failures += 1
            print(f"{error.source}: {len(error.problems)} problem(s)", file=sys.stderr)
            for line in error.problems:
                print(f"  - {line}", file=sys.stderr)
    return 2 if failures else 0
