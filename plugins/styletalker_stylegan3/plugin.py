"""Registers the stylegan3 plugin's components: StyleGAN3 (configs T and R) generator and the NVlabs StyleGAN3 pickle converter."""

from __future__ import annotations

from styletalker_core.plugin_host import hookimpl
from styletalker_core.registry import Registrar
from styletalker_stylegan3.convert_nvlabs import NvlabsStyleGAN3Converter
from styletalker_stylegan3.generator import StyleGAN3Generator

# Small, fast instance for contract tests and as a documented example.
EXAMPLE_GENERATOR = dict(resolution=16, config="t", z_dim=16, w_dim=16, channel_base=256, channel_max=16,
                         num_layers=4, margin_size=4)


@hookimpl
def styletalker_register(registrar: Registrar) -> None:
    registrar.register("generator", "stylegan3", StyleGAN3Generator, example_options=EXAMPLE_GENERATOR)
    registrar.register("converter", "nvlabs-stylegan3", NvlabsStyleGAN3Converter)
