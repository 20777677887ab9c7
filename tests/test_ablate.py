"""`styletalker ablate` on two tiny test-only recipes (a toy talking head whose prior is a GRU or an LSTM).

The recipes use the toy generator and encoder of test_talking_head_toys, real audio encoder,
lip mapper, motion VAE and prior plugins, and one test-only training stage (below) that fits
the encoder and generator as an autoencoder for a few steps. Data: a hand-made clip dataset
of synthetic-domain renders (2 training, 2 held-out clips).
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sample_toys import speech_like
from test_talking_head_toys import toy_registries
from torch import nn

from styletalker_core.ablate import AblationSettings, fitted_indices, generate_items, load_clips, run_ablation
from styletalker_core.ablate.report import best_runs, difference_cell, interval_cell
from styletalker_core.ablate.statistics import Difference, Interval
from styletalker_core.cli.main import main
from styletalker_core.data.shards import Clip, ShardWriter
from styletalker_core.data.synthetic import IDENTITY_DIM, render_faces
from styletalker_core.errors import StyleTalkerError
from styletalker_core.evaluate.report import Summary
from styletalker_core.interfaces.stage import TrainingStage
from styletalker_core.model import TalkingHead
from styletalker_core.registry import Origin, Registries

ORIGIN = Origin("styletalker-tests", "0.0.0", "tests.test_ablate")
FRAMES = 20


class ToyAutoencodeStage(TrainingStage):
    """Fits image_encoder and generator to reconstruct dataset frames (L1 at the generator's resolution);
    outputs every role of the model (the others as initialised), so the run's model is fixed by its stage."""

    def setup(self, context: Any) -> None:
        self.generator = context.component("generator")
        self.encoder = context.component("image_encoder")
        self.others = {role: context.component(role) for role in ("audio_encoder", "lip_mapper", "motion_vae", "prior")}
        self.data = context.dataset("train")

    def dataset(self) -> Any:
        return self.data

    def trainable(self) -> dict[str, nn.Module]:
        return {"generator": self.generator, "image_encoder": self.encoder}

    def loss(self, phase: str, batch: dict[str, Any], step: int) -> tuple[torch.Tensor, dict[str, float]]:
        images = batch["frames"].flatten(0, 1)
        images = F.interpolate(images, size=(self.generator.resolution,) * 2, mode="area")
        loss = (self.generator.synthesis(self.encoder.encode(images)) - images).abs().mean()
        return loss, {"l1": float(loss.detach())}

    def outputs(self) -> dict[str, nn.Module]:
        return {"generator": self.generator, "image_encoder": self.encoder, **self.others}


@pytest.fixture(scope="module")
def registries() -> Registries:
    registries = toy_registries()
    registries["stage"].register("toy_autoencode", ToyAutoencodeStage, ORIGIN)
    return registries


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 clips of 20 frames at 32 px with labels; the last two held out."""
    root = tmp_path_factory.mktemp("clips")
    clips = []
    for index in range(4):
        generator = torch.Generator().manual_seed(index)
        t = torch.arange(FRAMES, dtype=torch.float32)
        labels = {
            "pose": torch.stack([8 * torch.sin(t / 4 + index), 4 * torch.cos(t / 5), 3 * torch.sin(t / 6)], -1),
            "eye_open": torch.ones(FRAMES), "mouth_open": 0.5 + 0.5 * torch.sin(t / 2 + index),
            "mouth_width": torch.full((FRAMES,), 0.5), "identity": torch.rand(IDENTITY_DIM, generator=generator).expand(FRAMES, -1),
        }
        labels["eye_open"][8:10] = 0.0
        images = render_faces(labels["identity"][0], labels["pose"], labels["eye_open"], labels["mouth_open"],
                              labels["mouth_width"], resolution=32, supersample=1)
        frames = (images.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).numpy()
        split = "heldout" if index >= 2 else "train"
        clips.append(Clip(f"clip{index}", frames, speech_like(FRAMES / 25, seed=index),
                          labels={k: v.numpy().astype(np.float32) for k, v in labels.items()}, meta={"split": split}))
    writer = ShardWriter(root)
    writer.write("0000", clips)
    writer.finalize()
    return root


def write_recipes(folder: Path, dataset: Path) -> tuple[Path, Path]:
    base = folder / "toy_flow.toml"
    base.write_text(textwrap.dedent(f"""
        name = "toy_flow"
        seed = 0
        [runtime]
        device = "cpu"
        [data.train]
        name = "sharded"
        root = "{dataset}"
        split = "train"
        window_frames = 4
        [model.generator]
        name = "toy"
        resolution = 16
        num_ws = 3
        w_dim = 8
        [model.image_encoder]
        name = "toy"
        resolution = 16
        num_ws = 3
        w_dim = 8
        [model.audio_encoder]
        name = "mel"
        feature_dim = 6
        hidden_channels = 8
        num_layers = 2
        norm_groups = 4
        [model.lip_mapper]
        name = "conv"
        context_frames = 2
        hidden = 16
        num_ws = 3
        w_dim = 8
        feature_dim = 6
        [model.motion_vae]
        name = "sequential"
        z_dim = 4
        hidden = 16
        decoder_hidden = 16
        num_ws = 3
        w_dim = 8
        feature_dim = 6
        [model.prior]
        name = "autoregressive"
        z_dim = 4
        hidden = 16
        audio_hidden = 8
        feature_dim = 6
        [model.prior.flow]
        name = "affine_coupling"
        steps = 2
        hidden = 8
        [stages.autoencode]
        name = "toy_autoencode"
        steps = 3
        batch_size = 2
        lr = 0.01
        [evaluate]
        clips = 2
        [[evaluate.metrics]]
        name = "psnr"
        [[evaluate.metrics]]
        name = "ssim"
        window_size = 7
        [[evaluate.metrics]]
        name = "pose_diversity"
    """))
    ablated = folder / "toy_lstm.toml"
    ablated.write_text(textwrap.dedent("""
        extends = "toy_flow.toml"
        name = "toy_lstm"
        [model.prior]
        backbone = "lstm"
    """))
    return base, ablated


def test_fitted_indices_loop_back_and_forth() -> None:
    assert fitted_indices(3, 8).tolist() == [0, 1, 2, 1, 0, 1, 2, 1]
    assert fitted_indices(5, 3).tolist() == [0, 1, 2]


def test_table_cells_mark_the_best_partial_counts_and_differences() -> None:
    assert interval_cell(Interval(30.123, 29.5, 30.9, 2), 2, True) == "**30.12 [29.5, 30.9]**"
    assert interval_cell(Interval(3.0, 3.0, 3.0, 1), 2, False) == "3 [3, 3] (n=1)"
    assert interval_cell(None, 2, False) == "-"
    assert difference_cell(Difference(Interval(-0.74, -0.8, -0.68, 40))) == "**yes**: -0.74 [-0.8, -0.68]"
    assert difference_cell(Difference(Interval(0.01, -0.02, 0.04, 40))) == "no: +0.01 [-0.02, 0.04]"
    assert difference_cell(None) == "-"


def test_ablate_two_recipes_end_to_end(registries: Registries, dataset: Path, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    base, ablated = write_recipes(tmp_path, dataset)
    out, runs = tmp_path / "ablation", tmp_path / "runs"
    monkeypatch.setattr("styletalker_core.plugin_host.get_registries", lambda: registries)
    argv = ["ablate", str(base), str(ablated), "--runs", str(runs), "--out", str(out)]
    assert main(argv) == 0
    table = (out / "ablation.md").read_text()
    assert table == capsys.readouterr().out.split("\nwrote ")[0].rstrip("\n") + "\n"
    assert f"    styletalker ablate {base} {ablated} --runs {runs} --out {out}" in table
    assert "## audio-driven" in table and "## motion-controllable" in table and "## encoder reconstruction" in table
    assert "| recipe | psnr ↑ | ssim ↑ | pose_diversity ↑ |" in table
    for name in ("toy_flow", "toy_lstm"):
        assert f"| {name} | `{runs / name}` | autoencode |" in table
        assert (runs / name / "autoencode" / "done.json").is_file()
        for mode in ("audio", "motion", "reconstruction"):
            report = json.loads((out / name / f"{mode}.json").read_text())
            assert [item["name"] for item in report["items"]] == ["clip2", "clip3"]
            assert report["summary"]["psnr"]["count"] == 2 and report["summary"]["ssim"]["count"] == 2
            assert (out / name / f"{mode}_clip2.mp4").stat().st_size > 0
    summary = json.loads((out / "ablation.json").read_text())
    assert [run["recipe"] for run in summary["runs"]] == ["toy_flow", "toy_lstm"]
    assert summary["runs"][0]["clips"] == ["clip2", "clip3"] and summary["runs"][0]["stages_run"] == ["autoencode"]
    for mode in ("audio", "motion"):
        assert (out / f"ablation_{mode}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the numbers in the table are those of the per-recipe reports, with their bootstrap intervals
    psnr = summary["runs"][1]["results"]["audio"]["psnr"]
    stats = summary["statistics"]["audio"]["psnr"]
    assert stats["recipes"]["toy_lstm"]["mean"] == pytest.approx(psnr["mean"])
    assert f"{psnr['mean']:.4g} [{stats['recipes']['toy_lstm']['low']:.4g}, " in table
    assert "Difference from toy_flow" in table and "| toy_lstm | " in table.split("Difference from toy_flow")[1]
    assert set(stats["difference_from_baseline"]) == {"toy_lstm"}

    # A rerun reuses the finished runs (nothing trained) and evaluates them again identically.
    assert main([*argv[:-2], "--modes", "audio", "--out", str(tmp_path / "again")]) == 0
    again = json.loads((tmp_path / "again" / "ablation.json").read_text())
    assert all(run["stages_run"] == [] and run["stages_skipped"] == ["autoencode"] for run in again["runs"])
    assert again["runs"][1]["results"]["audio"] == summary["runs"][1]["results"]["audio"]
    assert "--modes audio" in (tmp_path / "again" / "ablation.md").read_text()


def test_generated_items_follow_the_modes(registries: Registries, dataset: Path, tmp_path: Path) -> None:
    from test_talking_head_toys import toy_components

    from styletalker_core.checkpoint import save_checkpoint

    model = save_checkpoint(tmp_path / "model.safetensors", toy_components(registries), recipe={"name": "toy"})
    head = TalkingHead.from_checkpoint(model, registries)
    clips = load_clips(dataset, 2, explicit=False)
    assert [clip.clip_id for clip in clips] == ["clip2", "clip3"]
    [(name, item, _source)] = list(generate_items(head, clips[:1], "audio", seed=3))[:1]
    assert name == "clip2" and item.frames.shape == (FRAMES, 3, 16, 16) and item.motion_frames is None
    again = next(generate_items(head, clips[:1], "audio", seed=3))[1]
    torch.testing.assert_close(again.frames, item.frames)  # seeded
    items = list(generate_items(head, clips, "motion"))
    assert [s["motion_clip"] for _, _, s in items] == ["clip3", "clip2"]
    first = items[0][1]
    assert first.motion_frames.shape == (FRAMES, 3, 32, 32)
    torch.testing.assert_close(first.motion_labels["pose"], clips[1].labels["pose"])
    torch.testing.assert_close(first.labels["mouth_open"], clips[0].labels["mouth_open"])
    [(_, rebuilt, _)] = list(generate_items(head, clips[:1], "reconstruction"))
    expected = head.render(head.encode_frames(clips[0].frames)[None])[0]
    torch.testing.assert_close(rebuilt.frames, expected)  # G(E(x)) of every frame of the clip itself
    assert rebuilt.motion_frames is clips[0].frames and rebuilt.motion_labels is clips[0].labels


def test_ablate_refuses_unmarked_training_data_and_bad_settings(registries: Registries, tmp_path: Path) -> None:
    root = tmp_path / "unmarked"
    writer = ShardWriter(root)
    writer.write("0", [Clip("c0", np.zeros((4, 8, 8, 3), np.uint8), np.zeros(2560, np.float32))])
    writer.finalize()
    with pytest.raises(StyleTalkerError, match="no clip is marked as held out"):
        load_clips(root, 1, explicit=False)
    assert [clip.clip_id for clip in load_clips(root, 1, explicit=True)] == ["c0"]
    base, _ = write_recipes(tmp_path, root)
    with pytest.raises(StyleTalkerError, match="appear more than once"):
        run_ablation(AblationSettings([str(base), str(base)], tmp_path / "out"), registries)
    with pytest.raises(StyleTalkerError, match="choose from audio, motion, reconstruction"):
        run_ablation(AblationSettings([str(base)], tmp_path / "out", modes=("video",)), registries)
    (tmp_path / "other").mkdir()
    _, elsewhere = write_recipes(tmp_path / "other", tmp_path / "another_dataset")
    with pytest.raises(StyleTalkerError, match="evaluate on different datasets"):
        run_ablation(AblationSettings([str(base), str(elsewhere)], tmp_path / "out"), registries)
    with pytest.raises(StyleTalkerError, match=r"no manifest.json"):
        run_ablation(AblationSettings([str(elsewhere)], tmp_path / "out", runs=tmp_path / "runs"), registries)
    assert not (tmp_path / "runs").exists()  # checked before any training


def test_best_runs_need_two_scores() -> None:
    class Run:
        def __init__(self, name: str, mean: float) -> None:
            self.name = name
            self.reports = {"audio": type("R", (), {"summary": {"lmd": Summary("lmd", "lmd", False, mean, 0.0, 1, 0)}})()}

    assert best_runs([Run("a", 2.0), Run("b", 1.0), Run("c", 1.0)], "audio", "lmd") == {"b", "c"}
    assert best_runs([Run("a", 2.0)], "audio", "lmd") == set()


@pytest.fixture
def toy_model(registries: Registries, tmp_path: Path) -> Path:
    """A trained-model file of the toy talking head, storing the toy recipe it was 'trained' with."""
    from test_talking_head_toys import toy_components

    from styletalker_core.checkpoint import save_checkpoint

    return save_checkpoint(tmp_path / "toy_model.safetensors", toy_components(registries), recipe={"name": "toy_model_recipe"})


def test_ablate_evaluates_given_model_files_without_training(registries: Registries, dataset: Path, toy_model: Path,
                                                             tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    base, _ablated = write_recipes(tmp_path, dataset)
    monkeypatch.setattr("styletalker_core.plugin_host.get_registries", lambda: registries)
    out, runs = tmp_path / "given", tmp_path / "runs"
    # One model per recipe: the recipe gives name, metrics and data; nothing is trained.
    assert main(["ablate", str(base), "--model", str(toy_model), "--runs", str(runs), "--modes", "audio,reconstruction",
                 "--out", str(out)]) == 0
    assert not runs.exists()
    table = (out / "ablation.md").read_text()
    assert f"| toy_flow | `{toy_model}` | none (given model) | - | not trained here |" in table
    assert f"--model {toy_model}" in table and "clips of split `test`" in table
    summary = json.loads((out / "ablation.json").read_text())
    [run] = summary["runs"]
    assert run["given_model"] and run["model"] == str(toy_model) and run["stages_run"] == []
    assert run["clips"] == ["clip2", "clip3"]  # the older layout's heldout clips serve as test
    report = json.loads((out / "toy_flow" / "audio.json").read_text())
    assert report["summary"]["psnr"]["count"] == 2
    # Models alone: each with the recipe stored in it, named after the file.
    assert main(["ablate", "--model", str(toy_model), "--data", str(dataset), "--metrics", "psnr", "--modes", "audio",
                 "--out", str(tmp_path / "alone")]) == 0
    alone = json.loads((tmp_path / "alone" / "ablation.json").read_text())
    assert [r["recipe"] for r in alone["runs"]] == ["toy_model"]
    assert alone["runs"][0]["results"]["audio"]["psnr"] == summary["runs"][0]["results"]["audio"]["psnr"]
    with pytest.raises(StyleTalkerError, match="2 --model files for 1 recipes"):
        run_ablation(AblationSettings([str(base)], tmp_path / "x", models=[str(toy_model)] * 2), registries)
    with pytest.raises(StyleTalkerError, match="no such file"):
        run_ablation(AblationSettings([str(base)], tmp_path / "x", models=[str(tmp_path / "missing.safetensors")]), registries)


def test_evaluate_model_scores_a_model_file_like_ablate(registries: Registries, dataset: Path, toy_model: Path,
                                                       tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    base, _ = write_recipes(tmp_path, dataset)
    monkeypatch.setattr("styletalker_core.plugin_host.get_registries", lambda: registries)
    results = tmp_path / "results.json"
    assert main(["evaluate", "--model", str(toy_model), "--recipe", str(base), "--modes", "audio,motion",
                 "--clips", "2", "--out", str(results)]) == 0
    printed = capsys.readouterr().out
    assert "## audio-driven" in printed and "## motion-controllable" in printed and "split test" in printed
    document = json.loads(results.read_text())
    assert document["format"] == "styletalker-model-evaluation" and document["split"] == "test"
    assert document["clips"] == ["clip2", "clip3"] and set(document["modes"]) == {"audio", "motion"}
    assert document["modes"]["audio"]["summary"]["psnr"]["count"] == 2
    # The same numbers as `styletalker ablate` with the same model, recipe and seed.
    assert main(["ablate", str(base), "--model", str(toy_model), "--modes", "audio", "--out", str(tmp_path / "a")]) == 0
    ablation = json.loads((tmp_path / "a" / "ablation.json").read_text())
    assert ablation["runs"][0]["results"]["audio"]["psnr"] == document["modes"]["audio"]["summary"]["psnr"]
    # --model takes its clips from a dataset, not from generated videos; the split is checked.
    assert main(["evaluate", "--model", str(toy_model), "--recipe", str(base), "--reference", str(dataset),
                 "--out", str(tmp_path / "r.json")]) == 2
    assert "drop --reference" in capsys.readouterr().err
    assert main(["evaluate", "--model", str(toy_model), "--recipe", str(base), "--split", "val2",
                 "--out", str(tmp_path / "r.json")]) == 2
    assert "no clip is in split 'val2'" in capsys.readouterr().err
    assert main(["evaluate", "--generated", str(tmp_path), "--clips", "3", "--out", str(tmp_path / "r.json")]) == 2
    assert "--clips goes with --model" in capsys.readouterr().err


def test_ablate_with_seeds_trains_each_recipe_per_seed(registries: Registries, dataset: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """--seeds: one run folder per seed (the recipe's seed overridden), per-seed reports, and intervals and
    differences over clips and seeds."""
    base, ablated = write_recipes(tmp_path, dataset)
    monkeypatch.setattr("styletalker_core.plugin_host.get_registries", lambda: registries)
    out, runs = tmp_path / "seeded", tmp_path / "runs"
    assert main(["ablate", str(base), str(ablated), "--seeds", "0,1", "--modes", "audio", "--metrics", "psnr",
                 "--set", "stages.autoencode.steps=1", "--runs", str(runs), "--out", str(out)]) == 0
    summary = json.loads((out / "ablation.json").read_text())
    assert [(run["recipe"], run["seed"]) for run in summary["runs"]] == [("toy_flow", 0), ("toy_flow", 1), ("toy_lstm", 0),
                                                                          ("toy_lstm", 1)]
    assert summary["seeds"] == [0, 1]
    for name in ("toy_flow", "toy_lstm"):
        for seed in (0, 1):
            resolved = (runs / f"{name}_seed{seed}" / "recipe.toml").read_text()
            assert f"seed = {seed}" in resolved
            assert (out / name / f"seed{seed}" / "audio.json").is_file()
    values = [json.loads((out / "toy_lstm" / f"seed{seed}" / "audio.json").read_text())["items"] for seed in (0, 1)]
    pooled = [item["values"]["psnr"] for items in values for item in items]
    stats = summary["statistics"]["audio"]["psnr"]
    assert stats["recipes"]["toy_lstm"]["count"] == 4 and stats["recipes"]["toy_lstm"]["mean"] == pytest.approx(np.mean(pooled))
    assert stats["recipes"]["toy_lstm"]["low"] <= stats["recipes"]["toy_lstm"]["mean"] <= stats["recipes"]["toy_lstm"]["high"]
    assert "differs" in stats["difference_from_baseline"]["toy_lstm"]
    table = (out / "ablation.md").read_text()
    assert "training seeds 0, 1" in table and "--seeds 0,1" in table and "--set seed=1" in table
    with pytest.raises(StyleTalkerError, match="--seeds trains each recipe once per seed"):
        run_ablation(AblationSettings([str(base)], tmp_path / "x", seeds=[0, 1], models=[str(base)]), registries)
    assert main(["ablate", str(base), "--seeds", "0,0", "--out", str(tmp_path / "y")]) == 2


def test_prior_only_flow_recipes_share_everything_but_the_flow() -> None:
    """recipes/ablation_prior_*.toml: only the prior stage runs; audio encoder, lip mapper, motion VAE and
    lip-sync discriminator come frozen from one model file; the three differ only in the flow."""
    from styletalker_core.recipe import load_recipe
    from styletalker_core.recipe.validate import unstructure

    recipes = {flow: load_recipe(Path(__file__).parents[1] / "recipes" / f"ablation_prior_{flow}.toml")
               for flow in ("spline", "affine", "none")}
    flows = {flow: recipe.model["prior"].options["flow"]["name"] for flow, recipe in recipes.items()}
    assert flows == {"spline": "spline", "affine": "affine_coupling", "none": "none"}
    comparable = []
    for recipe in recipes.values():
        assert [name for name, stage in recipe.stages.items() if stage.enabled] == ["prior"]
        assert recipe.stages["prior"].name == "prior_only"
        for role in ("audio_encoder", "lip_mapper", "motion_vae", "lipsync_discriminator"):
            assert Path(recipe.model[role].weights).as_posix().endswith("checkpoints/synthetic_64_model.safetensors")
        assert not recipe.model["prior"].weights  # trained from scratch
        raw = unstructure(recipe)
        raw["model"]["prior"]["flow"] = None
        raw.pop("name"), raw.pop("description")
        comparable.append(raw)
    assert comparable[0] == comparable[1] == comparable[2]
