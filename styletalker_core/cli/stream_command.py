"""``styletalker stream``: speech in (raw PCM or WAV, from stdin or a file), talking-head frames out
as they are generated (fragmented mp4 or raw RGB, to stdout or a file); composes with ffmpeg and TTS.

    espeak-ng --stdout "Hello there" | styletalker stream --image face.png --no-align > talk.mp4
    ffmpeg -i talk.m4a -f s16le -ac 1 -ar 16000 - | styletalker stream --image face.png --no-align \\
        --input-format s16le --rate 16000 --output-format rgb24 | ffplay -f rawvideo -pixel_format rgb24 \\
        -video_size 64x64 -framerate 25 -

docs/streaming.md describes the engine (styletalker_core.sample.stream) and the latencies.
"""

from __future__ import annotations

import argparse
import os
import struct
import sys
import time
from collections.abc import Iterator
from fractions import Fraction
from typing import TYPE_CHECKING, BinaryIO

import numpy as np

if TYPE_CHECKING:
    from av.audio.stream import AudioStream
    from av.video.stream import VideoStream

INPUT_FORMATS = ("auto", "wav", "s16le", "f32le")
OUTPUT_FORMATS = ("mp4", "rgb24")
MP4_OPTIONS = {"movflags": "frag_keyframe+empty_moov+default_base_moof", "frag_duration": "40000"}
AAC_FRAME = 1024
WAVE_FORMAT_PCM, WAVE_FORMAT_FLOAT, WAVE_FORMAT_EXTENSIBLE = 1, 3, 0xFFFE


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "stream",
        help="stream speech in, talking-head frames out as they are generated (fragmented mp4 or raw RGB)",
        description="Read speech as it arrives (a WAV stream, or raw s16le / f32le PCM at --rate, from stdin or "
        "a file) and write the talking-head frames as soon as the audio they depend on has arrived: a fragmented "
        "mp4 (H.264, with the speech as AAC) or raw RGB24 frames, to stdout or --out. The frames equal those of "
        "`styletalker sample` for the same model, seed and audio.",
    )
    parser.add_argument("--image", metavar="REF", required=True, help="reference face image")
    parser.add_argument("--motion", metavar="VIDEO", help="motion-source video (motion-controllable mode)")
    parser.add_argument("--input", default="-", metavar="FILE",
                        help="speech: a WAV or raw PCM file, or - for stdin (default); with --input-format auto a "
                        "file may be any audio FFmpeg decodes")
    parser.add_argument("--input-format", choices=INPUT_FORMATS, default="auto",
                        help="auto (a WAV stream; a file of any audio format), wav, or raw s16le / f32le (give --rate)")
    parser.add_argument("--rate", type=int, metavar="HZ", help="sample rate of raw PCM input (resampled to 16 kHz on the fly)")
    parser.add_argument("--channels", type=int, default=1, metavar="N", help="channels of raw PCM input (averaged; default 1)")
    parser.add_argument("--realtime", action="store_true",
                        help="read the input no faster than real time (as a microphone would deliver it)")
    parser.add_argument("--chunk-ms", type=float, default=20.0, metavar="MS",
                        help="read the input in chunks of this many milliseconds of audio (default 20)")
    parser.add_argument("--out", default="-", metavar="FILE", help="where the frames go: a file, or - for stdout (default)")
    parser.add_argument("--output-format", choices=OUTPUT_FORMATS, default="mp4",
                        help="mp4: fragmented mp4 (movflags frag_keyframe+empty_moov); rgb24: raw frames, h*w*3 bytes each")
    parser.add_argument("--no-audio", action="store_true", help="mp4 without the audio track (a fragment per frame)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    parser.add_argument("--checkpoint", metavar="PATH",
                        help="model file or run folder (default: the shipped checkpoints/synthetic_64_model.safetensors)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    group = parser.add_argument_group("generation (defaults come from the model's recipe)")
    group.add_argument("--seed", type=int, help="seed of the audio-driven motion draws (default 0)")
    group.add_argument("--temperature", type=float, help="prior temperature: 0 its mode, 1 as learned")
    group.add_argument("--pose-scale", type=float, help="scale of head motion and blinks (0 none, 1 as learned)")
    group.add_argument("--still", action="store_const", const=True, help="lips only: no head motion, no blinks")
    group.add_argument("--motion-fit", choices=("loop", "trim"), help="a motion video shorter than the speech: loop or trim")
    align = group.add_mutually_exclusive_group()
    align.add_argument("--align", dest="align", action="store_const", const=True,
                       help="detect and FFHQ-align the face in the reference and the motion video")
    align.add_argument("--no-align", dest="align", action="store_const", const=False,
                       help="inputs are aligned face crops already: only centre-crop square and resize")
    group.add_argument("--crf", type=int, help="x264 quality of the mp4 (default 18)")
    group.add_argument("--preset", help="x264 speed preset of the mp4 (default veryfast)")
    parser.set_defaults(func=run)


# -- input -------------------------------------------------------------------------------------
class AudioInputError(Exception):
    """Raised by the readers; the command turns it into an InputError naming the input."""


def _read_exact(stream: BinaryIO, count: int) -> bytes:
    data = b""
    while len(data) < count:
        piece = stream.read(count - len(data))
        if not piece:
            break
        data += piece
    return data


def _read_some(stream: BinaryIO, count: int) -> bytes:
    """Up to ``count`` bytes, returning what a pipe has as soon as it has some (b"" at the end)."""
    read1 = getattr(stream, "read1", None)
    return read1(count) if read1 is not None else stream.read(count)


class PcmFormat:
    """How raw sample bytes decode: ``kind`` int/uint/float, bytes per sample, channels, rate."""

    def __init__(self, kind: str, width: int, channels: int, rate: int) -> None:
        self.kind, self.width, self.channels, self.rate = kind, width, channels, rate

    @property
    def frame_bytes(self) -> int:
        return self.width * self.channels

    def decode(self, data: bytes) -> np.ndarray:
        """Whole frames of ``data`` -> mono float32 [s] (channels averaged)."""
        if self.kind == "float":
            samples = np.frombuffer(data, dtype=f"<f{self.width}").astype(np.float32)
        elif self.kind == "uint":  # 8-bit WAV: unsigned, 128 is zero
            samples = (np.frombuffer(data, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
        elif self.width == 3:
            raw = np.frombuffer(data, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
            value = raw[:, 0] | (raw[:, 1] << 8) | (raw[:, 2] << 16)
            samples = (np.where(value >= 1 << 23, value - (1 << 24), value) / float(1 << 23)).astype(np.float32)
        else:
            samples = (np.frombuffer(data, dtype=f"<i{self.width}").astype(np.float64) / float(1 << (8 * self.width - 1))).astype(np.float32)
        if self.channels > 1:
            samples = samples.reshape(-1, self.channels).mean(axis=1)
        if not np.isfinite(samples).all():
            raise AudioInputError("the audio has NaN or infinite samples; give finite samples")
        return samples


def read_wav_header(stream: BinaryIO) -> tuple[PcmFormat, int | None]:
    """Parse a RIFF/WAVE header up to the data chunk: (format, data bytes or None when unknown / streamed)."""
    head = _read_exact(stream, 12)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        raise AudioInputError("not a WAV stream (no RIFF/WAVE header); for raw PCM give --input-format s16le or "
                              "f32le with --rate")
    pcm = None
    while True:
        chunk_head = _read_exact(stream, 8)
        if len(chunk_head) < 8:
            raise AudioInputError("the WAV stream ends before its data chunk")
        name, size = chunk_head[:4], struct.unpack("<I", chunk_head[4:])[0]
        if name == b"data":
            if pcm is None:
                raise AudioInputError("the WAV stream has no fmt chunk before its data")
            return pcm, (None if size in (0, 0xFFFFFFFF) else size)
        body = _read_exact(stream, size + (size & 1))
        if len(body) < size:
            raise AudioInputError("the WAV stream ends inside its header")
        if name == b"fmt ":
            if size < 16:
                raise AudioInputError("the WAV fmt chunk is too short")
            tag, channels, rate, _, _, bits = struct.unpack("<HHIIHH", body[:16])
            if tag == WAVE_FORMAT_EXTENSIBLE and size >= 26:
                tag = struct.unpack("<H", body[24:26])[0]
            width = bits // 8
            if channels < 1 or rate < 1:
                raise AudioInputError(f"the WAV header says {channels} channels at {rate} Hz")
            if tag == WAVE_FORMAT_PCM and bits in (8, 16, 24, 32):
                pcm = PcmFormat("uint" if bits == 8 else "int", width, channels, rate)
            elif tag == WAVE_FORMAT_FLOAT and bits in (32, 64):
                pcm = PcmFormat("float", width, channels, rate)
            else:
                raise AudioInputError(f"WAV format tag {tag} with {bits} bits is not supported; give 8/16/24/32-bit "
                                      "integer or 32/64-bit float PCM")


def pcm_chunks(stream: BinaryIO, pcm: PcmFormat, chunk_seconds: float, limit: int | None = None) -> Iterator[np.ndarray]:
    """Mono float32 chunks of about ``chunk_seconds`` from raw PCM bytes (``limit`` bytes at most)."""
    want = max(1, int(round(chunk_seconds * pcm.rate))) * pcm.frame_bytes
    left = limit
    pending = b""
    while left is None or left > 0:
        size = want if left is None else min(want, left)
        data = _read_some(stream, size)
        if not data:
            break
        if left is not None:
            left -= len(data)
        data = pending + data
        whole = len(data) - len(data) % pcm.frame_bytes
        pending = data[whole:]
        if whole:
            yield pcm.decode(data[:whole])


def open_audio_input(args: argparse.Namespace) -> tuple[int, Iterator[np.ndarray], str]:
    """(sample rate, chunks, name) of the speech input; errors name the input."""
    from styletalker_core.sample import InputError

    name = "stdin" if args.input == "-" else args.input
    chunk_seconds = args.chunk_ms / 1000.0
    fmt = args.input_format
    if fmt in ("s16le", "f32le"):
        if not args.rate or args.rate < 1:
            raise InputError(f"audio: {name}: raw {fmt} input needs its sample rate: give --rate HZ")
        if args.channels < 1:
            raise InputError(f"audio: {name}: --channels {args.channels}: give at least 1")
    elif args.rate:
        raise InputError(f"audio: {name}: --rate goes with raw input (--input-format s16le or f32le); a WAV stream "
                         "carries its own rate")
    if args.input == "-":
        if sys.stdin is None or sys.stdin.isatty():
            raise InputError("audio: stdin is a terminal; pipe speech in (for example `espeak-ng --stdout TEXT |`) "
                             "or give --input FILE")
        stream: BinaryIO = sys.stdin.buffer
    else:
        if os.path.isdir(args.input):
            raise InputError(f"audio: {name}: is a folder, not a file; give the path of one file")
        if not os.path.isfile(args.input):
            raise InputError(f"audio: {name}: no such file; check the path")
        stream = open(args.input, "rb")  # noqa: SIM115 - closed when the generator ends
        if fmt == "auto" and stream.peek(12)[:4] != b"RIFF":
            stream.close()
            return 16000, _decoded_file(args.input, chunk_seconds), name
    if fmt in ("s16le", "f32le"):
        pcm = PcmFormat("int" if fmt == "s16le" else "float", 2 if fmt == "s16le" else 4, args.channels, args.rate)
        return pcm.rate, _guarded(pcm_chunks(stream, pcm, chunk_seconds), name), name
    try:
        pcm, size = read_wav_header(stream)
    except AudioInputError as error:
        raise InputError(f"audio: {name}: {error}") from None
    return pcm.rate, _guarded(pcm_chunks(stream, pcm, chunk_seconds, size), name), name


def _guarded(chunks: Iterator[np.ndarray], name: str) -> Iterator[np.ndarray]:
    from styletalker_core.sample import InputError

    try:
        yield from chunks
    except AudioInputError as error:
        raise InputError(f"audio: {name}: {error}") from None


def _decoded_file(path: str, chunk_seconds: float) -> Iterator[np.ndarray]:
    """Any audio file FFmpeg decodes, as 16 kHz chunks (the reader `styletalker sample` uses)."""
    from styletalker_core.media import MediaError, iter_audio
    from styletalker_core.sample.faces import media_error

    try:
        yield from iter_audio(path, 16000, max(1, int(chunk_seconds * 16000)))
    except MediaError as error:
        raise media_error("audio", error) from None


def paced(chunks: Iterator[np.ndarray], rate: int) -> Iterator[np.ndarray]:
    """The chunks, each released no earlier than the time its last sample would have been recorded."""
    start, seen = time.perf_counter(), 0
    for chunk in chunks:
        seen += len(chunk)
        wait = start + seen / rate - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        yield chunk


# -- output ------------------------------------------------------------------------------------
class FragmentedMp4:
    """H.264 (+ AAC) frames into a fragmented mp4 on a file object, one fragment per frame
    (moov first, empty: players start before the end; nothing is seeked)."""

    def __init__(self, sink: BinaryIO, fps: int, sample_rate: int | None, crf: int, preset: str) -> None:
        import av

        self.sink, self.fps, self.sample_rate = sink, fps, sample_rate
        self.crf, self.preset = crf, preset
        self.container = av.open(sink, mode="w", format="mp4", options=dict(MP4_OPTIONS))
        self.video: VideoStream | None = None
        self.audio: AudioStream | None = None
        if sample_rate is not None:
            self.audio = self.container.add_stream("aac", rate=sample_rate)
            self.audio.layout = "mono"
        self.frames = 0
        self._held = np.zeros(0, np.float32)
        self._audio_pts = 0

    def write(self, rgb: np.ndarray, audio: np.ndarray | None) -> None:
        import av

        video = self.video
        if video is None:
            video = self.video = self.container.add_stream(
                "libx264", rate=self.fps, options={"crf": str(self.crf), "preset": self.preset, "tune": "zerolatency",
                                                  "g": str(self.fps)})
            video.height, video.width = rgb.shape[:2]
            video.pix_fmt = "yuv420p"
            video.time_base = Fraction(1, self.fps)
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        frame.pts = self.frames
        self.container.mux(video.encode(frame))
        self.frames += 1
        if self.audio is not None and audio is not None:
            self._held = np.concatenate([self._held, audio.astype(np.float32)])
            self._encode_audio(final=False)
        self.sink.flush()

    def _encode_audio(self, final: bool) -> None:
        import av

        if self.audio is None or self.sample_rate is None:  # no audio track: nothing is ever held
            return
        while self._held.size >= AAC_FRAME or (final and self._held.size):
            block = np.clip(self._held[:AAC_FRAME], -1.0, 1.0)
            self._held = self._held[AAC_FRAME:]
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(block)[None], format="fltp", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = self.sample_rate, self._audio_pts, Fraction(1, self.sample_rate)
            self._audio_pts += block.size
            self.container.mux(self.audio.encode(frame))

    def close(self) -> None:
        if self.video is not None:
            self.container.mux(self.video.encode(None))
        if self.audio is not None:
            self._encode_audio(final=True)
            self.container.mux(self.audio.encode(None))
        self.container.close()
        self.sink.flush()


class RawFrames:
    """uint8 RGB frames, h*w*3 bytes each, flushed one by one."""

    def __init__(self, sink: BinaryIO) -> None:
        self.sink, self.frames = sink, 0

    def write(self, rgb: np.ndarray, audio: np.ndarray | None) -> None:
        self.sink.write(np.ascontiguousarray(rgb).tobytes())
        self.sink.flush()
        self.frames += 1

    def close(self) -> None:
        self.sink.flush()


def open_output(args: argparse.Namespace) -> tuple[BinaryIO, str]:
    from styletalker_core.errors import StyleTalkerError
    from styletalker_core.sample.outputs import folder_problem

    if args.out == "-":
        if sys.stdout is None or sys.stdout.isatty():
            raise StyleTalkerError("output: stdout is a terminal, and the frames are binary; redirect stdout "
                                   "(`> talk.mp4`, `| ffplay -`) or give --out FILE")
        return sys.stdout.buffer, "stdout"
    from pathlib import Path

    path = Path(args.out)
    if path.is_dir():
        raise StyleTalkerError(f"output {path}: is a folder; give a file name")
    if path.exists() and not args.overwrite:
        raise StyleTalkerError(f"output {path}: already exists; pass --overwrite to replace it, or choose another name")
    problem = folder_problem(path.parent)
    if problem:
        raise StyleTalkerError(f"output {path}: cannot be written: {problem}; choose another place")
    return open(path, "wb"), str(path)  # closed by run


# -- the command -------------------------------------------------------------------------------
def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from styletalker_core.cli.sample_command import load_sampler
    from styletalker_core.devices import parse_device
    from styletalker_core.errors import StyleTalkerError
    from styletalker_core.sample import InputError, SampleSettings, with_overrides
    from styletalker_core.sample.faces import check_motion_name
    from styletalker_core.sample.stream import StreamError, open_session

    parse_device(args.device)
    if not args.chunk_ms > 0:
        raise StyleTalkerError(f"--chunk-ms {args.chunk_ms}: give a positive number of milliseconds")
    overrides = {name: getattr(args, name) for name in ("seed", "temperature", "pose_scale", "still", "motion_fit",
                                                         "align", "crf", "preset") if getattr(args, name) is not None}
    settings = with_overrides(SampleSettings(), overrides, "command line")  # bad values fail before anything loads
    if args.motion is not None and settings.still:
        raise StyleTalkerError("--still has no head motion, so a motion video has nothing to drive; drop one of them")
    for role, value in (("reference", args.image), ("motion", args.motion)):
        if value is not None and Path(value).is_dir():
            raise InputError(f"{role}: {value}: is a folder, not a file; give the path of one file")
        if value is not None and not Path(value).is_file():
            raise InputError(f"{role}: {value}: no such file; check the path")
    if args.motion is not None:
        check_motion_name(Path(args.motion))
    rate, chunks, source = open_audio_input(args)
    sink, sink_name = open_output(args)
    try:
        sampler = load_sampler(args)
        settings = sampler.settings(**overrides)
        if args.preset is None:
            settings = with_overrides(settings, {"preset": "veryfast"})
        session = open_session(sampler, Path(args.image), motion=None if args.motion is None else Path(args.motion),
                               settings=settings, sample_rate=rate)
        head = sampler.head
        writer: RawFrames | FragmentedMp4
        if args.output_format == "rgb24":
            writer = RawFrames(sink)
            print(f"styletalker stream: raw rgb24 frames, {head.resolution}x{head.resolution} at {head.fps} fps "
                  f"(ffplay -f rawvideo -pixel_format rgb24 -video_size {head.resolution}x{head.resolution} "
                  f"-framerate {head.fps} -)", file=sys.stderr)
        else:
            writer = FragmentedMp4(sink, head.fps, None if args.no_audio else head.sample_rate, settings.crf, settings.preset)
        if args.realtime:
            chunks = paced(chunks, rate)
        latencies = []
        started = time.perf_counter()
        try:
            for frame in session.frames(chunks):
                writer.write(frame.rgb(), frame.audio)
                latencies.append(time.perf_counter() - frame.arrived)
            writer.close()
        except StreamError as error:
            raise InputError(f"audio: {source}: {error}") from None
        except BrokenPipeError:
            _silence_stdout()
            raise StyleTalkerError(f"output: {sink_name}: the reader closed the pipe after {writer.frames} frames") from None
        seconds = time.perf_counter() - started
        median = 1000 * float(np.median(latencies)) if latencies else 0.0
        print(f"styletalker stream: {writer.frames} frames ({writer.frames / head.fps:.2f} s) in {seconds:.2f} s to "
              f"{sink_name}; look-ahead {1000 * session.lookahead_seconds:.0f} ms, median compute latency {median:.1f} ms",
              file=sys.stderr)
    except BaseException:  # a failed or interrupted stream leaves no partial --out file behind
        if sink is not sys.stdout.buffer:
            sink.close()
            Path(sink_name).unlink(missing_ok=True)
        raise
    if sink is not sys.stdout.buffer:
        sink.close()
    return 0


def _silence_stdout() -> None:
    """After the reader of stdout went away: point stdout at /dev/null so exiting does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except OSError:
        pass
