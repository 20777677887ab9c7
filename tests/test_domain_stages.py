"""Domain pretraining stages on a tiny clip dataset: StyleGAN2 GAN training, e4e encoder training
against the frozen generator, joint autoencoding; held-out numbers and the out-of-domain threshold."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from styletalker_core.checkpoint import load_checkpoint, save_checkpoint
from styletalker_core.data.shards import Clip, ShardWriter
from styletalker_core.errors import StyleTalkerError
from styletalker_core.losses import reading_error
from styletalker_core.plugin_host import get_registries
from styletalker_core.recipe import load_recipe
from styletalker_core.registry import ComponentSpec, build_component
from styletalker_core.train import train_recipe
from styletalker_domain.evaluation import oracle_agreement, r_squared
from styletalker_domain.factors import FactorProbe, factor_targets
from styletalker_domain.objective import ObjectiveConfig, ReconstructionObjective, hardest_pixels, progressive_stage

pytestmark = pytest.mark.usefixtures("single_thread")


RESOLUTION = 16


def _disc_centres(frames: int) -> np.ndarray:
    """[t, 2] float32: the disc's centre (x, y) per frame, also served as per-frame labels."""
    t = np.arange(frames)
    return np.stack([8 + 2 * np.sin(t / 3), 8 + 2 * np.cos(t / 4)], axis=1).astype(np.float32)


def _face(rng: np.random.Generator, frames: int) -> np.ndarray:
    """A coloured disc on a background whose centre moves: learnable, not constant."""
    y, x = np.mgrid[:RESOLUTION, :RESOLUTION]
    colour, background = rng.integers(60, 255, 3), rng.integers(0, 80, 3)
    out = np.empty((frames, RESOLUTION, RESOLUTION, 3), np.uint8)
    for t, (cx, cy) in enumerate(_disc_centres(frames)):
        inside = (x - cx) ** 2 + (y - cy) ** 2 < 20
        out[t] = np.where(inside[..., None], colour, background)
    return out


def _disc_landmarks(centres: np.ndarray) -> np.ndarray:
    """[t, 68, 2]: the "lip" points 48-67 on the disc's rim (the others at its centre)."""
    angles = np.linspace(0, 2 * np.pi, 20, endpoint=False)
    landmarks = np.repeat(centres[:, None], 68, axis=1)
    landmarks[:, 48:68] += 4.4 * np.stack([np.cos(angles), np.sin(angles)], axis=1)[None]
    return landmarks.astype(np.float32)


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("domain_data")
    rng = np.random.default_rng(0)
    centres = _disc_centres(12)
    clips = [Clip(clip_id=f"c{i}", frames=_face(rng, 12), audio=np.zeros(12 * 640, np.float32),
                  labels={"centre_x": centres[:, 0], "centre_y": centres[:, 1]}, landmarks=_disc_landmarks(centres),
                  meta={"split": "heldout" if i >= 3 else "train"}) for i in range(4)]
    ShardWriter(root).write("s0", clips)
    ShardWriter(root).finalize()
    return root


def _recipe_text(root, stages: str, extra_model: str = "") -> str:
    return f"""
name = "tiny_domain"
seed = 0
[runtime]
device = "cpu"
num_threads = 1
[data.train]
name = "sharded"
root = "{root}"
split = "train"
window_frames = 2
labels = false
[data.val]
name = "sharded"
root = "{root}"
split = "heldout"
window_frames = 2
labels = false
[model.generator]
name = "stylegan2"
resolution = {RESOLUTION}
z_dim = 16
w_dim = 16
channel_base = 256
channel_max = 16
mapping_layers = 2
[model.discriminator]
name = "stylegan2"
channel_base = 256
channel_max = 16
[model.image_encoder]
name = "e4e"
domain = "tiny discs"
backbone = "ir_se"
stem_channels = 4
channels = [4, 8, 8, 16]
units = [1, 1, 1, 1]
se_reduction = 2
{extra_model}
{stages}
"""


def _metrics(run_dir, stage: str) -> list[dict]:
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [line for line in lines if line.get("stage") == stage]


def test_gan_then_encoder_stages(tiny_data, tmp_path, write_recipe):
    stages = """
[stages.gan]
name = "stylegan2_gan"
steps = 4
batch_size = 4
lr = 0.002
log_every = 1
r1_interval = 2
pl_weight = 1.0
pl_interval = 2
ema_kimg = 0.01
eval_items = 2
projection_steps = 3
[stages.encoder]
name = "e4e_encoder"
steps = 6
batch_size = 4
lr = 0.001
log_every = 1
progressive_start = 2
progressive_every = 2
eval_items = 2
"""
    recipe = load_recipe(write_recipe("r.toml", _recipe_text(tiny_data, stages)))
    result = train_recipe(recipe, get_registries(), run_dir=tmp_path / "run")
    gan, encoder_stage = result.stages
    assert {"projection_psnr", "projection_l1"} <= set(gan.evaluation)
    logged = {key for line in _metrics(tmp_path / "run", "gan") for key in line}
    assert {"g_adv", "d_adv", "r1", "pl_penalty", "loss_G", "loss_D", "loss_D_r1", "loss_G_pl"} <= logged
    gan_checkpoint = load_checkpoint(gan.checkpoint)
    assert set(gan_checkpoint.components) == {"generator", "discriminator"}
    numbers = encoder_stage.evaluation
    assert {"psnr", "psnr_p05", "l1", "ood_psnr_threshold"} <= set(numbers)
    assert numbers["train_cpu_seconds"] > 0 and numbers["train_wall_seconds"] > 0 and "train_load_average" in numbers
    final = load_checkpoint(encoder_stage.checkpoint)
    encoder, generator = final["image_encoder"], final["generator"]
    # the encoder trained against the GAN's (frozen) EMA generator, centred on its w_avg
    for key, value in gan_checkpoint["generator"].state_dict().items():
        torch.testing.assert_close(generator.state_dict()[key], value)
    assert float(encoder.ood_psnr_threshold) == pytest.approx(numbers["ood_psnr_threshold"])
    assert encoder.domain == "tiny discs"
    active = [line["active_layers"] for line in _metrics(tmp_path / "run", "encoder")]
    assert active == [1, 1, 2, 2, 3, 3]  # e4e progressive schedule: W first, then one delta every 2 steps
    assert int(encoder.progressive_stage) == 2
    model = load_checkpoint(result.model)
    assert {"generator", "image_encoder", "discriminator"} <= set(model.components)
    from styletalker_core.checkpoint import read_metadata
    from styletalker_domain.export import main as export_main

    assert export_main([str(tmp_path / "run"), str(tmp_path / "domain.safetensors"), "--note", "machine=test"]) == 0
    exported = load_checkpoint(tmp_path / "domain.safetensors")
    assert set(exported.components) == {"generator", "image_encoder"}
    extra = read_metadata(tmp_path / "domain.safetensors")["extra"]
    assert set(extra["stages"]) == {"gan", "encoder"} and extra["machine"] == "test"
    assert extra["stages"]["encoder"]["evaluation"]["psnr"] == pytest.approx(numbers["psnr"])
    with torch.no_grad():  # float16 storage, float32 modules: the same codes up to half precision
        x = torch.rand(2, 3, RESOLUTION, RESOLUTION) * 2 - 1
        torch.testing.assert_close(exported["image_encoder"].eval().encode(x), encoder.eval().encode(x), atol=0.05, rtol=0.05)


def test_joint_autoencoder_learns_and_sets_w_avg(tiny_data, tmp_path, write_recipe):
    stages = """
[stages.joint]
name = "autoencoder"
steps = 30
batch_size = 4
lr = 0.003
log_every = 5
eval_items = 3
[stages.sharpen]
name = "autoencoder"
steps = 4
batch_size = 4
lr = 0.001
log_every = 1
adversarial_weight = 0.1
r1_interval = 2
eval_items = 3
"""
    recipe = load_recipe(write_recipe("j.toml", _recipe_text(tiny_data, stages)))
    result = train_recipe(recipe, get_registries(), run_dir=tmp_path / "joint")
    logged = _metrics(tmp_path / "joint", "joint")
    assert logged[-1]["l1"] < 0.6 * logged[0]["l1"]  # generator and encoder both learn
    assert logged[-1]["psnr"] > logged[0]["psnr"] + 3
    sharpen = _metrics(tmp_path / "joint", "sharpen")
    assert [("loss_D_r1" in line) for line in sharpen] == [True, False, True, False]  # lazy R1 every 2 steps
    assert all({"g_adv", "d_adv", "loss_autoencode", "loss_D"} <= set(line) for line in sharpen)
    assert set(load_checkpoint(result.stages[1].checkpoint).components) == {"generator", "image_encoder"}
    final = load_checkpoint(result.stages[0].checkpoint)
    generator, encoder = final["generator"], final["image_encoder"]
    train = build_component(get_registries(), "dataset", ComponentSpec("sharded", {
        "root": str(tiny_data), "split": "train", "window_frames": 2, "labels": False}))
    images = torch.cat([train[i]["frames"] for i in range(3)])
    with torch.no_grad():
        torch.testing.assert_close(generator.w_avg, encoder.eval().encode(images)[:, 0].mean(0), atol=1e-4, rtol=1e-4)
    assert result.stages[0].evaluation["psnr"] > 10


def test_oracle_agreement_reports_target_factors(tmp_path):
    torch.manual_seed(0)
    registries = get_registries()
    entry = registries["oracle"].get("synthetic_factors")
    oracle = build_component(registries, "oracle", ComponentSpec("synthetic_factors", dict(entry.example_options)))
    path = save_checkpoint(tmp_path / "oracle.safetensors", {"oracle": oracle})
    from styletalker_domain.evaluation import load_oracle

    loaded = load_oracle(str(path), torch.device("cpu"))
    images = torch.rand(12, 3, 16, 16) * 2 - 1
    same = oracle_agreement(loaded, images, images.clone())
    for name in ("mouth_open", "yaw", "pitch", "roll", "eye_open", "pose", "min_target_factors"):
        assert same[f"r2_{name}"] == pytest.approx(1.0)
    other = oracle_agreement(loaded, images, torch.rand(12, 3, 16, 16) * 2 - 1)
    assert other["r2_min_target_factors"] < 0.9
    assert load_oracle(str(tmp_path / "missing.safetensors"), torch.device("cpu")) is None


def test_readings_term_pulls_the_oracles_reading_of_the_reconstruction_to_the_targets(oracle_file):
    path = oracle_file(16)
    oracle = load_checkpoint(path, roles=["oracle"])["oracle"].eval()
    objective = ReconstructionObjective(ObjectiveConfig(
        l1_weight=0.0, perceptual_weight=0.0, latent_weight=0.0, delta_weight=0.0, readings_weight=1.0,
        readings_oracle=str(path), readings_factors=["mouth_open", "eye_open"]))
    images = torch.rand(4, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        readings = oracle(images)
    same, _ = objective(images, images.clone(), torch.zeros(4, 2, 3), torch.zeros(3))
    assert float(same) == pytest.approx(0.0, abs=1e-10)
    # Descending the term moves the reconstruction's readings towards the targets' readings.
    reconstruction = (torch.rand(4, 3, 16, 16) * 2 - 1).requires_grad_(True)
    optimiser = torch.optim.Adam([reconstruction], lr=0.01)
    first = None
    for _ in range(60):
        loss, values = objective(images, reconstruction, torch.zeros(4, 2, 3), torch.zeros(3))
        first = first if first is not None else values["readings"]
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    with torch.no_grad():
        final = oracle(reconstruction)
    expected = torch.stack([(final[k] - readings[k]).pow(2).mean() for k in ("mouth_open", "eye_open")]).mean()
    assert values["readings"] < 0.1 * first
    assert float(expected) < 0.1 * first
    # The oracle itself stays frozen.
    assert all(parameter.grad is None for parameter in objective.readings_oracle.parameters())
    with torch.no_grad():
        assert float(reading_error(oracle, images, -images)) > 1e-4  # the readings do vary with the image
    with pytest.raises(StyleTalkerError, match=r"readings_oracle 'missing.safetensors'.*oracle_synthetic_loss"):
        ReconstructionObjective(ObjectiveConfig(perceptual_weight=0.0, latent_weight=0.0, delta_weight=0.0,
                                                readings_weight=1.0, readings_oracle="missing.safetensors"))
    with pytest.raises(StyleTalkerError, match=r"readings_factors \['lips'\]"):
        ReconstructionObjective(ObjectiveConfig(perceptual_weight=0.0, latent_weight=0.0, delta_weight=0.0,
                                                readings_weight=1.0, readings_oracle=str(path), readings_factors=["lips"])
                                )(images, images, torch.zeros(4, 2, 3), torch.zeros(3))


def test_r_squared_and_progressive_schedule():
    target = torch.tensor([1.0, 2.0, 3.0, 4.0])
    assert float(r_squared(target, target)) == 1.0
    assert float(r_squared(torch.full((4,), 2.5), target)) == pytest.approx(0.0)
    assert [progressive_stage(s, 3, 2, 4) for s in range(10)] == [0, 0, 0, 1, 1, 2, 2, 3, 3, 4]
    assert progressive_stage(0, 0, 0, 10) == 10


def test_hardest_pixels_averages_the_largest_channel_summed_errors():
    error = torch.zeros(2, 3, 4, 4)
    error[0, :, 0, 0] = 1.0  # one pixel with channel-summed error 3
    error[0, 0, 1, 1] = 1.0  # one with error 1
    error[1] = 0.5  # every pixel 1.5
    assert hardest_pixels(error, 2 / 16).tolist() == pytest.approx([2.0, 1.5])
    assert hardest_pixels(error, 0.0).tolist() == pytest.approx([3.0, 1.5])  # at least one pixel


def test_factor_probe_reads_standardised_targets_in_image_order():
    batch = {"labels": {"a": torch.tensor([[1.0, 2.0], [3.0, 4.0]]), "b": torch.tensor([[0.0, 0.0], [1.0, 1.0]])}}
    targets = factor_targets(batch, ["b", "a"])
    assert targets.tolist() == [[0.0, 1.0], [0.0, 2.0], [1.0, 3.0], [1.0, 4.0]]  # [b * t, k], b outer
    probe = FactorProbe(2, 3, targets.mean(0), targets.std(0))
    with torch.no_grad():
        probe.readout.weight.zero_()
        probe.readout.bias.zero_()
    # a probe that predicts the mean scores the variance of the standardised targets: (n - 1) / n
    with torch.no_grad():
        assert float(probe.loss(torch.randn(4, 2, 3), targets)) == pytest.approx(0.75)
    with pytest.raises(StyleTalkerError, match=r"labels c.*set labels = true"):
        factor_targets(batch, ["c"])
    with pytest.raises(StyleTalkerError, match="pose have several values per frame"):
        factor_targets({"labels": {"pose": torch.zeros(2, 2, 3)}}, ["pose"])


def test_factor_supervision_in_the_autoencoder_stage(tiny_data, tmp_path, write_recipe):
    stages = """
[stages.joint]
name = "autoencoder"
steps = 40
batch_size = 4
lr = 0.003
log_every = 4
eval_items = 3
factors_weight = 1.0
factor_labels = ["centre_x", "centre_y"]
[stages.joint.objective]
hard_pixels_weight = 1.0
hard_fraction = 0.05
"""
    text = _recipe_text(tiny_data, stages).replace("labels = false", "labels = true", 1)
    result = train_recipe(load_recipe(write_recipe("f.toml", text)), get_registries(), run_dir=tmp_path / "f")
    logged = _metrics(tmp_path / "f", "joint")
    assert all({"factors", "hard_pixels"} <= set(line) for line in logged)
    assert logged[-1]["factors"] < 0.5 * logged[0]["factors"]  # the codes come to carry the disc's position
    assert set(load_checkpoint(result.stages[0].checkpoint).components) == {"generator", "image_encoder"}

    unlabelled = load_recipe(write_recipe("u.toml", _recipe_text(tiny_data, stages)))
    with pytest.raises(StyleTalkerError, match=r"centre_x, centre_y.*set labels = true"):
        train_recipe(unlabelled, get_registries(), run_dir=tmp_path / "u")


def test_label_render_trains_the_generator_from_labels_then_an_encoder_inverts_it(tiny_data, tmp_path,
                                                                                    write_recipe):
    stages = """
[stages.render]
name = "label_render"
steps = 30
batch_size = 4
lr = 0.003
log_every = 5
eval_items = 3
label_names = ["centre_x", "centre_y"]
[stages.render.objective]
mouth_weight = 2.0
eyes_weight = 1.0
[stages.encoder]
name = "e4e_encoder"
steps = 6
batch_size = 4
lr = 0.003
log_every = 2
eval_items = 3
[stages.encoder.objective]
mouth_weight = 2.0
"""
    text = _recipe_text(tiny_data, stages).replace("labels = false", "labels = true\nlandmarks = true")
    result = train_recipe(load_recipe(write_recipe("l.toml", text)), get_registries(), run_dir=tmp_path / "l")
    render = _metrics(tmp_path / "l", "render")
    assert all({"l1", "mouth_l1", "eyes_l1", "psnr"} <= set(line) for line in render)
    assert render[-1]["l1"] < 0.6 * render[0]["l1"]  # the generator learns to draw the frames from their labels
    assert result.stages[0].evaluation["psnr"] > render[0]["psnr"] + 3  # on held-out clips too
    # The mapper is a training aid: in the resume checkpoints, not in the stage's result.
    rendered = load_checkpoint(result.stages[0].checkpoint)
    assert set(rendered.components) == {"generator"}
    w_avg = rendered["generator"].w_avg
    assert float(w_avg.abs().sum()) > 0  # the mean label code of the training frames
    # The encoder stage inverts the rendered generator (frozen), its codes starting at that w_avg.
    final = load_checkpoint(result.stages[1].checkpoint)
    assert set(final.components) == {"generator", "image_encoder"}
    torch.testing.assert_close(final["generator"].w_avg, w_avg)
    torch.testing.assert_close(final["image_encoder"].latent_avg, w_avg.expand_as(final["image_encoder"].latent_avg))

    no_landmarks = text.replace("landmarks = true", "landmarks = false")
    with pytest.raises(StyleTalkerError, match="mouth and eyes terms need the frames' 68 landmarks: set landmarks = true"):
        train_recipe(load_recipe(write_recipe("n.toml", no_landmarks)), get_registries(), run_dir=tmp_path / "n")
    unlabelled_val = text.replace("labels = true\nlandmarks = true", "labels = false\nlandmarks = true").replace(
        "labels = false\nlandmarks = true", "labels = true\nlandmarks = true", 1)
    with pytest.raises(StyleTalkerError, match=r"stage render scores renderings of \[data.val\].*centre_x"):
        train_recipe(load_recipe(write_recipe("v.toml", unlabelled_val)), get_registries(), run_dir=tmp_path / "v")


def test_finalize_sets_what_is_saved_evaluate_changes_nothing_and_resume_saves_the_same(tiny_data, tmp_path,
                                                                                          write_recipe, monkeypatch):
    from styletalker_domain.autoencoder import AutoencoderStage
    from styletalker_domain.label_render import LabelRenderStage
    from styletalker_domain.reconstruction import ReconstructionStage

    calls = []

    def spy(cls, name):
        original = getattr(cls, name)

        def wrapped(self):
            before = {k: v.clone() for role, m in self.outputs().items() for k, v in m.state_dict().items()}
            result = original(self)
            after = {k: v for role, m in self.outputs().items() for k, v in m.state_dict().items()}
            changed = sorted(k for k in before if not torch.equal(before[k], after[k]))
            calls.append((self.context.stage_name, name, changed))
            return result
        monkeypatch.setattr(cls, name, wrapped)

    for cls in (LabelRenderStage, ReconstructionStage, AutoencoderStage):
        spy(cls, "finalize")
    for cls in (LabelRenderStage, ReconstructionStage):
        spy(cls, "evaluate")
    stages = """
[stages.render]
name = "label_render"
steps = 2
batch_size = 4
log_every = 1
eval_items = 3
label_names = ["centre_x", "centre_y"]
[stages.encoder]
name = "e4e_encoder"
steps = 2
batch_size = 4
log_every = 1
eval_items = 3
[stages.joint]
name = "autoencoder"
steps = 4
batch_size = 4
checkpoint_every = 2
log_every = 1
eval_items = 3
"""
    text = _recipe_text(tiny_data, stages).replace("labels = false", "labels = true")
    train_recipe(load_recipe(write_recipe("a.toml", text)), get_registries(), run_dir=tmp_path / "a")
    finalized = [(stage, name) for stage, name, _ in calls]
    assert finalized == [("render", "finalize"), ("render", "evaluate"), ("encoder", "finalize"),
                         ("encoder", "evaluate"), ("joint", "finalize"), ("joint", "finalize"), ("joint", "evaluate")]
    changed = {(stage, name): keys for stage, name, keys in calls}
    assert changed[("render", "finalize")] == ["mapping_network.w_avg"]  # the generator's truncation centre
    assert changed[("encoder", "finalize")] == ["ood_psnr_threshold"]
    assert all(keys == [] for (stage, name), keys in changed.items() if name == "evaluate")  # pure
    # an autoencoder run interrupted after its step-2 checkpoint saves the same file once resumed
    original = AutoencoderStage.loss

    def interrupted(self, phase, batch, step):
        if step == 3:
            raise KeyboardInterrupt
        return original(self, phase, batch, step)

    monkeypatch.setattr(AutoencoderStage, "loss", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train_recipe(load_recipe(write_recipe("b.toml", text)), get_registries(), run_dir=tmp_path / "b")
    monkeypatch.setattr(AutoencoderStage, "loss", original)
    train_recipe(load_recipe(write_recipe("b.toml", text)), get_registries(), run_dir=tmp_path / "b")
    from styletalker_core.checkpoint import read_tensors

    a, b = read_tensors(tmp_path / "a/joint/final.safetensors"), read_tensors(tmp_path / "b/joint/final.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert float(a["image_encoder.ood_psnr_threshold"]) > 0 and float(a["generator.mapping_network.w_avg"].abs().sum()) > 0
