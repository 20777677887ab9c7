"""README's "Train on your own data", run as written: the commands between its markers, on a corpus of
real-pixel talking-face videos built at test time (tests/real_corpus.py), with the smoke recipe the
README names in place of the full one and no `--set` but `data.root`. Also: relative paths in
recipes resolve one way, and `[data] root` is the one place a recipe names its data."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import time

import numpy as np
import pytest
from real_corpus import real_corpus  # noqa: F401 - the session fixture

from styletalker_core.checkpoint import read_metadata
from styletalker_core.cli.main import main as cli
from styletalker_core.media import probe_video, read_audio, write_audio, write_image
from styletalker_core.paths import PROJECT_ROOT
from styletalker_core.recipe import load_recipe
from styletalker_core.sample.paste_back import even_size

README = PROJECT_ROOT / "README.md"
BEGIN, END = "<!-- real-data-path: begin -->", "<!-- real-data-path: end -->"
FULL, SMOKE = "real_gan_encoder", "real_gan_encoder_smoke"


def readme_commands() -> list[str]:
    text = README.read_text()
    block = text[text.index(BEGIN) + len(BEGIN) : text.index(END)]
    return [line.strip() for line in block.splitlines() if line.startswith("    styletalker ")]


def test_readme_block_is_the_real_data_path():
    commands = readme_commands()
    assert [shlex.split(c)[1] for c in commands] == ["preprocess", "recipes", "train", "sample", "evaluate"]
    for command in commands:
        sets = [part for part in shlex.split(command) if "=" in part and not part.startswith("-")]
        assert all(part.startswith("data.root=") for part in sets), command  # one override: the data folder
    assert f"recipes/{SMOKE}.toml" in README.read_text()  # the README names the smoke recipe it is tested with


def test_readme_commands_from_videos_to_a_pasted_back_video(real_corpus, tmp_path, monkeypatch, capsys):  # noqa: F811
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("STYLETALKER_PROGRESS", "0")
    shutil.copytree(real_corpus.folder, tmp_path / "videos", ignore=shutil.ignore_patterns(".*"))
    photo = real_corpus.photos.get("hopper") or next(iter(real_corpus.photos.values()))
    write_image(tmp_path / "face.jpg", photo.image)
    write_audio(tmp_path / "speech.wav", read_audio(real_corpus.videos[0]), 16000)

    timings = {}
    for command in readme_commands():
        arguments = shlex.split(command.replace(FULL, SMOKE))[1:]
        started = time.perf_counter()
        status = cli(arguments)
        timings[arguments[0]] = round(time.perf_counter() - started, 1)
        out, err = capsys.readouterr()
        assert status == 0, f"{command}\n{out}\n{err}"
        if arguments[0] == "preprocess":
            assert re.search(r"splits: train: [1-9]\d* clips, \d+ videos; val: [1-9]\d* clips, \d+ videos; test: [1-9]", out)
    print("README real-data path, seconds per command:", timings)

    # the model: its encoder is named after the data; no synthetic-oracle numbers on real faces
    model = tmp_path / "runs" / SMOKE / "model.safetensors"
    encoder = read_metadata(model)["components"]["image_encoder"]
    assert encoder["options"]["domain"].startswith("talking faces preprocessed from videos (styletalker preprocess, 64 px)")
    for stage in ("gan", "inversion"):
        evaluation = json.loads((tmp_path / "runs" / SMOKE / stage / "done.json").read_text())["evaluation"]
        assert evaluation and not any(key.startswith("r2_") for key in evaluation), evaluation
    # the pasted-back video has the photo's size; the evaluation has numbers on the test split
    info = probe_video(tmp_path / "talk.mp4")
    assert (info.height, info.width) == even_size(photo.image).shape[:2]
    results = json.loads((tmp_path / "results.json").read_text())
    assert "psnr" in json.dumps(results)


def test_relative_paths_resolve_next_to_the_recipe_then_in_the_project(tmp_path, monkeypatch):
    experiment = tmp_path / "experiment"
    experiment.mkdir()
    (experiment / "g.safetensors").write_bytes(b"")
    (experiment / "my.toml").write_text(
        '# styletalker train my.toml\nname = "paths"\n[data]\nroot = "clips"\n'
        '[data.train]\nname = "sharded"\nsplit = "train"\n[data.val]\nname = "sharded"\nsplit = "val"\n'
        '[model.generator]\nname = "stylegan2"\nresolution = 16\nweights = "g.safetensors"\n'
        '[stages.encoder]\nname = "e4e_encoder"\nsteps = 1\noracle = "checkpoints/oracle_synthetic.safetensors"\n')
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "mine").mkdir(parents=True)
    monkeypatch.chdir(elsewhere)
    recipe = load_recipe(experiment / "my.toml")
    assert recipe.model["generator"].weights == str((experiment / "g.safetensors").resolve())  # next to the recipe
    assert recipe.stages["encoder"].options["oracle"] == str(PROJECT_ROOT / "checkpoints" / "oracle_synthetic.safetensors")
    assert recipe.data.train.options["root"] == recipe.data.val.options["root"] == "clips"  # not made yet: the cwd's
    overridden = load_recipe(experiment / "my.toml", ["data.root=mine"])  # --set: relative to the current directory
    assert overridden.data.train.options["root"] == overridden.data.val.options["root"] == str(elsewhere / "mine")
    # [data] root replaces the tables' own roots: one override points a shipped recipe at your data
    synthetic = load_recipe("synthetic_64", ["data.root=mine"])
    assert synthetic.data.train.options["root"] == synthetic.data.val.options["root"] == str(elsewhere / "mine")


def test_real_recipes_validate_and_need_no_labels(tmp_path, capsys):
    for name in (FULL, SMOKE, "real_256_pretrained"):
        recipe = load_recipe(name, [f"data.root={tmp_path}"])
        assert recipe.data.train.options["root"] == recipe.data.val.options["root"] == str(tmp_path)
    assert cli(["recipes", "validate", FULL, SMOKE]) == 0
    # the labelled alternative's encoder stage says what it needs, on data without labels
    from styletalker_core.recipe.world import stage_problems

    gan = load_recipe("domain_synthetic_64_gan")
    assert any("factors" in p.message for p in stage_problems_on_unlabelled(gan, tmp_path))
    assert not stage_problems_on_unlabelled(load_recipe(FULL), tmp_path)
    assert stage_problems is not None


def stage_problems_on_unlabelled(recipe, tmp_path):
    """Stage problems of ``recipe`` on a tiny dataset without labels (landmarks present)."""
    import attrs

    from styletalker_core.data.shards import Clip, ShardWriter
    from styletalker_core.recipe.world import stage_problems
    from styletalker_core.registry import ComponentSpec

    root = tmp_path / "unlabelled"
    if not (root / "manifest.json").is_file():
        writer = ShardWriter(root)
        for index, split in enumerate(("train", "val")):
            writer.write(f"c{index}", [Clip(f"c{index}", np.zeros((4, 8, 8, 3), np.uint8), np.zeros(4 * 640, np.float32),
                                            landmarks=np.zeros((4, 68, 2), np.float32), meta={"split": split})])
        writer.finalize()
    train = ComponentSpec("sharded", {**recipe.data.train.options, "root": str(root)})
    return stage_problems(attrs.evolve(recipe, data=attrs.evolve(recipe.data, train=train)))


@pytest.mark.parametrize("name", ["real_gan_encoder", "real_256_pretrained"])
def test_real_recipes_start_with_their_commands(name):
    header = (PROJECT_ROOT / "recipes" / f"{name}.toml").read_text().split("\nname = ")[0]
    assert "--set data.root=" in header and "styletalker train recipes/" in header
