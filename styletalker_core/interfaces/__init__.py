"""Interfaces of every component kind. Each states the tensor shapes it consumes and produces.

Axis letters used in docstrings: b batch, t time (video frames at 25 fps), s audio
samples (16 kHz), l W+ layers (``num_ws``), w latent width (``w_dim``), c channels,
h/w image height/width, z motion-latent width, d embedding width.
"""

from styletalker_core.interfaces.audio import AudioEncoder
from styletalker_core.interfaces.converter import ComponentSource, Converter
from styletalker_core.interfaces.data import ClipDataset
from styletalker_core.interfaces.generator import Discriminator, Generator
from styletalker_core.interfaces.image_encoder import ImageEncoder
from styletalker_core.interfaces.image_encoder_backbone import ImageEncoderBackbone
from styletalker_core.interfaces.lipsync import LipMapper, LipSyncDiscriminator
from styletalker_core.interfaces.metric import Metric
from styletalker_core.interfaces.metric_logger import MetricLogger
from styletalker_core.interfaces.motion import Flow, MotionVAE, Prior
from styletalker_core.interfaces.oracle import FactorOracle
from styletalker_core.interfaces.prior_backbone import PriorBackbone

__all__ = [
    "AudioEncoder",
    "ClipDataset",
    "ComponentSource",
    "Converter",
    "Discriminator",
    "FactorOracle",
    "Flow",
    "Generator",
    "ImageEncoder",
    "ImageEncoderBackbone",
    "LipMapper",
    "LipSyncDiscriminator",
    "Metric",
    "MetricLogger",
    "MotionVAE",
    "Prior",
    "PriorBackbone",
]
