"""Real-video preprocessing: models, FFHQ alignment, smoothing, layouts, face policy, and a
folder run with good and bad videos, workers, reports and resume."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from skimage import data

from styletalker_core.cli.main import main as cli
from styletalker_core.data.preprocess import (
    FFHQ_EYES,
    FaceAnalyzer,
    PreprocessSettings,
    crop_face,
    discover_videos,
    ffhq_quad,
    models_folder,
    preprocess_folder,
    quad_to_crop,
    smooth_landmarks,
)
from styletalker_core.data.preprocess.align import map_points
from styletalker_core.data.shards import ShardReader
from styletalker_core.errors import StyleTalkerError
from styletalker_core.media import read_audio, write_video
from styletalker_datasets.sharded import ShardedClipDataset

SR = 16000


@pytest.fixture(scope="module")
def analyzer() -> FaceAnalyzer:
    return FaceAnalyzer()


def eye_centres(landmarks: np.ndarray) -> np.ndarray:
    return np.stack([landmarks[36:42].mean(axis=0), landmarks[42:48].mean(axis=0)])


def astronaut_frames(count: int, size: int = 320) -> np.ndarray:
    """A real face photo moving a few pixels per frame."""
    photo = data.astronaut()
    frames = []
    for index in range(count):
        dx, dy = round(6 * np.sin(index / 5)), round(4 * np.cos(index / 7))
        frames.append(photo[40 + dy : 40 + dy + size, 60 + dx : 60 + dx + size])
    return np.stack(frames)


def tone(frames: int, freq: float = 440.0) -> np.ndarray:
    time = np.arange(frames * 640) / SR
    return (0.3 * np.sin(2 * np.pi * freq * time)).astype(np.float32)


def test_landmark_model_is_found_without_importing_its_package():
    folder = models_folder()
    assert (folder / "shape_predictor_68_face_landmarks.dat").is_file()
    assert "face_recognition_models" not in sys.modules


def test_astronaut_alignment_puts_the_eyes_on_the_ffhq_template(analyzer):
    photo = data.astronaut()
    faces = analyzer.faces(photo)
    assert len(faces) == 1
    quad = ffhq_quad(faces[0].landmarks)
    for size in (128, 256):
        crop = crop_face(photo, quad, size)
        assert crop.shape == (size, size, 3) and crop.dtype == np.uint8
        mapped = eye_centres(map_points(faces[0].landmarks, quad_to_crop(quad, size))) / size
        assert np.abs(mapped - FFHQ_EYES).max() < 0.02
        found = analyzer.faces(crop)  # landmarks found again on the aligned crop
        assert len(found) == 1
        assert np.abs(eye_centres(found[0].landmarks) / size - FFHQ_EYES).max() < 0.02


def test_quad_levels_a_tilted_face_and_smoothing_keeps_still_faces_still(analyzer):
    photo = data.astronaut()
    landmarks = analyzer.faces(photo)[0].landmarks
    angle = np.deg2rad(25)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    tilted = (landmarks - 256) @ rotation.T + 256
    eyes = eye_centres(map_points(tilted, quad_to_crop(ffhq_quad(tilted), 100)))
    assert abs(eyes[0, 1] - eyes[1, 1]) < 0.5  # level in the crop
    assert np.allclose(eyes, eye_centres(map_points(landmarks, quad_to_crop(ffhq_quad(landmarks), 100))), atol=0.5)
    still = np.repeat(landmarks[None], 9, axis=0)
    assert np.allclose(smooth_landmarks(still, 2.0), still)
    jitter = still + np.random.default_rng(0).normal(0, 2.0, still.shape)
    assert smooth_landmarks(jitter, 2.0).std(axis=0).mean() < 0.6 * jitter.std(axis=0).mean()
    # a quad reaching past the frame is filled by mirroring, not left black
    corner = crop_face(photo[:200, :200], ffhq_quad(landmarks - 150), 64)
    assert corner.shape == (64, 64, 3) and corner.reshape(-1, 3).min(axis=0).max() > 0


def test_layouts_name_clips(tmp_path):
    vox = tmp_path / "vox"
    for relative in ("dev/mp4/id00012/abcDEF/00001.mp4", "dev/mp4/id00012/abcDEF/00002.mp4", "test/mp4/id00099/xyz/00001.mp4"):
        (vox / relative).parent.mkdir(parents=True, exist_ok=True)
        (vox / relative).touch()
    jobs = discover_videos(vox)
    assert [job.key for job in jobs] == ["id00012_abcDEF_00001", "id00012_abcDEF_00002", "id00099_xyz_00001"]
    assert [job.meta.get("split") for job in jobs] == [None, None, "test"]  # VoxCeleb2's own test set
    assert jobs[0].meta["speaker"] == "id00012"
    hdtf = tmp_path / "hdtf"
    hdtf.mkdir()
    for name in ("WRA_KellyAyotte_000.mp4", "RD_Radio1_000.mp4"):
        (hdtf / name).touch()
    assert [(j.key, j.meta["speaker"]) for j in discover_videos(hdtf)] == [("RD_Radio1_000", "RD_Radio1"), ("WRA_KellyAyotte_000", "WRA_KellyAyotte")]
    plain = tmp_path / "plain"
    (plain / "a").mkdir(parents=True)
    (plain / "a" / "b c.mp4").touch()
    (plain / "a__b c.mp4").touch()
    (plain / "notes.txt").touch()
    assert sorted(j.key for j in discover_videos(plain)) == ["a__b_c", "a__b_c-2"]
    with pytest.raises(StyleTalkerError, match="not in the VoxCeleb2 layout"):
        discover_videos(plain, layout="voxceleb2")
    (tmp_path / "empty").mkdir()
    with pytest.raises(StyleTalkerError, match="no video files"):
        discover_videos(tmp_path / "empty")


def test_folder_run_keeps_the_good_clip_and_reports_each_bad_file(tmp_path):
    source = tmp_path / "videos"
    write_video(source / "good.mp4", astronaut_frames(30), tone(30), preset="ultrafast")
    write_video(source / "silent.mp4", astronaut_frames(8), None, preset="ultrafast")
    write_video(source / "noface.mp4", np.stack([np.full((160, 160, 3), 80 + 4 * i, np.uint8) for i in range(12)]), tone(12), preset="ultrafast")
    (source / "corrupt.mp4").write_bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    output = tmp_path / "clips"
    settings = PreprocessSettings(resolution=64, min_clip_frames=10, detect_every=5)
    report = preprocess_folder(source, output, settings, workers=2, progress=False)

    assert (report["summary"]["ok"], report["summary"]["failed"], report["summary"]["clips"]) == (1, 3, 1)
    on_disk = json.loads((output / "report.json").read_text())
    reasons = {video["video"]: video.get("reason") for video in on_disk["videos"]}
    assert reasons == {"good.mp4": None, "silent.mp4": "no_audio_track", "noface.mp4": "no_face", "corrupt.mp4": "unreadable"}
    assert all("corrupt.mp4" in v["message"] for v in on_disk["videos"] if v["video"] == "corrupt.mp4")

    reader = ShardReader(output)
    assert reader.clip_ids() == ["good-000"]
    record = reader.records["good-000"]
    assert (record["num_frames"], record["height"], record["width"], record["fps"]) == (30, 64, 64, 25)
    assert record["audio_samples"] == 30 * 640 and record["has_landmarks"] and record["source"] == "good.mp4"
    audio = reader.audio("good-000").numpy()
    assert np.abs(audio - read_audio(source / "good.mp4")).max() == 0
    landmarks = reader.landmarks("good-000").numpy()
    assert np.abs(eye_centres(landmarks.mean(axis=0)) / 64 - FFHQ_EYES).max() < 0.03
    # the clip is usable by the dataset plugin straight away
    item = ShardedClipDataset(str(output), window_frames=8, landmarks=True)[0]
    assert item["frames"].shape == (8, 3, 64, 64) and item["audio"].shape == (8 * 640,)
    assert not list(output.rglob("*.tmp"))


def test_face_policy_and_per_clip_drop_report(tmp_path, analyzer):
    photo = data.astronaut()
    face = photo[40:360, 60:380]
    pair = np.concatenate([face, np.asarray(face[::2, ::2].repeat(2, 0).repeat(2, 1))], axis=1)  # two faces
    write_video(tmp_path / "pairs" / "pair.mp4", np.repeat(pair[None], 4, axis=0), tone(4), preset="ultrafast")
    gap = astronaut_frames(12, size=320)
    gap[4:7] = 120  # the face leaves for 3 frames
    write_video(tmp_path / "gaps" / "gap.mp4", gap, tone(12), preset="ultrafast")
    runs = {}
    for policy in ("largest", "skip", "fail"):
        settings = PreprocessSettings(resolution=32, min_clip_frames=4, face_policy=policy)
        runs[policy] = {}
        for folder in ("pairs", "gaps") if policy != "largest" else ("pairs",):
            report = preprocess_folder(tmp_path / folder, tmp_path / f"{policy}-{folder}", settings, progress=False)
            runs[policy] |= {video["video"]: video for video in report["videos"]}
    assert runs["largest"]["pair.mp4"]["status"] == "ok" and runs["largest"]["pair.mp4"]["frames_kept"] == 4
    assert runs["skip"]["pair.mp4"]["reason"] == "no_face" and "multiple faces" in runs["skip"]["pair.mp4"]["message"]
    assert runs["fail"]["pair.mp4"]["reason"] == "face_policy"
    gap_report = runs["skip"]["gap.mp4"]
    assert [c["num_frames"] for c in gap_report["clips"]] == [4, 5]
    assert gap_report["dropped"] == {"no_face": 3} and gap_report["dropped_ranges"] == [[4, 7, "no_face"]]
    assert runs["fail"]["gap.mp4"]["reason"] == "face_policy" and "frame 4" in runs["fail"]["gap.mp4"]["message"]
    short = preprocess_folder(tmp_path / "gaps", tmp_path / "short", PreprocessSettings(resolution=32, min_clip_frames=5), progress=False)
    assert short["videos"][0]["dropped"] == {"no_face": 3, "short_segment": 4}
    assert short["videos"][0]["dropped_ranges"] == [[0, 4, "short_segment"], [4, 7, "no_face"]]


def test_resume_skips_finished_videos_and_settings_must_match(tmp_path, capsys):
    source = tmp_path / "videos"
    write_video(source / "one.mp4", astronaut_frames(10), tone(10), preset="ultrafast")
    (source / "broken.mp4").write_bytes(b"junk")
    output = tmp_path / "clips"
    arguments = ["preprocess", str(source), str(output), "--resolution", "32", "--min-clip-seconds", "0.2", "--no-progress"]
    assert cli(arguments) == 0
    assert "2 video(s): 1 ok, 1 failed; 1 clip(s), 10 frames" in capsys.readouterr().out
    shard = output / "shards" / "one-000.safetensors"
    stamp = shard.stat().st_mtime_ns
    write_video(source / "two.mp4", astronaut_frames(12), tone(12), preset="ultrafast")
    assert cli(arguments) == 0
    assert shard.stat().st_mtime_ns == stamp  # finished video not redone
    assert sorted(ShardReader(output).clip_ids()) == ["one-000", "two-000"]
    assert "3 video(s): 2 ok, 1 failed" in capsys.readouterr().out
    assert cli([*arguments[:4], "64", *arguments[5:]]) == 2
    assert "other settings" in capsys.readouterr().err
    empty = tmp_path / "bad_only"
    empty.mkdir()
    (empty / "x.mp4").write_bytes(b"junk")
    assert cli(["preprocess", str(empty), str(tmp_path / "none"), "--no-progress"]) == 2
    assert "no clip could be made" in capsys.readouterr().err
