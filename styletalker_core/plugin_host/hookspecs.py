"""Hook specifications: what a StyleTalker plugin may implement.

A plugin is a module (or object) exposed as an entry point in the group
``styletalker.plugins``. It implements hooks with the :data:`hookimpl` marker::

    from styletalker_core.plugin_host import hookimpl

    @hookimpl
    def styletalker_register(registrar):
        registrar.register("generator", "my_gan", MyGenerator)

Built-in plugins are loaded exactly this way, from this distribution's own entry points.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
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
