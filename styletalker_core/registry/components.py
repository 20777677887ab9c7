"""Component specifications (a plugin name plus options) and building them through the registries."""

from __future__ import annotations

import contextlib
import inspect
import typing
from typing import Annotated, Any

import attrs

from styletalker_core.errors import ComponentError, RegistryError
from styletalker_core.registry.registry import Entry, Registries

RESERVED_KEYS = ("name", "kind", "weights")


@attrs.frozen
class ComponentOf:
    """Marks a constructor parameter as a nested component of ``kind``.

    A factory declares ``flow: Annotated[ComponentSpec, ComponentOf("flow")]``. When the factory
    is built by :func:`build_component`, it receives that spec (the recipe's table, else the
    parameter's default) bound to the registries the factory itself is built from, and builds it
    with ``flow.build(**wired)``, adding options only it knows (dimensions). No plugin reaches for a
    global registry.

    With ``by_name=True`` the recipe may give just the implementation's name, a string
    (``backbone = "gru"``), for a table with only that name; the factory still receives a bound
    spec, and the component's recorded spec keeps the string as written.
    """

    kind: str
    by_name: bool = False


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
    # Set by build_component on the nested specs it hands to a factory (never compared, never
    # written): the registries to build from and the recipe path errors are reported at.
    registries: Registries | None = attrs.field(default=None, eq=False, repr=False, kw_only=True)
    path: str | None = attrs.field(default=None, eq=False, repr=False, kw_only=True)

    def build(self, **wired: Any) -> Any:
        """Build this nested spec from the registries it is bound to, with ``wired`` options added
        (see :func:`build_component`). Only specs handed to a factory by build_component are bound."""
        if self.registries is None or self.kind is None:
            raise RegistryError(
                f"component spec {self.name!r} is not bound to registries; build the component that "
                "takes it with styletalker_core.registry.build_component"
            )
        return build_component(self.registries, self.kind, self, recipe_path=self.path, **wired)

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


def nested_marker(annotation: Any) -> ComponentOf | None:
    """The :class:`ComponentOf` of a parameter annotated ``Annotated[ComponentSpec, ComponentOf(...)]``, else None."""
    if typing.get_origin(annotation) is Annotated:
        base, *extras = typing.get_args(annotation)
        for extra in extras:
            if isinstance(extra, ComponentOf) and base is ComponentSpec:
                return extra
    return None


def nested_kind(annotation: Any) -> str | None:
    """The kind of a parameter annotated ``Annotated[ComponentSpec, ComponentOf(kind)]``, else None."""
    marker = nested_marker(annotation)
    return marker.kind if marker is not None else None


def parameter_annotations(entry: Entry) -> dict[str, inspect.Parameter]:
    """Constructor parameters of an entry's factory, with string annotations resolved."""
    factory = entry.factory
    target = factory.__init__ if inspect.isclass(factory) else factory
    try:
        hints = typing.get_type_hints(target, include_extras=True)
    except Exception:  # noqa: BLE001 - unresolvable forward references (any error): fall back to raw annotations
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


def _as_spec(value: Any, by_name: bool = False) -> ComponentSpec:
    if isinstance(value, ComponentSpec):
        return value
    if isinstance(value, dict) and "name" in value:
        return ComponentSpec.from_table(value)
    if by_name and isinstance(value, str):
        return ComponentSpec(value)
    expected = "a name (a string) or a component table with a 'name'" if by_name else "a component table with a 'name'"
    raise RegistryError(f"expected {expected}, got {value!r}")


def _join(path: str | None, key: str) -> str | None:
    return f"{path}.{key}" if path else None


def build_component(
    registries: Registries, kind: str, spec: ComponentSpec, recipe_path: str | None = None, **wired: Any
) -> Any:
    """Build ``spec`` as a ``kind`` component.

    ``wired`` are options the assembling code derives from other components (dimensions,
    sizes). A recipe option that repeats a wired option with a different value is an error.
    Nested component options (parameters annotated with :class:`ComponentOf`) reach the factory
    as ComponentSpec objects bound to ``registries`` (and to their recipe path below
    ``recipe_path``, e.g. ``model.prior.flow``), which it builds with ``spec.build(**wired)``.
    The resolved spec (all options, wired ones included; nested ones unbound, as written) is
    attached as ``component_spec`` so checkpoints can rebuild the component exactly.

    A constructor's refusal of its options is a :class:`~styletalker_core.errors.ComponentError`
    reported at ``recipe_path`` (``model.prior.flow.steps = 0: ...``) when one is given.
    """
    recipe_path = recipe_path or spec.path
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
    given = dict(options)
    for key, parameter in parameters.items():
        marker = nested_marker(parameter.annotation)
        if marker is None:
            continue
        nested = marker.kind
        if key in options:
            unbound = _as_spec(options[key], marker.by_name)
            if not isinstance(options[key], str):  # a name stays a name in the recorded spec, as written
                options[key] = unbound
        elif isinstance(parameter.default, ComponentSpec):
            unbound = parameter.default  # the default is built too, from the same registries
        else:
            continue
        given[key] = attrs.evolve(unbound, kind=nested, registries=registries, path=_join(recipe_path, key))
    try:
        instance = registries[kind].build(spec.name, **given)
    except ComponentError as error:
        if error.path is None and recipe_path:  # a nested component's error already has its own path
            raise error.at(recipe_path) from error
        raise
    resolved = ComponentSpec(name=spec.name, options=options, weights=spec.weights, kind=kind)
    with contextlib.suppress(AttributeError):  # slotted or frozen objects: not checkpointable, nothing to record
        object.__setattr__(instance, "component_spec", resolved)
    return instance
