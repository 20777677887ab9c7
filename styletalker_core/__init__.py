"""StyleTalker core: registries, interfaces, recipes, checkpoints, engines and CLI.

Importing this package does no work: the plugin manager and registries are built on
first use (see :func:`styletalker_core.plugin_host.get_registries`).
"""

__version__ = "0.1.0"
