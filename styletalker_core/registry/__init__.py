"""Component registries, one per kind, and the kinds' interfaces."""

from styletalker_core.registry.components import ComponentOf, ComponentSpec, build_component
from styletalker_core.registry.kinds import KINDS, Kind
from styletalker_core.registry.registry import Entry, Origin, Registrar, Registries, Registry, closest_names, suggest

__all__ = ["ComponentOf", "ComponentSpec", "build_component", "KINDS", "Entry", "Kind", "Origin", "Registrar", "Registries", "Registry",
           "closest_names", "suggest"]
