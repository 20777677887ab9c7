"""Plugin system (pluggy). See :mod:`styletalker_core.plugins.hookspecs` for the hooks."""

from styletalker_core.plugins.hookspecs import hookimpl
from styletalker_core.plugins.manager import ENTRY_POINT_GROUP, build_registries, get_registries, reset_registries

__all__ = ["ENTRY_POINT_GROUP", "build_registries", "get_registries", "hookimpl", "reset_registries"]
