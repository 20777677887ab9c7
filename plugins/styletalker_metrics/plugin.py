"""Registers the metrics plugin's components: video metrics (PSNR, SSIM, LMD, CSIM, blink rate, pose diversity, CPBD,
mouth opening against the speech envelope, skin and background flicker)."""

from __future__ import annotations

from styletalker_core.plugin_host import hookimpl
from styletalker_core.registry import Registrar
from styletalker_metrics.blinks import BlinkRate
from styletalker_metrics.fidelity import PSNR, SSIM
from styletalker_metrics.flicker import Flicker
from styletalker_metrics.identity import IdentitySimilarity
from styletalker_metrics.lmd import LandmarkDistance
from styletalker_metrics.mouth_envelope import MouthEnvelope
from styletalker_metrics.pose_diversity import PoseDiversity
from styletalker_metrics.sharpness import CPBD


@hookimpl
def styletalker_register(registrar: Registrar) -> None:
    registrar.register("metric", "psnr", PSNR, example_options={})
    registrar.register("metric", "ssim", SSIM, example_options={"window_size": 7})
    registrar.register("metric", "lmd", LandmarkDistance, example_options={"region": "mouth", "normalize": "image"})
    registrar.register("metric", "csim", IdentitySimilarity, example_options={"frames_per_video": 2})
    registrar.register("metric", "blink_rate", BlinkRate, example_options={"threshold": 0.6, "relative": True})
    registrar.register("metric", "pose_diversity", PoseDiversity, example_options={})
    registrar.register("metric", "cpbd", CPBD, example_options={"frames_per_video": 2})
    registrar.register("metric", "mouth_envelope", MouthEnvelope, example_options={"max_lag": 3})
    registrar.register("metric", "flicker", Flicker, example_options={})
