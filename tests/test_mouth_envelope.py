"""The model-free lip metric ``mouth_envelope``: its parts on constructed signals (envelope,
voice activity, lagged correlation, closed mouth in silence), then end to end on real pixels (a
photo shipped with scikit-image whose mouth is warped open and shut following a known speech
envelope) and on rendered synthetic clips, whose mouth_open label the landmark opening must follow."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import skimage.data
import torch
from scipy.ndimage import map_coordinates

from styletalker_core.interfaces.metric import EvalItem
from styletalker_core.plugin_host import get_registries
from styletalker_core.registry import ComponentSpec, build_component
from styletalker_metrics.landmarks import track_landmarks
from styletalker_metrics.mouth_envelope import (
    MouthEnvelope,
    lagged_correlations,
    mouth_opening,
    quiet_frames,
    speech_envelope,
    voice_activity,
)

SPF = 640


def loudness_track(frames: int, seed: int) -> np.ndarray:
    """Per-frame level in dB (0 loudest, -80 silence): silence, syllables of varied loudness, a pause, syllables, silence."""
    rng = np.random.default_rng(seed)
    level = np.full(frames, -80.0)
    for start, stop in ((5, frames // 2 - 4), (frames // 2 + 4, frames - 5)):
        p = start
        while p < stop:
            length = int(rng.integers(3, 6))
            peak = rng.uniform(-14, 0)
            shape = np.sin(np.linspace(0, np.pi, length + 2)[1:-1])
            level[p:min(p + length, stop)] = (peak - 30 * (1 - shape))[:max(0, min(length, stop - p))]
            p += length
    return level


def speech(level_db: np.ndarray, delay: int = 0, seed: int = 0) -> torch.Tensor:
    """A voiced signal (140 Hz harmonics and noise) whose RMS in frame p follows level_db[p - delay] (silence before)."""
    rng = np.random.default_rng(seed)
    shifted = np.concatenate([np.full(delay, -200.0), level_db])[:len(level_db)] if delay >= 0 else np.concatenate(
        [level_db[-delay:], np.full(-delay, -200.0)])
    seconds = np.arange(len(level_db) * SPF) / 16000
    carrier = sum(np.sin(2 * np.pi * 140 * h * seconds) / h for h in range(1, 6)) + 0.3 * rng.standard_normal(len(seconds))
    carrier = carrier.reshape(len(level_db), SPF)
    carrier /= np.sqrt((carrier ** 2).mean(axis=1, keepdims=True))
    amplitude = 0.3 * 10 ** (shifted / 20)
    return torch.from_numpy((carrier * amplitude[:, None]).reshape(-1)).float()


# -- parts --------------------------------------------------------------------------------------

def test_envelope_is_the_rms_per_frame_in_db_floored_under_the_loudest_frame():
    level = np.array([0.0, -6.0, -20.0, -200.0])
    envelope = speech_envelope(speech(level), 4, SPF, floor_db=-60.0)
    assert envelope[:3] - envelope[0] == pytest.approx([0.0, -6.0, -20.0], abs=1e-3)
    assert envelope[3] == pytest.approx(envelope[0] - 60.0)
    # audio shorter than the video: the missing frames are silence
    assert speech_envelope(speech(level)[:SPF], 3, SPF)[1:] == pytest.approx([envelope[0] - 60] * 2)


def test_voice_activity_is_relative_to_the_clip_and_silence_is_absolute():
    level = loudness_track(60, 0)
    envelope = speech_envelope(speech(level), 60, SPF)
    voiced = voice_activity(envelope)
    assert not voiced[level < -70].any() and voiced[level > -20].all()
    quiet = speech_envelope(speech(level) * 1e-2, 60, SPF)  # 40 dB quieter: the same frames
    assert (voice_activity(quiet) == voiced).all()
    assert not voice_activity(speech_envelope(torch.zeros(60 * SPF), 60, SPF)).any()
    assert voice_activity(np.full(10, -20.0)).all()  # no range: one level, all voiced


@pytest.mark.parametrize("delay", [0, 1, 3, -2])
def test_a_mouth_following_the_envelope_correlates_one_at_its_delay(delay):
    envelope = speech_envelope(speech(loudness_track(80, 1)), 80, SPF)
    mouth = 0.02 + 0.005 * (envelope - envelope.min())  # any increasing linear map of the envelope
    # positive lag: the audio lags the video (the lse convention): mouth(p) goes with envelope(p + delay)
    shifted = np.roll(mouth, -delay)
    correlations = lagged_correlations(shifted, envelope, 5)
    assert np.argmax(correlations) - 5 == delay
    assert correlations.max() == pytest.approx(1.0, abs=1e-9)
    if delay == 0:
        assert correlations[5] == pytest.approx(1.0)


def test_correlation_skips_missing_frames_and_is_zero_for_a_still_mouth():
    envelope = speech_envelope(speech(loudness_track(60, 2)), 60, SPF)
    mouth = envelope.copy()
    mouth[::4] = np.nan
    assert lagged_correlations(mouth, envelope, 2)[2] == pytest.approx(1.0)
    assert lagged_correlations(np.full(60, 0.1), envelope, 2) == pytest.approx([0.0] * 5)
    assert np.isnan(lagged_correlations(np.full(60, np.nan), envelope, 1)).all()


def test_quiet_frames_keep_a_margin_from_speech():
    voiced = np.array([0, 0, 0, 1, 1, 0, 0, 0, 0], dtype=bool)
    assert quiet_frames(voiced, 0).tolist() == [1, 1, 1, 0, 0, 1, 1, 1, 1]
    assert quiet_frames(voiced, 1).tolist() == [1, 1, 0, 0, 0, 0, 1, 1, 1]


def test_mouth_opening_is_inner_height_over_width():
    points = np.zeros((1, 68, 2))
    points[0, 48], points[0, 54] = (0, 0), (40, 0)
    for top, bottom in ((61, 67), (62, 66), (63, 65)):
        points[0, top], points[0, bottom] = (10, -2), (10, 6)
    assert mouth_opening(points) == pytest.approx([0.2])


# -- real pixels: a photo with its mouth warped open and shut --------------------------------------

FACE = (slice(20, 276), slice(100, 356))  # the astronaut's face; inner lips at y 123-130, mouth x 101-145


def warp_mouth(face: np.ndarray, opening: float) -> np.ndarray:
    """The lower lip and jaw moved by ``opening`` pixels (negative: the lips pressed shut over the
    teeth), the gap between the lips dark like a mouth's inside."""
    height, width = face.shape[:2]
    yy, xx = np.mgrid[0:height, 0:width].astype(float)
    across = np.sin(np.clip(np.minimum(xx - 93, 153 - xx) / 8, 0, 1) * np.pi / 2) ** 2
    below = np.where(yy < 123.5, 0.0, np.clip((200 - yy) / 50, 0, 1))
    shift = opening * across * below
    out = np.stack([map_coordinates(face[..., c].astype(float), [yy - shift, xx], order=1, mode="nearest") for c in range(3)], -1)
    if opening > 0:
        out[(yy >= 123.5) & (yy < 123.5 + shift)] = (45, 12, 18)
    return out.round().clip(0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def photo_clip() -> tuple[torch.Tensor, np.ndarray]:
    """50 frames (2 s) of the photo at 128 px, the mouth opening with the loudness (dB) of the speech."""
    face = skimage.data.astronaut()[FACE]
    level = loudness_track(50, 3)
    opening = -7 + 22 * np.clip((level + 45) / 45, 0, 1)  # shut in silence, open up to 15 px (at 256 px)
    frames = np.stack([warp_mouth(face, value)[::2, ::2] for value in opening])
    return torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 127.5 - 1.0, level


def test_real_face_mouth_following_the_speech(photo_clip):
    frames, level = photo_clip
    metric = build_component(get_registries(), "metric", ComponentSpec("mouth_envelope", {}))
    values = metric.compute(EvalItem(frames=frames, audio=speech(level)))
    assert values["mouth_envelope_detected"] == 1.0
    assert values["mouth_envelope_corr_lag0"] > 0.9
    assert values["mouth_envelope_lag_abs"] == 0.0
    assert values["mouth_envelope_closed_silence"] == 1.0
    # the same frames with the audio 2 frames late, then 3 frames early: the lag follows
    for delay in (2, -3):
        analysis = metric.analyse(EvalItem(frames=frames, audio=speech(level, delay=delay)))
        assert analysis.best_lag == delay
    # a mouth held open through the silences is not closed there
    opened = frames.clone()
    face = skimage.data.astronaut()[FACE]
    open_frame = torch.from_numpy(warp_mouth(face, 12)[::2, ::2]).permute(2, 0, 1).float() / 127.5 - 1
    opened[level < -70] = open_frame
    assert metric.compute(EvalItem(frames=opened, audio=speech(level)))["mouth_envelope_closed_silence"] == 0.0


def test_real_face_read_at_the_landmark_size_and_at_its_own(photo_clip):
    """Upsampling the 128 px frames to 256 px reads the same mouth: openings agree closely."""
    frames, _ = photo_clip
    upsampled = MouthEnvelope().landmark_frames(frames[:8])
    assert upsampled.shape[-2:] == (256, 256)
    big = mouth_opening(track_landmarks(upsampled).points)
    own = mouth_opening(track_landmarks(frames[:8]).points)
    assert np.abs(big - own).max() < 0.05


def test_frames_without_a_detected_face_are_read_in_a_neighbours_box(photo_clip):
    frames, level = photo_clip
    gaps = frames.clone()
    gaps[[10, 11, 30]] = 0.0  # no face for the detector
    analysis = MouthEnvelope(track_frames=1).analyse(EvalItem(frames=gaps, audio=speech(level)))
    assert analysis.detected == pytest.approx(47 / 50) and analysis.tracked == pytest.approx(3 / 50)
    untracked = MouthEnvelope(track_frames=0).analyse(EvalItem(frames=gaps, audio=speech(level)))
    assert untracked.tracked == 0 and np.isnan(untracked.opening[[10, 11, 30]]).all()


def test_each_distinct_frame_is_detected_once(photo_clip, monkeypatch):
    """Detections are cached per frame: other settings on the same frames, and a copy with a few
    frames changed, run dlib's detector only on frames it has not seen."""
    from styletalker_metrics import landmarks
    from styletalker_metrics.pairing import to_uint8_images

    frames, level = photo_clip
    frames, audio = frames[:16], speech(level[:16])
    monkeypatch.setattr(landmarks, "_FACES", type(landmarks._FACES)())  # an empty cache
    analyzer, seen = landmarks.face_analyzer(), []
    detect = analyzer.faces
    monkeypatch.setattr(analyzer, "faces", lambda image, boxes=None: seen.append(image.tobytes()) or detect(image, boxes))
    upsampled = MouthEnvelope().landmark_frames(frames)
    distinct = {image.tobytes() for image in to_uint8_images(upsampled)}
    first = MouthEnvelope(track_frames=1).analyse(EvalItem(frames=frames, audio=audio))
    assert len(seen) == len(set(seen)) == len(distinct) < 16  # the shut-mouth frames of the silence are one picture
    again = MouthEnvelope(track_frames=0).analyse(EvalItem(frames=frames, audio=audio))
    assert len(seen) == len(distinct) and np.array_equal(again.opening, first.opening, equal_nan=True)
    gaps = frames.clone()
    gaps[[3, 9]] = 0.0
    MouthEnvelope(track_frames=1).analyse(EvalItem(frames=gaps, audio=audio))
    assert len(seen) == len(distinct) + 1  # the two blank frames: one new picture


def test_no_face_gives_no_score_and_says_so(caplog):
    frames = torch.zeros(12, 3, 64, 64)
    metric = MouthEnvelope()
    with caplog.at_level(logging.WARNING, logger="styletalker_metrics.mouth_envelope"):
        values = metric.compute(EvalItem(frames=frames, audio=speech(loudness_track(12, 0))))
    assert values["mouth_envelope_detected"] == 0.0 and values["mouth_envelope_tracked"] == 0.0
    assert all(np.isnan(values[key]) for key in values if key not in ("mouth_envelope_detected", "mouth_envelope_tracked"))
    assert "found a face in 0 % of 12 frames" in caplog.text


# -- synthetic clips: the landmark opening follows the ground truth -------------------------------

@pytest.mark.slow
def test_synthetic_clips_landmark_opening_follows_the_mouth_open_label():
    """Rendered 64 px clips (seed 31, no dataset's): dlib finds the drawn faces, and the outer-lip
    opening (the setting for this domain) follows the renderer's mouth_open label and the speech."""
    from styletalker_core.data.synthetic.clip import SynthConfig, make_clip

    config = SynthConfig(clips=3, seed=31, seconds=(2.0, 2.5))
    metric = MouthEnvelope(lips="outer")
    for index in range(3):
        clip = make_clip(config, index)
        frames = torch.from_numpy(clip.frames).permute(0, 3, 1, 2).float() / 127.5 - 1
        label = np.asarray(clip.labels["mouth_open"], dtype=float)
        analysis = metric.analyse(EvalItem(frames=frames, audio=torch.from_numpy(clip.audio).float()))
        assert analysis.detected >= 0.95
        found = np.isfinite(analysis.opening)
        assert np.corrcoef(analysis.opening[found], label[found])[0, 1] > 0.5
        assert np.nanmax(analysis.correlations) > 0.4 and abs(analysis.best_lag) <= 2
