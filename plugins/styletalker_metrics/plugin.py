"""Registers the metrics plugin's components: video metrics (PSNR, SSIM, LMD, CSIM, blink rate, pose diversity, CPBD)."""

from __future__ import annotations

from styletalker_core.plugins import hookimpl
from styletalker_core.registry import Registrar
from styletalker_metrics.fidelity import PSNR, SSIM
from styletalker_metrics.sharpness import CPBD


@hookimpl
def styletalker_register(registrar: Registrar) -> None:
    registrar.register("metric", "psnr", PSNR, example_options={})
    registrar.register("metric", "ssim", SSIM, example_options={"window_size": 7})
    registrar.register("metric", "cpbd", CPBD, example_options={"frames_per_video": 2})
