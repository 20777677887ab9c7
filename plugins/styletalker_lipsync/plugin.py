"""Registers the lipsync plugin's components: contrastive lip-sync discriminator, its pretraining stage and the SyncNet-protocol metric."""

from __future__ import annotations

from styletalker_core.plugin_host import hookimpl
from styletalker_core.registry import Registrar


@hookimpl
def styletalker_register(registrar: Registrar) -> None:
    """lipsync_discriminator ``contrastive``, stage ``lipsync_pretrain``, metric ``lse``."""
    from styletalker_lipsync.discriminator import ContrastiveSyncDiscriminator
    from styletalker_lipsync.metric import LipSyncErrorMetric
    from styletalker_lipsync.stage import LipSyncPretrainStage

    registrar.register("lipsync_discriminator", "contrastive", ContrastiveSyncDiscriminator,
                       example_options={"embed_dim": 16, "mouth_height": 8, "mouth_width": 16, "channels": 8,
                                        "audio_channels": 8, "n_mels": 20})
    registrar.register("stage", "lipsync_pretrain", LipSyncPretrainStage)
    registrar.register("metric", "lse", LipSyncErrorMetric)
