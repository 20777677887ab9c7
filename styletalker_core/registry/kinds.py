"""The component kinds the framework knows, each with the interface its implementations follow."""

from __future__ import annotations

import attrs

from styletalker_core import interfaces
from styletalker_core.interfaces.stage import TrainingStage


@attrs.frozen
class Kind:
    """A kind of component. ``interface`` is the base class every implementation derives from
    (None for kinds whose entries are plain callables, such as converters and stages)."""

    name: str
    interface: type | None
    description: str


KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in [
        Kind("generator", interfaces.Generator, "W+ codes [b, l, w] -> images [b, 3, h, w]"),
        Kind("discriminator", interfaces.Discriminator, "images [b, 3, h, w] -> logits [b, 1]"),
        Kind("image_encoder", interfaces.ImageEncoder, "images [b, 3, h, w] -> W+ codes [b, l, w]"),
        Kind("audio_encoder", interfaces.AudioEncoder, "wave [b, s] at 16 kHz -> features [b, t, c] at 25 fps"),
        Kind("lipsync_discriminator", interfaces.LipSyncDiscriminator, "(audio window, mouth window) -> sync embeddings"),
        Kind("lip_mapper", interfaces.LipMapper, "audio features [b, t, c] + w_id -> lip offsets [b, t, l, w]"),
        Kind("motion_vae", interfaces.MotionVAE, "posterior over motion latents and decoder to W+ offsets"),
        Kind("prior", interfaces.Prior, "autoregressive prior p(z_t | z_<t, audio)"),
        Kind("flow", interfaces.Flow, "conditional invertible map u <-> z"),
        Kind("prior_backbone", interfaces.PriorBackbone, "causal inputs [b, t, i] -> hidden [b, t, h], stepwise with a bounded state"),
        Kind("image_encoder_backbone", interfaces.ImageEncoderBackbone,
             "images [b, 3, h, w] -> three feature maps (c1, c2, c3), fine to coarse"),
        Kind("dataset", interfaces.ClipDataset, "clips of frames [t, 3, h, w] with audio [s]"),
        Kind("oracle", interfaces.FactorOracle, "images [b, 3, h, w] -> ground-truth factor readings"),
        Kind("metric", interfaces.Metric, "generated video -> named scores"),
        Kind("logger", interfaces.MetricLogger, "training metrics sink"),
        Kind("stage", TrainingStage, "one training stage: which modules train on which data with which losses"),
        Kind("converter", interfaces.Converter, "published checkpoint format -> styletalker safetensors"),
    ]
}
