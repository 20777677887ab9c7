"""ACME's plugin hook: what the ``styletalker.plugins`` entry point of pyproject.toml names."""

from __future__ import annotations

from acme_talking.backbone import ElmanBackbone
from acme_talking.generator import LinearGenerator
from styletalker_core.plugin_host import hookimpl
from styletalker_core.registry import Registrar


@hookimpl
def styletalker_register(registrar: Registrar) -> None:
    registrar.register("generator", "acme_linear", LinearGenerator, example_options={"resolution": 4, "num_ws": 3, "w_dim": 8})
    # a prior selects it with `backbone = "acme_elman"`; the prior wires input_dim and hidden
    registrar.register("prior_backbone", "acme_elman", ElmanBackbone, example_options={"input_dim": 5, "hidden": 8})
