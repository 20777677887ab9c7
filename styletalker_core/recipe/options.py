"""Option tables inside a component's options (typed attrs configs) and renamed options.

A stage groups related options in an attrs class and takes it as one keyword whose annotation
names the class, e.g. ``objective: ObjectiveConfig | Mapping[str, Any] | None = None``. In a
recipe it is a table (``[stages.encoder.objective]``); the constructor makes the config with
:func:`structure_options`. The recipe validator finds the class in the annotation
(:func:`config_class`) and checks the table's fields as it checks the recipe's own, each problem
with its full path (``stages.encoder.objective.mouth_weight: expected a number, ...``).

An option that moved or was renamed stays known: a component class maps its old names to the new
dotted paths in a class attribute ``renamed_options``. A recipe with an old name gets one line
naming the new one (:func:`renamed_message`); recipes an earlier version stored (a run folder's
``recipe.toml``, a model file's metadata) are rewritten to the new names (:func:`upgrade_recipe`),
so they keep loading and compare equal to the same recipe written today.
"""

from __future__ import annotations

import collections.abc
import copy
import inspect
import types
import typing
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar, Union

import attrs
import cattrs

if TYPE_CHECKING:
    from styletalker_core.registry.registry import Registries

T = TypeVar("T", bound="attrs.AttrsInstance")
_CONVERTER = cattrs.Converter()


def config_class(annotation: Any) -> type | None:
    """The attrs class an option annotation names (``C``, ``C | None``, ``C | Mapping[str, Any] | None``), else None."""
    if attrs.has(annotation):
        return annotation
    if typing.get_origin(annotation) in (Union, types.UnionType):
        found = [arg for arg in typing.get_args(annotation) if attrs.has(arg)]
        return found[0] if len(found) == 1 else None
    return None


def is_table_annotation(annotation: Any) -> bool:
    """Whether an annotation is a plain table (``dict[...]`` or ``Mapping[...]``)."""
    return annotation in (dict, Mapping) or typing.get_origin(annotation) in (dict, collections.abc.Mapping)


def structure_options(cls: type[T], value: T | Mapping[str, Any] | None, name: str) -> T:
    """``value`` (a ``cls``, its recipe table, or None for its defaults) as a ``cls``.

    A table's values are converted as the recipe's are (an integer in a number field becomes a
    float); an unknown key or a value of the wrong type is a ValueError naming ``name.key``.
    """
    if value is None:
        return cls()
    if isinstance(value, cls):
        return value
    if not isinstance(value, Mapping):
        raise ValueError(f"{name}: expected a table of {cls.__name__} options, got {value!r}")
    known = [field.name for field in attrs.fields(cls)]
    unknown = [key for key in value if key not in known]
    if unknown:
        raise ValueError(f"{name}: unknown option(s) {', '.join(map(str, unknown))}; known: {', '.join(sorted(known))}")
    try:
        return _CONVERTER.structure(dict(value), cls)
    except cattrs.BaseValidationError as error:
        raise ValueError(f"{name}: {'; '.join(cattrs.transform_error(error, path=name))}") from None


F = TypeVar("F", bound=Callable[..., None])


def extends_options(parent: Callable[..., None]) -> Callable[[F], F]:
    """Decorator for a subclass constructor ``__init__(self, <its own options>, **options)`` that
    passes ``options`` on to ``parent`` (the base class's ``__init__``). Its signature becomes its
    own options followed by the parent's (keyword-only, annotations resolved), so the recipe
    validator, ``--set`` and the registry see every option without the subclass listing them again."""

    def decorate(init: F) -> F:
        own_hints, parent_hints = typing.get_type_hints(init), typing.get_type_hints(parent)
        own = [parameter.replace(annotation=own_hints.get(parameter.name, parameter.annotation))
               for parameter in inspect.signature(init).parameters.values()
               if parameter.kind is not inspect.Parameter.VAR_KEYWORD]
        names = {parameter.name for parameter in own}
        inherited = [parameter.replace(kind=inspect.Parameter.KEYWORD_ONLY,
                                       annotation=parent_hints.get(parameter.name, parameter.annotation))
                     for parameter in list(inspect.signature(parent).parameters.values())[1:]  # without self
                     if parameter.name not in names and parameter.kind not in (inspect.Parameter.VAR_POSITIONAL,
                                                                               inspect.Parameter.VAR_KEYWORD)]
        init.__signature__ = inspect.Signature(own + inherited, return_annotation=None)  # type: ignore[attr-defined]
        return init

    return decorate


def renamed_options(factory: Any) -> Mapping[str, str]:
    """Old option name -> new dotted path, as a component class declares them (``renamed_options``)."""
    found = getattr(factory, "renamed_options", None)
    return found if isinstance(found, Mapping) else {}


def renamed_message(factory: Any, key: str, path: str) -> str | None:
    """The one line for an old option ``key`` at ``path`` (``stages.encoder.mouth``), else None."""
    new = renamed_options(factory).get(key)
    if new is None:
        return None
    parent = path.rsplit(".", 1)[0]
    table, _, leaf = new.rpartition(".")
    where = f" ({leaf} in the table [{parent}.{table}])" if table else ""
    return f"{path}: renamed to {parent}.{new}{where}"


def upgrade_options(options: Mapping[str, Any], renamed: Mapping[str, str]) -> dict[str, Any]:
    """A copy of ``options`` with each old key moved to its new dotted path (unless that is already set)."""
    out = copy.deepcopy(dict(options))
    for old, new in renamed.items():
        if old not in out:
            continue
        value = out.pop(old)
        *parents, last = new.split(".")
        node = out
        for part in parents:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                break
            node = child
        else:
            node.setdefault(last, value)
    return out


def upgrade_recipe(raw: Mapping[str, Any], registries: Registries) -> dict[str, Any]:
    """A stored raw recipe with its stage tables' old option names rewritten (:func:`upgrade_options`);
    tables of stages ``registries`` does not know stay as they are."""
    out = dict(raw)
    stages = raw.get("stages")
    if not isinstance(stages, Mapping):
        return out
    known = registries["stage"]
    upgraded = {}
    for name, table in stages.items():
        plugin = table.get("name") if isinstance(table, Mapping) else None
        if isinstance(plugin, str) and plugin in known:
            table = upgrade_options(table, renamed_options(known.get(plugin).factory))
        upgraded[name] = table
    out["stages"] = upgraded
    return out
