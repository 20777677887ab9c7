"""The plugin host (pluggy): loads the plugin packages (the top-level ``plugins/`` folder and any installed
third-party package) from their entry points and fills the registries. See
:mod:`styletalker_core.plugin_host.hookspecs` for the hooks a plugin implements.
"""

from styletalker_core.plugin_host.hookspecs import hookimpl
from styletalker_core.plugin_host.manager import ENTRY_POINT_GROUP, build_registries, get_registries, reset_registries

__all__ = ["ENTRY_POINT_GROUP", "build_registries", "get_registries", "hookimpl", "reset_registries"]
