"""Hook specifications: what a StyleTalker plugin may implement.

A plugin is a module (or object) exposed as an entry point in the group
``styletalker.plugins``. It implements hooks with the :data:`hookimpl` marker::

    from styletalker_core.plugin_host import hookimpl

    @hookimpl
    def styletalker_register(registrar):
        registrar.register("generator", "my_gan", MyGenerator)

Built-in plugins are loaded exactly this way, from this distribution's own entry points.

A plugin adds ``styletalker`` commands from a second, light module exposed in the group
``styletalker.commands`` that implements :func:`styletalker_add_commands`: every run of the
command (``--help`` too) imports it, so it imports only argparse at module level and loads the
command's dependencies inside the command function.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import argparse
    from collections.abc import Mapping

    from styletalker_core.registry.registry import Registrar

PROJECT = "styletalker"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def styletalker_register(registrar: Registrar) -> None:
    """Register this plugin's components with the registries.

    Call ``registrar.register(kind, name, factory)`` once per component, where ``kind`` is
    one of the kinds in :data:`styletalker_core.registry.kinds.KINDS` and ``factory`` is a
    class deriving from that kind's interface (or, for kinds without an interface, a
    callable). The factory's typed keyword arguments are the options a recipe may set.
    The registrar records this plugin's distribution name and version as the origin.
    """


@hookspec
def styletalker_add_commands(groups: Mapping[str, argparse._SubParsersAction]) -> None:
    """Add this plugin's commands to the ``styletalker`` command line.

    ``groups`` maps a command prefix to the argparse sub-parsers under it: ``"styletalker"`` for
    top-level commands, ``"styletalker data"`` for ``styletalker data ACTION``. Add a parser with
    ``groups[prefix].add_parser(name, help=...)`` and set its ``func`` default to a function of
    the parsed arguments returning the exit status; import heavy dependencies inside that function.
    """
