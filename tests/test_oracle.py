"""The synthetic factor oracle, its evaluation helpers and the ground-truth metrics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from styletalker_core.checkpoint import load_checkpoint, read_metadata
from styletalker_core.data.synthetic import IDENTITY_DIM, SynthConfig, make_clip
from styletalker_core.interfaces import FactorOracle
from styletalker_core.interfaces.metric import EvalItem
from styletalker_core.plugin_host import get_registries
from styletalker_core.registry import ComponentSpec, build_component
from styletalker_synthetic.evaluation import blink_counts, clip_accuracy, closed_runs, f1, frame_accuracy, r_squared, read_factors
from styletalker_synthetic.frames import degrade, render_labelled_frames
from styletalker_synthetic.metrics import (
    IdentityError,
    LipSyncCorrelation,
    MotionRealism,
    MotionTransferCorrelation,
    lagged_correlation,
    velocity_log_spectrum,
)
from styletalker_synthetic.oracle import normalised_targets

SHIPPED = Path(__file__).resolve().parents[1] / "checkpoints" / "oracle_synthetic.safetensors"


def test_oracle_reads_every_factor_with_the_documented_shapes():
    oracle = build_component(get_registries(), "oracle", ComponentSpec("synthetic_factors", {"channels": 4, "hidden": 16}))
    readings = oracle(torch.rand(3, 3, 128, 128) * 2 - 1)  # other sizes are resized
    assert set(readings) == set(oracle.factors)
    for name, width in oracle.factors.items():
        assert readings[name].shape == ((3,) if width == 1 else (3, width))
    assert readings["identity"].shape == (3, IDENTITY_DIM)


def test_targets_and_readings_use_the_same_columns():
    labels = {"mouth_open": torch.tensor([0.2]), "mouth_width": torch.tensor([0.7]), "eye_open": torch.tensor([1.0]),
              "pose": torch.tensor([[16.0, -9.0, 7.0]]), "identity": torch.full((1, IDENTITY_DIM), 0.3)}
    target = normalised_targets(labels)
    assert target.shape == (1, 6 + IDENTITY_DIM)
    torch.testing.assert_close(target[0, :6], torch.tensor([0.2, 0.7, 0.5, -0.5, 0.5, 1.0]))


def test_degrade_is_deterministic_and_mild():
    images = torch.rand(4, 3, 16, 16) * 2 - 1
    a = degrade(images, torch.Generator().manual_seed(1))
    torch.testing.assert_close(a, degrade(images, torch.Generator().manual_seed(1)))
    assert a.shape == images.shape and (a - images).abs().mean() < 0.3


def test_evaluation_helpers_on_known_values():
    assert r_squared(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 3.0])) == 1.0
    assert r_squared(np.full(3, 2.0), np.array([1.0, 2.0, 3.0])) == 0.0
    eyes = np.array([1, 1, 0.2, 0.1, 1, 1, 0.3, 1])
    assert closed_runs(eyes) == [(2, 4), (6, 7)]
    assert blink_counts(np.array([1, 1, 1, 0.4, 1, 1, 1, 0.2]), eyes) == (1, 2, 2)
    assert f1(1, 2, 2) == 0.5 and f1(0, 0, 0) == 1.0


class LabelOracle(FactorOracle):
    """Reads factors written into the pixels: a perfect oracle for testing the metrics' arithmetic."""

    resolution = 8
    factors = {"mouth_open": 1, "mouth_width": 1, "yaw": 1, "pitch": 1, "roll": 1, "eye_open": 1, "identity": 4}  # noqa: RUF012 - never mutated

    def forward(self, images):
        values = images[:, 0, 0, :]  # row 0 carries the factors
        out = {name: values[:, i] for i, name in enumerate(list(self.factors)[:6])}
        out["identity"] = values[:, 6:10]
        return out


def encode(factors: np.ndarray) -> torch.Tensor:
    """[t, 10] factors -> images [t, 3, 8, 10] holding them in row 0."""
    images = torch.zeros(len(factors), 3, 8, 10)
    images[:, 0, 0, :] = torch.from_numpy(factors).float()
    return images


def motion(seed: int, frames: int = 100) -> np.ndarray:
    rng = np.random.default_rng(seed)
    f = np.zeros((frames, 10))
    f[:, 0] = np.clip(np.convolve(rng.random(frames + 4), np.ones(5) / 5, "valid"), 0, 1)
    f[:, 1] = 0.5
    f[:, 2:5] = np.cumsum(rng.normal(0, 1, (frames, 3)), axis=0)
    f[:, 5] = 1.0
    f[rng.choice(frames, 4, replace=False), 5] = 0.1
    f[:, 6:] = 0.4
    return f


def with_oracle(metric):
    metric.use_oracle(LabelOracle())
    return metric


def test_lipsync_metric_scores_sync_lag_and_error():
    truth = motion(0)
    item = EvalItem(frames=encode(truth), audio=torch.zeros(100 * 640), labels={"mouth_open": truth[:, 0]})
    result = with_oracle(LipSyncCorrelation()).compute(item)
    assert result["lipsync_corr"] == pytest.approx(1.0) and result["lipsync_abs_lag"] == 0 and result["mouth_open_mae"] < 1e-6
    late = truth.copy()
    late[3:, 0] = truth[:-3, 0]  # the video's mouth lags the audio by 3 frames
    result = with_oracle(LipSyncCorrelation()).compute(EvalItem(frames=encode(late), audio=item.audio, labels=item.labels))
    assert result["lipsync_abs_lag"] == 3 and result["lipsync_best_corr"] > result["lipsync_corr"]
    assert lagged_correlation(late[:, 0], truth[:, 0])[0] == 3


def test_motion_transfer_metric_against_labels_and_frames():
    source, other = motion(1), motion(2)
    generated = source.copy()
    generated[:, 0] = other[:, 0]  # lips differ, motion is the source's
    metric = with_oracle(MotionTransferCorrelation())
    by_labels = metric.compute(EvalItem(frames=encode(generated), audio=torch.zeros(1), motion_frames=encode(other),
                                        motion_labels={"pose": source[:, 2:5], "eye_open": source[:, 5]}))
    assert by_labels["pose_corr"] == pytest.approx(1.0) and by_labels["blink_corr"] == pytest.approx(1.0)
    assert by_labels["pose_mae_deg"] < 1e-5 and by_labels["blink_f1"] == pytest.approx(1.0)
    open_eyes = generated.copy()
    open_eyes[:, 5] = 1.0  # no blink in the video: every blink of the source is missed
    missed = metric.compute(EvalItem(frames=encode(open_eyes), audio=torch.zeros(1), motion_frames=encode(other),
                                     motion_labels={"pose": source[:, 2:5], "eye_open": source[:, 5]}))
    assert missed["blink_f1"] == 0.0
    no_blinks = metric.compute(EvalItem(frames=encode(open_eyes), audio=torch.zeros(1), motion_frames=encode(other),
                                        motion_labels={"pose": source[:, 2:5], "eye_open": open_eyes[:, 5]}))
    assert np.isnan(no_blinks["blink_f1"])  # nothing to detect: no score
    by_frames = metric.compute(EvalItem(frames=encode(generated), audio=torch.zeros(1), motion_frames=encode(other)))
    assert by_frames["pose_corr"] < 0.9


def test_identity_metric_zero_for_the_same_identity():
    factors = motion(3)
    metric = with_oracle(IdentityError())
    same = metric.compute(EvalItem(frames=encode(factors), audio=torch.zeros(1), reference_image=encode(factors)[0]))
    assert same["identity_mae"] < 1e-6
    shifted = factors.copy()
    shifted[:, 6:] += 0.2
    moved = metric.compute(EvalItem(frames=encode(shifted), audio=torch.zeros(1), reference_image=encode(factors)[0]))
    assert moved["identity_mae"] == pytest.approx(0.2, abs=1e-5) and moved["identity_l2"] == pytest.approx(0.4, abs=1e-5)


def test_motion_realism_metric():
    truth = motion(4, 250)
    metric = with_oracle(MotionRealism())
    labels = {"pose": truth[:, 2:5], "eye_open": truth[:, 5]}
    same = metric.compute(EvalItem(frames=encode(truth), audio=torch.zeros(1), labels=labels))
    assert same["pose_spectrum_distance"] < 1e-6 and same["blink_rate_error"] == 0 and same["pose_speed_ratio_error"] < 1e-6
    frozen = truth.copy()
    frozen[:, 2:5] = 0
    frozen[:, 5] = 1
    still = metric.compute(EvalItem(frames=encode(frozen), audio=torch.zeros(1), labels=labels))
    assert still["pose_spectrum_distance"] > 3 and still["blink_rate_error"] == pytest.approx(4 * 60 / 10)
    assert velocity_log_spectrum(truth[:, 2:5]).shape == (16, 3)


def test_metrics_name_a_missing_oracle_checkpoint(tmp_path):
    from styletalker_core.errors import StyleTalkerError

    metric = LipSyncCorrelation(oracle=str(tmp_path / "missing.safetensors"))
    item = EvalItem(frames=torch.zeros(2, 3, 8, 8), audio=torch.zeros(1), labels={"mouth_open": np.zeros(2)})
    with pytest.raises(StyleTalkerError, match=r"missing.safetensors"):
        metric.compute(item)


@pytest.fixture(scope="module")
def shipped_oracle():
    if not SHIPPED.is_file():
        pytest.fail(f"{SHIPPED} is missing; train it with `styletalker train recipes/oracle_synthetic.toml`")
    return load_checkpoint(SHIPPED, roles=["oracle"])["oracle"].eval()


def test_shipped_oracle_records_its_heldout_accuracy():
    evaluation = read_metadata(SHIPPED)["extra"]["evaluation"]
    for name in ("mouth_open", "yaw", "pitch", "roll"):
        assert evaluation[f"heldout_{name}_r2"] >= 0.95, name
    assert evaluation["clips_blink_event_f1"] >= 0.95
    assert evaluation["heldout_blink_frame_f1"] >= 0.95


def test_shipped_oracle_reaches_its_targets_on_fresh_heldout_data(shipped_oracle):
    frames = render_labelled_frames(seed=424242, count=384)
    accuracy = frame_accuracy(read_factors(shipped_oracle, frames["images"]), frames, "fresh")
    for name in ("mouth_open", "yaw", "pitch", "roll"):
        assert accuracy[f"fresh_{name}_r2"] >= 0.95, (name, accuracy)
    assert accuracy["fresh_blink_frame_f1"] >= 0.9
    config = SynthConfig(clips=6, seed=99, seconds=(3.0, 4.0), heldout_fraction=0.5)
    clips = [make_clip(config, index) for index in range(3, 6)]
    assert all(clip.meta["split"] == "heldout" for clip in clips)
    on_clips = clip_accuracy(shipped_oracle, clips)
    assert on_clips["clips_mouth_open_r2"] >= 0.9


def test_shipped_oracle_drives_the_lipsync_metric(shipped_oracle):
    clip = make_clip(SynthConfig(clips=2, seed=5, seconds=(3.0, 3.5), heldout_fraction=0.5), 1)
    frames = torch.from_numpy(clip.frames).permute(0, 3, 1, 2).float() / 127.5 - 1
    metric = LipSyncCorrelation()
    metric.use_oracle(shipped_oracle)
    result = metric.compute(EvalItem(frames=frames, audio=torch.from_numpy(clip.audio), labels=clip.labels))
    assert result["lipsync_corr"] > 0.9 and result["lipsync_abs_lag"] == 0
    shifted = metric.compute(EvalItem(frames=frames.roll(8, 0), audio=torch.from_numpy(clip.audio), labels=clip.labels))
    assert shifted["lipsync_corr"] < result["lipsync_corr"] - 0.3
