"""Input-handling defects of issue 16, one test each: every bad input is refused with one clear
line that names it (exit 2), nothing is left at the output path, and rotated videos are read
upright. The commands run in-process on the shipped 64 px model with 0.3 s of audio."""

from __future__ import annotations

import json
import os
import struct
import warnings
import zlib
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile
import torch

from styletalker_core.cli.main import main
from styletalker_core.interfaces.image_encoder import OutOfDomainWarning
from styletalker_core.media import MediaError, probe_video, read_audio, read_image, read_video_frames
from styletalker_core.sample.faces import FaceAligner, prepare_motion_frames
from styletalker_core.sample.shipped import project_root

pytestmark = pytest.mark.usefixtures("single_thread")

ROOT = project_root()
MODEL = ROOT / "checkpoints" / "synthetic_64_model.safetensors"
REFERENCE = ROOT / "assets" / "reference.png"


@pytest.fixture(autouse=True)
def quiet(monkeypatch):
    monkeypatch.setenv("STYLETALKER_PROGRESS", "0")


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("speech") / "speech.wav"
    time = np.arange(4800) / 16000
    soundfile.write(path, (0.3 * np.sin(2 * np.pi * 220 * time)).astype(np.float32), 16000)
    return path


def run(capsys, *args: object) -> tuple[int, str]:
    """Exit status and stderr of ``styletalker ARGS`` run in-process."""
    try:
        status = main([str(a) for a in args])
    except SystemExit as stop:  # argparse
        status = stop.code
    return status, capsys.readouterr().err


def assert_clear(status: int, err: str, *names: object) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert status == 2, err
    assert len(lines) == 1 and lines[0].startswith("styletalker: error: "), err
    assert "internal error" not in err and "Traceback" not in err
    for name in names:
        assert str(name) in lines[0], (name, err)


def sample_args(speech: Path, out: Path, *extra: object) -> list[object]:
    return ["sample", "--image", REFERENCE, "--audio", speech, "--out", out, "--no-align", "--checkpoint", MODEL, *extra]


def write_rotated_video(path: Path, upright: np.ndarray, rotation: int, frames: int = 4, **flips: bool) -> None:
    """A video whose stored frames are ``upright`` turned so that a player, applying the display
    matrix (``rotation`` degrees counter-clockwise), shows ``upright``."""
    mirrored = upright[:, ::-1] if flips.get("hflip") else upright  # the mirror is applied after the rotation
    stored = np.ascontiguousarray(np.rot90(mirrored, k=-(rotation // 90)))
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.height, stream.width = stored.shape[:2]
        stream.pix_fmt = "yuv444p"
        stream.set_display_rotation(rotation, hflip=flips.get("hflip", False))
        for _ in range(frames):
            for packet in stream.encode(av.VideoFrame.from_ndarray(stored, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def portrait() -> np.ndarray:
    """48 x 32 portrait picture: red top-left block, blue bottom-right block."""
    image = np.zeros((48, 32, 3), np.uint8)
    image[:16, :16] = (255, 0, 0)
    image[32:, 16:] = (0, 0, 255)
    return image


# -- option values ------------------------------------------------------------------------
@pytest.mark.parametrize(("option", "value"), [
    ("--temperature", "inf"), ("--temperature", "nan"), ("--temperature", "-1"), ("--temperature", "-inf"),
    ("--pose-scale", "inf"), ("--pose-scale", "nan"), ("--pose-scale", "-0.5"),
    ("--crf", "99"), ("--crf", "52"), ("--crf", "-1"),
    ("--seed", str(2**70)), ("--seed", "-1"),
])
def test_out_of_range_settings_are_refused_before_anything_is_written(tmp_path, speech, capsys, option, value):
    out = tmp_path / "out.mp4"
    status, err = run(capsys, *sample_args(speech, out, f"{option}={value}"))
    assert_clear(status, err, option, "give")
    assert not out.exists() and not list(tmp_path.iterdir())


def test_crf_range_limits_are_accepted(tmp_path, speech, capsys):
    for crf in (0, 51):
        status, err = run(capsys, *sample_args(speech, tmp_path / f"crf{crf}.mp4", "--crf", crf))
        assert status == 0, err
        assert probe_video(tmp_path / f"crf{crf}.mp4").num_frames == 8


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
@pytest.mark.parametrize("device", ["cuda", "cuda:0", "tpu:7", "gpu", "cpu:x"])
def test_devices_this_machine_lacks_are_refused(tmp_path, speech, capsys, device):
    status, err = run(capsys, *sample_args(speech, tmp_path / "o.mp4", "--device", device))
    assert_clear(status, err, f"--device {device!r}")
    assert not list(tmp_path.iterdir())


# -- media ---------------------------------------------------------------------------------
def test_a_still_image_is_not_a_motion_source(tmp_path, speech, capsys):
    still = tmp_path / "still.png"
    from PIL import Image

    Image.new("RGB", (64, 64), (90, 90, 90)).save(still)
    status, err = run(capsys, *sample_args(speech, tmp_path / "o.mp4", "--motion", still))
    assert_clear(status, err, still, "at least 2 frames")
    disguised = tmp_path / "still.mp4"  # a PNG under a video name: found by its frame count
    disguised.write_bytes(still.read_bytes())
    status, err = run(capsys, *sample_args(speech, tmp_path / "o.mp4", "--motion", disguised))
    assert_clear(status, err, disguised, "only 1 frame")
    assert not (tmp_path / "o.mp4").exists()


@pytest.mark.parametrize("subtype", ["FLOAT", "DOUBLE"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_audio_is_refused_when_read_naming_the_file(tmp_path, subtype, bad):
    path = tmp_path / "bad.wav"
    wave = np.zeros(8000, np.float32)
    wave[4000] = bad
    soundfile.write(path, wave, 16000, subtype=subtype)
    with pytest.raises(MediaError, match=r"bad\.wav: the audio has NaN or infinite samples \(first at 0\.25 s\)"):
        read_audio(path)


def test_nan_audio_fails_the_sample_command_before_generation(tmp_path, capsys):
    path = tmp_path / "nan.wav"
    wave = np.full(4800, 0.1, np.float32)
    wave[100] = np.nan
    soundfile.write(path, wave, 16000, subtype="FLOAT")
    out = tmp_path / "o.mp4"
    status, err = run(capsys, "sample", "--image", REFERENCE, "--audio", path, "--out", out, "--no-align",
                      "--checkpoint", MODEL)
    assert_clear(status, err, path, "NaN")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nan.wav"]


def huge_png(path: Path, width: int = 20000, height: int = 20000) -> Path:
    """A PNG whose header says width x height (its pixel data is a stub): refused before decoding."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))
    return path


def test_a_huge_image_is_a_clear_error(tmp_path, speech, capsys):
    image = huge_png(tmp_path / "huge.png")
    with pytest.raises(MediaError, match="too large"):
        read_image(image)
    big = huge_png(tmp_path / "big.png", 15000, 15000)  # over the limit, under Pillow's own hard limit
    with pytest.raises(MediaError, match=r"too large \(225,000,000 pixels\), over the limit"):
        read_image(big)
    out = tmp_path / "o.mp4"
    status, err = run(capsys, "sample", "--image", image, "--audio", speech, "--out", out, "--no-align", "--checkpoint", MODEL)
    assert_clear(status, err, image, "too large")
    assert not out.exists()


def test_a_folder_given_as_image_is_named_a_folder(tmp_path, speech, capsys):
    status, err = run(capsys, "sample", "--image", tmp_path, "--audio", speech, "--out", tmp_path / "o.mp4")
    assert_clear(status, err, tmp_path, "is a folder")
    with pytest.raises(MediaError, match="is a folder"):
        read_image(tmp_path)
    with pytest.raises(MediaError, match="is a folder"):
        read_audio(tmp_path)


# -- rotation ------------------------------------------------------------------------------
@pytest.mark.parametrize(("rotation", "hflip"), [(-90, False), (90, False), (180, False), (-90, True), (0, True)])
def test_rotated_videos_are_read_upright(tmp_path, rotation, hflip):
    path = tmp_path / "rotated.mp4"
    write_rotated_video(path, portrait(), rotation, hflip=hflip)
    frames = read_video_frames(path)
    assert frames.shape == (4, 48, 32, 3)
    assert np.abs(frames[0].astype(int) - portrait()).max() < 40
    info = probe_video(path)
    assert (info.width, info.height) == (32, 48)


def test_rotation_is_honoured_in_mkv_and_mov(tmp_path):
    for suffix in (".mkv", ".mov"):
        path = tmp_path / f"rotated{suffix}"
        write_rotated_video(path, portrait(), -90)
        assert np.abs(read_video_frames(path)[0].astype(int) - portrait()).max() < 40


def test_a_portrait_phone_video_drives_motion_upright(tmp_path):
    """--motion reads a phone video (stored landscape, display matrix 90 degrees clockwise) upright."""
    picture = np.zeros((96, 64, 3), np.uint8)
    picture[:32] = (200, 40, 40)  # the top third is red: sideways it would be a column
    path = tmp_path / "phone.mp4"
    write_rotated_video(path, picture, -90, frames=3)
    frames = prepare_motion_frames(path, 16, False, FaceAligner(), 25)
    assert frames.shape == (3, 16, 16, 3)
    top, bottom = frames[0, :2].reshape(-1, 3).mean(0), frames[0, -2:].reshape(-1, 3).mean(0)
    assert top[0] > 150 and bottom[0] < 30


def test_preprocess_finds_the_face_in_a_rotated_video(tmp_path, capsys):
    """A face video stored sideways with a rotation tag: sideways, dlib finds no face; upright it does."""
    from skimage import data

    photo = data.astronaut()[40:360, 60:380]
    source = tmp_path / "videos"
    source.mkdir()
    path = source / "phone.mp4"
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=25)
        video.height, video.width, video.pix_fmt = 320, 320, "yuv420p"
        video.set_display_rotation(-90)
        audio = container.add_stream("aac", rate=16000)
        stored = np.ascontiguousarray(np.rot90(photo, 1))
        for _ in range(12):
            for packet in video.encode(av.VideoFrame.from_ndarray(stored, format="rgb24")):
                container.mux(packet)
        tone = (0.2 * np.sin(np.arange(16000 // 2) / 16000 * 2 * np.pi * 440)).astype(np.float32)[None]
        frame = av.AudioFrame.from_ndarray(tone, format="fltp", layout="mono")
        frame.sample_rate = 16000
        for packet in [*audio.encode(frame), *audio.encode(None), *video.encode()]:
            container.mux(packet)
    out = tmp_path / "clips"
    status, err = run(capsys, "preprocess", source, out, "--resolution", 64, "--min-clip-seconds", "0.2",
                      "--detect-every", 4, "--no-progress")
    assert status == 0, err
    manifest = json.loads((out / "manifest.json").read_text())
    assert len(manifest["clips"]) == 1 and manifest["clips"][0]["num_frames"] >= 10


# -- checkpoints, recipes, datasets ----------------------------------------------------------
def test_a_truncated_checkpoint_is_named(tmp_path, speech, capsys):
    data = MODEL.read_bytes()
    truncated = tmp_path / "model.safetensors"
    truncated.write_bytes(data[: len(data) * 9 // 10])
    status, err = run(capsys, "checkpoint", "info", truncated)
    assert_clear(status, err, truncated, "damaged or incomplete")
    status, err = run(capsys, *sample_args(speech, tmp_path / "o.mp4")[:-1], truncated)
    assert_clear(status, err, truncated)
    assert not (tmp_path / "o.mp4").exists()


def test_a_corrupt_dataset_manifest_is_named(tmp_path, capsys):
    dataset = tmp_path / "dataset"
    dataset.mkdir()
    (dataset / "manifest.json").write_text('{"clips": [')
    status, err = run(capsys, "data", "encode", dataset, "--checkpoint", MODEL, "--no-progress")
    assert_clear(status, err, dataset / "manifest.json", "damaged dataset manifest")
    (dataset / "manifest.json").write_text('{"format": "styletalker-clips", "clips": [{"id": 1}]}')
    status, err = run(capsys, "data", "encode", dataset, "--checkpoint", MODEL, "--no-progress")
    assert_clear(status, err, dataset / "manifest.json")
    assert not (dataset / "latents").exists()


def test_a_binary_file_given_as_a_recipe_is_named(tmp_path, capsys):
    recipe = tmp_path / "binary.toml"
    recipe.write_bytes(bytes(range(256)) * 4)
    status, err = run(capsys, "train", recipe)
    assert_clear(status, err, recipe)


# -- outputs -------------------------------------------------------------------------------
def test_unwritable_outputs_are_named_before_the_model_loads(tmp_path, speech, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    for out in (Path("/proc/styletalker-test/o.mp4"), blocker / "o.mp4"):
        status, err = run(capsys, *sample_args(speech, out))
        assert_clear(status, err, out, "cannot be written")
    for args in (["demo", "--out-dir", "/proc/styletalker-test"], ["demo", "--out-dir", blocker]):
        status, err = run(capsys, *args, "--no-progress")
        assert_clear(status, err, args[-1])
    assert blocker.read_text() == "x"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_locked_folder_is_named(tmp_path, speech, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        status, err = run(capsys, *sample_args(speech, locked / "o.mp4"))
        assert_clear(status, err, locked / "o.mp4", "Permission denied")
    finally:
        locked.chmod(0o755)
    assert not list(locked.iterdir())


def test_a_folder_the_system_refuses_is_named_even_when_running_as_root(tmp_path, speech, capsys, monkeypatch):
    """Root writes into read-only folders, so the refusal is simulated: creating files in
    ``locked`` fails with EACCES, as it does for a normal user."""
    locked = tmp_path / "locked"
    locked.mkdir()
    real_open = os.open

    def refusing_open(path, *args, **kwargs):
        if Path(path).parent == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", refusing_open)
    status, err = run(capsys, *sample_args(speech, locked / "o.mp4"))
    assert_clear(status, err, locked / "o.mp4", "cannot create files in", "Permission denied")
    status, err = run(capsys, "demo", "--out-dir", locked, "--no-progress")
    assert_clear(status, err, f"--out-dir {locked}", "Permission denied")
    assert not list(locked.iterdir())


def test_an_existing_file_is_not_an_output_folder(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("keep me")
    videos = tmp_path / "videos"
    videos.mkdir()
    for args in (["data", "synth", blocker, "--clips", "1"], ["preprocess", videos, blocker]):
        status, err = run(capsys, *args, "--no-progress")
        assert_clear(status, err, blocker, "is a file")
    assert blocker.read_text() == "keep me"


# -- warnings ------------------------------------------------------------------------------
def test_the_out_of_domain_warning_is_one_clear_line(tmp_path, speech, capsys):
    noise = tmp_path / "noise.png"
    from PIL import Image

    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(noise)
    out = tmp_path / "o.mp4"
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        status, err = run(capsys, "sample", "--image", noise, "--audio", speech, "--out", out, "--no-align",
                          "--checkpoint", MODEL)
    assert status == 0 and out.is_file()
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"styletalker: warning: reference {noise}: reference image reconstructs at ")
    assert "warnings.warn" not in err and "OutOfDomainWarning" not in err


def test_the_library_still_issues_the_warning_as_a_python_warning(tmp_path, speech):
    from styletalker_core.sample import SampleJob, Sampler

    noise = tmp_path / "noise.png"
    from PIL import Image

    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(noise)
    sampler = Sampler.from_checkpoint(MODEL)
    with pytest.warns(OutOfDomainWarning, match=str(noise)):
        sampler.run(SampleJob(noise, speech, tmp_path / "o.mp4", settings=sampler.settings(align=False)))
