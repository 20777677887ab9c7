"""Checking recipe values against type annotations, and converting command-line text to them.

Checks are strict about what TOML can express: an integer field takes an integer (not a
float or a bool), a float field takes an integer or a float, a string field a string.
"""

from __future__ import annotations

import collections.abc
import enum
import inspect
import pathlib
import tomllib
import types
import typing
from typing import Annotated, Any, Literal, Union

import attrs

from styletalker_core.registry.components import ComponentSpec, nested_kind, nested_marker

_NONE_TYPE = type(None)


def _plural(annotation: Any) -> str:
    """'numbers', 'integers', ... for the items of a list ('values (one of ...)' otherwise)."""
    simple = {int: "integers", float: "numbers", bool: "booleans", str: "strings", pathlib.Path: "strings"}
    return simple.get(annotation) or f"values ({describe(annotation)})"


def describe(annotation: Any) -> str:
    """A short human name for an annotation: 'integer', 'one of ...', 'list of float'."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is Any or annotation is inspect.Parameter.empty:
        return "any value"
    if annotation is bool:
        return "true or false"
    if annotation is int:
        return "an integer"
    if annotation is float:
        return "a number"
    if annotation in (str, pathlib.Path):
        return "a string"
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (Union, types.UnionType):  # a config class or its table (recipe/options.py) reads "a table" once
        return " or ".join(dict.fromkeys(describe(a) for a in args if a is not _NONE_TYPE)) + (
            " (or omitted)" if _NONE_TYPE in args else ""
        )
    if origin in (list, tuple, typing.Sequence, typing.get_origin(typing.Sequence[int])):
        if origin is tuple and args and args[-1] is not Ellipsis:
            same = len(set(args)) == 1
            return f"a list of {len(args)} {_plural(args[0]) if same else 'values'}"
        return f"a list of {_plural(args[0]) if args else 'values'}"
    if origin in (dict, collections.abc.Mapping):
        return "a table"
    if origin is Annotated:
        marker = nested_marker(annotation)
        if marker is None:
            return describe(args[0])
        return f"a {marker.kind} name or component table" if marker.by_name else f"a {marker.kind} component table"
    if attrs.has(annotation):
        return "a table"
    if inspect.isclass(annotation) and issubclass(annotation, enum.Enum):
        return "one of " + ", ".join(repr(m.value) for m in annotation)
    return getattr(annotation, "__name__", str(annotation))


def _type_name(value: Any) -> str:
    return {bool: "boolean", int: "integer", float: "number", str: "string", list: "list", dict: "table"}.get(
        type(value), type(value).__name__
    )


def check_value(value: Any, annotation: Any, path: str) -> list[str]:
    """Problems with ``value`` as a value of ``annotation``; each message starts with ``path``.

    Nested component tables and attrs classes are not descended into here: the recipe
    validator does that with the registries at hand.
    """
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    wrong = [f"{path}: expected {describe(annotation)}, got {_type_name(value)} {value!r}"]
    if annotation is Any or annotation is inspect.Parameter.empty or isinstance(annotation, typing.TypeVar):
        return []
    if origin is Annotated:
        marker = nested_marker(annotation)
        if marker is not None:
            accepted = (dict, ComponentSpec, str) if marker.by_name else (dict, ComponentSpec)
            return [] if isinstance(value, accepted) else wrong
        return check_value(value, args[0], path)
    if origin in (Union, types.UnionType):
        if value is None and _NONE_TYPE in args:
            return []
        candidates = [a for a in args if a is not _NONE_TYPE]
        for candidate in candidates:
            if not check_value(value, candidate, path):
                return []
        return wrong
    if annotation is _NONE_TYPE or annotation is None:
        return [] if value is None else wrong
    if annotation is bool:
        return [] if isinstance(value, bool) else wrong
    if annotation is int:
        return [] if isinstance(value, int) and not isinstance(value, bool) else wrong
    if annotation is float:
        if isinstance(value, int) and not isinstance(value, bool) and not _fits_float(value):
            return [f"{path}: {value} is too large for a number"]
        return [] if isinstance(value, (int, float)) and not isinstance(value, bool) else wrong
    if annotation in (str, pathlib.Path):
        return [] if isinstance(value, str) else wrong
    if origin is Literal:
        return [] if any(value == a and type(value) is type(a) for a in args) else wrong
    if inspect.isclass(annotation) and issubclass(annotation, enum.Enum):
        return [] if value in {m.value for m in annotation} else wrong
    if origin in (list, tuple) or origin is typing.get_origin(typing.Sequence[int]):
        if not isinstance(value, (list, tuple)):
            return wrong
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                return wrong
            item_types = list(args)
        else:
            item_types = [args[0] if args else Any] * len(value)
        problems = []
        for index, (item, item_type) in enumerate(zip(value, item_types)):
            problems += check_value(item, item_type, f"{path}[{index}]")
        return problems
    if origin in (dict, collections.abc.Mapping) or annotation is dict:
        if not isinstance(value, dict):
            return wrong
        value_type = args[1] if len(args) == 2 else Any
        problems = []
        for key, item in value.items():
            problems += check_value(item, value_type, f"{path}.{key}")
        return problems
    if attrs.has(annotation):
        return [] if isinstance(value, dict) else wrong
    if inspect.isclass(annotation):
        return [] if isinstance(value, annotation) else wrong
    return []


def _fits_float(value: int) -> bool:
    try:
        float(value)
    except OverflowError:
        return False
    return True


def convert_text(text: str, annotation: Any) -> Any:
    """Turn command-line text into a value for ``annotation``.

    Strings stay strings; everything else is read as a TOML value (``3``, ``1e-3``,
    ``true``, ``[1, 2]``, ``{a = 1}``); text that is not valid TOML is kept as a string,
    and the validator then reports a type mismatch with the field's path.
    """
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is Annotated and nested_kind(annotation) is None:
        return convert_text(text, args[0])
    marker = nested_marker(annotation)
    if marker is not None and marker.by_name and not text.lstrip().startswith("{"):
        return text  # a component named by its name: backbone=lstm
    if annotation in (str, pathlib.Path):
        return text
    if origin in (Union, types.UnionType):
        non_none = [a for a in args if a is not _NONE_TYPE]
        if text in ("none", "None", "null") and _NONE_TYPE in args:
            return None
        if non_none and all(a in (str, pathlib.Path) for a in non_none):
            return text
    if origin is Literal and all(isinstance(a, str) for a in args):
        return text
    try:
        value = tomllib.loads(f"value = {text}")["value"]
    except (tomllib.TOMLDecodeError, RecursionError):  # RecursionError: brackets nested too deeply
        return text
    number_only = annotation is float or (
        origin in (Union, types.UnionType) and [a for a in args if a is not _NONE_TYPE] == [float]
    )
    if number_only and isinstance(value, int) and not isinstance(value, bool) and _fits_float(value):
        return float(value)  # "--set lr=1" on a float field gives 1.0, not the integer 1
    return value
