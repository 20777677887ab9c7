"""Phonemes -> visemes -> mouth openness and width over time, with coarticulation.

Each eSpeak NG phoneme (stress marks removed) belongs to a viseme; a viseme has a target
mouth openness and width in [0, 1] and a dominance (how strongly it imposes its shape on
its neighbours). Coarticulation follows the dominance model of Cohen and Massaro: at time t
the mouth parameter is the dominance-weighted mean of all phoneme targets,

    value(t) = sum_i D_i(t) T_i / sum_i D_i(t),
    D_i(t) = alpha_i * exp(-(start_i - t) / tau_a)   before the phoneme,
           alpha_i                                inside it,
           alpha_i * exp(-(t - end_i) / tau_c)    after it,

so a phoneme rules inside its own interval and leaks into its neighbours: ahead of itself
with time constant ``tau_a`` (anticipation, 30 ms) and behind with ``tau_c`` (carry-over,
12 ms; lips leave a closure quickly once a vowel starts). Lips close for /p b m/ (high dominance) and take
their neighbours' shape for /h k g/ (low dominance).

Timing: a clip's frame t (25 fps) spans audio samples [640 t, 640 (t + 1)) at 16 kHz and
its labels are evaluated at its centre, (t + 0.5) / 25 seconds. Phoneme times come from
eSpeak's events in milliseconds, shifted by the silence placed before the utterance.
"""

from __future__ import annotations

import numpy as np

# viseme -> (openness, width, dominance)
VISEMES: dict[str, tuple[float, float, float]] = {
    "rest": (0.0, 0.45, 1.0),
    "bilabial": (0.0, 0.40, 3.0),
    "labiodental": (0.08, 0.45, 1.5),
    "dental": (0.18, 0.50, 1.0),
    "alveolar": (0.15, 0.55, 0.8),
    "postalveolar": (0.20, 0.28, 1.2),
    "velar": (0.30, 0.50, 0.35),
    "r": (0.20, 0.32, 0.9),
    "w": (0.12, 0.12, 1.5),
    "y": (0.22, 0.62, 0.8),
    "open": (0.95, 0.60, 1.0),
    "mid": (0.62, 0.70, 1.0),
    "spread": (0.32, 0.85, 1.0),
    "round_open": (0.72, 0.30, 1.0),
    "round": (0.38, 0.15, 1.0),
    "neutral": (0.48, 0.50, 0.8),
}

_PHONEME_VISEME: dict[str, str] = {
    "_": "rest", "_:": "rest", "_!": "rest",
    "p": "bilabial", "b": "bilabial", "m": "bilabial",
    "f": "labiodental", "v": "labiodental",
    "T": "dental", "D": "dental",
    "t": "alveolar", "d": "alveolar", "n": "alveolar", "l": "alveolar", "s": "alveolar", "z": "alveolar",
    "t#": "alveolar", "t2": "alveolar", "n-": "alveolar", "l-": "alveolar", "@L": "alveolar",
    "S": "postalveolar", "Z": "postalveolar", "tS": "postalveolar", "dZ": "postalveolar",
    "k": "velar", "g": "velar", "N": "velar", "h": "velar", ";": "velar", "x": "velar",
    "r": "r", "r-": "r", "w": "w", "j": "y",
    "a": "open", "aa": "open", "a#": "open", "A:": "open", "A@": "open", "aI": "open", "aU": "open",
    "aI@": "open", "aI3": "open", "aU@": "open", "a2": "open",
    "e": "mid", "E": "mid", "e@": "mid", "eI": "mid", "E2": "mid",
    "i": "spread", "i:": "spread", "I": "spread", "I#": "spread", "I2": "spread", "i@": "spread", "i@3": "spread",
    "0": "round_open", "O:": "round_open", "O@": "round_open", "O2": "round_open", "OI": "round_open", "o@": "round_open",
    "u:": "round", "U": "round", "U@": "round", "oU": "round",
    "V": "neutral", "@": "neutral", "@2": "neutral", "@5": "neutral", "3": "neutral", "3:": "neutral",
}

# Phoneme ids stored in the per-frame "phoneme" label: 0 silence, 1 any phoneme not listed.
PHONEMES: tuple[str, ...] = ("_", "?", *sorted(p for p in _PHONEME_VISEME if not p.startswith("_")))
_PHONEME_ID = {p: i for i, p in enumerate(PHONEMES)}
ANTICIPATION_TAU = 0.030  # seconds
CARRYOVER_TAU = 0.012  # seconds


def canonical_phoneme(name: str) -> str:
    """eSpeak mnemonic without stress and syllable marks ("'aI" -> "aI")."""
    stripped = name.lstrip("',%=")
    return stripped if stripped else "_"


def phoneme_id(name: str) -> int:
    """Index of ``name`` in :data:`PHONEMES` (1 for an unknown phoneme)."""
    name = canonical_phoneme(name)
    if name.startswith("_"):
        return 0
    return _PHONEME_ID.get(name, 1)


def viseme_of(name: str) -> str:
    """Viseme of an eSpeak phoneme; unknown phonemes take the neutral vowel's shape."""
    name = canonical_phoneme(name)
    if name.startswith("_"):
        return "rest"
    return _PHONEME_VISEME.get(name, "neutral")


def mouth_track(
    phonemes: list[tuple[str, float, float]],
    times: np.ndarray,
    anticipation: float = ANTICIPATION_TAU,
    carryover: float = CARRYOVER_TAU,
) -> tuple[np.ndarray, np.ndarray]:
    """Mouth openness and width at ``times`` (seconds, [n]) from timed phonemes (name, start, end).

    Times outside every phoneme are silence (rest). -> (openness [n], width [n]) in [0, 1].
    """
    times = np.asarray(times, dtype=np.float64)
    segments = [(start, end, VISEMES[viseme_of(name)]) for name, start, end in phonemes]
    # Silence before and after the utterance, so the mouth rests there.
    first = segments[0][0] if segments else 0.0
    last = segments[-1][1] if segments else 0.0
    rest = VISEMES["rest"]
    segments = [(min(first, times.min(initial=first)) - 1.0, first, rest), *segments, (last, max(last, times.max(initial=last)) + 1.0, rest)]
    starts = np.array([s for s, _, _ in segments])[None]
    ends = np.array([e for _, e, _ in segments])[None]
    targets = np.array([t for _, _, t in segments])  # [k, 3]
    ahead = np.maximum(starts - times[:, None], 0) / anticipation  # [n, k]
    behind = np.maximum(times[:, None] - ends, 0) / carryover
    dominance = targets[None, :, 2] * np.exp(-(ahead + behind))
    weights = dominance / dominance.sum(axis=1, keepdims=True)
    openness = weights @ targets[:, 0]
    width = weights @ targets[:, 1]
    return openness.astype(np.float32), width.astype(np.float32)


def phoneme_ids_at(phonemes: list[tuple[str, float, float]], times: np.ndarray) -> np.ndarray:
    """Id of the phoneme sounding at each time (0 for silence) -> int64 [n]."""
    ids = np.zeros(len(times), dtype=np.int64)
    for name, start, end in phonemes:
        ids[(times >= start) & (times < end)] = phoneme_id(name)
    return ids


def frame_times(num_frames: int, fps: int = 25) -> np.ndarray:
    """Centre time in seconds of each frame -> [num_frames]."""
    return (np.arange(num_frames) + 0.5) / fps
