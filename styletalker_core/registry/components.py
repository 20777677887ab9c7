"""Component specifications (a plugin name plus options) and building them through the registries."""

from __future__ import annotations

import inspect
import typing
from typing import Annotated, Any

import attrs

from styletalker_core.errors import RegistryError
from styletalker_core.registry.registry import Entry, Registries

RESERVED_KEYS = ("name", "kind", "weights")


@attrs.frozen
class ComponentOf:
    """Marks a constructor parameter as a nested component of ``kind``.

    A factory declares ``flow: Annotated[ComponentSpec, ComponentOf("flow")]`` and receives a
    ComponentSpec, which it builds itself with :func:`build_component` (usually adding options
    only it knows, such as dimensions).
    """

    kind: str


@attrs.frozen
class ComponentSpec:
    """Which implementation of a kind, with which options.

    In TOML a component is a flat table: ``name`` picks the plugin, ``weights`` optionally
    points at a safetensors checkpoint holding its weights, ``kind`` is needed only when the
    table's key is not itself a kind name, and every other key is an option passed to the
    plugin's constructor.
    """

    name: str
    options: dict[str, Any] = attrs.field(factory=dict)
    weights: str | None = None
    kind: str | None = None

    @classmethod
    def from_table(cls, table: dict[str, Any]) -> ComponentSpec:
        options = {key: value for key, value in table.items() if key not in RESERVED_KEYS}
        return cls(name=table["name"], options=options, weights=table.get("weights"), kind=table.get("kind"))

    def to_table(self) -> dict[str, Any]:
        """The flat TOML/JSON form; nested component specs become nested tables."""
        table: dict[str, Any] = {"name": self.name}
        if self.kind is not None:
            table["kind"] = self.kind
        if self.weights is not None:
            table["weights"] = self.weights
        for key, value in self.options.items():
            table[key] = value.to_table() if isinstance(value, ComponentSpec) else value
        return table


def nested_kind(annotation: Any) -> str | None:
    """The kind of a parameter annotated ``Annotated[ComponentSpec, ComponentOf(kind)]``, else None."""
    if typing.get_origin(annotation) is Annotated:
        base, *extras = typing.get_args(annotation)
        for extra in extras:
            if isinstance(extra, ComponentOf) and base is ComponentSpec:
                return extra.kind
    return None


def parameter_annotations(entry: Entry) -> dict[str, inspect.Parameter]:
    """Constructor parameters of an entry's factory, with string annotations resolved."""
    factory = entry.factory
    target = factory.__init__ if inspect.isclass(factory) else factory
    try:
        hints = typing.get_type_hints(target, include_extras=True)
    except Exception:  # unresolvable forward references: fall back to raw annotations
        hints = {}
    parameters = {}
    for name, parameter in entry.signature().parameters.items():
        if parameter.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            continue
        annotation = hints.get(name, parameter.annotation)
        parameters[name] = parameter.replace(annotation=annotation)
    return parameters


def accepts_any_keyword(entry: Entry) -> bool:
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in entry.signature().parameters.values())


def _as_spec(value: Any) -> ComponentSpec:
    if isinstance(value, ComponentSpec):
        return value
    if isinstance(value, dict) and "name" in value:
        return ComponentSpec.from_table(value)
    raise RegistryError(f"expected a component table with a 'name', got {value!r}")


def build_component(registries: Registries, kind: str, spec: ComponentSpec, **wired: Any) -> Any:
    """Build ``spec`` as a ``kind`` component.

    ``wired`` are options the assembling code derives from other components (dimensions,
    sizes). A recipe option that repeats a wired option with a different value is an error.
    Nested component options are turned into ComponentSpec objects. The resolved spec
    (all options, wired ones included) is attached as ``component_spec`` so checkpoints can
    rebuild the component exactly.
    """
    entry = registries[kind].get(spec.name)
    parameters = parameter_annotations(entry)
    options = dict(spec.options)
    for key, value in wired.items():
        if key in options and options[key] != value:
            raise RegistryError(
                f"{kind} {spec.name!r}: option {key}={options[key]!r} conflicts with {value!r}, "
                "which is derived from the other components; remove it from the recipe"
            )
        if key in parameters or accepts_any_keyword(entry):
            options[key] = value
    for key, value in list(options.items()):
        parameter = parameters.get(key)
        if parameter is not None and nested_kind(parameter.annotation) is not None:
            options[key] = _as_spec(value)
    instance = registries[kind].build(spec.name, **options)
    resolved = ComponentSpec(name=spec.name, options=options, weights=spec.weights, kind=kind)
    try:
        object.__setattr__(instance, "component_spec", resolved)
    except AttributeError:  # slotted or frozen objects: not checkpointable, nothing to record
        pass
    return instance
