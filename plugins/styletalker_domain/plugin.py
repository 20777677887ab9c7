"""Registers the domain plugin's components: domain pretraining stages (StyleGAN training, training from
labels, encoder training, joint autoencoding)."""

from __future__ import annotations

from styletalker_core.plugin_host import hookimpl
from styletalker_core.registry import Registrar


@hookimpl
def styletalker_register(registrar: Registrar) -> None:
    from styletalker_domain.autoencoder import AutoencoderStage
    from styletalker_domain.gan import StyleGANStage
    from styletalker_domain.label_render import LabelRenderStage
    from styletalker_domain.reconstruction import EncoderStage

    registrar.register("stage", "stylegan2_gan", StyleGANStage)
    registrar.register("stage", "e4e_encoder", EncoderStage)
    registrar.register("stage", "autoencoder", AutoencoderStage)
    registrar.register("stage", "label_render", LabelRenderStage)
