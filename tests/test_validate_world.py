"""`styletalker recipes validate` checks the world: data folders serving each split, the labels,
landmarks and latent caches the stages need, weights files and their shapes, the device, and
--build constructs every component; all problems at once, one line each. Missing data folders
are notes (shipped recipes name folders a fresh clone lacks) unless --strict."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from styletalker_core.checkpoint import save_checkpoint
from styletalker_core.cli.main import main as cli
from styletalker_core.data.shards import Clip, ShardWriter
from styletalker_core.plugin_host import get_registries
from styletalker_core.registry import ComponentSpec, build_component

GENERATOR = {"name": "stylegan2", "resolution": 16, "z_dim": 8, "w_dim": 8, "channel_base": 64, "channel_max": 8,
             "mapping_layers": 1}


def make_dataset(root: Path, splits=("train", "train", "val"), frames: int = 12, labels: bool = False,
                 landmarks: bool = True) -> Path:
    writer = ShardWriter(root)
    rng = np.random.default_rng(0)
    for index, split in enumerate(splits):
        clip = Clip(f"c{index}", rng.integers(0, 255, (frames, 16, 16, 3), dtype=np.uint8),
                    np.zeros(frames * 640, np.float32),
                    landmarks=rng.uniform(0, 16, (frames, 68, 2)).astype(np.float32) if landmarks else None,
                    labels={"mouth_open": np.zeros(frames, np.float32)} if labels else {},
                    meta={"split": split})
        writer.write(f"c{index}", [clip])
    writer.finalize()
    return root


def recipe_text(root: str, extra: str = "") -> str:
    generator = "\n".join(f"{k} = {v!r}".replace("'", '"') for k, v in GENERATOR.items())
    return f"""# styletalker recipes validate (test)
name = "world"
[runtime]
device = "cpu"
[data.train]
name = "sharded"
root = "{root}"
split = "train"
window_frames = 8
landmarks = true
[data.val]
name = "sharded"
root = "{root}"
split = "val"
window_frames = 8
[model.generator]
{generator}
{extra}
"""


def validate(tmp_path: Path, text: str, *flags: str) -> tuple[int, list[str], str]:
    path = tmp_path / "world.toml"
    path.write_text(text)
    import contextlib
    import io

    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        status = cli(["recipes", "validate", str(path), *flags])
    return status, [line[4:] for line in err.getvalue().splitlines() if line.startswith("  - ")], out.getvalue() + err.getvalue()


def test_a_recipe_whose_world_is_ready_passes(tmp_path):
    root = make_dataset(tmp_path / "data")
    status, problems, text = validate(tmp_path, recipe_text(str(root)), "--build")
    assert (status, problems) == (0, []), text
    assert "ok  " in text


def test_missing_data_is_a_note_unless_strict(tmp_path):
    text = recipe_text(str(tmp_path / "not_made_yet"))
    status, problems, output = validate(tmp_path, text)
    assert status == 0 and "note:" in output and "styletalker preprocess VIDEOS" in output
    status, problems, _ = validate(tmp_path, text, "--strict")
    assert status == 2 and len(problems) == 2 and all("no such folder yet" in p for p in problems)
    assert validate(tmp_path, text, "--schema-only")[0] == 0


def test_every_problem_at_once_one_line_each(tmp_path):
    root = make_dataset(tmp_path / "data", splits=("train", "train"), landmarks=False)
    extra = """
[model.image_encoder]
name = "e4e"
resolution = 16
weights = "weights/nowhere.safetensors"

[stages.encoder]
name = "e4e_encoder"
steps = 10
factors_weight = 1.0

[stages.encoder.objective]
mouth_weight = 1.0
"""
    text = recipe_text(str(root), extra).replace("window_frames = 8\nlandmarks", "window_frames = 99\nlandmarks")
    status, problems, output = validate(tmp_path, text)
    assert status == 2, output
    joined = "\n".join(problems)
    assert any(p.startswith("data.val.split = 'val': no clip of") and "train 2" in p for p in problems), joined
    assert any(p.startswith("data.train.window_frames = 99: every clip") for p in problems), joined
    assert any(p.startswith("data.train.landmarks = true: 2 of 2 clips") for p in problems), joined
    assert any(p.startswith("stages.encoder.factors_weight: needs the per-frame labels mouth_open, mouth_width, eye_open")
               and "real_gan_encoder.toml" in p for p in problems), joined
    assert any(p.startswith("model.image_encoder.weights = 'weights/nowhere.safetensors': no such file") for p in problems)
    # the encoder inverts a generator nothing trains and no weights file gives: the stages' order
    assert any(p.startswith("stages.encoder: needs trained generator weights") for p in problems), joined
    assert len(problems) == 6 and all("\n" not in p for p in problems)


def test_latent_cache_names_the_command_that_makes_it(tmp_path):
    root = make_dataset(tmp_path / "data")
    text = recipe_text(str(root)).replace('split = "train"', 'split = "train"\nlatent_cache = "mine"')
    status, problems, _ = validate(tmp_path, text)
    assert status == 2
    [problem] = problems
    assert f"run `styletalker data encode {root} --checkpoint MODEL.safetensors --cache mine`" in problem


def test_weights_must_hold_the_component_with_the_recipes_shapes(tmp_path):
    root = make_dataset(tmp_path / "data")
    registries = get_registries()
    other = build_component(registries, "generator", ComponentSpec("stylegan2", {**{k: v for k, v in GENERATOR.items()
                                                                                    if k != "name"}, "w_dim": 16}))
    save_checkpoint(tmp_path / "g.safetensors", {"generator": other})
    text = recipe_text(str(root)).replace('mapping_layers = 1', f'mapping_layers = 1\nweights = "{tmp_path / "g.safetensors"}"')
    status, problems, _ = validate(tmp_path, text)
    assert status == 2
    [problem] = problems
    assert "does not fit [model.generator]" in problem and "tensors of other shapes" in problem
    same = build_component(registries, "generator", ComponentSpec("stylegan2", {k: v for k, v in GENERATOR.items() if k != "name"}))
    save_checkpoint(tmp_path / "g.safetensors", {"generator": same})
    assert validate(tmp_path, text)[0] == 0
    save_checkpoint(tmp_path / "g.safetensors", {"encoder": build_component(
        registries, "image_encoder", ComponentSpec("e4e", {"resolution": 16, "num_ws": 4, "w_dim": 8}))})
    assert "not one generator" in validate(tmp_path, text)[1][0]


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_a_device_this_machine_lacks_is_a_problem(tmp_path):
    root = make_dataset(tmp_path / "data")
    status, problems, _ = validate(tmp_path, recipe_text(str(root)).replace('device = "cpu"', 'device = "cuda"'))
    assert status == 2 and problems[0].startswith("runtime.device = 'cuda': CUDA is not available")


def test_build_constructs_every_component(tmp_path):
    root = make_dataset(tmp_path / "data")
    text = recipe_text(str(root)).replace("resolution = 16", "resolution = 24")  # not a power of two
    assert validate(tmp_path, text)[0] == 0  # the schema cannot know
    status, problems, _ = validate(tmp_path, text, "--build")
    assert status == 2 and problems[0].startswith("model.generator: cannot be built")



def test_oracle_and_judge_files_must_hold_what_their_option_needs(tmp_path):
    root = make_dataset(tmp_path / "data")
    registries = get_registries()
    save_checkpoint(tmp_path / "g.safetensors", {"generator": build_component(
        registries, "generator", ComponentSpec("stylegan2", {k: v for k, v in GENERATOR.items() if k != "name"}))})
    extra = f"""
[stages.gan]
name = "stylegan2_gan"
steps = 1

[[evaluate.metrics]]
name = "lse"
checkpoint = "{tmp_path / 'g.safetensors'}"
"""
    status, problems, _ = validate(tmp_path, recipe_text(str(root), extra))
    assert status == 2
    assert problems == [f"evaluate.metrics[0].checkpoint = '{tmp_path / 'g.safetensors'}': holds generator, "
                        "not the lipsync_discriminator this option needs"]


PRIOR = """
[model.prior]
name = "autoregressive"
feature_dim = 4
hidden = {hidden}

[model.prior.flow]
name = "spline"
steps = {steps}
"""


@pytest.mark.parametrize(("hidden", "steps", "expected"), [
    (16, 0, "model.prior.flow.steps = 0: must be at least 1"),
    (-8, 2, "model.prior.hidden = -8: must be at least 1"),
])
def test_build_reports_a_constructor_refusing_an_option_at_its_path_with_the_other_problems(tmp_path, hidden, steps,
                                                                                          expected):
    root = make_dataset(tmp_path / "data")
    text = recipe_text(str(root), PRIOR.format(hidden=hidden, steps=steps)).replace(
        "mapping_layers = 1", 'mapping_layers = 1\nweights = "weights/nowhere.safetensors"')
    assert validate(tmp_path, text, "--schema-only")[0] == 0  # the schema cannot know
    status, problems, output = validate(tmp_path, text, "--build")
    assert status == 2 and "internal error" not in output
    assert expected in problems  # at the option's recipe path
    assert any(p.startswith("model.generator.weights = 'weights/nowhere.safetensors': no such file") for p in problems)
    assert len(problems) == 2, problems
    good = recipe_text(str(root), PRIOR.format(hidden=16, steps=2))
    assert validate(tmp_path, good, "--build")[:2] == (0, [])


def test_a_wrong_type_option_is_reported_at_its_path(tmp_path):
    root = make_dataset(tmp_path / "data")
    status, problems, _ = validate(tmp_path, recipe_text(str(root), PRIOR.format(hidden=16, steps='"four"')), "--build")
    assert status == 2 and len(problems) == 1 and problems[0].startswith("model.prior.flow.steps: ")


def test_build_reports_stage_and_metric_constructors_too(tmp_path):
    root = make_dataset(tmp_path / "data")
    extra = """
[stages.gan]
name = "stylegan2_gan"
steps = 1

[[evaluate.metrics]]
name = "lse"
device = "cpu"
"""
    status, problems, output = validate(tmp_path, recipe_text(str(root), extra), "--build")
    assert (status, problems) == (0, []), output


def _registries_with(factory):
    from conftest import TEST_ORIGIN, tiny_registries

    registries = tiny_registries()
    registries["generator"].register("under_test", factory, TEST_ORIGIN)
    return registries


def test_a_constructor_bug_is_raised_not_reported_as_a_recipe_problem():
    from conftest import TinyGenerator

    from styletalker_core.recipe import structure
    from styletalker_core.recipe.world import world_problems

    class Buggy(TinyGenerator):
        def __init__(self, resolution: int = 4) -> None:
            super().__init__(resolution=resolution)
            self.layers.append(1)  # AttributeError: a bug in the plugin, not in the recipe

    class Refusing(TinyGenerator):
        def __init__(self, resolution: int = 4) -> None:
            raise ValueError(f"resolution {resolution} is not supported")

    raw = {"name": "bug", "runtime": {"device": "cpu"}, "model": {"generator": {"name": "under_test", "resolution": 8}}}
    registries = _registries_with(Buggy)
    with pytest.raises(AttributeError, match="layers"):
        world_problems(structure(raw, registries), registries, build=True)
    registries = _registries_with(Refusing)
    problems = world_problems(structure(raw, registries), registries, build=True)
    assert [p.message for p in problems] == [
        "model.generator: cannot be built: ValueError: resolution 8 is not supported"]
