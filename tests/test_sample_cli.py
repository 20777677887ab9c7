"""`styletalker sample` (single and manifest batch mode) and `styletalker demo`, run in-process on a toy model."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from sample_toys import SampleInputs, make_inputs

import styletalker_core.plugin_host
from styletalker_core.cli.main import main
from styletalker_core.errors import StyleTalkerError
from styletalker_core.media import probe_video, read_image, write_audio
from styletalker_core.sample import SampleSettings, read_manifest, shipped
from styletalker_core.sample.demo import run_demo


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> SampleInputs:
    return make_inputs(tmp_path_factory.mktemp("inputs"))


@pytest.fixture(autouse=True)
def toy_plugins(monkeypatch, inputs) -> None:
    """The CLI builds registries with get_registries(); give it the toy components too."""
    monkeypatch.setattr(styletalker_core.plugin_host, "get_registries", lambda: inputs.registries)
    monkeypatch.setenv("STYLETALKER_PROGRESS", "0")


def sample(*args: str) -> int:
    return main(["sample", *map(str, args)])


def test_single_job_writes_the_samples_and_refuses_to_overwrite(tmp_path, inputs, capsys):
    out = tmp_path / "talk.mp4"
    common = ("--image", inputs.image, "--audio", inputs.audio, "--checkpoint", inputs.model, "--out", out)
    assert sample(*common, "--num-samples", "2", "--seed", "3", "--temperature", "0.5") == 0
    printed = capsys.readouterr().out
    frames = math.ceil(inputs.audio_seconds * 25)
    for name in ("talk_0.mp4", "talk_1.mp4"):
        assert f"wrote {tmp_path / name}: {frames} frames" in printed
        assert probe_video(tmp_path / name).num_frames == frames
    assert sample(*common) == 0 and out.is_file()
    before = out.read_bytes()
    assert sample(*common, "--seed", "9") == 2
    error = capsys.readouterr().err
    assert error.startswith("styletalker: error: output ") and "already exists; pass --overwrite" in error
    assert error.count("\n") == 1 and out.read_bytes() == before
    assert sample(*common, "--seed", "9", "--overwrite", "--still") == 0
    assert out.read_bytes() != before


def test_motion_mode_and_bad_input_messages(tmp_path, inputs, capsys):
    out = tmp_path / "motion.mp4"
    base = ("--image", inputs.image, "--audio", inputs.audio, "--checkpoint", inputs.model)
    assert sample(*base, "--motion", inputs.motion, "--motion-fit", "trim", "--out", out) == 0
    assert probe_video(out).num_frames == inputs.motion_frames
    short = tmp_path / "short.wav"
    write_audio(short, np.zeros(800, dtype=np.float32))
    cases = [
        (("--image", tmp_path / "none.png", "--audio", inputs.audio, "--out", tmp_path / "a.mp4"), "reference: "),
        (("--image", inputs.image, "--audio", short, "--checkpoint", inputs.model, "--out", tmp_path / "a.mp4"),
         "give at least 0.2 s of speech"),
        (("--image", inputs.image, "--audio", inputs.audio, "--checkpoint", tmp_path / "none.safetensors",
          "--out", tmp_path / "a.mp4"), "checkpoint "),
        (("--image", inputs.image, "--out", tmp_path / "a.mp4"), "give --audio"),
        ((*base, "--motion", inputs.motion, "--num-samples", "2", "--out", tmp_path / "a.mp4"), "several samples need"),
        ((*base, "--pose-scale", "-1", "--out", tmp_path / "a.mp4"), "pose-scale -1.0: give a number of at least 0"),
    ]
    for args, message in cases:
        assert sample(*args) == 2, args
        error = capsys.readouterr().err
        assert message in error and error.count("\n") == 1, error
    assert not (tmp_path / "a.mp4").exists()


def test_manifest_runs_every_row_reports_failures_and_exits_non_zero(tmp_path, inputs, capsys):
    (tmp_path / "media").mkdir()
    manifest = tmp_path / "jobs.csv"
    manifest.write_text(
        "image,audio,motion,out,seed,num_samples,still\n"
        f"{inputs.image},{inputs.audio},,out/one.mp4,1,,\n"
        f"{inputs.image},media/missing.wav,,out/two.mp4,,,\n"
        f"{inputs.image},{inputs.audio},,out/three.mp4,2,2,\n"
        f"{inputs.image},{inputs.audio},{inputs.motion},out/four.mp4,,,\n"
        f"{inputs.image},{inputs.audio},,out/five.mp4,x,,\n"
        f"{inputs.image},{inputs.audio},,out/one.mp4,,,yes\n"
    )
    report = tmp_path / "report.json"
    assert sample("--manifest", manifest, "--checkpoint", inputs.model, "--report", report) == 1
    captured = capsys.readouterr()
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == ["four.mp4", "one.mp4", "three_0.mp4", "three_1.mp4"]
    rows = json.loads(report.read_text())["rows"]
    assert [row["status"] for row in rows] == ["ok", "failed", "ok", "ok", "failed", "failed"]
    assert "missing.wav: no such file" in rows[1]["error"]
    assert "jobs.csv row 5: seed 'x': give a whole number" in rows[4]["error"]
    assert "also written by row 1" in rows[5]["error"]
    assert "row 2: FAILED: audio: " in captured.err and "3 of 6 rows done; failed rows: 2, 5, 6" in captured.out
    # a rerun refuses every existing output; with --overwrite the good rows succeed again
    assert sample("--manifest", manifest, "--checkpoint", inputs.model) == 1
    assert "0 of 6 rows done" in capsys.readouterr().out
    assert sample("--manifest", manifest, "--checkpoint", inputs.model, "--overwrite") == 1
    assert "3 of 6 rows done" in capsys.readouterr().out


def test_json_manifest_and_manifest_format_errors(tmp_path, inputs, capsys):
    manifest = tmp_path / "jobs.json"
    manifest.write_text(json.dumps([
        {"image": str(inputs.image), "audio": str(inputs.audio), "out": "a.mp4", "pose_scale": 0.5, "still": False},
        {"image": str(inputs.image), "audio": str(inputs.audio), "out": "b.mp4", "motion": str(inputs.motion)},
    ]))
    assert sample("--manifest", manifest, "--checkpoint", inputs.model) == 0
    assert (tmp_path / "a.mp4").is_file() and (tmp_path / "b.mp4").is_file()
    assert "2 of 2 rows done" in capsys.readouterr().out
    bad = tmp_path / "bad.csv"
    bad.write_text("image,audio,out,sead\nx,y,z.mp4,1\n")
    with pytest.raises(StyleTalkerError, match=r"unknown column\(s\) sead"):
        read_manifest(bad)
    bad.write_text("image,out\nx,z.mp4\n")
    with pytest.raises(StyleTalkerError, match=r"missing column\(s\) audio"):
        read_manifest(bad)
    assert sample("--manifest", bad, "--checkpoint", inputs.model) == 2
    assert "missing column(s) audio" in capsys.readouterr().err
    assert sample("--manifest", manifest, "--image", inputs.image) == 2
    assert "--manifest lists the jobs; drop --image" in capsys.readouterr().err


def test_demo_without_the_shipped_model_names_the_file_and_the_train_command(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(shipped, "project_root", lambda: tmp_path)
    (tmp_path / "recipes").mkdir()
    (tmp_path / "recipes/synthetic_64.toml").write_text(
        "# The shipped model:\n#   styletalker train recipes/synthetic_64.toml\n#   cp a b\nname = 'x'\n# not this\n")
    assert main(["demo", "--out-dir", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    assert f"the shipped model {tmp_path / 'checkpoints/synthetic_64_model.safetensors'} is missing" in error
    assert ("make it with `styletalker train recipes/synthetic_64.toml && cp a b && cp runs/synthetic_64/model.safetensors "
            "checkpoints/synthetic_64_model.safetensors` from the project folder") in error
    assert error.count("\n") == 1 and not (tmp_path / "out").exists()


def test_the_real_recipe_header_says_how_to_make_the_shipped_model():
    command = shipped.make_model_command()
    assert "styletalker train recipes/synthetic_64.toml" in command
    assert str(shipped.DEFAULT_MODEL) in command.split("styletalker train recipes/synthetic_64.toml")[1]


def test_demo_writes_both_videos_and_the_strip(tmp_path, inputs, monkeypatch):
    root = tmp_path / "project"
    for role, relative in shipped.ASSETS.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        source = {"reference": inputs.image, "speech": inputs.audio, "motion": inputs.motion}[role]
        (root / relative).write_bytes(source.read_bytes())
    monkeypatch.setattr(shipped, "project_root", lambda: root)
    result = run_demo(tmp_path / "out", checkpoint=inputs.model, registries=inputs.registries)
    frames = math.ceil(inputs.audio_seconds * 25)
    assert [r.outputs[0].name for r in (result.audio_driven, result.motion_controlled)] == ["demo.mp4", "demo_motion.mp4"]
    assert probe_video(tmp_path / "out/demo.mp4").num_frames == frames
    assert probe_video(tmp_path / "out/demo_motion.mp4").num_frames == frames
    strip = read_image(result.strip)
    tile = 2 * 16  # tiles are enlarged twice
    assert strip.shape[1] == 9 * tile + 10 * 4 and strip.shape[0] > 3 * tile
    assert strip.std() > 10  # faces, not a blank canvas
    again = run_demo(tmp_path / "out", checkpoint=inputs.model, registries=inputs.registries)  # reruns replace the files
    assert again.audio_driven.num_frames == frames
    assert SampleSettings().align is True  # the demo turns alignment off itself: its assets are aligned crops


def _make_assets_tool():
    import importlib.util

    path = shipped.project_root() / "tools" / "make_demo_assets.py"
    spec = importlib.util.spec_from_file_location("make_demo_assets", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_shipped_assets_are_what_the_demo_needs():
    from styletalker_core.media import probe_audio, read_audio, read_video_frames

    paths = shipped.require_assets()
    reference = read_image(paths["reference"])
    assert reference.shape == (64, 64, 3) and reference.std() > 10
    info = probe_audio(paths["speech"])
    assert (info.sample_rate, info.channels, info.codec) == (16000, 1, "pcm_s16le") and 3.0 <= info.duration <= 8.0
    assert np.abs(read_audio(paths["speech"])).max() > 0.5
    video = probe_video(paths["motion"])
    assert (video.width, video.height, video.fps, video.has_audio) == (64, 64, 25.0, True) and video.num_frames >= 100
    frames = read_video_frames(paths["motion"]).astype(np.float32)
    assert np.abs(frames - frames[0]).mean(axis=(1, 2, 3)).max() > 10, "the head moves"
    assert np.abs(frames[0] - reference).mean() > 20, "another identity than the reference"


def _synth_config(recipe_name: str):
    """The SynthConfig of the `styletalker data synth` line in a recipe's header."""
    import re

    from styletalker_core.data.synthetic import SynthConfig

    recipe = shipped.project_root() / "recipes" / recipe_name
    line = next(command for command in shipped.recipe_commands(recipe) if command.startswith("styletalker data synth"))
    number = {key: int(match.group(1)) for key in ("seed", "clips", "identities")
              if (match := re.search(rf"--{key} (\d+)", line))}
    return SynthConfig(clips=number["clips"], seed=number.get("seed", 0), identities=number.get("identities", 0))


def test_demo_identities_are_held_out_from_the_shipped_models_data():
    model_data, domain_data = _synth_config("synthetic_64.toml"), _synth_config("domain_synthetic_64.toml")
    tool = _make_assets_tool()
    assert (model_data.seed, domain_data.seed) == (tool.DATA_SEED, tool.DOMAIN_SEED)
    identities = tool.heldout_identities(tool.DATA_SEED, (tool.DOMAIN_SEED,))  # the reference's and the motion source's
    for data in (model_data, domain_data):
        training = data.identity_pool().train_vectors()
        assert len(training) <= tool.MAX_TRAIN_IDENTITIES
        for vector in identities:
            assert np.linalg.norm(training - vector, axis=1).min() >= 0.35
