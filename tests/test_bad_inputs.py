"""The bad-input suite (issue 16): every user-facing command fed broken, odd and hostile inputs.

The table ``CASES`` says per case which command runs with which inputs, and whether it must
succeed (some odd inputs are valid: CMYK, 16-bit or 1x1 images, stereo 48 kHz or 8-bit audio,
variable-frame-rate or rotated videos) or fail with a clear error. Every case checks the
contract of docs/errors.md:

- the exit status (0, or 2 for a user error; 1 only where a batch reports failed rows);
- stderr: an error is ONE line ``styletalker: error: ...`` that names the input (the file, the
  folder or the option), with no "Traceback" and no "internal error"; warnings logged on the
  way count as lines too (``recipes validate`` is a report: a header line naming the recipe,
  then one line per problem);
- nothing lost: no output (and no temporary file) is left after an error, an existing output
  is unchanged, and a success writes its outputs.

Commands run in-process through ``styletalker_core.cli.main.main`` with capsys and caplog;
inputs are made in tmp_path when the case runs. The shipped 64 px model and 0.3 s of audio keep
the whole suite to well under a minute of CPU. A summary table (cases, clear errors, internal
errors, tracebacks, partial outputs) is printed at the end of the session (tests/conftest.py);
docs/errors.md records it.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import re
import shutil
import struct
import zlib
from collections.abc import Callable
from functools import cached_property
from pathlib import Path

import attrs
import av
import numpy as np
import pytest
import soundfile
import torch
from PIL import Image

from styletalker_core.cli.main import main
from styletalker_core.sample.shipped import project_root

pytestmark = pytest.mark.usefixtures("single_thread")

ROOT = project_root()
MODEL = ROOT / "checkpoints" / "synthetic_64_model.safetensors"
DOMAIN = ROOT / "checkpoints" / "synthetic_64_domain.safetensors"
ORACLE = ROOT / "checkpoints" / "oracle_synthetic.safetensors"
REFERENCE = ROOT / "assets" / "reference.png"
MOTION = ROOT / "assets" / "motion.mp4"
SR = 16000
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
TEMPORARY = re.compile(r"(\.tmp$|\.partial|styletalker-write-test)")


# -- the table -------------------------------------------------------------------------------
@attrs.define
class Run:
    """What a case runs and what it must leave: ``names`` must appear in the error line,
    ``outputs`` must not exist after an error (and must exist after a success), ``keep`` are
    files whose bytes must not change."""

    argv: list[object]
    names: list[object] = attrs.field(factory=list)
    outputs: list[Path] = attrs.field(factory=list)
    keep: list[Path] = attrs.field(factory=list)


@attrs.frozen
class Case:
    command: str
    name: str
    build: Callable[[Workspace], Run]
    expect: str = "error"  # "ok" or "error"
    status: int | None = None  # expected exit status (default 0 for ok, 2 for error)
    report: bool = False  # recipes validate: a header line and one line per problem
    skip: str = ""

    @property
    def id(self) -> str:
        return f"{self.command}:{self.name}"

    @property
    def exit_status(self) -> int:
        return self.status if self.status is not None else (0 if self.expect == "ok" else 2)


CASES: list[Case] = []


def case(command: str, name: str, expect: str = "error", **options: object):
    def register(build: Callable[[Workspace], Run]) -> Callable[[Workspace], Run]:
        CASES.append(Case(command, name, build, expect, **options))
        return build

    return register


# -- inputs ------------------------------------------------------------------------------------
def noise_bytes(count: int, seed: int = 0) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, count, dtype=np.uint8).tobytes()


def tone(seconds: float, rate: int = SR, channels: int = 1, level: float = 0.3) -> np.ndarray:
    time = np.arange(int(round(seconds * rate))) / rate
    wave = (level * np.sin(2 * np.pi * 220 * time) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * time))).astype(np.float32)
    return wave if channels == 1 else np.repeat(wave[:, None], channels, axis=1)


def write_wav(path: Path, wave: np.ndarray, rate: int = SR, subtype: str = "PCM_16", fmt: str | None = None) -> Path:
    soundfile.write(str(path), wave, rate, subtype=subtype, format=fmt)
    return path


def encode_audio(path: Path, wave: np.ndarray, codec: str, rate: int = SR) -> Path:
    """Mono float32 ``wave`` encoded with ``codec`` (mp3, aac, ...) by PyAV."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate, layout="mono")
        frame_size = 1152
        for start in range(0, len(wave), frame_size):
            frame = av.AudioFrame.from_ndarray(wave[None, start : start + frame_size].astype(np.float32),
                                               format="fltp", layout="mono")
            frame.sample_rate, frame.pts = rate, start
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def encode_video(path: Path, frames: np.ndarray, fmt: str | None = None, times_ms: list[int] | None = None,
                 rotation: int | None = None, audio: np.ndarray | None = None) -> Path:
    """uint8 frames [t, h, w, 3] as H.264 in ``path``; ``times_ms`` gives each frame's time (variable
    frame rate); ``rotation`` a display matrix (degrees counter-clockwise); ``audio`` mono 16 kHz AAC."""
    with av.open(str(path), "w", format=fmt) as container:
        video = container.add_stream("libx264", rate=25)
        video.height, video.width = frames.shape[1:3]
        video.pix_fmt = "yuv420p"
        video.options = {"preset": "ultrafast"}
        if times_ms is not None:
            video.time_base = video.codec_context.time_base = __import__("fractions").Fraction(1, 1000)
        if rotation is not None:
            video.set_display_rotation(rotation)
        sound = container.add_stream("aac", rate=SR, layout="mono") if audio is not None else None
        for index, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            if times_ms is not None:
                frame.pts = times_ms[index]
            for packet in video.encode(frame):
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)
        if sound is not None:
            chunk = 1024
            for start in range(0, len(audio), chunk):
                frame = av.AudioFrame.from_ndarray(audio[None, start : start + chunk].astype(np.float32),
                                                   format="fltp", layout="mono")
                frame.sample_rate, frame.pts = SR, start
                for packet in sound.encode(frame):
                    container.mux(packet)
            for packet in sound.encode(None):
                container.mux(packet)
    return path


def png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG whose header says width x height (its data is a stub): refused before decoding."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))
    return path


def wav_with_long_header(path: Path, wave: np.ndarray, padding: int = 1 << 20) -> Path:
    """A 16-bit PCM WAV with a 1 MiB LIST chunk between its format and data chunks."""
    pcm = (np.clip(wave, -1, 1) * 32767).astype("<i2").tobytes()
    fmt = struct.pack("<HHIIHH", 1, 1, SR, SR * 2, 2, 16)
    chunks = b"fmt " + struct.pack("<I", len(fmt)) + fmt
    chunks += b"LIST" + struct.pack("<I", padding) + b"INFO" + b"\0" * (padding - 4)
    chunks += b"data" + struct.pack("<I", len(pcm)) + pcm
    path.write_bytes(b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks)
    return path


class Evil:
    """Pickles to a call of os.system: a checkpoint must never be unpickled, so it never runs."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def retag(data: bytes, change: Callable[[dict], None]) -> bytes:
    """A safetensors file (bytes) with its styletalker metadata document edited by ``change``."""
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + length])
    document = json.loads(header["__metadata__"]["styletalker"])
    change(document)
    header["__metadata__"]["styletalker"] = json.dumps(document)
    encoded = json.dumps(header).encode()
    encoded += b" " * (-len(encoded) % 8)
    return struct.pack("<Q", len(encoded)) + encoded + data[8 + length :]


class Shared:
    """Inputs made once for the whole module, each on first use."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @cached_property
    def speech(self) -> Path:
        return write_wav(self.folder / "speech.wav", tone(0.3))

    @cached_property
    def motion(self) -> Path:
        """0.4 s of the shipped motion video's aligned faces (64 px, no audio)."""
        from styletalker_core.media import read_video_frames

        return encode_video(self.folder / "motion.mp4", read_video_frames(MOTION, max_frames=10))

    @cached_property
    def motion_frames(self) -> np.ndarray:
        from styletalker_core.media import read_video_frames

        return read_video_frames(self.motion)

    @cached_property
    def model_bytes(self) -> bytes:
        return MODEL.read_bytes()

    @cached_property
    def dataset(self) -> Path:
        """A one-clip synthetic dataset (0.5 s at 64 px)."""
        from styletalker_core.data.synthetic import SynthConfig, generate_dataset

        folder = self.folder / "dataset"
        generate_dataset(folder, SynthConfig(clips=1, seed=3, resolution=64, seconds=(0.5, 0.5), heldout_fraction=0.0),
                         workers=1, progress=False)
        return folder


@attrs.define
class Workspace:
    tmp: Path
    shared: Shared

    def file(self, name: str, data: bytes = b"") -> Path:
        path = self.tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path

    def image(self, name: str, image: Image.Image, **save: object) -> Path:
        path = self.tmp / name
        image.save(path, **save)
        return path

    @property
    def out(self) -> Path:
        return self.tmp / "out.mp4"

    def existing(self, name: str = "existing.mp4") -> Path:
        return self.file(name, b"an earlier result, to be kept")

    def locked(self) -> Path:
        folder = self.tmp / "locked"
        folder.mkdir()
        folder.chmod(0o555)
        return folder


def sample(w: Workspace, *extra: object, image: object = None, audio: object = None, motion: object = None,
           out: object = None, checkpoint: object = MODEL) -> list[object]:
    argv: list[object] = ["sample", "--image", image or REFERENCE, "--audio", audio or w.shared.speech,
                          "--out", out or w.out, "--no-align", "--checkpoint", checkpoint]
    if motion is not None:
        argv += ["--motion", motion]
    return argv + list(extra)


def reference(mode: str | None = None, size: int | None = None) -> Image.Image:
    image = Image.open(REFERENCE).convert("RGB")
    if size is not None:
        image = image.resize((size, size), Image.Resampling.BICUBIC)
    return image.convert(mode) if mode else image


# -- sample: the reference image ---------------------------------------------------------------
def _image_case(name: str, expect: str, make: Callable[[Workspace], Path], *extra: object) -> None:
    def build(w: Workspace) -> Run:
        path = make(w)
        return Run(sample(w, *extra, image=path), names=[path], outputs=[w.out])

    case("sample", f"image {name}", expect)(build)


for suffix in (".png", ".jpg"):
    _image_case(f"empty {suffix}", "error", lambda w, s=suffix: w.file(f"empty{s}"))
    _image_case(f"random bytes {suffix}", "error", lambda w, s=suffix: w.file(f"noise{s}", noise_bytes(3000)))
_image_case("truncated .png", "error", lambda w: w.file("cut.png", REFERENCE.read_bytes()[: REFERENCE.stat().st_size // 2]))
_image_case("truncated .jpg", "error", lambda w: w.file(
    "cut.jpg", (lambda p: p.read_bytes()[: p.stat().st_size // 2])(w.image("full.jpg", reference(size=256), quality=95))))
_image_case("CMYK .jpg", "ok", lambda w: w.image("cmyk.jpg", reference("CMYK")))
_image_case("16-bit .png", "ok", lambda w: w.image("sixteen.png", Image.fromarray(
    (np.asarray(reference("L"), dtype=np.uint16) * 257).astype(np.uint16))))
_image_case("grayscale .png", "ok", lambda w: w.image("gray.png", reference("L")))
_image_case("RGBA .png", "ok", lambda w: w.image("rgba.png", reference("RGBA")))
_image_case("grayscale+alpha .png", "ok", lambda w: w.image("la.png", reference("LA")))
_image_case("palette .png", "ok", lambda w: w.image("palette.png", reference("P")))
_image_case("1x1 .png", "ok", lambda w: w.image("one.png", Image.new("RGB", (1, 1), (120, 100, 90))))
_image_case("2048x2048 .png", "ok", lambda w: w.image("large.png", reference(size=2048)))
_image_case("JPEG named .png", "ok", lambda w: w.image("really_jpeg.png", reference(), format="JPEG"))
_image_case("20000x20000 .png", "error", lambda w: png_header_only(w.tmp / "huge.png", 20000, 20000))
_image_case("15000x15000 .png", "error", lambda w: png_header_only(w.tmp / "big.png", 15000, 15000))
_image_case("0x0 .png header", "error", lambda w: png_header_only(w.tmp / "zero.png", 0, 0))
_image_case("a folder", "error", lambda w: (w.tmp / "folder.png").mkdir() or w.tmp / "folder.png")
_image_case("missing", "error", lambda w: w.tmp / "missing.png")
_image_case("a .wav file", "error", lambda w: write_wav(w.tmp / "speech.wav", tone(0.3)))
_image_case("an .mp4 video (a video reference: its frame 0 is the identity)", "ok",
            lambda w: shutil.copy(w.shared.motion, w.tmp / "video.mp4") and w.tmp / "video.mp4")


@case("sample", "image without a face (alignment on)")
def _(w: Workspace) -> Run:
    path = w.image("noface.png", Image.fromarray(np.full((64, 64, 3), 128, np.uint8)))
    return Run([a for a in sample(w, image=path) if a != "--no-align"], names=[path, "no face found"], outputs=[w.out])


# -- sample: the speech ---------------------------------------------------------------------------
def _audio_case(name: str, expect: str, make: Callable[[Workspace], Path], *names: str) -> None:
    def build(w: Workspace) -> Run:
        path = make(w)
        return Run(sample(w, audio=path), names=[path, *names], outputs=[w.out])

    case("sample", f"audio {name}", expect)(build)


for suffix in (".wav", ".mp3", ".flac"):
    _audio_case(f"empty {suffix}", "error", lambda w, s=suffix: w.file(f"empty{s}"))
    _audio_case(f"random bytes {suffix}", "error", lambda w, s=suffix: w.file(f"noise{s}", noise_bytes(6000, 1)))
_audio_case("silent 0.3 s", "ok", lambda w: write_wav(w.tmp / "silent.wav", np.zeros(4800, np.float32)))
_audio_case("1 ms", "error", lambda w: write_wav(w.tmp / "blip.wav", tone(0.001)), "give at least")
_audio_case("no samples", "error", lambda w: write_wav(w.tmp / "nothing.wav", np.zeros(0, np.float32)))
_audio_case("1 MiB header chunk", "ok", lambda w: wav_with_long_header(w.tmp / "long_header.wav", tone(0.3)))
_audio_case("stereo 48 kHz", "ok", lambda w: write_wav(w.tmp / "stereo48.wav", tone(0.3, 48000, 2), 48000))
_audio_case("6 channels 44.1 kHz", "ok", lambda w: write_wav(w.tmp / "six.wav", tone(0.3, 44100, 6), 44100))
_audio_case("8 kHz", "ok", lambda w: write_wav(w.tmp / "narrow.wav", tone(0.3, 8000), 8000))
_audio_case("8-bit", "ok", lambda w: write_wav(w.tmp / "eight.wav", tone(0.3), subtype="PCM_U8"))
_audio_case("24-bit", "ok", lambda w: write_wav(w.tmp / "24.wav", tone(0.3), subtype="PCM_24"))
_audio_case("64-bit float", "ok", lambda w: write_wav(w.tmp / "double.wav", tone(0.3), subtype="DOUBLE"))
_audio_case("float beyond +-1 (x1000)", "ok", lambda w: write_wav(w.tmp / "loud.wav", tone(0.3) * 1000, subtype="FLOAT"))
_audio_case("NaN float", "error", lambda w: write_wav(w.tmp / "nan.wav", np.where(np.arange(4800) == 99, np.nan, tone(0.3)),
                                                     subtype="FLOAT"), "NaN")
_audio_case("inf float", "error", lambda w: write_wav(w.tmp / "inf.wav", np.where(np.arange(4800) == 9, np.inf, tone(0.3)),
                                                     subtype="FLOAT"), "infinite")
_audio_case("truncated .wav (header says more)", "ok", lambda w: w.file(
    "cut.wav", write_wav(w.tmp / "full.wav", tone(0.6)).read_bytes()[: 44 + 2 * int(0.3 * SR)]))
_audio_case("valid .mp3", "ok", lambda w: encode_audio(w.tmp / "speech.mp3", tone(0.4), "mp3"))
_audio_case("truncated .mp3", "ok", lambda w: w.file(
    "cut.mp3", (lambda p: p.read_bytes()[: p.stat().st_size * 2 // 3])(encode_audio(w.tmp / "full.mp3", tone(0.8), "mp3"))))
_audio_case("valid .flac", "ok", lambda w: write_wav(w.tmp / "speech.flac", tone(0.3), fmt="FLAC"))
_audio_case("truncated .flac (cut inside a frame)", "error", lambda w: w.file(
    "cut.flac", (lambda p: p.read_bytes()[: p.stat().st_size * 2 // 3])(write_wav(w.tmp / "full.flac", tone(0.8), fmt="FLAC"))))
_audio_case("a video with sound", "ok", lambda w: encode_video(
    w.tmp / "talk.mp4", w.shared.motion_frames[:8], audio=tone(0.32)))
_audio_case("a video without sound", "error", lambda w: shutil.copy(w.shared.motion, w.tmp / "mute.mp4") and w.tmp / "mute.mp4",
            "no audio track")
_audio_case("a .png image", "error", lambda w: shutil.copy(REFERENCE, w.tmp / "face.png") and w.tmp / "face.png")
_audio_case("a folder", "error", lambda w: (w.tmp / "sound").mkdir() or w.tmp / "sound", "is a folder")


# -- sample: the motion video -------------------------------------------------------------------
def _motion_case(name: str, expect: str, make: Callable[[Workspace], Path], *names: str) -> None:
    def build(w: Workspace) -> Run:
        path = make(w)
        return Run(sample(w, motion=path), names=[path, *names], outputs=[w.out])

    case("sample", f"motion {name}", expect)(build)


for suffix in (".mp4", ".mov", ".mkv"):
    _motion_case(f"empty {suffix}", "error", lambda w, s=suffix: w.file(f"empty{s}"))
    _motion_case(f"random bytes {suffix}", "error", lambda w, s=suffix: w.file(f"noise{s}", noise_bytes(8000, 2)))
_motion_case("valid .mov", "ok", lambda w: encode_video(w.tmp / "motion.mov", w.shared.motion_frames, fmt="mov"))
_motion_case("valid .mkv", "ok", lambda w: encode_video(w.tmp / "motion.mkv", w.shared.motion_frames, fmt="matroska"))
_motion_case("truncated .mp4 (no index)", "error", lambda w: w.file(
    "cut.mp4", (lambda p: p.read_bytes()[: p.stat().st_size // 2])(w.shared.motion)))
_motion_case("truncated .mkv", "ok", lambda w: w.file(
    "cut.mkv", (lambda p: p.read_bytes()[: p.stat().st_size * 2 // 3])(
        encode_video(w.tmp / "full.mkv", w.shared.motion_frames, fmt="matroska"))))
_motion_case("one frame", "error", lambda w: encode_video(w.tmp / "single.mp4", w.shared.motion_frames[:1]), "1 frame")
_motion_case("variable frame rate", "ok", lambda w: encode_video(
    w.tmp / "vfr.mp4", w.shared.motion_frames, times_ms=[0, 30, 45, 120, 160, 170, 260, 300, 330, 400]))
_motion_case("rotated (portrait phone)", "ok", lambda w: encode_video(
    w.tmp / "phone.mp4", np.ascontiguousarray(np.rot90(w.shared.motion_frames, 1, axes=(1, 2))), rotation=-90))
_motion_case("still .png", "error", lambda w: shutil.copy(REFERENCE, w.tmp / "still.png") and w.tmp / "still.png", "still image")
_motion_case(".png named .mp4", "error", lambda w: shutil.copy(REFERENCE, w.tmp / "still.mp4") and w.tmp / "still.mp4", "1 frame")
_motion_case("a .wav file", "error", lambda w: write_wav(w.tmp / "sound.wav", tone(0.3)), "no video track")
_motion_case("a folder", "error", lambda w: (w.tmp / "clips.mp4").mkdir() or w.tmp / "clips.mp4", "is a folder")
_motion_case("missing", "error", lambda w: w.tmp / "missing.mp4", "no such file")


@case("sample", "motion with --still")
def _(w: Workspace) -> Run:
    return Run(sample(w, "--still", motion=w.shared.motion), names=["--still"], outputs=[w.out])


# -- sample: settings -------------------------------------------------------------------------
def _option_case(option: str, value: str, expect: str = "error", name: str | None = None) -> None:
    def build(w: Workspace) -> Run:
        return Run(sample(w, f"{option}={value}"), names=[name or option], outputs=[w.out])

    case("sample", f"{option} {value}", expect)(build)


for option, value in (("--temperature", "inf"), ("--temperature", "nan"), ("--temperature", "-1"),
                      ("--temperature", "abc"), ("--pose-scale", "inf"), ("--pose-scale", "-1"), ("--pose-scale", "nan"),
                      ("--crf", "99"), ("--crf", "-1"), ("--crf", "1.5"), ("--seed", str(2**70)), ("--seed", "-1"),
                      ("--num-samples", "0"), ("--batch-size", "0"), ("--chunk-frames", "0"), ("--preset", "warp"),
                      ("--motion-fit", "stretch"), ("--device", "tpu:7"), ("--device", "gpu")):
    _option_case(option, value)
for option, value in (("--temperature", "0"), ("--crf", "51"), ("--crf", "0"), ("--seed", str(2**63 - 1)),
                      ("--pose-scale", "0")):
    _option_case(option, value, "ok")
if not torch.cuda.is_available():
    _option_case("--device", "cuda")
    _option_case("--device", "cuda:3")


# -- sample: outputs --------------------------------------------------------------------------
@case("sample", "output exists")
def _(w: Workspace) -> Run:
    out = w.existing()
    return Run(sample(w, out=out), names=[out, "already exists"], keep=[out])


@case("sample", "output _1 of two samples exists")
def _(w: Workspace) -> Run:
    taken = w.existing("out_1.mp4")
    return Run(sample(w, "--num-samples", "2"), names=[taken], outputs=[w.tmp / "out_0.mp4"], keep=[taken])


@case("sample", "output is a folder")
def _(w: Workspace) -> Run:
    (w.tmp / "out.mp4").mkdir()
    return Run(sample(w), names=[w.out, "is a folder"])


@case("sample", "output is not .mp4")
def _(w: Workspace) -> Run:
    return Run(sample(w, out=w.tmp / "out.avi"), names=[w.tmp / "out.avi"], outputs=[w.tmp / "out.avi"])


@case("sample", "output under /proc")
def _(w: Workspace) -> Run:
    return Run(sample(w, out="/proc/styletalker/out.mp4"), names=["/proc/styletalker/out.mp4"])


@case("sample", "output under a file")
def _(w: Workspace) -> Run:
    blocker = w.existing("blocker")
    return Run(sample(w, out=blocker / "out.mp4"), names=[blocker / "out.mp4"], keep=[blocker])


@case("sample", "output in a locked folder", skip="root writes into read-only folders" if IS_ROOT else "")
def _(w: Workspace) -> Run:
    out = w.locked() / "out.mp4"
    return Run(sample(w, out=out), names=[out], outputs=[out])


@case("sample", "output name too long")
def _(w: Workspace) -> Run:
    out = w.tmp / ("x" * 300 + ".mp4")
    return Run(sample(w, out=out), names=["x" * 40])


@case("sample", "output is the audio input")
def _(w: Workspace) -> Run:
    talk = encode_video(w.tmp / "talk.mp4", w.shared.motion_frames[:8], audio=tone(0.32))
    return Run(sample(w, "--overwrite", audio=talk, out=talk), names=[talk, "also an input"], keep=[talk])


# -- sample: the model and batch manifests -------------------------------------------------------
def _checkpoint_case(command: str, name: str, make: Callable[[Workspace], Path], argv: Callable[[Workspace, Path], list],
                     outputs: Callable[[Workspace], list[Path]] = lambda w: [], *names: str, expect: str = "error") -> None:
    def build(w: Workspace) -> Run:
        path = make(w)
        return Run(argv(w, path), names=[path, *names], outputs=outputs(w))

    case(command, f"checkpoint {name}", expect)(build)


def checkpoint_files() -> dict[str, Callable[[Workspace], Path]]:
    """Broken or mismatched checkpoint files, by name."""
    from safetensors.torch import save_file

    def saved(w: Workspace, name: str, metadata: dict | None) -> Path:
        path = w.tmp / name
        save_file({"w": torch.zeros(2)}, str(path), metadata=metadata)
        return path

    return {
        "truncated to 90 %": lambda w: w.file("cut.safetensors", w.shared.model_bytes[: len(w.shared.model_bytes) * 9 // 10]),
        "truncated in its header": lambda w: w.file("head.safetensors", w.shared.model_bytes[:5000]),
        "a pickle": lambda w: w.file("model.pkl", pickle.dumps({"generator": [1.0, 2.0]})),
        "a torch.save zip": lambda w: (torch.save({"w": torch.zeros(2)}, w.tmp / "model.pt"), w.tmp / "model.pt")[1],
        "random bytes": lambda w: w.file("noise.safetensors", noise_bytes(4000, 3)),
        "empty": lambda w: w.file("empty.safetensors"),
        "without styletalker metadata": lambda w: saved(w, "raw.safetensors", None),
        "with corrupt metadata JSON": lambda w: saved(w, "badjson.safetensors", {"styletalker": "{not json"}),
        "with malformed metadata": lambda w: saved(w, "shape.safetensors", {"styletalker": '{"components": 5}'}),
        "whose weights do not fit its recorded options": lambda w: w.file("misfit.safetensors", retag(
            w.shared.model_bytes, lambda d: (d["components"]["lip_mapper"]["options"].update(hidden=96),
                                             d["components"]["image_encoder"]["options"].update(stem_channels=8)))),
        "naming a component no plugin provides": lambda w: w.file("unknown.safetensors", retag(
            w.shared.model_bytes, lambda d: (d["components"]["prior"].update(name="transformer9"),
                                             d["components"]["image_encoder"].update(name="e9e")))),
    }


for label, make in checkpoint_files().items():
    _checkpoint_case("sample", label, make, lambda w, p: sample(w, checkpoint=p), lambda w: [w.out])
_checkpoint_case("sample", "of another kind (domain generator + encoder)", lambda w: DOMAIN,
                 lambda w, p: sample(w, checkpoint=p), lambda w: [w.out], "not a talking-head model")
_checkpoint_case("sample", "a folder without model.safetensors", lambda w: (w.tmp / "run").mkdir() or w.tmp / "run",
                 lambda w, p: sample(w, checkpoint=p), lambda w: [w.out])


@case("sample", "manifest of random bytes")
def _(w: Workspace) -> Run:
    path = w.file("jobs.csv", noise_bytes(500, 4))
    return Run(["sample", "--manifest", path, "--checkpoint", MODEL], names=[path])


@case("sample", "manifest empty")
def _(w: Workspace) -> Run:
    path = w.file("jobs.csv")
    return Run(["sample", "--manifest", path, "--checkpoint", MODEL], names=[path])


@case("sample", "manifest JSON not a list")
def _(w: Workspace) -> Run:
    path = w.file("jobs.json", b'{"image": 5}')
    return Run(["sample", "--manifest", path, "--checkpoint", MODEL], names=[path])


@case("sample", "manifest without an out column")
def _(w: Workspace) -> Run:
    path = w.file("jobs.csv", f"image,audio\n{REFERENCE},{w.shared.speech}\n".encode())
    return Run(["sample", "--manifest", path, "--checkpoint", MODEL], names=[path])


@case("sample", "manifest row with a NaN audio file", status=1)
def _(w: Workspace) -> Run:
    bad = write_wav(w.tmp / "nan.wav", np.full(4800, np.nan, np.float32), subtype="FLOAT")
    path = w.file("jobs.csv", f"image,audio,out,align\n{REFERENCE},{bad},{w.out},false\n".encode())
    return Run(["sample", "--manifest", path, "--checkpoint", MODEL], names=["row 1", bad], outputs=[w.out])


# -- preprocess ----------------------------------------------------------------------------------
def _preprocess_case(name: str, make: Callable[[Workspace], Path], *names: str, expect: str = "error") -> None:
    """SRC with one video made by ``make``; after an error no clip (shard) is left in OUT."""
    def build(w: Workspace) -> Run:
        source = w.tmp / "videos"
        source.mkdir()
        video = make(w)
        out = w.tmp / "clips"
        return Run(["preprocess", source, out, "--resolution", "64", "--min-clip-seconds", "0.2", "--no-progress"],
                   names=[video.name, *names], outputs=[out / "shards" / f"{video.stem}-000.safetensors"]
                   if expect == "error" else [out / "manifest.json"])

    case("preprocess", name, expect)(build)


for suffix in (".mp4", ".mov", ".mkv"):
    _preprocess_case(f"empty {suffix}", lambda w, s=suffix: w.file(f"videos/empty{s}"), "empty")
    _preprocess_case(f"random bytes {suffix}", lambda w, s=suffix: w.file(f"videos/noise{s}", noise_bytes(9000, 5)))
_preprocess_case("truncated .mp4", lambda w: w.file("videos/cut.mp4", w.shared.motion.read_bytes()[:3000]))
_preprocess_case("video without sound", lambda w: shutil.copy(w.shared.motion, w.tmp / "videos" / "mute.mp4")
                 and w.tmp / "videos" / "mute.mp4", "no audio track")
_preprocess_case("video without a face", lambda w: encode_video(
    w.tmp / "videos" / "grey.mp4", np.full((8, 64, 64, 3), 120, np.uint8), audio=tone(0.32)), "no usable face")


@case("preprocess", "rotated face video (portrait phone)", "ok")
def _(w: Workspace) -> Run:
    from skimage import data

    source = w.tmp / "videos"
    source.mkdir()
    photo = data.astronaut()[40:360, 60:380]
    encode_video(source / "phone.mp4", np.repeat(np.rot90(photo, 1)[None], 8, axis=0), rotation=-90, audio=tone(0.32))
    out = w.tmp / "clips"
    return Run(["preprocess", source, out, "--resolution", "64", "--min-clip-seconds", "0.2", "--detect-every", "4",
                "--no-progress"], outputs=[out / "manifest.json", out / "shards" / "phone-000.safetensors"])


@case("preprocess", "source missing")
def _(w: Workspace) -> Run:
    return Run(["preprocess", w.tmp / "nope", w.tmp / "clips"], names=[w.tmp / "nope"], outputs=[w.tmp / "clips"])


@case("preprocess", "source is a file")
def _(w: Workspace) -> Run:
    source = w.existing("videos.mp4")
    return Run(["preprocess", source, w.tmp / "clips"], names=[source], outputs=[w.tmp / "clips"], keep=[source])


@case("preprocess", "source without videos")
def _(w: Workspace) -> Run:
    (w.tmp / "videos").mkdir()
    w.file("videos/notes.txt", b"hello")
    return Run(["preprocess", w.tmp / "videos", w.tmp / "clips"], names=[w.tmp / "videos", "no video files"])


def _preprocess_option(option: str, value: str) -> None:
    def build(w: Workspace) -> Run:
        (w.tmp / "videos").mkdir()
        return Run(["preprocess", w.tmp / "videos", w.tmp / "clips", f"{option}={value}"], names=[option],
                   outputs=[w.tmp / "clips"])

    case("preprocess", f"{option} {value}")(build)


for option, value in (("--resolution", "0"), ("--resolution", "63"), ("--workers", "0"), ("--max-clip-seconds", "nan"),
                      ("--smooth-sigma", "-1"), ("--face-policy", "all")):
    _preprocess_option(option, value)


@case("preprocess", "output is an existing file")
def _(w: Workspace) -> Run:
    (w.tmp / "videos").mkdir()
    out = w.existing("clips")
    return Run(["preprocess", w.tmp / "videos", out], names=[out, "is a file"], keep=[out])


@case("preprocess", "output under /proc")
def _(w: Workspace) -> Run:
    (w.tmp / "videos").mkdir()
    return Run(["preprocess", w.tmp / "videos", "/proc/styletalker/clips"], names=["/proc/styletalker/clips"])


# -- data synth ------------------------------------------------------------------------------------
@case("data synth", "one short clip", "ok")
def _(w: Workspace) -> Run:
    out = w.tmp / "synth"
    return Run(["data", "synth", out, "--clips", "1", "--seconds", "0.5", "--workers", "1", "--no-progress"],
               outputs=[out / "manifest.json"])


@case("data synth", "output is an existing file")
def _(w: Workspace) -> Run:
    out = w.existing("synth")
    return Run(["data", "synth", out, "--clips", "1"], names=[out, "is a file"], keep=[out])


@case("data synth", "output under /proc")
def _(w: Workspace) -> Run:
    return Run(["data", "synth", "/proc/styletalker/synth", "--clips", "1"], names=["/proc/styletalker/synth"])


@case("data synth", "output in a locked folder", skip="root writes into read-only folders" if IS_ROOT else "")
def _(w: Workspace) -> Run:
    out = w.locked() / "synth"
    return Run(["data", "synth", out, "--clips", "1"], names=[out], outputs=[out])


for option, value in (("--clips", "0"), ("--seconds", "0.1"), ("--heldout-fraction", "1.5"), ("--workers", "0"),
                      ("--resolution", "32"), ("--identities", "-2")):
    case("data synth", f"{option} {value}")(
        lambda w, o=option, v=value: Run(["data", "synth", w.tmp / "synth", f"{o}={v}"] + ([] if o == "--clips" else ["--clips", "1"]),
                                         names=[o], outputs=[w.tmp / "synth"]))


# -- data encode ---------------------------------------------------------------------------------
def encode(w: Workspace, dataset: object, *extra: object, checkpoint: object = MODEL) -> list[object]:
    return ["data", "encode", dataset, "--checkpoint", checkpoint, "--no-progress", *extra]


@case("data encode", "one-clip dataset", "ok")
def _(w: Workspace) -> Run:
    dataset = shutil.copytree(w.shared.dataset, w.tmp / "dataset")
    return Run(encode(w, dataset, "--cache", "c"), outputs=[dataset / "latents" / "c"])


@case("data encode", "dataset missing")
def _(w: Workspace) -> Run:
    return Run(encode(w, w.tmp / "nope"), names=[w.tmp / "nope"])


@case("data encode", "dataset is a file")
def _(w: Workspace) -> Run:
    path = w.existing("dataset")
    return Run(encode(w, path), names=[path], keep=[path])


for label, text in (("manifest.json cut short", b'{"clips": ['), ("manifest.json random bytes", noise_bytes(300, 6)),
                    ("manifest.json a list", b"[1, 2]"), ("manifest.json clips not records",
                                                          b'{"format": "styletalker-clips", "clips": [5]}'),
                    ("manifest.json empty", b"")):
    case("data encode", label)(lambda w, t=text: Run(encode(w, w.file("dataset/manifest.json", t).parent),
                                                      names=[w.tmp / "dataset" / "manifest.json"],
                                                      outputs=[w.tmp / "dataset" / "latents"]))

for label, make in checkpoint_files().items():
    if label in ("truncated to 90 %", "a pickle", "whose weights do not fit its recorded options",
                 "naming a component no plugin provides"):
        _checkpoint_case("data encode", label, make, lambda w, p: encode(w, w.shared.dataset, checkpoint=p))
_checkpoint_case("data encode", "without an image encoder (oracle)", lambda w: ORACLE,
                 lambda w, p: encode(w, w.shared.dataset, checkpoint=p), lambda w: [], "image_encoder")
for option, value in (("--device", "tpu:7"), ("--batch-size", "0"), ("--cache", "../up")):
    case("data encode", f"{option} {value}")(
        lambda w, o=option, v=value: Run(encode(w, w.shared.dataset, f"{o}={v}"), names=[o]))


# -- train -----------------------------------------------------------------------------------------
def recipe_file(w: Workspace, name: str, text: str | bytes) -> Path:
    return w.file(name, text if isinstance(text, bytes) else text.encode())


GOOD_RECIPE = 'name = "bad_input_case"\n[model.generator]\nname = "stylegan2"\n'
RECIPE_CASES: dict[str, Callable[[Workspace], tuple[Path, str]]] = {
    "missing": lambda w: (w.tmp / "nope.toml", "no such recipe"),
    "binary": lambda w: (recipe_file(w, "binary.toml", bytes(range(256)) * 4), "not valid TOML"),
    "empty": lambda w: (recipe_file(w, "empty.toml", ""), "empty.toml"),
    "typo in a field": lambda w: (recipe_file(w, "typo.toml", 'name = "t"\n[runtime]\ndevise = "cpu"\n'), "devise"),
    "typo in a component name": lambda w: (recipe_file(w, "comp.toml", 'name = "t"\n[model.generator]\nname = "stylegan9"\n'),
                                           "stylegan9"),
    "extends cycle": lambda w: (recipe_file(w, "b.toml", 'extends = "a.toml"\n') and recipe_file(w, "a.toml", 'extends = "b.toml"\nname = "a"\n'),
                                "cycle"),
    "extends a missing file": lambda w: (recipe_file(w, "child.toml", 'extends = "parent.toml"\nname = "c"\n'), "parent.toml"),
    "not TOML": lambda w: (recipe_file(w, "broken.toml", 'name = "x\n[[['), "not valid TOML"),
}

for label, make in RECIPE_CASES.items():
    case("train", f"recipe {label}")(lambda w, m=make: (lambda r: Run(["train", r[0]], names=[r[0].name, r[1]],
                                                                        outputs=[w.tmp / "runs"]))(m(w)))


@case("train", "--set with a bad value")
def _(w: Workspace) -> Run:
    return Run(["train", "synthetic_64", "--set", "seed=abc"], names=["seed"], outputs=[w.tmp / "runs"])


@case("train", "--set runtime.device=tpu")
def _(w: Workspace) -> Run:
    return Run(["train", "synthetic_64", "--set", "runtime.device=tpu"], names=["runtime.device"], outputs=[w.tmp / "runs"])


@case("train", "dataset manifest corrupt")
def _(w: Workspace) -> Run:
    manifest = w.file("data/manifest.json", b'{"clips": [')
    return Run(["train", "synthetic_64", "--set", f"data.train.root={manifest.parent}", "--set",
                f"data.val.root={manifest.parent}", "--set", f"output_dir={w.tmp / 'run'}"],
               names=[manifest], outputs=[w.tmp / "run"])


@case("train", "dataset missing")
def _(w: Workspace) -> Run:
    return Run(["train", "synthetic_64", "--set", f"data.train.root={w.tmp / 'nope'}", "--set",
                f"output_dir={w.tmp / 'run'}"], names=[w.tmp / "nope"], outputs=[w.tmp / "run"])


@case("train", "output_dir is an existing file")
def _(w: Workspace) -> Run:
    out = w.existing("run")
    return Run(["train", "synthetic_64", "--set", f"output_dir={out}"], names=[out, "is a file"], keep=[out])


@case("train", "output_dir under /proc")
def _(w: Workspace) -> Run:
    return Run(["train", "synthetic_64", "--set", "output_dir=/proc/styletalker/run"], names=["/proc/styletalker/run"])


@case("train", "--resume folder is a file")
def _(w: Workspace) -> Run:
    out = w.existing("run")
    return Run(["train", "synthetic_64", "--resume", out], names=[out], keep=[out])


# -- convert ---------------------------------------------------------------------------------------
def convert(w: Workspace, source: object, destination: object = None) -> list[object]:
    return ["convert", source, destination or w.tmp / "converted.safetensors"]


CONVERT_SOURCES: dict[str, Callable[[Workspace], Path]] = {
    "empty .pkl": lambda w: w.file("empty.pkl"),
    "random bytes .pkl": lambda w: w.file("noise.pkl", noise_bytes(5000, 7)),
    "random bytes .pt": lambda w: w.file("noise.pt", noise_bytes(5000, 8)),
    "a plain pickle": lambda w: w.file("plain.pkl", pickle.dumps({"G_ema": [1, 2, 3]})),
    "a torch.save of plain tensors": lambda w: (torch.save({"w": torch.zeros(3)}, w.tmp / "tensors.pt"), w.tmp / "tensors.pt")[1],
    "a truncated pickle": lambda w: w.file("cut.pkl", pickle.dumps({"G_ema": list(range(1000))})[:300]),
    "a safetensors file": lambda w: MODEL,
    "a folder": lambda w: (w.tmp / "weights").mkdir() or w.tmp / "weights",
    "missing": lambda w: w.tmp / "missing.pkl",
}
for label, make in CONVERT_SOURCES.items():
    case("convert", f"source {label}")(lambda w, m=make: (lambda s: Run(convert(w, s), names=[s],
                                                                          outputs=[w.tmp / "converted.safetensors"]))(m(w)))


@case("convert", "source a pickle that runs code")
def _(w: Workspace) -> Run:
    marker = w.tmp / "pwned"
    source = w.file("evil.pkl", pickle.dumps(Evil(marker)))
    return Run(convert(w, source), names=[source], outputs=[marker, w.tmp / "converted.safetensors"])


@case("convert", "destination not .safetensors")
def _(w: Workspace) -> Run:
    return Run(convert(w, w.file("plain.pkl", pickle.dumps({})), w.tmp / "out.bin"), names=[w.tmp / "out.bin"],
               outputs=[w.tmp / "out.bin"])


@case("convert", "destination under /proc")
def _(w: Workspace) -> Run:
    return Run(convert(w, w.file("plain.pkl", pickle.dumps({})), "/proc/styletalker/g.safetensors"),
               names=["/proc/styletalker/g.safetensors"])


@case("convert", "destination is a folder")
def _(w: Workspace) -> Run:
    (w.tmp / "g.safetensors").mkdir()
    return Run(convert(w, w.file("plain.pkl", pickle.dumps({})), w.tmp / "g.safetensors"), names=[w.tmp / "g.safetensors"])


# -- evaluate ------------------------------------------------------------------------------------
def evaluate(w: Workspace, generated: object, *extra: object, out: object = None) -> list[object]:
    return ["evaluate", "--generated", generated, "--metrics", "psnr", "--out", out or w.tmp / "scores.json", *extra]


@case("evaluate", "psnr of a video against itself", "ok")
def _(w: Workspace) -> Run:
    video = shutil.copy(w.shared.motion, w.tmp / "gen.mp4")
    return Run(evaluate(w, video, "--reference", video), outputs=[w.tmp / "scores.json"])


for label, make in (("empty .mp4", lambda w: w.file("gen.mp4")), ("random bytes .mp4", lambda w: w.file("gen.mp4", noise_bytes(7000, 9))),
                    ("random bytes .mkv", lambda w: w.file("gen.mkv", noise_bytes(7000, 10))),
                    ("missing", lambda w: w.tmp / "gone.mp4"), ("a .wav file", lambda w: write_wav(w.tmp / "gen.wav", tone(0.3)))):
    case("evaluate", f"generated {label}")(lambda w, m=make: (lambda g: Run(evaluate(w, g), names=[g.name],
                                                                             outputs=[w.tmp / "scores.json"]))(m(w)))


@case("evaluate", "reference random bytes")
def _(w: Workspace) -> Run:
    reference_video = w.file("ref.mp4", noise_bytes(7000, 11))
    return Run(evaluate(w, w.shared.motion, "--reference", reference_video), names=[reference_video],
               outputs=[w.tmp / "scores.json"])


@case("evaluate", "unknown metric")
def _(w: Workspace) -> Run:
    return Run(["evaluate", "--generated", w.shared.motion, "--metrics", "psnrr", "--out", w.tmp / "s.json"],
               names=["psnrr"], outputs=[w.tmp / "s.json"])


@case("evaluate", "--out under /proc")
def _(w: Workspace) -> Run:
    return Run(evaluate(w, w.shared.motion, out="/proc/styletalker/s.json"), names=["/proc/styletalker/s.json"])


@case("evaluate", "--out is a folder")
def _(w: Workspace) -> Run:
    (w.tmp / "s.json").mkdir()
    return Run(evaluate(w, w.shared.motion, out=w.tmp / "s.json"), names=[w.tmp / "s.json"])


for label, name, text in (("random bytes", "rows.csv", noise_bytes(400, 12)), ("JSON cut short", "rows.json", b'[{"generated": '),
                          ("CSV with NUL bytes", "rows.csv", b"generated\nvideo\0.mp4\n"),
                          ("JSON not a list", "rows.json", b'{"generated": "a.mp4"}')):
    case("evaluate", f"--manifest {label}")(lambda w, n=name, t=text: (lambda path: Run(
        ["evaluate", "--manifest", path, "--out", w.tmp / "s.json"], names=[path], outputs=[w.tmp / "s.json"]))(w.file(n, t)))


# -- ablate ------------------------------------------------------------------------------------------
for label in ("missing", "binary", "extends cycle", "typo in a field"):
    case("ablate", f"recipe {label}")(lambda w, m=RECIPE_CASES[label]: (lambda r: Run(
        ["ablate", r[0], "--out", w.tmp / "ablation"], names=[r[0].name], outputs=[w.tmp / "ablation"]))(m(w)))


@case("ablate", "--out is an existing file")
def _(w: Workspace) -> Run:
    out = w.existing("ablation")
    return Run(["ablate", "synthetic_64", "--out", out], names=[out], keep=[out])


@case("ablate", "--out under /proc")
def _(w: Workspace) -> Run:
    return Run(["ablate", "synthetic_64", "--out", "/proc/styletalker/ablation"], names=["/proc/styletalker/ablation"])


@case("ablate", "--clips 0")
def _(w: Workspace) -> Run:
    return Run(["ablate", "synthetic_64", "--clips", "0", "--out", w.tmp / "a"], names=["--clips"], outputs=[w.tmp / "a"])


# -- recipes validate ------------------------------------------------------------------------------
for label, make in RECIPE_CASES.items():
    case("recipes validate", label, report=True)(
        lambda w, m=make: (lambda r: Run(["recipes", "validate", r[0]], names=[r[0].name]))(m(w)))


@case("recipes validate", "the shipped synthetic_64 recipe", "ok")
def _(w: Workspace) -> Run:
    return Run(["recipes", "validate", "synthetic_64"])


# -- checkpoint info ----------------------------------------------------------------------------------
for label, make in checkpoint_files().items():  # info reads the metadata only: it describes what a misfit file records
    _checkpoint_case("checkpoint", label, make, lambda w, p: ["checkpoint", "info", p],
                     expect="ok" if label.startswith(("whose weights", "naming a component")) else "error")
_checkpoint_case("checkpoint", "a folder", lambda w: (w.tmp / "ckpt").mkdir() or w.tmp / "ckpt",
                 lambda w, p: ["checkpoint", "info", p])
_checkpoint_case("checkpoint", "missing", lambda w: w.tmp / "none.safetensors", lambda w, p: ["checkpoint", "info", p])


@case("checkpoint", "the shipped model", "ok")
def _(w: Workspace) -> Run:
    return Run(["checkpoint", "info", MODEL])


# -- demo ----------------------------------------------------------------------------------------------
@case("demo", "into a new folder", "ok")
def _(w: Workspace) -> Run:
    out = w.tmp / "demo"
    return Run(["demo", "--out-dir", out, "--no-progress"], outputs=[out / "demo.mp4", out / "demo_motion.mp4", out / "demo_strip.png"])


@case("demo", "--out-dir is an existing file")
def _(w: Workspace) -> Run:
    out = w.existing("demo")
    return Run(["demo", "--out-dir", out], names=[out, "is a file"], keep=[out])


@case("demo", "--out-dir under /proc")
def _(w: Workspace) -> Run:
    return Run(["demo", "--out-dir", "/proc/styletalker/demo"], names=["/proc/styletalker/demo"])


@case("demo", "--out-dir in a locked folder", skip="root writes into read-only folders" if IS_ROOT else "")
def _(w: Workspace) -> Run:
    out = w.locked() / "demo"
    return Run(["demo", "--out-dir", out], names=[out], outputs=[out])


for label in ("truncated to 90 %", "a pickle", "with corrupt metadata JSON", "whose weights do not fit its recorded options"):
    _checkpoint_case("demo", label, checkpoint_files()[label],
                     lambda w, p: ["demo", "--out-dir", w.tmp / "demo", "--checkpoint", p], lambda w: [w.tmp / "demo" / "demo.mp4"])
_checkpoint_case("demo", "of another kind (domain generator + encoder)", lambda w: DOMAIN,
                 lambda w, p: ["demo", "--out-dir", w.tmp / "demo", "--checkpoint", p], lambda w: [w.tmp / "demo" / "demo.mp4"])


# -- running a case -------------------------------------------------------------------------------------
RESULTS: dict[str, tuple[str, str, str]] = {}  # case id -> (command, expected, outcome)
OUTCOMES = ("ok", "clear error", "internal error", "traceback", "partial output", "unclear error", "wrong outcome")


def bad_input_report() -> list[str]:
    """The summary table (printed by tests/conftest.py at the end of the session)."""
    if not RESULTS:
        return []
    commands = list(dict.fromkeys(command for command, _, _ in RESULTS.values()))
    header = ["command", "cases", "expect ok", "expect error", *OUTCOMES]
    rows = []
    for command in [*commands, "all"]:
        picked = [r for r in RESULTS.values() if command in ("all", r[0])]
        rows.append([command, len(picked), sum(r[1] == "ok" for r in picked), sum(r[1] == "error" for r in picked),
                     *(sum(r[2] == outcome for r in picked) for outcome in OUTCOMES)])
    widths = [max(len(str(x)) for x in column) for column in zip(header, *rows, strict=True)]
    lines = ["| " + " | ".join(str(x).ljust(width) for x, width in zip(line, widths, strict=True)) + " |"
             for line in (header, *rows)]
    lines.insert(1, "|" + "|".join("-" * (width + 2) for width in widths) + "|")
    return lines


def temporaries(folder: Path) -> list[Path]:
    return [path for path in folder.rglob("*") if TEMPORARY.search(path.name)]


def snapshot(paths: list[Path]) -> dict[Path, bytes | None]:
    return {path: path.read_bytes() if path.is_file() else None for path in paths}


@pytest.fixture(scope="module")
def shared(tmp_path_factory) -> Shared:
    return Shared(tmp_path_factory.mktemp("shared"))


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input(case: Case, tmp_path, shared, capsys, caplog, monkeypatch):
    if case.skip:
        pytest.skip(case.skip)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)  # relative outputs (runs/, out/) land in the case's folder
    monkeypatch.setenv("STYLETALKER_PROGRESS", "0")
    run = case.build(Workspace(work, shared))
    kept = snapshot(run.keep)
    caplog.set_level(logging.WARNING)
    escaped: BaseException | None = None
    try:
        status = main([str(argument) for argument in run.argv])
    except SystemExit as stop:  # argparse's usage errors
        status = stop.code
    except Exception as error:  # noqa: BLE001 - a traceback the user would see
        escaped, status = error, None
    finally:
        for folder in work.rglob("*"):  # let tmp_path clean-up remove locked folders
            if folder.is_dir() and not os.access(folder, os.W_OK):
                folder.chmod(0o755)
    err = capsys.readouterr().err
    logged = [f"{record.levelname} {record.name}: {record.getMessage()}" for record in caplog.records
              if record.levelno >= logging.WARNING]
    lines = [line for line in err.splitlines() if line.strip()] + logged
    errors = [line for line in lines if line.startswith("styletalker: error: ")]

    left = temporaries(work)
    changed = [path for path, before in kept.items() if (path.read_bytes() if path.is_file() else None) != before]
    if case.expect == "error":
        left += [path for path in run.outputs if path.exists()]
    if escaped is not None or "Traceback" in err:
        outcome = "traceback"
    elif "internal error" in err:
        outcome = "internal error"
    elif left or changed:
        outcome = "partial output"
    elif status != case.exit_status:
        outcome = "wrong outcome"
    elif case.expect == "ok":
        ok = not errors and all(path.exists() for path in run.outputs)
        outcome = "ok" if ok else "wrong outcome"
    else:
        if case.report:  # recipes validate: header naming the recipe, then one line per problem
            clear = bool(lines) and all(line.startswith("  - ") for line in lines[1:])
        elif case.exit_status == 1:  # batch mode: one line per failed row
            clear = len(lines) == 1 and lines[0].startswith("row ")
        else:
            clear = len(lines) == 1 and len(errors) == 1
        clear = clear and all(str(name) in lines[0] for name in run.names)
        outcome = "clear error" if clear else "unclear error"
    RESULTS[case.id] = (case.command, case.expect, outcome)
    if os.environ.get("BAD_INPUTS_LOG"):  # every case's outcome and stderr, for reading the messages
        with open(os.environ["BAD_INPUTS_LOG"], "a") as log:
            log.write(json.dumps({"case": case.id, "outcome": outcome, "status": status, "lines": lines}) + "\n")
    detail = f"status {status}, stderr: {err!r}, logged: {logged}, left: {left}, changed: {changed}, escaped: {escaped!r}"
    assert outcome == ("ok" if case.expect == "ok" else "clear error"), detail


def test_the_table_is_big_enough():
    assert len(CASES) >= 100
    assert len({case.id for case in CASES}) == len(CASES), "case ids must be unique"
    commands = {case.command for case in CASES}
    assert commands >= {"sample", "preprocess", "data synth", "data encode", "train", "convert", "evaluate", "ablate",
                        "recipes validate", "checkpoint", "demo"}
