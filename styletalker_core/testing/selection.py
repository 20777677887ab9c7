"""Which components a contract run covers: every registered implementation of a kind, or every
component one plugin module or package registers."""

from __future__ import annotations

import importlib
import importlib.metadata
from collections.abc import Callable
from types import ModuleType
from typing import Any

from styletalker_core.errors import StyleTalkerError
from styletalker_core.registry import Origin, Registrar, Registries
from styletalker_core.testing.factory import ComponentFactory, default_registries

HOOK = "styletalker_register"


def factories_of_kind(kind: str, registries: Registries | None = None) -> list[ComponentFactory]:
    """A factory (example options) for every registered ``kind`` implementation, by name."""
    registries = registries if registries is not None else default_registries()
    return [ComponentFactory(kind, entry.name, dict(entry.example_options), registries) for entry in registries[kind]]


def _belongs(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _hook_of(package: str) -> tuple[Callable[..., Any], ModuleType]:
    """The ``styletalker_register`` hook of ``package`` (or of ``package.plugin``) and its module."""
    try:
        module = importlib.import_module(package)
    except ImportError as error:
        raise StyleTalkerError(
            f"--styletalker-contracts {package}: cannot import it ({error}); install the package or put it on PYTHONPATH"
        ) from error
    if callable(getattr(module, HOOK, None)):
        return getattr(module, HOOK), module
    try:
        plugin = importlib.import_module(f"{package}.plugin")
    except ModuleNotFoundError as error:
        if error.name != f"{package}.plugin":
            raise
        plugin = None
    if plugin is not None and callable(getattr(plugin, HOOK, None)):
        return getattr(plugin, HOOK), plugin
    raise StyleTalkerError(
        f"--styletalker-contracts {package}: neither {package} nor {package}.plugin defines a {HOOK}(registrar) "
        "hook; name the module that implements it"
    )


def _origin(package: str, hook_module: ModuleType) -> Origin:
    top = package.split(".")[0]
    distributions = importlib.metadata.packages_distributions().get(top, [])
    if distributions:
        return Origin(distributions[0], importlib.metadata.version(distributions[0]), hook_module.__name__)
    return Origin(top, "not installed", hook_module.__name__)


def factories_of_plugin(package: str, registries: Registries | None = None) -> list[ComponentFactory]:
    """A factory (example options) for every component that the plugin module or package
    ``package`` registers, in kind order then by name.

    A plugin installed with a ``styletalker.plugins`` entry point is already in the registries;
    one that is only importable (not installed) has its hook called here, which adds its
    components to ``registries`` (the process-wide ones by default), so that components built
    from them (a prior's backbone, say) find them too.
    """
    registries = registries if registries is not None else default_registries()

    def registered() -> list[ComponentFactory]:
        return [ComponentFactory(entry.kind, entry.name, dict(entry.example_options), registries)
                for entry in registries.entries() if _belongs(entry.origin.module, package)]

    found = registered()
    if not found:
        hook, module = _hook_of(package)
        hook(registrar=Registrar(registries, _origin(package, module)))
        found = registered()
    if not found:
        raise StyleTalkerError(f"--styletalker-contracts {package}: its {HOOK} hook registers no component")
    return found
