"""Speech of the synthetic domain: sentences from a word list, synthesized with eSpeak NG.

eSpeak NG is the library shipped by the ``espeakng-loader`` package, called through ctypes
in synchronous mode (``AUDIO_OUTPUT_SYNCHRONOUS``) with phoneme events enabled. A synth
callback collects the 16-bit samples (22050 Hz) and the events; each
``espeakEVENT_PHONEME`` event carries the phoneme's eSpeak mnemonic and its start time
``audio_position`` in milliseconds from the start of the utterance. A phoneme lasts until
the next phoneme event; the utterance ends at the ``espeakEVENT_END``/last event.

The library keeps global state that carries over from one utterance to the next (even
across espeak_Terminate / espeak_Initialize), which makes the same text come out a few
samples different on a second call. :func:`synthesize` therefore speaks every utterance in
a short-lived forked child process that initialises eSpeak from scratch and sends back the
samples and phonemes through a pipe (as JSON and raw bytes); eSpeak's random generator
(noise of breathy voices, seeded from the clock) is seeded from the text and voice. So the
speech of a clip is a function of its text and voice only. Sentences are assigned to a split
(train / val / test, or train / heldout in datasets of the older layout) by a hash of their
text, so no two splits share a sentence.

Voices: in the train / val / test layout a *voice* is one eSpeak speaker (a voice variant of
:data:`VOICES` with its own pitch and pitch range; the speaking rate varies per sentence).
Voices are numbered like identities and each split has its own (:class:`VoicePool`); a
split's voices cycle through every variant, and no voice of one split has the variant, pitch
and pitch range of a voice of another. The older layout draws a voice per clip instead.
"""

from __future__ import annotations

import ctypes
import json
import os
import struct
import threading
import zlib
from collections.abc import Callable
from importlib import resources
from pathlib import Path

import attrs
import numpy as np

from styletalker_core.errors import StyleTalkerError

ESPEAK_SAMPLE_RATE = 22050
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_PHONEME_EVENTS = 0x0001
_EVENT_LIST_TERMINATED = 0
_EVENT_END = 5
_EVENT_MSG_TERMINATED = 6
_EVENT_PHONEME = 7
_PARAM_RATE, _PARAM_PITCH, _PARAM_RANGE = 1, 3, 4
_POS_CHARACTER = 1
_CHARS_UTF8 = 1

# eSpeak NG voices (language + variant) the generator draws from.
VOICES = (
    "en-us+m1", "en-us+m3", "en-us+m5", "en-us+m7", "en-us+f1", "en-us+f2", "en-us+f4",
    "en+m2", "en+m4", "en+f3", "en+f5", "en-gb-x-rp+m6",
)


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    """espeak_EVENT of speak_lib.h."""

    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


@attrs.frozen
class Voice:
    """How a sentence is spoken: eSpeak voice name, rate (words per minute), pitch and pitch range (0-100)."""

    name: str
    rate: int
    pitch: int
    pitch_range: int

    def as_dict(self) -> dict[str, int | str]:
        return attrs.asdict(self)


@attrs.frozen
class Utterance:
    """Synthesized speech: int16 samples at 22050 Hz and phonemes (name, start s, end s)."""

    samples: np.ndarray
    phonemes: list[tuple[str, float, float]]

    @property
    def duration(self) -> float:
        return len(self.samples) / ESPEAK_SAMPLE_RATE


class EspeakSynthesizer:
    """eSpeak NG through ctypes, initialised once per process (see :func:`synthesize`)."""

    def __init__(self) -> None:
        try:
            import espeakng_loader
        except ImportError as error:  # pragma: no cover - a dependency of the project
            raise StyleTalkerError("the espeakng-loader package is missing; reinstall styletalker (make setup)") from error
        self._lib = ctypes.CDLL(espeakng_loader.get_library_path())
        data_parent = str(Path(espeakng_loader.get_data_path()).parent).encode()
        self._lib.espeak_Initialize.restype = ctypes.c_int
        self._lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        rate = self._lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data_parent, _INITIALIZE_PHONEME_EVENTS)
        if rate != ESPEAK_SAMPLE_RATE:
            raise StyleTalkerError(f"eSpeak NG at {data_parent.decode()} failed to initialise (returned {rate})")
        self._lib.espeak_Synth.argtypes = [
            ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint, ctypes.c_uint,
            ctypes.c_void_p, ctypes.c_void_p,
        ]
        self._lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        self._lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        self._lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        self._chunks: list[np.ndarray] = []
        self._events: list[tuple[int, int, str]] = []
        self._callback = _CALLBACK(self._collect)  # kept alive as long as the synthesizer
        self._lib.espeak_SetSynthCallback(self._callback)
        self._lock = threading.Lock()

    def _collect(self, wave: ctypes._Pointer[ctypes.c_short], count: int, events: ctypes._Pointer[_Event]) -> int:
        if wave and count > 0:
            self._chunks.append(np.ctypeslib.as_array(wave, shape=(count,)).copy())
        index = 0
        while events[index].type != _EVENT_LIST_TERMINATED:
            event = events[index]
            name = bytes(event.id.string).split(b"\0")[0].decode("utf-8", "replace") if event.type == _EVENT_PHONEME else ""
            self._events.append((event.type, event.audio_position, name))
            index += 1
        return 0

    def synthesize(self, text: str, voice: Voice) -> Utterance:
        """Speak ``text`` with ``voice`` -> samples and timed phonemes (times from the utterance start)."""
        with self._lock:
            self._chunks, self._events = [], []
            if self._lib.espeak_SetVoiceByName(voice.name.encode()) != 0:
                raise StyleTalkerError(f"eSpeak NG voice {voice.name!r} not found; use one of {', '.join(VOICES)}")
            self._lib.espeak_SetParameter(_PARAM_RATE, int(voice.rate), 0)
            self._lib.espeak_SetParameter(_PARAM_PITCH, int(voice.pitch), 0)
            self._lib.espeak_SetParameter(_PARAM_RANGE, int(voice.pitch_range), 0)
            # Breathy voices mix in noise from eSpeak's random generator (seeded from the clock).
            self._lib.espeak_ng_SetRandSeed(zlib.crc32(f"{text}|{voice}".encode()))
            encoded = text.encode("utf-8")
            status = self._lib.espeak_Synth(encoded, len(encoded) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
            self._lib.espeak_Synchronize()
            if status != 0:
                raise StyleTalkerError(f"eSpeak NG could not synthesize {text!r} (error {status})")
            samples = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
            events = list(self._events)
        duration_ms = 1000.0 * len(samples) / ESPEAK_SAMPLE_RATE
        starts = [(ms, name) for kind, ms, name in events if kind == _EVENT_PHONEME]
        phonemes = []
        for i, (ms, name) in enumerate(starts):
            end = starts[i + 1][0] if i + 1 < len(starts) else duration_ms
            if end > ms:
                phonemes.append((name, ms / 1000.0, end / 1000.0))
        return Utterance(samples.astype(np.int16), phonemes)


def _child_synthesize(text: str, voice: Voice, fd: int) -> None:
    """In a forked child: speak with a fresh eSpeak and write header length, JSON header, samples to ``fd``."""
    try:
        utterance = EspeakSynthesizer().synthesize(text, voice)
        header = {"phonemes": utterance.phonemes, "samples": int(len(utterance.samples))}
        payload = utterance.samples.astype("<i2").tobytes()
    except Exception as error:  # noqa: BLE001 - reported to the parent, which raises it
        header, payload = {"error": f"{type(error).__name__}: {error}"}, b""
    encoded = json.dumps(header).encode()
    data = struct.pack("<Q", len(encoded)) + encoded + payload
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _read_exactly(fd: int, count: int) -> bytes:
    parts, remaining = [], count
    while remaining:
        chunk = os.read(fd, min(remaining, 1 << 20))
        if not chunk:
            raise StyleTalkerError("the eSpeak NG child process ended early")
        parts.append(chunk)
        remaining -= len(chunk)
    return b"".join(parts)


def synthesize(text: str, voice: Voice) -> Utterance:
    """Speak ``text`` with ``voice`` in a fresh eSpeak NG (forked child) -> samples and timed phonemes."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        status = 0
        try:
            os.close(read_fd)
            _child_synthesize(text, voice, write_fd)
        except BaseException:  # noqa: BLE001 - a forked child must always reach os._exit
            status = 1
        finally:
            os._exit(status)
    os.close(write_fd)
    try:
        (length,) = struct.unpack("<Q", _read_exactly(read_fd, 8))
        header = json.loads(_read_exactly(read_fd, length))
        if "error" in header:
            raise StyleTalkerError(header["error"])
        samples = np.frombuffer(_read_exactly(read_fd, 2 * header["samples"]), dtype="<i2").astype(np.int16)
    finally:
        os.close(read_fd)
        os.waitpid(pid, 0)
    phonemes = [(str(name), float(start), float(end)) for name, start, end in header["phonemes"]]
    return Utterance(samples, phonemes)


def word_list() -> list[str]:
    """The shipped word list (a few hundred common English words)."""
    text = resources.files("styletalker_core.data.synthetic").joinpath("words.txt").read_text()
    return [word for word in text.split() if word]


def sentence_split(text: str, heldout_fraction: float) -> str:
    """"heldout" or "train" (the older two-split layout): a fixed function of the text, so splits
    never share a sentence."""
    return "heldout" if (zlib.crc32(text.encode()) % 10_000) < heldout_fraction * 10_000 else "train"


def sentence_split3(text: str, val_fraction: float, test_fraction: float) -> str:
    """"val", "test" or "train": a fixed function of the text (the same hash as :func:`sentence_split`;
    the first ``val_fraction`` of the hash range is val, the next ``test_fraction`` test)."""
    bucket = zlib.crc32(text.encode()) % 10_000
    if bucket < val_fraction * 10_000:
        return "val"
    return "test" if bucket < (val_fraction + test_fraction) * 10_000 else "train"


def sample_sentence(rng: np.random.Generator, num_words: int, split: str,
                    heldout_fraction: float | Callable[[str], str]) -> str:
    """A random sentence of ``num_words`` words that belongs to ``split``.

    ``heldout_fraction``: the older layout's held-out fraction (:func:`sentence_split`), or a
    function text -> split name (for example ``lambda t: sentence_split3(t, 0.1, 0.15)``).
    """
    words = word_list()
    if callable(heldout_fraction):
        assign = heldout_fraction
    else:
        if split == "heldout" and heldout_fraction <= 0:
            raise ValueError("a held-out sentence needs heldout_fraction > 0")
        if split == "train" and heldout_fraction >= 1:
            raise ValueError("a training sentence needs heldout_fraction < 1")
        fraction = heldout_fraction

        def assign(text: str) -> str:
            return sentence_split(text, fraction)

    for _ in range(1_000_000):
        text = " ".join(words[i] for i in rng.integers(0, len(words), size=num_words))
        if assign(text) == split:
            return text
    raise ValueError(f"found no sentence of split {split!r} in a million draws; is its fraction 0?")


def sample_voice(rng: np.random.Generator) -> Voice:
    """A random voice: one of :data:`VOICES`, 130-190 words per minute, pitch 30-70, range 30-80."""
    return Voice(
        name=VOICES[int(rng.integers(len(VOICES)))],
        rate=int(rng.integers(130, 191)),
        pitch=int(rng.integers(30, 71)),
        pitch_range=int(rng.integers(30, 81)),
    )


_VOICE_SALT = 0x70CE


def sample_rate(rng: np.random.Generator) -> int:
    """A speaking rate in words per minute (130-190), drawn per sentence."""
    return int(rng.integers(130, 191))


@attrs.frozen
class VoicePool:
    """Numbered voices split into consecutive blocks: ``splits`` holds (split name, count).

    Voice ``k`` is eSpeak variant ``VOICES[j % len(VOICES)]``, ``j`` its place in its split's
    block (so a split of at least ``len(VOICES)`` voices has every variant), with a pitch (30-70)
    and a pitch range (30-80) drawn from its own random stream. A voice whose (variant, pitch,
    pitch range) equals that of an earlier voice is redrawn, so no two voices, and no two
    splits, share one.
    """

    seed: int
    splits: tuple[tuple[str, int], ...]

    def ids(self, split: str) -> list[int]:
        start = 0
        for name, count in self.splits:
            if name == split:
                return list(range(start, start + count))
            start += count
        raise ValueError(f"unknown split {split!r}; use one of {', '.join(name for name, _ in self.splits)}")

    def parameters(self) -> list[tuple[str, int, int]]:
        """(variant, pitch, pitch range) of every voice, in voice-number order."""
        voices: list[tuple[str, int, int]] = []
        for _, count in self.splits:
            for place in range(count):
                rng = np.random.default_rng([self.seed, _VOICE_SALT, len(voices)])
                variant = VOICES[place % len(VOICES)]
                while True:
                    candidate = (variant, int(rng.integers(30, 71)), int(rng.integers(30, 81)))
                    if candidate not in voices:
                        break
                voices.append(candidate)
        return voices

    def voice(self, number: int, rate: int) -> Voice:
        name, pitch, pitch_range = self.parameters()[number]
        return Voice(name=name, rate=rate, pitch=pitch, pitch_range=pitch_range)
