"""Head motion and blinks of the synthetic domain.

Head pose (yaw, pitch, roll in degrees) is a damped second-order random process per axis,
driven by white noise whose strength rises with the loudness of the speech, so audio
carries some information about motion (as in real speech); a per-clip resting pose and
movement scale make clips differ. A soft limit keeps the pose in a plausible range.

Blinks are a renewal process: gaps between blink onsets are a 0.5 s refractory period plus
an exponential wait, giving a per-clip rate drawn from 10-30 blinks per minute; each blink
lasts 100-400 ms, closing in its first third and reopening in the rest (raised-cosine
profiles). Eye openness is 1 when open and 0 when fully closed.
"""

from __future__ import annotations

import math

import attrs
import numpy as np

POSE_LIMITS = np.array([32.0, 18.0, 14.0])  # degrees: |yaw|, |pitch|, |roll| stay below these
_REST_STD = np.array([7.0, 4.0, 3.0])
_DRIVE_STD = np.array([110.0, 64.0, 44.0])  # noise strength of each axis at full loudness
_QUIET_DRIVE = 0.3  # fraction of the drive in silence
_NATURAL_HZ = 0.55
_DAMPING = 0.75
BLINK_RATE_RANGE = (10.0, 30.0)  # blinks per minute
BLINK_DURATION_RANGE = (0.1, 0.4)  # seconds
_REFRACTORY = 0.5  # seconds between blink onsets at least


def loudness_envelope(audio: np.ndarray, num_frames: int, samples_per_frame: int = 640) -> np.ndarray:
    """Loudness of each frame in [0, 1]: RMS level mapped from [-50, -10] dBFS -> [num_frames]."""
    padded = np.zeros(num_frames * samples_per_frame, dtype=np.float64)
    length = min(len(audio), len(padded))
    padded[:length] = audio[:length]
    rms = np.sqrt(np.mean(padded.reshape(num_frames, samples_per_frame) ** 2, axis=1) + 1e-12)
    level = 20 * np.log10(rms)
    return np.clip((level + 50) / 40, 0, 1).astype(np.float32)


def head_pose(rng: np.random.Generator, loudness: np.ndarray, fps: int = 25) -> np.ndarray:
    """Pose [t, 3] (yaw, pitch, roll in degrees) for frames with loudness [t] in [0, 1]."""
    steps = len(loudness)
    dt = 1.0 / fps
    omega = 2 * math.pi * _NATURAL_HZ
    scale = rng.uniform(0.6, 1.3)
    rest = rng.normal(0, _REST_STD)
    drive = (_QUIET_DRIVE + (1 - _QUIET_DRIVE) * loudness)[:, None] * _DRIVE_STD * scale
    noise = rng.normal(size=(steps + 50, 3))
    position = np.zeros(3)
    velocity = np.zeros(3)
    out = np.zeros((steps, 3))
    for i in range(steps + 50):  # 50 warm-up steps reach the stationary regime
        strength = drive[max(i - 50, 0)]
        acceleration = -2 * _DAMPING * omega * velocity - omega * omega * position + strength * noise[i] / math.sqrt(dt)
        velocity = velocity + acceleration * dt
        position = position + velocity * dt
        if i >= 50:
            out[i - 50] = position
    pose = rest + out
    return (POSE_LIMITS * np.tanh(pose / POSE_LIMITS)).astype(np.float32)


@attrs.frozen
class Blinks:
    """Blink events of a clip: onset and duration in seconds, and the clip's blink rate."""

    onsets: np.ndarray
    durations: np.ndarray
    rate_per_minute: float

    def openness(self, times: np.ndarray) -> np.ndarray:
        """Eye openness at ``times`` (seconds) -> float32 [n] in [0, 1]."""
        closure = np.zeros(len(times))
        for onset, duration in zip(self.onsets, self.durations):
            phase = (times - onset) / duration  # 0..1 across the blink
            closing = (phase >= 0) & (phase < 1 / 3)
            opening = (phase >= 1 / 3) & (phase < 1)
            value = np.zeros(len(times))
            value[closing] = 0.5 - 0.5 * np.cos(np.pi * phase[closing] * 3)
            value[opening] = 0.5 + 0.5 * np.cos(np.pi * (phase[opening] - 1 / 3) * 1.5)
            closure = np.maximum(closure, value)
        return (1 - closure).astype(np.float32)


def sample_blinks(rng: np.random.Generator, seconds: float) -> Blinks:
    """Blinks over ``seconds``: a renewal process started in its stationary state."""
    rate = rng.uniform(*BLINK_RATE_RANGE)
    mean_gap = 60.0 / rate
    onsets = []
    t = -rng.uniform(0, mean_gap)  # the clip starts somewhere inside a gap
    while True:
        t += _REFRACTORY + rng.exponential(mean_gap - _REFRACTORY)
        if t >= seconds:
            break
        if t >= 0:
            onsets.append(t)
    durations = rng.uniform(*BLINK_DURATION_RANGE, size=len(onsets))
    return Blinks(np.array(onsets), durations, float(rate))
