"""Registers the motion plugin's components: lip mapper, conditional sequential motion VAE, autoregressive prior
and its backbones, and the StyleTalker training stages."""

from __future__ import annotations

from styletalker_core.plugin_host import hookimpl
from styletalker_core.registry import Registrar


@hookimpl
def styletalker_register(registrar: Registrar) -> None:
    """lip_mapper ``conv``, motion_vae ``sequential``, prior ``autoregressive`` (dimensions num_ws,
    w_dim, feature_dim, z_dim are wired from the other components) and its prior_backbones ``gru``,
    ``lstm``, ``transformer`` (sizes wired by the prior); stages ``styletalker_main`` and ``prior_only``."""
    from styletalker_motion.backbones import BACKBONES, EXAMPLE_OPTIONS
    from styletalker_motion.lip_mapper import ConvLipMapper
    from styletalker_motion.prior import AutoregressivePrior
    from styletalker_motion.stage_main import StyleTalkerMainStage
    from styletalker_motion.stage_prior import PriorOnlyStage
    from styletalker_motion.vae import SequentialMotionVAE

    dims = {"num_ws": 3, "w_dim": 8, "feature_dim": 6}
    registrar.register("lip_mapper", "conv", ConvLipMapper,
                       example_options={**dims, "context_frames": 2, "hidden": 16})
    registrar.register("motion_vae", "sequential", SequentialMotionVAE,
                       example_options={**dims, "z_dim": 4, "hidden": 16, "decoder_hidden": 16})
    registrar.register("prior", "autoregressive", AutoregressivePrior,
                       example_options={"feature_dim": 6, "z_dim": 4, "hidden": 16, "audio_hidden": 8,
                                        "flow": {"name": "affine_coupling", "steps": 2, "hidden": 8}})
    for name, backbone in BACKBONES.items():
        registrar.register("prior_backbone", name, backbone, example_options=EXAMPLE_OPTIONS[name])
    registrar.register("stage", "styletalker_main", StyleTalkerMainStage)
    registrar.register("stage", "prior_only", PriorOnlyStage)
