"""The shipped synthetic-domain generator + encoder (checkpoints/synthetic_64_domain.safetensors)
reproduce their held-out numbers on freshly generated held-out clips: PSNR >= 28 dB, and the
factor oracle (the scoring one, not the one the training's readings term used) reads the same
pose, mouth openness and eye openness from reconstruction and input (R^2 >= 0.9; measured on
these clips 0.919 / 0.929 / 0.909, 0.923, 0.946, docs/domain_pretraining.md). Also: the file is
small float16, and an out-of-domain reference triggers the warning."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch

from styletalker_core.checkpoint import load_checkpoint, read_metadata
from styletalker_core.interfaces.image_encoder import OutOfDomainWarning

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINT = ROOT / "checkpoints" / "synthetic_64_domain.safetensors"
ORACLE = ROOT / "checkpoints" / "oracle_synthetic.safetensors"
# The held-out clips of the dataset the checkpoint was trained on (recipes/domain_synthetic_64.toml:
# styletalker data synth ... --clips 400 --identities 360 --seconds 1:2 --seed 2 --heldout-fraction 0.1, the older
# train / heldout layout): clips 360.. are held out.
DATASET = dict(clips=400, identities=360, seconds=(1.0, 2.0), seed=2, heldout_fraction=0.1)
HELDOUT_CLIPS = tuple(range(360, 400))  # all 40 held-out clips, 1681 frames
POSE = ("yaw", "pitch", "roll")
EXPRESSION = ("mouth_open", "eye_open")

pytestmark = [pytest.mark.skipif(not CHECKPOINT.is_file(), reason="the domain checkpoint is not committed yet"),
              pytest.mark.usefixtures("single_thread")]


@pytest.fixture(scope="module")
def heldout_frames() -> torch.Tensor:
    """Frames of the held-out clips, rendered now by the synthetic renderer: [n, 3, 64, 64] in [-1, 1]."""
    from styletalker_core.data.synthetic import SynthConfig
    from styletalker_core.data.synthetic.clip import make_clip

    config = SynthConfig(**DATASET)
    frames = []
    for index in HELDOUT_CLIPS:
        assert config.split_of(index) == "heldout"
        clip = make_clip(config, index)
        frames.append(torch.from_numpy(clip.frames).permute(0, 3, 1, 2).float() / 127.5 - 1)
    return torch.cat(frames)


@pytest.fixture(scope="module")
def domain():
    checkpoint = load_checkpoint(CHECKPOINT)
    return checkpoint["generator"].eval(), checkpoint["image_encoder"].eval()


def test_file_is_small_float16_with_provenance():
    assert CHECKPOINT.stat().st_size < 30 * 2**20
    document = read_metadata(CHECKPOINT)
    assert set(document["components"]) == {"generator", "image_encoder"}
    extra = document["extra"]
    stage = next(iter(extra["stages"].values()))
    assert "styletalker train" in stage["command"] and stage["evaluation"]["psnr"] >= 28.0
    from safetensors import safe_open

    with safe_open(str(CHECKPOINT), framework="pt") as handle:
        dtypes = {handle.get_slice(key).get_dtype() for key in handle.keys()}  # noqa: SIM118 - the handle is not iterable
    assert "F16" in dtypes  # float16 except tensors beyond its range (BatchNorm running variances)


@pytest.fixture(scope="module")
def reconstruction(domain, heldout_frames) -> torch.Tensor:
    generator, encoder = domain
    with torch.no_grad():
        return torch.cat([generator.synthesis(encoder.encode(chunk), noise_mode="const").clamp(-1, 1)
                          for chunk in heldout_frames.split(64)])


@pytest.fixture(scope="module")
def agreement(heldout_frames, reconstruction) -> dict[str, float]:
    """The factor oracle's R^2 between its readings of the reconstructions and of the inputs."""
    from styletalker_domain.evaluation import oracle_agreement

    oracle = load_checkpoint(ORACLE, roles=["oracle"])["oracle"].eval()
    return oracle_agreement(oracle, heldout_frames, reconstruction)


def test_heldout_reconstruction_psnr(heldout_frames, reconstruction):
    from styletalker_core.interfaces.image_encoder import psnr

    values = psnr(reconstruction, heldout_frames)
    assert float(values.mean()) >= 28.0, f"held-out PSNR {float(values.mean()):.2f} dB"


def test_oracle_reads_the_same_pose_from_reconstructions(agreement):
    for name in POSE:
        assert agreement[f"r2_{name}"] >= 0.9, f"oracle R^2 of {name}: {agreement[f'r2_{name}']:.3f}"


def test_oracle_reads_the_same_mouth_and_eye_openness_from_reconstructions(agreement):
    for name in EXPRESSION:
        assert agreement[f"r2_{name}"] >= 0.9, f"oracle R^2 of {name}: {agreement[f'r2_{name}']:.3f}"


def test_out_of_domain_reference_warns_naming_the_domain(domain, heldout_frames):
    generator, encoder = domain
    assert float(encoder.ood_psnr_threshold) > 15.0 and "synthetic" in encoder.domain
    with warnings.catch_warnings():
        warnings.simplefilter("error", OutOfDomainWarning)
        assert bool(encoder.check_reference(heldout_frames[:4], generator).in_domain.all())
    # A photo-like reference the domain cannot draw: a smooth random colour field with stripes.
    generator_rng = torch.Generator().manual_seed(0)
    field = torch.nn.functional.interpolate(torch.rand(1, 3, 8, 8, generator=generator_rng), size=64, mode="bicubic")
    stripes = torch.sin(torch.arange(64) / 2.0).view(1, 1, 1, 64)
    foreign = (field * 2 - 1 + 0.5 * stripes).clamp(-1, 1)
    with pytest.warns(OutOfDomainWarning, match="synthetic"):
        check = encoder.check_reference(foreign, generator)
    assert not bool(check.in_domain.any())
