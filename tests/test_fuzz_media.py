"""Fuzzing the media readers: images, audio and video.

Property: whatever bytes a file holds, under any of the readers' suffixes, ``read_image``,
``probe_audio``/``read_audio`` and ``probe_video``/``iter_video_frames`` (and ``read_audio``
on video files, as sampling does with a motion video) return a result of the documented
shape or raise MediaError naming the file, never another exception; within the example
deadline, and a video never floods out more frames than a file of that size can mean.

Inputs: small valid files made at test time (PNG in five modes, JPEG, WebP, BMP, TIFF;
WAV 16-bit and float, FLAC, MP3, AAC in M4A and ADTS, Vorbis, Opus; H.264 MP4/MOV/M4V with
AAC audio, MPEG-4 MKV, MJPEG AVI, VP8 WebM, MPEG-1/2, FLV), mutated byte by byte, and random
bytes, each written under every suffix the reader accepts.

Profiles (environment variable STYLETALKER_FUZZ): ``ci`` (default: derandomized, the same
inputs every run) and ``explore`` (random, 20 times as many examples).
"""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import av
import numpy as np
import pytest
from fuzzing import CPU_BOUND_MS, cpu_bound, fuzz  # shared profiles and time bound
from hypothesis import event, given
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context
from PIL import Image

from styletalker_core.media import (
    AUDIO_SUFFIXES,
    IMAGE_SUFFIXES,
    VIDEO_SUFFIXES,
    MediaError,
    iter_video_frames,
    probe_audio,
    probe_video,
    read_audio,
    read_image,
)

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow warns about damaged EXIF data

MAX_FRAMES = 3000  # 2 minutes at 25 fps: far more than any of these few-kilobyte files can mean


# FFmpeg's messages about damaged packets go to stderr (pytest captures them). Do not quieten
# them with av.logging.set_level(...): that installs PyAV's Python log callback, and a frame-
# threaded decoder thread logging through it while the main thread waits for that decoder
# deadlocks (seen here on a damaged H.264 file).


# -- valid seed files ----------------------------------------------------------------------


def _image_bytes(image: Image.Image, format_name: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format=format_name, **options)
    return out.getvalue()


def image_seeds() -> dict[str, bytes]:
    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 256, (8, 6, 3), dtype=np.uint8))
    rgba = Image.fromarray(rng.integers(0, 256, (8, 6, 4), dtype=np.uint8))
    gray16 = Image.fromarray(rng.integers(0, 65536, (6, 8), dtype=np.uint16))
    palette = rgb.convert("P")
    palette.info["transparency"] = 0
    return {
        "rgb.png": _image_bytes(rgb, "PNG"), "rgba.png": _image_bytes(rgba, "PNG"),
        "gray.png": _image_bytes(rgb.convert("L"), "PNG"), "gray16.png": _image_bytes(gray16, "PNG"),
        "palette.png": _image_bytes(palette, "PNG", transparency=0), "photo.jpg": _image_bytes(rgb, "JPEG"),
        "cmyk.jpg": _image_bytes(rgb.convert("CMYK"), "JPEG"), "lossless.webp": _image_bytes(rgba, "WEBP", lossless=True),
        "lossy.webp": _image_bytes(rgb, "WEBP"), "image.bmp": _image_bytes(rgb, "BMP"),
        "image.tiff": _image_bytes(rgb, "TIFF"), "gray16.tif": _image_bytes(gray16, "TIFF", compression="tiff_lzw"),
    }


def _tone(seconds: float, rate: int) -> np.ndarray:
    time = np.arange(int(seconds * rate)) / rate
    return (0.4 * np.sin(2 * np.pi * 440 * time)).astype(np.float32)


def _encode_audio(codec: str, container: str, rate: int, channels: int = 1, seconds: float = 0.15) -> bytes:
    out = io.BytesIO()
    layout = "mono" if channels == 1 else "stereo"
    with av.open(out, "w", format=container) as output:
        stream = output.add_stream(codec, rate=rate)
        stream.layout = layout
        if codec == "vorbis":
            stream.codec_context.options = {"strict": "experimental"}
        sample_format = stream.codec_context.format.name
        wave = _tone(seconds, rate)
        size = stream.codec_context.frame_size or 1024
        for start in range(0, len(wave), size):
            block = np.repeat(wave[start:start + size][None], channels, axis=0)
            if sample_format.endswith("p"):
                frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(block), format="fltp", layout=layout)
            else:
                interleaved = (block.T * 32767).astype(np.int16).reshape(1, -1)
                frame = av.AudioFrame.from_ndarray(interleaved, format="s16", layout=layout)
            frame.sample_rate = rate
            for packet in stream.encode(frame):
                output.mux(packet)
        for packet in stream.encode(None):
            output.mux(packet)
    return out.getvalue()


def audio_seeds() -> dict[str, bytes]:
    import soundfile

    seeds = {}
    for name, subtype, file_format in (("pcm16.wav", "PCM_16", "WAV"), ("float.wav", "FLOAT", "WAV"),
                                       ("audio.flac", "PCM_16", "FLAC")):
        out = io.BytesIO()
        soundfile.write(out, np.stack([_tone(0.15, 22050)] * 2, axis=1), 22050, subtype=subtype, format=file_format)
        seeds[name] = out.getvalue()
    seeds["audio.mp3"] = _encode_audio("libmp3lame", "mp3", 16000)
    seeds["audio.m4a"] = _encode_audio("aac", "ipod", 16000, channels=2)
    seeds["audio.aac"] = _encode_audio("aac", "adts", 8000)
    seeds["audio.ogg"] = _encode_audio("vorbis", "ogg", 44100, channels=2)  # FFmpeg's Vorbis encoder: stereo only
    seeds["audio.opus"] = _encode_audio("libopus", "ogg", 48000)
    return seeds


def _encode_video(codec: str, container: str, pixel_format: str = "yuv420p", audio: bool = False,
                  frames: int = 4, rate: int = 25) -> bytes:
    out = io.BytesIO()
    with av.open(out, "w", format=container) as output:
        stream = output.add_stream(codec, rate=rate)
        stream.width, stream.height, stream.pix_fmt = 32, 24, pixel_format
        if codec == "libx264":
            stream.options = {"preset": "ultrafast", "crf": "30"}
        sound = output.add_stream("aac", rate=16000) if audio else None
        for index in range(frames):
            array = np.full((24, 32, 3), 40 * index, dtype=np.uint8)
            array[:, : 4 * (index + 1)] = 200
            for packet in stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")):
                output.mux(packet)
        for packet in stream.encode(None):
            output.mux(packet)
        if sound is not None:
            wave = _tone(frames / rate, 16000)
            size = sound.codec_context.frame_size or 1024
            for start in range(0, len(wave), size):
                frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(wave[None, start:start + size]), format="fltp",
                                                   layout="mono")
                frame.sample_rate = 16000
                for packet in sound.encode(frame):
                    output.mux(packet)
            for packet in sound.encode(None):
                output.mux(packet)
    return out.getvalue()


def video_seeds() -> dict[str, bytes]:
    return {
        "h264.mp4": _encode_video("libx264", "mp4", audio=True), "h264.mov": _encode_video("libx264", "mov"),
        "h264.m4v": _encode_video("libx264", "mp4"), "mpeg4.mkv": _encode_video("mpeg4", "matroska", audio=True),
        "mjpeg.avi": _encode_video("mjpeg", "avi", pixel_format="yuvj420p"), "vp8.webm": _encode_video("libvpx", "webm"),
        "mpeg1.mpg": _encode_video("mpeg1video", "mpeg"), "mpeg2.mpeg": _encode_video("mpeg2video", "mpeg"),
        "video.flv": _encode_video("flv", "flv"),
    }


IMAGE_SEEDS, AUDIO_SEEDS, VIDEO_SEEDS = image_seeds(), audio_seeds(), video_seeds()


@pytest.fixture(scope="module", autouse=True)
def warm_up() -> None:
    """Every decoder is loaded once (Pillow's plugins, FFmpeg's codecs) before any example is timed."""
    with tempfile.TemporaryDirectory() as folder:
        for name, content in {**IMAGE_SEEDS, **AUDIO_SEEDS, **VIDEO_SEEDS}.items():
            path = write(folder, Path(name).suffix, content)
            if name in IMAGE_SEEDS:
                read_image(path)
            elif name in AUDIO_SEEDS:
                read_audio(path)
            else:
                _frames(path, 25.0)


# -- mutations -----------------------------------------------------------------------------


@st.composite
def mutated(draw, seeds: dict[str, bytes]) -> tuple[str, bytes]:
    """(seed name, its bytes with a few of them changed), or random bytes now and then."""
    name = draw(st.sampled_from(sorted(seeds)))
    if draw(st.integers(0, 9)) == 0:
        return "random", draw(st.binary(max_size=400))
    data = bytearray(seeds[name])
    for _ in range(draw(st.integers(1, 3))):
        position = draw(st.integers(0, len(data)))
        operation = draw(st.sampled_from(["flip", "flip", "replace", "replace", "int", "int", "insert", "delete",
                                          "truncate", "copy"]))
        if operation == "flip" and position < len(data):
            data[position] ^= 1 << draw(st.integers(0, 7))
        elif operation == "replace" and position < len(data):
            data[position] = draw(st.integers(0, 255))
        elif operation == "int":  # lengths, sizes and timestamps are 2-8 byte integers in these formats
            width = draw(st.sampled_from([2, 4, 8]))
            data[position:position + width] = draw(st.sampled_from([b"\xff", b"\x7f", b"\x00", b"\x80"])) * width
        elif operation == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=8))
        elif operation == "delete":
            del data[position:position + draw(st.integers(1, 64))]
        elif operation == "truncate":
            del data[position:]
        elif operation == "copy" and data:
            start = draw(st.integers(0, len(data) - 1))
            data[position:position] = data[start:start + draw(st.integers(1, 128))]
    return name, bytes(data)


def suffix_for(draw, name: str, suffixes: tuple[str, ...]) -> str:
    """Usually the seed's own suffix, sometimes another the reader accepts (or its upper case)."""
    own = Path(name).suffix
    choice = draw(st.sampled_from([own, own, own, *suffixes])) if own else draw(st.sampled_from(suffixes))
    return choice.upper() if draw(st.integers(0, 9)) == 0 else choice


def write(folder: str, suffix: str, data: bytes) -> Path:
    path = Path(folder) / f"input{suffix}"
    path.write_bytes(data)
    return path


def outcome(call, path: Path):
    """``call()``'s result, or None when it raised MediaError naming ``path``; any other exception fails."""
    try:
        return call()
    except MediaError as error:
        assert str(path) in str(error), f"the error does not name the file: {error}"
        if currently_in_test_context():
            event(f"MediaError: {error.reason}")
        return None


# -- properties ------------------------------------------------------------------------------


@fuzz(examples=100)
@given(data=st.data(), seed=mutated(IMAGE_SEEDS))
def test_image_reader_reads_or_raises_media_error(data: st.DataObject, seed: tuple[str, bytes]) -> None:
    name, content = seed
    with tempfile.TemporaryDirectory() as folder:
        path = write(folder, suffix_for(data.draw, name, IMAGE_SUFFIXES), content)
        with cpu_bound():
            image = outcome(lambda: read_image(path), path)
    if image is not None:
        event("read")
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3 and min(image.shape[:2]) >= 1


def _check_audio(path: Path) -> None:
    info = outcome(lambda: probe_audio(path), path)
    wave = outcome(lambda: read_audio(path), path)
    if info is not None:
        assert info.sample_rate >= 0 and info.channels >= 0
    if wave is not None:
        event("read")
        assert wave.dtype == np.float32 and wave.ndim == 1 and np.isfinite(wave).all()
        assert len(wave) <= 16000 * 600, f"{len(wave)} samples from a file of {path.stat().st_size} bytes"


@fuzz(examples=80)
@given(data=st.data(), seed=mutated(AUDIO_SEEDS))
def test_audio_reader_reads_or_raises_media_error(data: st.DataObject, seed: tuple[str, bytes]) -> None:
    name, content = seed
    with tempfile.TemporaryDirectory() as folder:
        path = write(folder, suffix_for(data.draw, name, AUDIO_SUFFIXES), content)
        with cpu_bound():
            _check_audio(path)


def _frames(path: Path, fps: float | None) -> int:
    count, shape = 0, None
    for frame in iter_video_frames(path, fps=fps):
        assert frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3
        shape = shape or frame.shape
        count += 1
        assert count <= MAX_FRAMES, f"more than {MAX_FRAMES} frames from a file of {path.stat().st_size} bytes"
    return count


@fuzz(examples=60)
@given(data=st.data(), seed=mutated(VIDEO_SEEDS), fps=st.sampled_from([25.0, 30000 / 1001, None]))
def test_video_reader_reads_or_raises_media_error(data: st.DataObject, seed: tuple[str, bytes], fps: float | None) -> None:
    name, content = seed
    with tempfile.TemporaryDirectory() as folder:
        path = write(folder, suffix_for(data.draw, name, VIDEO_SUFFIXES), content)
        with cpu_bound(2 * CPU_BOUND_MS):  # probing, decoding every frame, and the audio track
            info = outcome(lambda: probe_video(path), path)
            if info is not None:
                assert info.width >= 0 and info.height >= 0 and info.num_frames >= 0
            frames = outcome(lambda: _frames(path, fps), path)
            if frames:
                event("frames read")
            _check_audio(path)  # sampling reads a motion video's own audio too


def test_seed_files_are_valid() -> None:
    """Every seed reads before it is mutated (otherwise the fuzzing above starts from nothing)."""
    with tempfile.TemporaryDirectory() as folder:
        for name, content in IMAGE_SEEDS.items():
            assert read_image(write(folder, Path(name).suffix, content)).shape[2] == 3
        for name, content in AUDIO_SEEDS.items():
            assert len(read_audio(write(folder, Path(name).suffix, content))) > 1000, name
        for name, content in VIDEO_SEEDS.items():
            path = write(folder, Path(name).suffix, content)
            assert probe_video(path).width == 32, name
            assert _frames(path, 25.0) >= 3, name


# -- what fuzzing found (each raised another exception, or flooded, before the fix) -------------


def _with_timestamp_jump(kind: str, jump_seconds: float) -> bytes:
    """A Matroska file whose packets after the first (video) or all of whose packets (audio)
    are stamped ``jump_seconds`` later: the kind of damage a flipped byte in a timestamp makes."""
    out = io.BytesIO()
    with av.open(out, "w", format="matroska") as output:
        if kind == "video":
            stream = output.add_stream("mpeg4", rate=25)
            stream.width, stream.height, stream.pix_fmt = 32, 24, "yuv420p"
            frames = [av.VideoFrame.from_ndarray(np.full((24, 32, 3), 60 * i, dtype=np.uint8), format="rgb24")
                      for i in range(3)]
        else:
            stream = output.add_stream("flac", rate=16000)
            stream.layout = "mono"
            frame = av.AudioFrame.from_ndarray((_tone(0.2, 16000)[None] * 32767).astype(np.int16), format="s16",
                                               layout="mono")
            frame.sample_rate, frame.pts = 16000, 0
            frames = [frame]
        packets = [packet for frame in frames for packet in stream.encode(frame)] + list(stream.encode(None))
        for index, packet in enumerate(packets):
            if kind == "audio" or index >= 2:
                shift = int(jump_seconds / packet.time_base)
                packet.pts, packet.dts = packet.pts + shift, packet.dts + shift
            output.mux(packet)
    return out.getvalue()


def test_what_fuzzing_found_raises_media_error() -> None:
    with tempfile.TemporaryDirectory() as folder:
        # a track without its sample table, so without a codec: probe_audio / probe_video raised AttributeError
        path = write(folder, ".m4a", AUDIO_SEEDS["audio.m4a"].replace(b"stbl", b"xxxx"))
        assert outcome(lambda: probe_audio(path), path) is None
        path = write(folder, ".mp4", VIDEO_SEEDS["h264.m4v"].replace(b"stbl", b"xxxx"))
        assert outcome(lambda: probe_video(path), path) is None
        # a frame stamped 50 days later: 100 million copies of one frame streamed out at 25 fps
        path = write(folder, ".mkv", _with_timestamp_jump("video", 4_294_967.0))
        with pytest.raises(MediaError, match="timestamps jump") as caught:
            _frames(path, 25.0)
        assert caught.value.reason == "bad_timestamps" and str(path) in str(caught.value)
        # an ADTS stream whose second frame switches from mono to stereo: ValueError from the resampler
        data = bytearray(AUDIO_SEEDS["audio.aac"])
        second = ((data[3] & 3) << 11) | (data[4] << 3) | (data[5] >> 5)  # the first frame's length
        data[second + 3] = (data[second + 3] & 0x3F) | (2 << 6)  # channel configuration 2
        path = write(folder, ".aac", bytes(data))
        outcome(lambda: read_audio(path), path)
        # an audio track said to start 50 days in: hundreds of gigabytes of leading zeros
        path = write(folder, ".mka", _with_timestamp_jump("audio", 4_294_967.0))
        with pytest.raises(MediaError, match="starts at") as caught:
            read_audio(path)
        assert caught.value.reason == "bad_timestamps"
