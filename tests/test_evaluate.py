"""The evaluation engine and `styletalker evaluate`: pairing, loading, skipping, aggregation, JSON."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from styletalker_core.cli.main import main
from styletalker_core.data.shards import Clip, ShardWriter
from styletalker_core.errors import StyleTalkerError
from styletalker_core.evaluate import (
    ClipCache,
    EvalJob,
    build_metrics,
    evaluate_items,
    frames_to_tensor,
    load_job,
    match_name,
    metric_specs,
    pair_inputs,
    read_manifest,
)
from styletalker_core.interfaces.metric import EvalItem
from styletalker_core.media import read_video_frames, write_image, write_video
from styletalker_core.plugin_host import get_registries
from styletalker_core.registry import ComponentSpec
from styletalker_metrics.fidelity import PSNR, SSIM


def video(seed: int, frames: int = 6, size: int = 32) -> np.ndarray:
    """uint8 [frames, size, size, 3]: smooth random pictures that drift a little per frame."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(40, 215, (size // 4, size // 4, 3)).repeat(4, 0).repeat(4, 1)
    return np.stack([np.clip(base + 3 * i, 0, 255) for i in range(frames)]).astype(np.uint8)


def tone(seconds: float) -> np.ndarray:
    return (0.3 * np.sin(2 * np.pi * 220 * np.arange(int(16000 * seconds)) / 16000)).astype(np.float32)


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    """generated/{a.mp4, b_sample1.mp4} and references/{a.mp4, b.mp4, b.png}; a is an exact copy."""
    generated, references = tmp_path / "generated", tmp_path / "references"
    write_video(references / "a.mp4", video(0), tone(0.24))
    write_video(references / "b.mp4", video(1), tone(0.24))
    write_image(references / "b.png", video(1)[0])
    write_video(generated / "a.mp4", video(0), tone(0.24))
    noisy = np.clip(video(1).astype(np.int16) + 12, 0, 255).astype(np.uint8)
    write_video(generated / "b_sample1.mp4", noisy, tone(0.24))
    return generated, references


def test_names_pair_exactly_or_by_the_longest_prefix_before_a_separator() -> None:
    names = ["clip1", "clip12", "clip1_a"]
    assert match_name("clip1", names) == "clip1"
    assert match_name("clip12_s0", names) == "clip12"
    assert match_name("clip1_a_s2", names) == "clip1_a"
    assert match_name("clip1-take2", names) == "clip1"
    assert match_name("clip123", names) is None
    assert match_name("clip", names) is None


def test_pairing_folders_and_single_files(folders: tuple[Path, Path], tmp_path: Path) -> None:
    generated, references = folders
    jobs = pair_inputs([str(generated)], [str(references)])
    assert [job.name for job in jobs] == ["a", "b_sample1"]
    assert jobs[0].reference_video == references / "a.mp4" and jobs[0].reference_image is None
    assert jobs[1].reference_video == references / "b.mp4" and jobs[1].reference_image == references / "b.png"
    single = pair_inputs([str(generated / "a.mp4")], [str(references / "b.png")])
    assert single[0].reference_image == references / "b.png"
    (tmp_path / "only_a").mkdir()
    write_image(tmp_path / "only_a" / "a.png", video(0)[0])
    with pytest.raises(StyleTalkerError, match=r"b_sample1.mp4: no match in"):
        pair_inputs([str(generated)], [str(tmp_path / "only_a")])
    with pytest.raises(StyleTalkerError, match="not a video file"):
        pair_inputs([str(references / "b.png")])


def test_loading_reads_frames_audio_and_reference(folders: tuple[Path, Path]) -> None:
    generated, references = folders
    job = pair_inputs([str(generated / "b_sample1.mp4")], [str(references)])[0]
    item = load_job(job)
    assert item.frames.shape == (6, 3, 32, 32) and item.frames.min() >= -1 and item.frames.max() <= 1
    assert item.reference_frames.shape == (6, 3, 32, 32)
    assert item.audio.shape == (3840,)  # the generated file's own track, 0.24 s at 16 kHz
    np.testing.assert_array_equal(((item.reference_image + 1) * 127.5).round().byte().permute(1, 2, 0).numpy(), video(1)[0])


def test_evaluate_command_writes_the_right_numbers(folders: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    generated, references = folders
    out = tmp_path / "results.json"
    status = main(["evaluate", "--generated", str(generated), "--reference", str(references), "--metrics", "psnr,ssim", "--out", str(out)])
    assert status == 0
    results = json.loads(out.read_text())
    assert results["format"] == "styletalker-evaluation"
    assert [m["name"] for m in results["metrics"]] == ["psnr", "ssim"]
    expected = {}
    for name, reference in (("a", "a"), ("b_sample1", "b")):
        item = EvalItem(
            frames=frames_to_tensor(read_video_frames(generated / f"{name}.mp4")),
            audio=torch.zeros(0),
            reference_frames=frames_to_tensor(read_video_frames(references / f"{reference}.mp4")),
        )
        expected[name] = {**PSNR().compute(item), **SSIM().compute(item)}
    values = {item["name"]: item["values"] for item in results["items"]}
    assert values["a"]["psnr"] == pytest.approx(100.0) and values["a"]["ssim"] == pytest.approx(1.0, abs=1e-6)
    for name in expected:
        for key in ("psnr", "ssim"):
            assert values[name][key] == pytest.approx(expected[name][key], rel=1e-6)
    assert 25 < values["b_sample1"]["psnr"] < 35  # an offset of 12/255 with coding noise is about 26 dB
    psnrs = [expected[n]["psnr"] for n in ("a", "b_sample1")]
    summary = results["summary"]["psnr"]
    assert summary["mean"] == pytest.approx(np.mean(psnrs)) and summary["std"] == pytest.approx(np.std(psnrs))
    assert summary["count"] == 2 and summary["missing"] == 0 and summary["higher_is_better"] is True
    printed = capsys.readouterr().out
    assert "psnr" in printed and "ssim" in printed and f"{np.mean(psnrs):.4g}" in printed


def test_metrics_without_their_inputs_are_skipped_and_counted(folders: tuple[Path, Path], tmp_path: Path) -> None:
    generated, _ = folders
    out = tmp_path / "results.json"
    assert main(["evaluate", "--generated", str(generated), "--metrics", "psnr,cpbd", "--out", str(out)]) == 0
    results = json.loads(out.read_text())
    assert all(item["skipped"] == {"psnr": "needs reference_frames"} for item in results["items"])
    assert results["summary"]["psnr"]["count"] == 0 and results["summary"]["psnr"]["mean"] is None
    assert results["summary"]["cpbd"]["count"] == 2


def test_nan_values_are_counted_as_missing_and_written_as_null(tmp_path: Path) -> None:
    metrics = build_metrics(get_registries(), [ComponentSpec("cpbd", {"frames_per_video": 2})])
    flat = EvalItem(frames=torch.zeros(2, 3, 64, 64), audio=torch.zeros(0))  # no edges: NaN
    report = evaluate_items(metrics, [("flat", flat, {})])
    assert math.isnan(report.items[0].values["cpbd"])
    assert report.summary["cpbd"].count == 0 and report.summary["cpbd"].missing == 1
    report.write_json(tmp_path / "r.json")
    assert json.loads((tmp_path / "r.json").read_text())["items"][0]["values"]["cpbd"] is None


def write_dataset(root: Path) -> None:
    frames = video(2)
    labels = {"mouth_open": np.linspace(0, 1, len(frames), dtype=np.float32)}
    writer = ShardWriter(root)
    writer.write("0000", [Clip("synth-000001", frames, tone(0.24), labels=labels), Clip("synth-000002", video(3), tone(0.24))])
    writer.finalize()


def test_clip_dataset_references_and_manifests(tmp_path: Path) -> None:
    dataset = tmp_path / "dataset"
    write_dataset(dataset)
    write_video(tmp_path / "gen" / "synth-000001_s0.mp4", video(2))  # no audio track
    job = pair_inputs([str(tmp_path / "gen")], [str(dataset)], motions=[str(dataset / "..")] * 0)[0]
    assert str(job.reference_clip) == f"{dataset}#synth-000001"
    item = load_job(job, ClipCache())
    assert item.audio.shape == (3840,)  # from the clip, since the generated file has none
    torch.testing.assert_close(item.labels["mouth_open"], torch.linspace(0, 1, 6))
    assert item.reference_image.shape == (3, 32, 32)

    np.savez(tmp_path / "labels.npz", pose=np.zeros((6, 3), dtype=np.float32))
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("generated,dataset,clip_id,motion_clip_id,labels\ngen/synth-000001_s0.mp4,dataset,synth-000001,synth-000002,labels.npz\n")
    [row] = read_manifest(manifest)
    item = load_job(row)
    assert item.motion_frames.shape == (6, 3, 32, 32) and set(item.labels) == {"mouth_open", "pose"}
    (tmp_path / "m.json").write_text(json.dumps([{"generated": "gen/synth-000001_s0.mp4", "colour": "red"}]))
    with pytest.raises(StyleTalkerError, match="unknown column"):
        read_manifest(tmp_path / "m.json")
    (tmp_path / "m2.json").write_text(json.dumps([{"generated": "gen/missing.mp4"}]))
    with pytest.raises(StyleTalkerError, match="does not exist"):
        read_manifest(tmp_path / "m2.json")


def test_manifest_command_round_trip(tmp_path: Path) -> None:
    dataset = tmp_path / "dataset"
    write_dataset(dataset)
    write_video(tmp_path / "gen.mp4", video(2))
    (tmp_path / "m.json").write_text(json.dumps([{"generated": "gen.mp4", "name": "first", "dataset": "dataset", "clip_id": "synth-000001"}]))
    out = tmp_path / "r.json"
    assert main(["evaluate", "--manifest", str(tmp_path / "m.json"), "--metrics", "psnr", "--out", str(out)]) == 0
    [item] = json.loads(out.read_text())["items"]
    assert item["name"] == "first" and item["values"]["psnr"] > 25 and item["source"]["reference_clip"].endswith("#synth-000001")


def test_metric_options_come_from_the_recipe(write_recipe, tmp_path: Path) -> None:
    recipe_path = write_recipe("r.toml", """
        name = "eval"
        [[evaluate.metrics]]
        name = "ssim"
        window_size = 7
    """)
    from styletalker_core.recipe import load_recipe

    recipe = load_recipe(recipe_path, [], get_registries())
    assert metric_specs(["psnr", "ssim"], recipe) == [ComponentSpec("psnr"), recipe.evaluate.metrics[0]]
    assert metric_specs(None, recipe) == recipe.evaluate.metrics
    assert [s.name for s in metric_specs(None, None)] == ["psnr", "ssim", "lmd", "csim", "blink_rate", "pose_diversity"]
    [(info, metric)] = build_metrics(get_registries(), metric_specs(None, recipe))
    assert info.options == {"window_size": 7} and metric.window_size == 7


def test_user_errors_exit_with_status_2(folders: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    generated, _ = folders
    out = str(tmp_path / "r.json")
    assert main(["evaluate", "--generated", str(generated), "--metrics", "psnrr", "--out", out]) == 2
    assert "closest registered names: psnr" in capsys.readouterr().err
    assert main(["evaluate", "--generated", str(generated), "--metrics", "psnr,psnr", "--out", out]) == 2
    assert "both report 'psnr'" in capsys.readouterr().err
    assert main(["evaluate", "--generated", str(tmp_path / "nothing"), "--metrics", "psnr", "--out", out]) == 2
    assert not Path(out).exists()


def test_jobs_describe_their_inputs(tmp_path: Path) -> None:
    job = EvalJob("x", tmp_path / "x.mp4", reference_image=tmp_path / "x.png")
    assert job.describe() == {"name": "x", "generated": str(tmp_path / "x.mp4"), "reference_image": str(tmp_path / "x.png")}
