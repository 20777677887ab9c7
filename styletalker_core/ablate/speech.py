"""Speech conditions of an evaluation: the test clips' sentences spoken by voices no training heard.

The synthetic domain's speech is eSpeak NG, and its mouth_open labels follow eSpeak's phoneme
timing. Users bring other voices, so an evaluation can drive the same test clips with:

- ``espeak``: the clip's own speech as recorded (wide-band, 16 kHz): the ordinary evaluation;
- ``phone``: the same speech through a telephone channel (8 kHz and back,
  :func:`styletalker_core.data.audio_augment.band_limit`); timing unchanged, so the clip's labels
  and frames still apply;
- ``flite``: the clip's sentence (``meta.transcript``) spoken by Flite (Debian's ``flite``, its
  default voice writes 8 kHz), resampled to 16 kHz;
- ``festival``: the sentence spoken by Festival (``text2wave``, 16 kHz).

Install the two engines with ``apt-get update && apt-get install -y flite festival``; no training
data is made with them. Engine speech is placed where the clip's speech starts (``meta.speech_start``),
at the clip's speech peak level, with the clip's trailing silence after it; its timing is the
engine's own, so the clip's frames and labels no longer line up with it: such items keep only the
reference image (the clip's first frame) and the audio, and are scored by metrics that need no
labels (the model-free ``mouth_envelope``, ``lse``, identity).

Axis letters: s audio samples.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import wave
from collections.abc import Sequence
from pathlib import Path

import attrs
import numpy as np
import torch

from styletalker_core.ablate.clips import HeldoutClip
from styletalker_core.errors import StyleTalkerError

SAMPLE_RATE = 16000
SAMPLES_PER_FRAME = SAMPLE_RATE // 25
PHONE_RATE = 8000
SILENCE_FRACTION = 0.02  # engine output quieter than this share of its peak at either end is trimmed


@attrs.frozen
class SpeechEngine:
    """A text-to-speech program: ``command`` with ``{text}``, ``{text_file}`` and ``{out}`` (a WAV file)
    filled in; ``install``: how to get it."""

    name: str
    command: tuple[str, ...]
    install: str

    def synthesize(self, text: str) -> torch.Tensor:
        """``text`` spoken by the engine: [s] float32 at 16 kHz."""
        program = self.command[0]
        if shutil.which(program) is None:
            raise StyleTalkerError(f"speech {self.name}: {program} not found; install it ({self.install})")
        with tempfile.TemporaryDirectory(prefix=f"styletalker_{self.name}_") as folder:
            text_file, out = Path(folder) / "text.txt", Path(folder) / "speech.wav"
            text_file.write_text(text + "\n", encoding="utf-8")
            command = [part.format(text=text, text_file=text_file, out=out) for part in self.command]
            done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
            if done.returncode != 0 or not out.is_file():
                detail = (done.stderr or done.stdout).strip().splitlines()
                raise StyleTalkerError(f"speech {self.name}: {program} failed (exit {done.returncode})"
                                       + (f": {detail[-1]}" if detail else ""))
            return read_wav_16k(out)


ENGINES: dict[str, SpeechEngine] = {
    "flite": SpeechEngine("flite", ("flite", "-t", "{text}", "-o", "{out}"), "apt-get install -y flite"),
    "festival": SpeechEngine("festival", ("text2wave", "{text_file}", "-o", "{out}"), "apt-get install -y festival"),
}

CONDITIONS = {
    "espeak": "eSpeak NG, wide-band (the clip's own speech)",
    "phone": "eSpeak NG, phone-band (8 kHz)",
    "flite": "Flite",
    "festival": "Festival",
}


def read_wav_16k(path: Path) -> torch.Tensor:
    """A PCM WAV file (8/16/32-bit, any rate, channels averaged) as [s] float32 in [-1, 1] at 16 kHz."""
    import torchaudio.functional as AF

    with wave.open(str(path), "rb") as handle:
        width, channels, rate = handle.getsampwidth(), handle.getnchannels(), handle.getframerate()
        data = handle.readframes(handle.getnframes())
    samples: np.ndarray
    if width == 1:
        samples = (np.frombuffer(data, np.uint8).astype(np.float32) - 128) / 128
    elif width in (2, 4):
        kind = np.int16 if width == 2 else np.int32
        samples = np.frombuffer(data, kind).astype(np.float32) / float(np.iinfo(kind).max + 1)
    else:
        raise StyleTalkerError(f"{path}: {8 * width}-bit WAV; expected 8, 16 or 32-bit PCM")
    wave_ = torch.from_numpy(samples.reshape(-1, channels).mean(axis=1).copy())
    return AF.resample(wave_, rate, SAMPLE_RATE) if rate != SAMPLE_RATE else wave_


def parse_conditions(text: str | Sequence[str]) -> tuple[str, ...]:
    """``"espeak,phone,flite"`` -> the conditions, checked; unknown names are an error naming the known ones."""
    names = [name.strip() for name in (text.split(",") if isinstance(text, str) else text) if name.strip()]
    unknown = [name for name in names if name not in CONDITIONS]
    if unknown or not names:
        raise StyleTalkerError(f"--speech {','.join(unknown) or '(none)'}: choose from {', '.join(CONDITIONS)}")
    if len(set(names)) != len(names):
        raise StyleTalkerError(f"--speech {','.join(names)}: each condition once")
    return tuple(names)


def trim_silence(speech: torch.Tensor, fraction: float = SILENCE_FRACTION) -> torch.Tensor:
    """``speech`` [s] without the leading and trailing samples under ``fraction`` of its peak."""
    peak = float(speech.abs().max()) if speech.numel() else 0.0
    if peak <= 0:
        raise StyleTalkerError("the speech engine wrote silence")
    loud = torch.nonzero(speech.abs() >= fraction * peak).flatten()
    return speech[int(loud[0]) : int(loud[-1]) + 1]


def place_speech(clip: HeldoutClip, speech: torch.Tensor) -> torch.Tensor:
    """``speech`` [s] (16 kHz) placed in a copy of the clip's timeline: the clip's leading silence
    (until ``meta.speech_start``), the speech at the clip's speech peak, then the clip's trailing
    silence (after ``meta.speech_end``); whole video frames long."""
    speech = trim_silence(speech)
    length = len(clip.audio)
    start = round(float(clip.meta.get("speech_start", 0.0)) * SAMPLE_RATE)
    end = round(float(clip.meta.get("speech_end", length / SAMPLE_RATE)) * SAMPLE_RATE)
    start, end = min(max(start, 0), length), min(max(end, 0), length)
    tail = length - max(end, start)
    peak = float(clip.audio[start:max(end, start + 1)].abs().max()) or float(clip.audio.abs().max()) or 0.5
    total = start + len(speech) + tail
    total = -(-total // SAMPLES_PER_FRAME) * SAMPLES_PER_FRAME
    audio = torch.zeros(total, dtype=torch.float32)
    audio[start : start + len(speech)] = speech * (peak / float(speech.abs().max()))
    return audio


def condition_clips(clips: list[HeldoutClip], condition: str) -> list[HeldoutClip]:
    """``clips`` under speech ``condition`` (a key of CONDITIONS). ``espeak``: the clips themselves;
    ``phone``: band-limited speech, still aligned with frames and labels; an engine: the clip's
    sentence spoken by it, not aligned (``aligned = False``: no reference frames, no labels)."""
    from styletalker_core.data.audio_augment import band_limit

    if condition == "espeak":
        return clips
    if condition == "phone":
        return [attrs.evolve(clip, audio=band_limit(clip.audio, PHONE_RATE)) for clip in clips]
    if condition not in ENGINES:
        raise StyleTalkerError(f"speech {condition!r}: choose from {', '.join(CONDITIONS)}")
    engine = ENGINES[condition]
    spoken = []
    for clip in clips:
        text = clip.meta.get("transcript")
        if not isinstance(text, str) or not text.strip():
            raise StyleTalkerError(f"clip {clip.clip_id}: no sentence text (meta.transcript); speech {condition} "
                                   "needs it (datasets made by `styletalker data synth` record it)")
        audio = place_speech(clip, engine.synthesize(text.strip()))
        spoken.append(attrs.evolve(clip, audio=audio, labels={}, aligned=False))
    return spoken


def mode_key(mode: str, condition: str) -> str:
    """The report key of ``mode`` under speech ``condition``: the mode itself for eSpeak, else ``mode@condition``."""
    return mode if condition == "espeak" else f"{mode}@{condition}"


def split_mode_key(key: str) -> tuple[str, str]:
    """``"audio@flite"`` -> ("audio", "flite"); ``"audio"`` -> ("audio", "espeak")."""
    mode, _, condition = key.partition("@")
    return mode, condition or "espeak"
