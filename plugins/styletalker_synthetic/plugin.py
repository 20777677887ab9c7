"""Registers the synthetic plugin's components: factor oracle, its training stage and ground-truth metrics of the synthetic domain."""

from __future__ import annotations

from styletalker_core.plugin_host import hookimpl
from styletalker_core.registry import Registrar


@hookimpl
def styletalker_register(registrar: Registrar) -> None:
    from styletalker_synthetic.blink_duration import BlinkDuration
    from styletalker_synthetic.flicker import SyntheticFlicker
    from styletalker_synthetic.metrics import IdentityError, LipSyncCorrelation, MotionRealism, MotionTransferCorrelation
    from styletalker_synthetic.mouth_amplitude import MouthAmplitude
    from styletalker_synthetic.oracle import SyntheticFactorOracle
    from styletalker_synthetic.stage import SyntheticOracleStage

    registrar.register("oracle", "synthetic_factors", SyntheticFactorOracle,
                       example_options={"resolution": 16, "channels": 4, "hidden": 16})
    registrar.register("stage", "synthetic_oracle", SyntheticOracleStage,
                       example_options={"train_frames": 16, "eval_frames": 8, "eval_clips": 1})
    for name, factory in (
        ("synthetic_lipsync", LipSyncCorrelation),
        ("synthetic_motion_transfer", MotionTransferCorrelation),
        ("synthetic_identity", IdentityError),
        ("synthetic_motion_realism", MotionRealism),
        ("synthetic_blink_duration", BlinkDuration),
        ("synthetic_mouth_amplitude", MouthAmplitude),
        ("synthetic_flicker", SyntheticFlicker),
    ):
        registrar.register("metric", name, factory, example_options={})
