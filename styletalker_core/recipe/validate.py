"""Recipe validation (every problem at once, each with its field path) and structuring.

Walks the raw TOML dict against the attrs schema: unknown fields, missing fields, wrong
types and validator failures; then every component table against the registries:
unknown names (with the closest valid names), options the plugin's constructor does not
accept, options of the wrong type, nested components.
"""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any

import attrs
import cattrs

from styletalker_core.errors import RecipeError
from styletalker_core.recipe.loader import find_recipe, inherit_data_root, load_raw, resolve_paths, split_assignment
from styletalker_core.recipe.options import config_class, renamed_message
from styletalker_core.recipe.schema import (
    COMPONENT_FIELDS,
    COMPONENT_LIST_FIELDS,
    STAGE_ENGINE_FIELDS,
    Recipe,
    StageConfig,
)
from styletalker_core.recipe.types import check_value, convert_text
from styletalker_core.registry.components import (
    RESERVED_KEYS,
    ComponentSpec,
    accepts_any_keyword,
    nested_kind,
    nested_marker,
    parameter_annotations,
)
from styletalker_core.registry.kinds import KINDS
from styletalker_core.registry.registry import Registries, suggest

_MISSING = attrs.NOTHING


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def _list_index(part: str) -> int | None:
    """The list index a path segment names (ASCII digits only), else None."""
    return int(part) if part.isascii() and part.isdigit() else None


def _strip_optional(annotation: Any) -> Any:
    args = typing.get_args(annotation)
    if type(None) in args:
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1:
            return rest[0]
    return annotation


class _Validator:
    def __init__(self, registries: Registries) -> None:
        self.registries = registries
        self.problems: list[str] = []

    # -- attrs classes -------------------------------------------------------------
    def check_class(self, raw: Any, cls: type, path: str, skip: tuple[str, ...] = ()) -> None:
        if not isinstance(raw, dict):
            self.problems.append(f"{path or 'recipe'}: expected a table, got {raw!r}")
            return
        fields = {a.name: a for a in attrs.fields(cls) if a.name not in skip}
        hints = typing.get_type_hints(cls)
        for key in raw:
            if key not in fields:
                self.problems.append(f"{_join(path, key)}: unknown field; " + suggest(key, list(fields), "fields"))
        for name, attribute in fields.items():
            field_path = _join(path, name)
            if name not in raw:
                if attribute.default is _MISSING:
                    self.problems.append(f"{field_path}: missing required field")
                continue
            self.check_field(raw[name], hints[name], attribute, field_path)

    def check_field(self, value: Any, annotation: Any, attribute: attrs.Attribute | None, path: str) -> None:
        bare = _strip_optional(annotation)
        if value is None and bare is not annotation:
            return
        if path in COMPONENT_FIELDS:
            self.check_component(value, COMPONENT_FIELDS[path], path)
        elif path in COMPONENT_LIST_FIELDS:
            if not isinstance(value, list):
                self.problems.append(f"{path}: expected a list of component tables, got {value!r}")
                return
            for index, item in enumerate(value):
                self.check_component(item, COMPONENT_LIST_FIELDS[path], _join(path, index))
        elif path == "model":
            if not isinstance(value, dict):
                self.problems.append(f"model: expected a table of components, got {value!r}")
                return
            for role, table in value.items():
                kind = table.get("kind", role) if isinstance(table, dict) else role
                self.check_component(table, kind, _join(path, role))
        elif path == "stages":
            if not isinstance(value, dict):
                self.problems.append(f"stages: expected a table of stages, got {value!r}")
                return
            for stage_name, table in value.items():
                self.check_stage(table, _join(path, stage_name))
        elif attrs.has(bare):
            self.check_class(value, bare, path)
        else:
            found = check_value(value, annotation, path)
            self.problems += found
            if not found and attribute is not None and attribute.validator is not None:
                try:
                    attribute.validator(None, attribute, value)
                except (ValueError, TypeError) as error:
                    self.problems.append(f"{path}: {error}")

    # -- components and stages -----------------------------------------------------
    def check_component(self, table: Any, kind: object, path: str) -> None:  # both raw TOML, checked here
        if not isinstance(table, dict) or not isinstance(table.get("name"), str):
            self.problems.append(f"{path}: expected a component table with a string 'name', got {table!r}")
            return
        if not isinstance(kind, str):
            self.problems.append(f"{_join(path, 'kind')}: expected a kind name string, got {kind!r}")
            return
        if kind not in KINDS:
            self.problems.append(f"{_join(path, 'kind')}: unknown component kind {kind!r}; " + suggest(kind, list(KINDS), "kinds"))
            return
        if "weights" in table and not isinstance(table["weights"], str):
            self.problems.append(f"{_join(path, 'weights')}: expected a path string, got {table['weights']!r}")
        registry = self.registries[kind]
        if table["name"] not in registry:
            self.problems.append(f"{_join(path, 'name')}: {registry.unknown_message(table['name'])}")
            return
        options = {k: v for k, v in table.items() if k not in RESERVED_KEYS}
        self.check_options(options, registry.get(table["name"]), path)

    def check_name(self, name: str, kind: str, path: str) -> None:
        """A component given by its name alone (``backbone = "gru"``, see ComponentOf.by_name)."""
        registry = self.registries[kind]
        if name not in registry:
            self.problems.append(f"{path}: {registry.unknown_message(name)}")

    def check_options(self, options: dict[str, Any], entry: Any, path: str) -> None:
        parameters = parameter_annotations(entry)
        open_ended = accepts_any_keyword(entry)
        for key, value in options.items():
            option_path = _join(path, key)
            parameter = parameters.get(key)
            if parameter is None:
                renamed = renamed_message(entry.factory, key, option_path)
                if renamed is not None:
                    self.problems.append(renamed)
                elif not open_ended:
                    self.problems.append(
                        f"{option_path}: option not accepted by {entry.kind} {entry.name!r} "
                        f"({entry.factory.__qualname__}); " + suggest(key, list(parameters), "options")
                    )
                continue
            marker = nested_marker(parameter.annotation)
            config = config_class(parameter.annotation)
            if marker is not None and marker.by_name and isinstance(value, str):
                self.check_name(value, marker.kind, option_path)
            elif marker is not None and marker.by_name and not isinstance(value, dict):
                self.problems += check_value(value, parameter.annotation, option_path)
            elif marker is not None:
                self.check_component(value, marker.kind, option_path)
            elif config is not None and isinstance(value, dict):  # a nested option table: its fields too
                self.check_class(value, config, option_path)
            else:
                self.problems += check_value(value, parameter.annotation, option_path)

    def check_stage(self, table: Any, path: str) -> None:
        if not isinstance(table, dict):
            self.problems.append(f"{path}: expected a stage table, got {table!r}")
            return
        engine_part = {k: v for k, v in table.items() if k in STAGE_ENGINE_FIELDS}
        self.check_class(engine_part, StageConfig, path, skip=("options",))
        stage_name = table.get("name")
        if not isinstance(stage_name, str):
            return
        registry = self.registries["stage"]
        if stage_name not in registry:
            self.problems.append(f"{_join(path, 'name')}: {registry.unknown_message(stage_name)}")
            return
        options = {k: v for k, v in table.items() if k not in STAGE_ENGINE_FIELDS}
        self.check_options(options, registry.get(stage_name), path)


def validate_raw(raw: dict[str, Any], registries: Registries) -> list[str]:
    """Every problem of a merged raw recipe, each message starting with its field path."""
    validator = _Validator(registries)
    validator.check_class(raw, Recipe, "")
    return validator.problems


# -- overrides ---------------------------------------------------------------------------


def _component_entry(table: Any, kind: str, registries: Registries) -> Any:
    if isinstance(table, dict) and isinstance(table.get("name"), str):
        kind = table.get("kind", kind)
        if isinstance(kind, str) and kind in KINDS and table["name"] in registries[kind]:
            return registries[kind].get(table["name"])
    return None


def annotation_at(raw: dict[str, Any], parts: list[str], registries: Registries) -> Any:
    """The annotation of the field at ``parts`` (Any where it cannot be known)."""
    annotation: Any = Recipe
    node: Any = raw
    path = ""
    component_kind: str | None = None
    for part in parts:
        index = _list_index(part)
        key: str | int = part if index is None else index
        child = node.get(key) if isinstance(node, dict) else (
            node[key] if isinstance(node, list) and isinstance(key, int) and key < len(node) else None
        )
        if component_kind is not None:  # inside a component table
            if part in RESERVED_KEYS:
                return str
            entry = _component_entry(node, component_kind, registries)
            parameter = parameter_annotations(entry).get(part) if entry else None
            if parameter is None:
                return Any
            component_kind = nested_kind(parameter.annotation)
            annotation = parameter.annotation
        elif path.startswith("stages.") and path.count(".") == 1:  # inside a stage table
            if part in STAGE_ENGINE_FIELDS:
                annotation = typing.get_type_hints(StageConfig)[part]
            else:
                entry = _component_entry(node, "stage", registries)
                parameter = parameter_annotations(entry).get(part) if entry else None
                if parameter is None:
                    return Any
                annotation = config_class(parameter.annotation) or parameter.annotation  # a nested option table
        elif config_class(annotation) is not None:
            hints = typing.get_type_hints(config_class(annotation))
            if part not in hints:
                return Any
            annotation = hints[part]
        elif typing.get_origin(annotation) in (dict, list):
            annotation = typing.get_args(annotation)[-1]
        else:
            return Any
        path = _join(path, key)
        if path in COMPONENT_FIELDS:
            component_kind = COMPONENT_FIELDS[path]
        elif path.startswith("model.") and path.count(".") == 1:
            component_kind = child.get("kind", part) if isinstance(child, dict) else part
            component_kind = component_kind if isinstance(component_kind, str) else part
        elif any(path.startswith(f"{prefix}[") for prefix in COMPONENT_LIST_FIELDS) and isinstance(key, int):
            component_kind = COMPONENT_LIST_FIELDS[path.rsplit("[", 1)[0]]
        node = child
    return annotation


def apply_override(raw: dict[str, Any], assignment: str, registries: Registries) -> None:
    """Apply ``path.to.field=value`` to ``raw`` in place, converting the text by the field's type."""
    parts, text = split_assignment(assignment)
    # [data] root is read by the loader (inherited by the data tables), not by the schema: a path
    value = text if parts == ["data", "root"] else convert_text(text, annotation_at(raw, parts, registries))
    node: Any = raw
    for depth, part in enumerate(parts[:-1]):
        if isinstance(node, list):
            index = _list_index(part)
            if index is None or index >= len(node):
                raise RecipeError("--set", [f"{'.'.join(parts[:depth + 1])}: no list item {part}"])
            node = node[index]
        else:
            node = node.setdefault(part, {})
        if not isinstance(node, (dict, list)):
            raise RecipeError("--set", [f"{'.'.join(parts[:depth + 1])}: is a value, not a table"])
    last = parts[-1]
    if isinstance(node, list):
        index = _list_index(last)
        if index is None or index >= len(node):
            raise RecipeError("--set", [f"{'.'.join(parts)}: no list item {last}"])
        node[index] = value
    else:
        node[last] = value


# -- structuring -------------------------------------------------------------------------


def _converter() -> cattrs.Converter:
    converter = cattrs.Converter()
    converter.register_structure_hook(ComponentSpec, lambda table, _: ComponentSpec.from_table(table))
    converter.register_unstructure_hook(ComponentSpec, lambda spec: spec.to_table())
    # The engine fields of a stage go through a plain converter, so they get the same
    # conversions as every other field (an integer in a float field becomes a float).
    engine_converter = cattrs.Converter()

    def structure_stage(table: dict[str, Any], _: type) -> StageConfig:
        engine_part = {k: v for k, v in table.items() if k in STAGE_ENGINE_FIELDS}
        options = {k: v for k, v in table.items() if k not in STAGE_ENGINE_FIELDS}
        return attrs.evolve(engine_converter.structure(engine_part, StageConfig), options=options)

    def unstructure_stage(stage: StageConfig) -> dict[str, Any]:
        table = {a.name: getattr(stage, a.name) for a in attrs.fields(StageConfig) if a.name != "options"}
        table["betas"] = list(stage.betas)
        return {**table, **stage.options}

    converter.register_structure_hook(StageConfig, structure_stage)
    converter.register_unstructure_hook(StageConfig, unstructure_stage)
    return converter


CONVERTER = _converter()


def structure(raw: dict[str, Any], registries: Registries, source: str = "recipe") -> Recipe:
    """Validate ``raw`` and build the Recipe; raises RecipeError listing every problem."""
    problems = validate_raw(raw, registries)
    if problems:
        raise RecipeError(source, problems)
    try:
        return CONVERTER.structure(raw, Recipe)
    except (cattrs.BaseValidationError, ValueError, TypeError, OverflowError) as error:
        # The validator above should have reported it; never let a conversion error escape as a crash.
        raise RecipeError(source, [f"cannot be built: {type(error).__name__}: {error}"]) from None


def unstructure(recipe: Recipe) -> dict[str, Any]:
    """The recipe as plain TOML/JSON-compatible data (the form stored in checkpoints)."""
    return CONVERTER.unstructure(recipe)


def load_recipe(reference: str | Path, overrides: list[str] | tuple[str, ...] = (), registries: Registries | None = None) -> Recipe:
    """Read, merge ``extends``, apply ``--set`` overrides, validate and structure a recipe.

    ``registries`` are the components the recipe is checked against. None is the convenience of
    this entry point for scripts (``load_recipe("synthetic_64")``): the installed plugins'
    registries. Code that was given registries passes them on.
    """
    if registries is None:
        from styletalker_core.plugin_host import get_registries

        registries = get_registries()
    path = find_recipe(reference)
    raw = load_raw(path)
    for assignment in overrides:
        apply_override(raw, assignment, registries)
    inherit_data_root(raw)  # [data] root -> every data table
    raw = resolve_paths(raw, Path.cwd())  # what --set named (and files to be made) is relative to the current directory
    return structure(raw, registries, source=str(path))
