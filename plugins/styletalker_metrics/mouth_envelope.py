"""Model-free lip-sync: the mouth opening read by dlib landmarks against the speech envelope.

No trained network of ours and no labels: any video with any speech (real or synthetic) can be
scored, and no model can have been trained against it.

- **Mouth opening** per frame: the inner-lip height (mean of the distances 61-67, 62-66, 63-65 of
  the 68 dlib landmarks) over the mouth width (48-54); ``lips = "outer"`` uses the outer-lip
  distances 50-58, 51-57, 52-56 instead, which dlib reads more reliably on the drawn 64 px mouths
  of the synthetic domain. A running median over ``smooth_frames`` frames removes single-frame
  landmark jitter. Frames whose shorter side is under ``landmark_size`` are upsampled to it
  (bicubic) before detection: dlib's landmarks are whole pixels, and on a 64 px face the lips
  span about 3 of them.
- **Speech envelope** per video frame: RMS of the frame's ``sample_rate / fps`` samples (40 ms),
  in dB, floored ``floor_db`` below the clip's loudest frame (log compression).
- **Voice activity**: a frame is voiced when its envelope lies above ``vad_threshold`` of the way
  from the clip's quiet level (5th percentile) to its loud level (95th percentile), and above
  -90 dBFS; a clip whose range is under 6 dB is all voiced (or all silent under -90 dBFS).
- **Correlation**: Pearson of opening(p) with envelope(p + lag) over the frames where a face was
  found, for lag = -``max_lag`` .. ``max_lag``. The convention is the ``lse`` metric's AV offset: a
  positive lag means the audio lags the video. Reported: the correlation at lag 0, the best one and
  the best lag's magnitude (the signed lag is in :meth:`MouthEnvelope.analyse`). A mouth that does
  not move at all (or silence without a level change) correlates 0.
- **Closed in silence**: the share of silent frames (at least ``silence_margin`` frames from any
  voiced one: lips close after the sound stops; all silent frames when none is that far) whose
  opening is under ``closed_threshold``
  (default per ``lips``: 0.17 inner, 0.48 outer, chosen on validation clips; docs/evaluation.md,
  "Independent judges").

Frames where dlib's face detector finds no face are read in the face box of the nearest frame
where it found one (at most ``track_frames`` frames away; the shape predictor places the 68
points inside a given box); ``mouth_envelope_detected`` reports the share of frames the detector
found, ``mouth_envelope_tracked`` the share read in a neighbour's box. When the detector finds a
face in fewer than ``min_detected`` of the frames, the lip values are NaN ("no score" in
reports) with a warning naming the detection rate.
"""

from __future__ import annotations

import logging
import math

import attrs
import numpy as np
import torch
import torch.nn.functional as F

from styletalker_core.errors import StyleTalkerError
from styletalker_core.interfaces.metric import EvalItem, Metric
from styletalker_metrics.landmarks import face_analyzer, largest_face
from styletalker_metrics.pairing import check_video, to_uint8_images

LOG = logging.getLogger(__name__)
SILENCE_DBFS = -90.0
MIN_RANGE_DB = 6.0
MIN_PAIRS = 8
# Opening under which a mouth counts as closed, per lip contour (chosen on validation clips:
# docs/evaluation.md, "Independent judges").
CLOSED_THRESHOLDS = {"inner": 0.17, "outer": 0.48}


LIP_PAIRS = {"inner": ((61, 67), (62, 66), (63, 65)), "outer": ((50, 58), (51, 57), (52, 56))}


def mouth_opening(points: np.ndarray, lips: str = "inner") -> np.ndarray:
    """68-point landmarks [t, 68, 2] -> lip height over mouth width (48-54) [t], NaN where points are NaN.

    ``lips = "inner"``: mean of the inner-lip distances 61-67, 62-66, 63-65 (0 for a closed mouth);
    ``"outer"``: of the outer-lip distances 50-58, 51-57, 52-56 (lip thickness included).
    """
    if lips not in LIP_PAIRS:
        raise StyleTalkerError(f"mouth_envelope: lips must be one of {', '.join(LIP_PAIRS)}, got {lips!r}")
    height = np.mean([np.linalg.norm(points[:, a] - points[:, b], axis=-1) for a, b in LIP_PAIRS[lips]], axis=0)
    width = np.linalg.norm(points[:, 48] - points[:, 54], axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(width > 0, height / np.maximum(width, 1e-9), np.nan)


def median_smooth(values: np.ndarray, frames: int) -> np.ndarray:
    """Running median over ``frames`` (odd; 1: unchanged) of the finite values [t]; NaN stays NaN."""
    out = values.copy()
    if frames <= 1:
        return out
    finite = np.flatnonzero(np.isfinite(values))
    half = frames // 2
    for rank, index in enumerate(finite):
        out[index] = np.median(values[finite[max(0, rank - half):rank + half + 1]])
    return out


def speech_envelope(audio: torch.Tensor | np.ndarray, num_frames: int, samples_per_frame: int, floor_db: float = -60.0) -> np.ndarray:
    """audio [s] -> RMS per video frame in dBFS [num_frames], floored ``floor_db`` under the loudest frame.

    Frame p covers samples p * samples_per_frame .. (p + 1) * samples_per_frame; samples past the
    end of the audio count as silence.
    """
    wave = np.asarray(audio.detach().cpu().float() if isinstance(audio, torch.Tensor) else audio, dtype=np.float64).reshape(-1)
    total = num_frames * samples_per_frame
    wave = np.pad(wave[:total], (0, max(0, total - len(wave))))
    rms = np.sqrt(np.mean(wave.reshape(num_frames, samples_per_frame) ** 2, axis=1))
    floor = max(float(rms.max(initial=0.0)) * 10 ** (floor_db / 20), 1e-7)
    return 20 * np.log10(np.maximum(rms, floor))


def voice_activity(envelope_db: np.ndarray, threshold: float = 0.35) -> np.ndarray:
    """Envelope [t] in dBFS -> voiced [t] (bool), relative to the clip's own quiet and loud levels (module notes)."""
    low, high = np.percentile(envelope_db, [5, 95])
    loud_enough = envelope_db > SILENCE_DBFS
    if high - low < MIN_RANGE_DB:
        return loud_enough
    return loud_enough & (envelope_db > low + threshold * (high - low))


def lagged_correlations(mouth: np.ndarray, envelope: np.ndarray, max_lag: int) -> np.ndarray:
    """Pearson of mouth[p] with envelope[p + lag] for lag = -max_lag .. max_lag -> [2 max_lag + 1].

    Frames where ``mouth`` is NaN are left out; NaN where fewer than 8 pairs remain; 0 where
    either side is constant over the pairs.
    """
    t = len(mouth)
    out = np.full(2 * max_lag + 1, np.nan)
    for index, lag in enumerate(range(-max_lag, max_lag + 1)):
        first, last = max(0, -lag), min(t, t - lag)
        if last - first < MIN_PAIRS:
            continue
        x, y = mouth[first:last], envelope[first + lag:last + lag]
        keep = np.isfinite(x) & np.isfinite(y)
        if keep.sum() < MIN_PAIRS:
            continue
        x, y = x[keep] - x[keep].mean(), y[keep] - y[keep].mean()
        scale = math.sqrt(float((x * x).sum()) * float((y * y).sum()))
        out[index] = float((x * y).sum()) / scale if scale > 1e-12 else 0.0
    return out


def quiet_frames(voiced: np.ndarray, margin: int) -> np.ndarray:
    """Silent frames at least ``margin`` frames from every voiced frame -> bool [t]."""
    quiet = ~voiced
    for shift in range(1, margin + 1):
        quiet[shift:] &= ~voiced[:-shift]
        quiet[:-shift] &= ~voiced[shift:]
    return quiet


@attrs.frozen
class MouthTrack:
    """Landmarks of every frame [t, 68, 2] (NaN where none), and which frames' faces the detector found
    (``detected``) or were read in a neighbour's face box (``tracked``)."""

    points: np.ndarray
    detected: np.ndarray
    tracked: np.ndarray


def track_mouth(frames: torch.Tensor, track_frames: int) -> MouthTrack:
    """dlib landmarks of frames [t, 3, h, w] in [-1, 1] (the largest face of each frame). A frame where
    the detector finds no face is read in the face box of the nearest frame with one, at most
    ``track_frames`` frames away (0: never). Detections are cached per frame by content
    (:func:`styletalker_metrics.landmarks.largest_face`)."""
    images = to_uint8_images(frames)
    t = len(images)
    points = np.full((t, 68, 2), np.nan)
    boxes: list[tuple[int, int, int, int] | None] = []
    for index, image in enumerate(images):
        face = largest_face(image)
        boxes.append(face.box if face is not None else None)
        if face is not None:
            points[index] = face.landmarks
    detected = np.array([box is not None for box in boxes])
    tracked = np.zeros(t, dtype=bool)
    found = np.flatnonzero(detected)
    if len(found) and track_frames > 0:
        for gap in np.flatnonzero(~detected).tolist():
            nearest = int(found[np.argmin(np.abs(found - gap))])
            if abs(nearest - gap) <= track_frames:
                points[gap] = face_analyzer().landmarks(images[gap], boxes[nearest])
                tracked[gap] = True
    return MouthTrack(points, detected, tracked)


@attrs.frozen
class EnvelopeAnalysis:
    """Everything :class:`MouthEnvelope` measured on one video (per-frame arrays have length t)."""

    opening: np.ndarray  # [t], NaN where no face was found
    envelope_db: np.ndarray  # [t]
    voiced: np.ndarray  # [t] bool
    quiet: np.ndarray  # [t] bool: silent frames used for the closed-mouth share
    lags: list[int]
    correlations: np.ndarray  # [lags]
    detected: float  # share of frames where the detector found a face
    tracked: float  # share of frames read in a neighbour's face box
    scored: bool  # the detector found enough faces

    @property
    def best_lag(self) -> int | None:
        """The lag of the highest correlation (the smallest |lag| among ties); None when none is finite."""
        if not np.isfinite(self.correlations).any():
            return None
        best = np.nanmax(self.correlations)
        return min((lag for lag, c in zip(self.lags, self.correlations) if c >= best - 1e-9), key=abs)

    def closed_in_silence(self, threshold: float) -> float:
        """Share of the quiet frames with a face whose opening is under ``threshold`` (NaN without such frames)."""
        frames = self.quiet & np.isfinite(self.opening)
        return float((self.opening[frames] < threshold).mean()) if frames.any() else float("nan")


class MouthEnvelope(Metric):
    """Correlation of the landmark mouth opening with the speech envelope, best lag, closed mouth in silence (module notes)."""

    requires = ("frames", "audio")
    higher_is_better = {  # noqa: RUF012 - Metric.higher_is_better, a class-level default never mutated
        "mouth_envelope_corr": True,
        "mouth_envelope_corr_lag0": True,
        "mouth_envelope_lag_abs": False,
        "mouth_envelope_closed_silence": True,
        "mouth_envelope_detected": True,
        "mouth_envelope_tracked": False,
    }

    def __init__(self, max_lag: int = 5, landmark_size: int = 256, lips: str = "inner", smooth_frames: int = 3, track_frames: int = 5,
                 vad_threshold: float = 0.3, floor_db: float = -60.0, closed_threshold: float | None = None,
                 silence_margin: int = 1, min_detected: float = 0.5) -> None:
        if lips not in LIP_PAIRS:
            raise StyleTalkerError(f"mouth_envelope: lips must be one of {', '.join(LIP_PAIRS)}, got {lips!r}")
        closed_threshold = CLOSED_THRESHOLDS[lips] if closed_threshold is None else closed_threshold
        if smooth_frames < 1 or smooth_frames % 2 == 0:
            raise StyleTalkerError(f"mouth_envelope: smooth_frames must be odd and >= 1, got {smooth_frames}")
        if max_lag < 0 or silence_margin < 0:
            raise StyleTalkerError(f"mouth_envelope: max_lag and silence_margin must be >= 0, got {max_lag}, {silence_margin}")
        if not 0 < vad_threshold < 1 or not 0 <= min_detected <= 1:
            raise StyleTalkerError(f"mouth_envelope: vad_threshold must be in (0, 1) and min_detected in [0, 1], got "
                                   f"{vad_threshold}, {min_detected}")
        if floor_db >= 0 or closed_threshold <= 0 or landmark_size < 0:
            raise StyleTalkerError(f"mouth_envelope: floor_db < 0, closed_threshold > 0 and landmark_size >= 0 needed, got "
                                   f"{floor_db}, {closed_threshold}, {landmark_size}")
        self.max_lag, self.landmark_size, self.vad_threshold, self.floor_db = max_lag, landmark_size, vad_threshold, floor_db
        self.closed_threshold, self.silence_margin, self.min_detected = closed_threshold, silence_margin, min_detected
        self.lips, self.smooth_frames = lips, smooth_frames
        if track_frames < 0:
            raise StyleTalkerError(f"mouth_envelope: track_frames must be >= 0, got {track_frames}")
        self.track_frames = track_frames

    def landmark_frames(self, frames: torch.Tensor) -> torch.Tensor:
        """Frames [t, 3, h, w] upsampled (bicubic) so the shorter side is at least ``landmark_size``."""
        short = min(frames.shape[-2:])
        if not self.landmark_size or short >= self.landmark_size:
            return frames
        scale = self.landmark_size / short
        size = (round(frames.shape[-2] * scale), round(frames.shape[-1] * scale))
        return F.interpolate(frames.detach().float().cpu(), size=size, mode="bicubic", align_corners=False).clamp(-1, 1)

    def analyse(self, item: EvalItem) -> EnvelopeAnalysis:
        check_video(item.frames, "generated video")
        if item.sample_rate % item.fps:
            raise StyleTalkerError(f"mouth_envelope: {item.sample_rate} Hz audio is not a whole number of samples per frame at {item.fps} fps")
        t = len(item.frames)
        track = track_mouth(self.landmark_frames(item.frames), self.track_frames)
        opening = median_smooth(mouth_opening(track.points, self.lips), self.smooth_frames)
        detected, tracked = float(track.detected.mean()), float(track.tracked.mean())
        envelope = speech_envelope(item.audio, t, item.sample_rate // item.fps, self.floor_db)
        voiced = voice_activity(envelope, self.vad_threshold)
        scored = detected >= self.min_detected and detected > 0
        lags = list(range(-self.max_lag, self.max_lag + 1))
        if scored:
            correlations = lagged_correlations(opening, envelope, self.max_lag)
        else:
            LOG.warning("mouth_envelope: the face detector found a face in %.0f %% of %d frames (under min_detected %.0f %%); "
                        "the lip values are not scored (NaN)", 100 * detected, t, 100 * self.min_detected)
            correlations = np.full(len(lags), np.nan)
        quiet = quiet_frames(voiced, self.silence_margin)
        if not quiet.any():  # only short gaps between voiced frames: use them as they are
            quiet = ~voiced
        return EnvelopeAnalysis(opening, envelope, voiced, quiet, lags, correlations, detected, tracked, scored)

    def compute(self, item: EvalItem) -> dict[str, float]:
        result = self.analyse(item)
        nan = float("nan")
        best = result.best_lag
        return {
            "mouth_envelope_corr": float(np.nanmax(result.correlations)) if best is not None else nan,
            "mouth_envelope_corr_lag0": float(result.correlations[self.max_lag]),
            "mouth_envelope_lag_abs": float(abs(best)) if best is not None else nan,
            "mouth_envelope_closed_silence": result.closed_in_silence(self.closed_threshold) if result.scored else nan,
            "mouth_envelope_detected": result.detected,
            "mouth_envelope_tracked": result.tracked,
        }
