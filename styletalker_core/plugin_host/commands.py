"""Commands contributed by plugins: the ``styletalker.commands`` entry points (see
:func:`styletalker_core.plugin_host.hookspecs.styletalker_add_commands`).

They are a group of their own, apart from ``styletalker.plugins``: building the parser imports
every command module, and a plugin's components module may import torch, which would make
``styletalker --help`` slow. A provider that fails to import or to add its commands is skipped
and reported, so one broken third-party package cannot break every other command.
"""

from __future__ import annotations

import argparse
import importlib.metadata
from collections.abc import Mapping

import pluggy

from styletalker_core.plugin_host import hookspecs

COMMANDS_GROUP = "styletalker.commands"


def _command_entry_points() -> list[importlib.metadata.EntryPoint]:
    # An editable install can expose the same distribution twice; keep each entry point once.
    seen: dict[tuple[str, str], importlib.metadata.EntryPoint] = {}
    for entry_point in importlib.metadata.entry_points(group=COMMANDS_GROUP):
        seen.setdefault((entry_point.name, entry_point.value), entry_point)
    return sorted(seen.values(), key=lambda ep: (ep.dist.name if ep.dist else "", ep.name))


def add_plugin_commands(groups: Mapping[str, argparse._SubParsersAction]) -> list[str]:
    """Let each ``styletalker.commands`` provider add its commands to ``groups`` (prefix -> sub-parsers).

    Returns one line per provider that was skipped (failed to import, broke the hook specs or
    raised while adding its commands), naming its package and what to do.
    """
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    problems = []
    for entry_point in _command_entry_points():
        package = f"{entry_point.dist.name} {entry_point.dist.version}" if entry_point.dist else "unknown"
        where = f"plugin commands {entry_point.name!r} ({entry_point.value}) from package {package}"
        provider = None
        try:
            provider = entry_point.load()
            if manager.is_registered(provider):
                continue
            manager.register(provider, name=f"{package}:{entry_point.name}")
            manager.check_pending()  # a hook whose name matches no spec (a typo) is refused
            for implementation in manager.hook.styletalker_add_commands.get_hookimpls():
                if implementation.plugin is provider:
                    implementation.function(groups=groups)
        except Exception as error:  # noqa: BLE001 - any failure of a third-party provider is reported, not fatal
            if provider is not None and manager.is_registered(provider):
                manager.unregister(provider)  # else its bad hook fails every later provider's check_pending
            problems.append(f"{where} skipped: {type(error).__name__}: {error}; fix or uninstall that package")
    return problems
