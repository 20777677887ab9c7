"""Every recipe shipped in recipes/ validates against the installed plugins, starts with a
comment giving the command that runs it, and survives ``recipes show``'s TOML round trip.
New recipes are picked up automatically."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from styletalker_core.plugin_host import get_registries
from styletalker_core.recipe import Recipe, list_recipes, load_recipe, structure, unstructure
from styletalker_core.recipe.loader import PROJECT_RECIPES
from styletalker_core.recipe.toml_writer import dumps

REPOSITORY = Path(__file__).resolve().parents[1]
SHIPPED = sorted((REPOSITORY / "recipes").glob("*.toml"))


def test_recipes_folder_is_the_one_the_loader_searches():
    assert (REPOSITORY / "recipes").is_dir()
    assert PROJECT_RECIPES.resolve() == (REPOSITORY / "recipes").resolve()
    listed = {path.resolve() for path in list_recipes() if path.resolve().parent == PROJECT_RECIPES.resolve()}
    assert listed == {path.resolve() for path in SHIPPED}


@pytest.mark.parametrize("path", SHIPPED, ids=[path.stem for path in SHIPPED])
def test_shipped_recipe_validates(path):
    recipe = load_recipe(path)
    assert isinstance(recipe, Recipe) and recipe.name


@pytest.mark.parametrize("path", SHIPPED, ids=[path.stem for path in SHIPPED])
def test_shipped_recipe_starts_with_the_command_that_runs_it(path):
    header = []
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            break
        header.append(line)
    assert any("styletalker " in line for line in header), (
        f"{path.name}: start the file with a comment giving the command that runs this recipe"
    )


@pytest.mark.parametrize("path", SHIPPED, ids=[path.stem for path in SHIPPED])
def test_shipped_recipe_survives_the_show_round_trip(path):
    recipe = load_recipe(path)
    assert structure(tomllib.loads(dumps(unstructure(recipe))), get_registries()) == recipe
