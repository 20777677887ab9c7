"""Recipes: TOML experiment descriptions mapped onto typed attrs classes."""

from styletalker_core.recipe.loader import find_recipe, list_recipes, load_raw
from styletalker_core.recipe.schema import DataConfig, EvaluateConfig, Recipe, RuntimeConfig, SampleConfig, StageConfig
from styletalker_core.recipe.validate import load_recipe, structure, unstructure, validate_raw

__all__ = [
    "DataConfig",
    "EvaluateConfig",
    "Recipe",
    "RuntimeConfig",
    "SampleConfig",
    "StageConfig",
    "find_recipe",
    "list_recipes",
    "load_raw",
    "load_recipe",
    "structure",
    "unstructure",
    "validate_raw",
]
