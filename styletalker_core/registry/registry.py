"""Registries: one per component kind, mapping names to factories with their origin."""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Iterator
from typing import Any

import attrs

from styletalker_core.errors import ComponentError, OptionValueError, RegistryError, StyleTalkerError, one_line
from styletalker_core.registry.kinds import KINDS, Kind


@attrs.frozen
class Origin:
    """Where a registration came from: the distribution (pip package) and the module."""

    package: str
    version: str
    module: str

    def __str__(self) -> str:
        return f"{self.package} {self.version} ({self.module})"


@attrs.frozen
class Entry:
    """A registered implementation: ``factory(**options)`` builds it."""

    kind: str
    name: str
    factory: Callable[..., Any]
    origin: Origin
    description: str = ""
    # Options for a small, fast instance: used by the contract tests and as a documented example.
    example_options: dict[str, Any] = attrs.field(factory=dict)

    def signature(self) -> inspect.Signature:
        """Constructor signature the recipe options are checked against."""
        return inspect.signature(self.factory)


def closest_names(name: str, candidates: list[str], count: int = 3) -> list[str]:
    """Names in ``candidates`` that look most like ``name`` (for "did you mean" messages)."""
    return difflib.get_close_matches(name, candidates, n=count, cutoff=0.6)


def suggest(name: str, candidates: list[str], noun: str = "names") -> str:
    """'closest <noun>: a, b' when some look like ``name``, else 'valid <noun>: ...' (all of them)."""
    close = closest_names(name, candidates)
    if close:
        return f"closest {noun}: " + ", ".join(close)
    if not candidates:
        return f"there are no valid {noun}"
    return f"valid {noun}: " + ", ".join(sorted(candidates))


class Registry:
    """Implementations of one kind, by name."""

    def __init__(self, kind: Kind) -> None:
        self.kind = kind
        self._entries: dict[str, Entry] = {}

    def register(
        self,
        name: str,
        factory: Callable[..., Any],
        origin: Origin,
        description: str = "",
        example_options: dict[str, Any] | None = None,
    ) -> Entry:
        """Add ``factory`` under ``name``. Raises RegistryError naming both origins on a duplicate."""
        if not name or not name.replace("_", "").replace("-", "").isalnum():
            raise RegistryError(f"{self.kind.name} name {name!r} from {origin}: use letters, digits, '_' or '-'")
        existing = self._entries.get(name)
        if existing is not None:
            raise RegistryError(
                f"{self.kind.name} {name!r} is registered twice: first by {existing.origin}, "
                f"again by {origin}; rename one of them"
            )
        interface = self.kind.interface
        if interface is not None and inspect.isclass(factory) and not issubclass(factory, interface):
            raise RegistryError(
                f"{self.kind.name} {name!r} from {origin}: {factory.__qualname__} does not derive from "
                f"{interface.__module__}.{interface.__qualname__}"
            )
        if not description:
            # The docstring's first paragraph, on one line (a summary may wrap in the source).
            doc = inspect.getdoc(factory) or ""
            description = " ".join(doc.split("\n\n", 1)[0].split())
        entry = Entry(self.kind.name, name, factory, origin, description, dict(example_options or {}))
        self._entries[name] = entry
        return entry

    def get(self, name: str) -> Entry:
        """The entry for ``name``. Raises RegistryError listing the closest names when unknown."""
        try:
            return self._entries[name]
        except KeyError:
            raise RegistryError(self.unknown_message(name)) from None

    def unknown_message(self, name: str) -> str:
        if not self._entries:
            return f"unknown {self.kind.name} {name!r}: no {self.kind.name} is registered"
        return f"unknown {self.kind.name} {name!r}; " + suggest(name, list(self._entries), "registered names")

    def build(self, name: str, **options: Any) -> Any:
        """Construct the implementation ``name`` with ``options``; checks the result's interface.

        A ValueError or TypeError from the constructor (an option it refuses) becomes a
        :class:`ComponentError` naming the component (and the option, when the constructor raised an
        :class:`OptionValueError`); :func:`build_component` adds the recipe path. Other exceptions
        are bugs and propagate unchanged.
        """
        entry = self.get(name)
        try:
            entry.signature().bind(**options)
        except TypeError as error:  # an option the constructor does not take, or a missing one
            raise RegistryError(f"{self.kind.name} {name!r} from {entry.origin}: {error}") from None
        try:
            instance = entry.factory(**options)
        except StyleTalkerError:  # already says what is wrong (a nested component's error among them)
            raise
        except OptionValueError as error:
            component = f"{self.kind.name} {name!r} from {entry.origin}"
            raise ComponentError(component, error.message, error.option, error.value) from error
        except (ValueError, TypeError) as error:  # the constructor refused an option's value or type
            component = f"{self.kind.name} {name!r} from {entry.origin}"
            raise ComponentError(component, f"{type(error).__name__}: {one_line(str(error))}") from error
        interface = self.kind.interface
        if interface is not None and not isinstance(instance, interface):
            raise RegistryError(
                f"{self.kind.name} {name!r} from {entry.origin} built a {type(instance).__qualname__}, "
                f"which does not implement {interface.__qualname__}"
            )
        return instance

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[Entry]:
        return iter(self._entries[name] for name in self.names())

    def __len__(self) -> int:
        return len(self._entries)


class Registries:
    """The registries of every kind, filled by plugins."""

    def __init__(self) -> None:
        self._by_kind = {name: Registry(kind) for name, kind in KINDS.items()}

    def __getitem__(self, kind: str) -> Registry:
        try:
            return self._by_kind[kind]
        except KeyError:
            raise RegistryError(f"unknown component kind {kind!r}; " + suggest(kind, list(self._by_kind), "kinds")) from None

    def kinds(self) -> list[str]:
        return list(self._by_kind)

    def entries(self) -> Iterator[Entry]:
        for registry in self._by_kind.values():
            yield from registry

    def build(self, kind: str, name: str, **options: Any) -> Any:
        return self[kind].build(name, **options)


class Registrar:
    """What a plugin's ``styletalker_register`` hook receives: registers under the plugin's origin."""

    def __init__(self, registries: Registries, origin: Origin) -> None:
        self._registries = registries
        self.origin = origin

    def register(
        self,
        kind: str,
        name: str,
        factory: Callable[..., Any],
        description: str = "",
        example_options: dict[str, Any] | None = None,
    ) -> Entry:
        """Register ``factory`` as the ``kind`` implementation called ``name``.

        ``description`` defaults to the first line of the factory's docstring.
        ``example_options`` builds a small, fast instance (contract tests use it), including any
        options that assembling code normally wires from other components (dimensions).
        """
        if kind not in self._registries.kinds():
            raise RegistryError(
                f"{self.origin} registers {name!r} under unknown component kind {kind!r}; "
                + suggest(kind, self._registries.kinds(), "kinds")
            )
        return self._registries[kind].register(name, factory, self.origin, description, example_options)
