"""Builds the plugin manager and the registries on first use (never at import time)."""

from __future__ import annotations

import functools
import importlib.metadata
import os
import sys

import pluggy

from styletalker_core.errors import StyleTalkerError
from styletalker_core.plugin_host import hookspecs
from styletalker_core.registry.registry import Origin, Registrar, Registries

ENTRY_POINT_GROUP = "styletalker.plugins"
TRACE_ENV = "STYLETALKER_TRACE_HOOKS"


def _entry_points() -> list[importlib.metadata.EntryPoint]:
    # An editable install can expose the same distribution twice; keep each entry point once.
    seen: dict[tuple[str, str], importlib.metadata.EntryPoint] = {}
    for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        seen.setdefault((entry_point.name, entry_point.value), entry_point)
    return sorted(seen.values(), key=lambda ep: (ep.dist.name if ep.dist else "", ep.name))


def build_plugin_manager() -> tuple[pluggy.PluginManager, dict[int, Origin]]:
    """Load every ``styletalker.plugins`` entry point; returns the manager and each plugin's origin."""
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    if os.environ.get(TRACE_ENV):
        manager.trace.root.setwriter(lambda message: sys.stderr.write(message))
        manager.enable_tracing()
    origins: dict[int, Origin] = {}
    for entry_point in _entry_points():
        package = entry_point.dist.name if entry_point.dist else "unknown"
        version = entry_point.dist.version if entry_point.dist else "unknown"
        try:
            plugin = entry_point.load()
        except Exception as error:  # a broken third-party plugin must be named, not crash obscurely
            raise StyleTalkerError(
                f"plugin {entry_point.name!r} ({entry_point.value}) from package {package} {version} "
                f"failed to import: {type(error).__name__}: {error}; fix or uninstall that package"
            ) from error
        if manager.is_registered(plugin):
            continue
        try:
            manager.register(plugin, name=f"{package}:{entry_point.name}")
            manager.check_pending()  # a hook whose name matches no spec (a typo) is refused
        except pluggy.PluginValidationError as error:
            raise StyleTalkerError(
                f"plugin {entry_point.name!r} ({entry_point.value}) from package {package} {version} "
                f"does not follow the styletalker hook specs: {error}; fix or uninstall that package"
            ) from error
        origins[id(plugin)] = Origin(package, version, entry_point.value)
    return manager, origins


def build_registries() -> Registries:
    """Fresh registries filled by every installed plugin."""
    manager, origins = build_plugin_manager()
    registries = Registries()
    # Each implementation is called with a registrar that knows its plugin's origin, so a
    # duplicate name can be reported with both packages.
    for implementation in manager.hook.styletalker_register.get_hookimpls():
        origin = origins[id(implementation.plugin)]
        try:
            implementation.function(registrar=Registrar(registries, origin))
        except StyleTalkerError:
            raise
        except Exception as error:  # name the package whose hook failed
            raise StyleTalkerError(
                f"plugin from package {origin} failed while registering its components: "
                f"{type(error).__name__}: {error}; fix or uninstall that package"
            ) from error
    return registries


@functools.cache
def get_registries() -> Registries:
    """The process-wide registries, built on first call."""
    return build_registries()


def reset_registries() -> None:
    """Forget the cached registries (after installing a plugin, or in tests)."""
    get_registries.cache_clear()
