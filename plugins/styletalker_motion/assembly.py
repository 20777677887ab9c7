"""Building the TalkingHead of a recipe inside a training stage, with dimensions wired between components."""

from __future__ import annotations

from typing import Any

from styletalker_core.model import TalkingHead


def talking_head_from_context(context: Any) -> TalkingHead:
    """The recipe's components (or what earlier stages trained), wired: the image encoder, lip mapper
    and motion VAE get W+ sizes from the generator and the audio width from the audio encoder; the prior
    gets the audio width and the VAE's z_dim."""
    generator = context.component("generator")
    image_encoder = context.component("image_encoder", num_ws=generator.num_ws, w_dim=generator.w_dim)
    audio_encoder = context.component("audio_encoder")
    if "audio_encoder" not in context.produced and not context.spec("audio_encoder").weights:
        audio_encoder.load_pretrained()  # published weights named by its options (wav2vec2), if any
    dims = {"num_ws": generator.num_ws, "w_dim": generator.w_dim, "feature_dim": audio_encoder.feature_dim}
    lip_mapper = context.component("lip_mapper", **dims)
    motion_vae = context.component("motion_vae", **dims)
    prior = context.component("prior", feature_dim=audio_encoder.feature_dim, z_dim=motion_vae.z_dim)
    return TalkingHead(generator, image_encoder, audio_encoder, lip_mapper, motion_vae, prior)
