"""What a contract check receives: a factory that builds one registered implementation, and the
helpers checks use to fail with a message that names the component."""

from __future__ import annotations

import inspect
import unittest
from collections.abc import Callable
from typing import Any, NoReturn

import attrs
import torch

from styletalker_core.registry import ComponentSpec, Entry, Registries, build_component


class NotApplicable(unittest.SkipTest):
    """A check that does not apply to this implementation (pytest and unittest report it as skipped)."""


def default_registries() -> Registries:
    """The process-wide registries (every installed plugin)."""
    from styletalker_core.plugin_host import get_registries

    return get_registries()


@attrs.frozen
class ComponentFactory:
    """Builds the ``kind`` implementation ``name`` with ``options`` through ``registries``.

    ``factory(seed=0, **overrides)`` seeds torch's global generator with ``seed`` (so two calls with
    the same seed give the same weights) and returns a fresh instance built by ``build_component``
    from ``{**options, **overrides}``.
    """

    kind: str
    name: str
    options: dict[str, Any] = attrs.field(factory=dict)
    registries: Registries = attrs.field(factory=default_registries, eq=False, repr=False)

    @classmethod
    def of(cls, kind: str, name: str, options: dict[str, Any] | None = None,
           registries: Registries | None = None) -> ComponentFactory:
        """A factory for ``name`` of ``kind``; ``options`` default to the entry's ``example_options``."""
        registries = registries if registries is not None else default_registries()
        entry = registries[kind].get(name)  # an unknown name fails here, naming the closest ones
        return cls(kind, name, dict(entry.example_options if options is None else options), registries)

    @property
    def entry(self) -> Entry:
        return self.registries[self.kind].get(self.name)

    def accepts(self, option: str) -> bool:
        """Whether the implementation's constructor takes ``option``."""
        parameters = self.entry.signature().parameters
        return option in parameters or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())

    def with_options(self, options: dict[str, Any]) -> ComponentFactory:
        """This factory with ``options`` added to (or replacing) its own."""
        return attrs.evolve(self, options={**self.options, **options})

    def spec(self, **overrides: Any) -> ComponentSpec:
        return ComponentSpec(self.name, {**self.options, **overrides})

    def __call__(self, *, seed: int = 0, **overrides: Any) -> Any:
        torch.manual_seed(seed)
        return build_component(self.registries, self.kind, self.spec(**overrides))

    def __str__(self) -> str:
        return f"{self.kind} {self.name!r}"


def fail(factory: ComponentFactory, message: str) -> NoReturn:
    """Raise AssertionError naming the component."""
    raise AssertionError(f"{factory}: {message}")


def explained(factory: ComponentFactory, what: str) -> Callable[[str], str]:
    """A ``msg`` for ``torch.testing.assert_close``: the component, what is wrong, then torch's details."""
    return lambda detail: f"{factory}: {what}: {detail}"


def require(condition: object, factory: ComponentFactory, message: str) -> None:
    """AssertionError naming the component with ``message`` unless ``condition`` holds (never
    stripped by ``python -O``, unlike ``assert``)."""
    if not condition:
        fail(factory, message)


def without_gradient(module: torch.nn.Module, *, nonzero: bool = True, trainable_only: bool = False) -> list[str]:
    """Names of ``module``'s parameters that got no gradient (or, with ``nonzero``, an all-zero one)."""
    missing = []
    for name, parameter in module.named_parameters():
        if trainable_only and not parameter.requires_grad:
            continue
        grad = parameter.grad
        if grad is None or (nonzero and not bool(torch.any(grad != 0))):
            missing.append(name)
    return missing


def listed(names: list[str], limit: int = 6) -> str:
    """'a, b, c' with at most ``limit`` names and a count of the rest."""
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")
