"""Registers the e4e plugin's components: the e4e / pSp image encoder, its backbones (IR, IR-SE, ResNet) and
importers of published e4e and pSp checkpoints."""

from __future__ import annotations

from styletalker_core.plugin_host import hookimpl
from styletalker_core.registry import Registrar
from styletalker_e4e.backbone import BACKBONES, EXAMPLE_OPTIONS
from styletalker_e4e.convert import E4EConverter, PSPConverter
from styletalker_e4e.encoder import E4EEncoder

# A small, fast instance for contract tests and as a documented example (32 px, 8 layers of 32).
EXAMPLE_ENCODER = dict(resolution=32, num_ws=8, w_dim=32, backbone="ir_se", stem_channels=8,
                       channels=[8, 16, 32, 32], units=[1, 1, 1, 1], se_reduction=4)


@hookimpl
def styletalker_register(registrar: Registrar) -> None:
    registrar.register("image_encoder", "e4e", E4EEncoder, example_options=EXAMPLE_ENCODER)
    for name, backbone in BACKBONES.items():
        registrar.register("image_encoder_backbone", name, backbone, example_options=EXAMPLE_OPTIONS[name])
    registrar.register("converter", "e4e", E4EConverter)
    registrar.register("converter", "psp", PSPConverter)
