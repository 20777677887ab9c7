"""The order of a recipe's stages: what each consumes, what the earlier ones produce.

Stages hand components to each other by role: the engine records the roles a finished stage
output (``StageContext.produced``) and ``context.component(role)`` loads the latest of them, else
builds the role from the recipe's ``[model.<role>]`` (with its ``weights`` when given, else freshly
initialised). So a stage placed before the one that trains its input, or a recipe without it,
would silently start from random weights. Each stage declares ``consumes()`` and ``produces()``
(interfaces/stage.py); :func:`stage_order_problems` checks the enabled stages in order against
them for ``recipes validate``, and :func:`missing_inputs` warns at training time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from styletalker_core.errors import StyleTalkerError
from styletalker_core.recipe.schema import Recipe
from styletalker_core.registry.components import ComponentSpec, build_component
from styletalker_core.registry.registry import Registries


def missing_inputs(stage: Any, produced: Iterable[str], recipe: Recipe) -> list[str]:
    """The roles ``stage`` consumes that neither an earlier stage (``produced``) nor a ``weights``
    file of the recipe provides."""
    available = set(produced) | {role for role, spec in recipe.model.items() if spec.weights}
    return [role for role in stage.consumes() if role not in available]


def _stage_roles(recipe: Recipe, registries: Registries) -> tuple[dict[str, Any], list[str]]:
    """The enabled stages built from their options (name -> stage) and a problem per stage that cannot be."""
    stages, problems = {}, []
    for name, config in recipe.stages.items():
        if not config.enabled:
            continue
        try:
            stages[name] = build_component(registries, "stage", ComponentSpec(config.name, config.options),
                                           recipe_path=f"stages.{name}")
        except (StyleTalkerError, ValueError, TypeError) as error:
            problems.append(f"stages.{name}: its options do not build the stage: {error}")
    return stages, problems


def stage_order_problems(recipe: Recipe, registries: Registries) -> list[str]:
    """One line per input of an enabled stage that no earlier enabled stage produces and no
    ``[model.<role>]`` weights file provides, naming the later stage that produces it if any.
    After a stage that does not declare what it produces nothing more can be checked."""
    stages, problems = _stage_roles(recipe, registries)
    names = list(stages)
    produced: dict[str, str] = {}
    for index, name in enumerate(names):
        stage = stages[name]
        for role in missing_inputs(stage, produced, recipe):
            later = [other for other in names[index + 1:] if role in (stages[other].produces() or ())]
            fix = (f"move it after stage {later[0]}, which produces it" if later else
                   f"add a stage that trains it before {name}, or give model.{role}.weights")
            problems.append(f"stages.{name}: needs trained {role} weights, which no earlier stage produces and "
                            f"[model.{role}] has no weights file for; {fix}")
        declared = stage.produces()
        if declared is None:
            break
        produced.update(dict.fromkeys(declared, name))
    return problems


def undeclared_outputs(stage: Any, outputs: Mapping[str, Any]) -> str | None:
    """A line when a stage's ``outputs()`` differ from the roles it declared in ``produces()``."""
    declared = stage.produces()
    if declared is None or set(declared) == set(outputs):
        return None
    return (f"{type(stage).__name__}.produces() declares {sorted(declared)} but outputs() holds {sorted(outputs)}; "
            "later stages and recipes validate rely on the declaration")
