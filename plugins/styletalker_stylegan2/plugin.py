"""Registers the stylegan2 plugin's components: StyleGAN2 generator and discriminator, and importers of NVlabs and rosinality checkpoints."""

from __future__ import annotations

from styletalker_core.plugin_host import hookimpl
from styletalker_core.registry import Registrar
from styletalker_stylegan2.convert_nvlabs import NvlabsStyleGAN2Converter
from styletalker_stylegan2.convert_rosinality import RosinalityStyleGAN2Converter
from styletalker_stylegan2.discriminator import StyleGAN2Discriminator
from styletalker_stylegan2.generator import StyleGAN2Generator

# Small, fast instances for contract tests and as documented examples.
EXAMPLE_GENERATOR = dict(resolution=32, z_dim=32, w_dim=32, channel_base=512, channel_max=32, mapping_layers=2)
EXAMPLE_DISCRIMINATOR = dict(resolution=32, channel_base=512, channel_max=32)


@hookimpl
def styletalker_register(registrar: Registrar) -> None:
    registrar.register("generator", "stylegan2", StyleGAN2Generator, example_options=EXAMPLE_GENERATOR)
    registrar.register("discriminator", "stylegan2", StyleGAN2Discriminator, example_options=EXAMPLE_DISCRIMINATOR)
    registrar.register("converter", "nvlabs-stylegan2", NvlabsStyleGAN2Converter)
    registrar.register("converter", "rosinality-stylegan2", RosinalityStyleGAN2Converter)
