"""The TalkingHead API on a small randomly initialised model: both inference modes, chunked
generation equal to one pass, pose scale and still mode, motion fitting, checkpoints."""

from __future__ import annotations

import pytest
import torch
from test_talking_head_toys import toy_components, toy_registries

from styletalker_core.checkpoint import save_checkpoint
from styletalker_core.errors import StyleTalkerError
from styletalker_core.model import TalkingHead, fit_motion, output_frames


@pytest.fixture(scope="module")
def registries():
    return toy_registries()


@pytest.fixture(scope="module")
def head(registries):
    return TalkingHead.from_components(toy_components(registries)).eval()


@pytest.fixture
def inputs():
    rng = torch.Generator().manual_seed(0)
    reference = torch.rand(3, 16, 16, generator=rng) * 2 - 1
    audio = 0.1 * torch.randn(33 * 640 + 100, generator=rng)  # 33 frames and a bit: 34 frames
    return reference, audio


def latents(head, reference, audio, **options):
    return torch.cat(list(head.stream_latents(head.encode_identity(reference), audio, **options)), dim=1)


def test_frame_count_rounds_the_audio_up(head, inputs):
    reference, audio = inputs
    assert head.num_frames(len(audio)) == 34
    video = head.generate(reference, audio)
    assert video.shape == (1, 34, 3, 16, 16) and video.abs().max() <= 1


@pytest.mark.parametrize("chunk", [3, 13])
def test_chunked_audio_driven_generation_equals_one_pass(head, inputs, chunk):
    reference, audio = inputs
    whole = latents(head, reference, audio, num_samples=2, generator=torch.Generator().manual_seed(1), chunk_frames=1000)
    chunked = latents(head, reference, audio, num_samples=2, generator=torch.Generator().manual_seed(1), chunk_frames=chunk)
    torch.testing.assert_close(chunked, whole, atol=1e-5, rtol=0)
    frames = list(head.stream(reference, audio, generator=torch.Generator().manual_seed(1), chunk_frames=chunk))
    assert [f.shape[1] for f in frames[:-1]] == [chunk] * (len(frames) - 1) and sum(f.shape[1] for f in frames) == 34


def test_audio_driven_samples_differ_and_reproduce_by_seed(head, inputs):
    reference, audio = inputs
    first = latents(head, reference, audio, num_samples=2, generator=torch.Generator().manual_seed(4))
    again = latents(head, reference, audio, num_samples=2, generator=torch.Generator().manual_seed(4))
    assert torch.equal(first, again)
    assert not torch.allclose(first[0], first[1])  # two plausible motions, not one
    cold = latents(head, reference, audio, num_samples=2, temperature=0.0, generator=torch.Generator().manual_seed(4))
    torch.testing.assert_close(cold[0], cold[1])


def test_motion_controllable_mode_uses_the_source_and_chunks_exactly(head, inputs):
    reference, audio = inputs
    source = torch.rand(12, 3, 16, 16, generator=torch.Generator().manual_seed(2)) * 2 - 1
    z = head.encode_motion(source)
    assert z.shape == (12, head.motion_vae.z_dim)
    whole = latents(head, reference, audio, motion=z, chunk_frames=1000)
    chunked = latents(head, reference, audio, motion=z, chunk_frames=7)
    torch.testing.assert_close(chunked, whole, atol=1e-5, rtol=0)
    other = latents(head, reference, audio, motion=head.encode_motion(source.flip(0)))
    assert not torch.allclose(whole, other)
    assert latents(head, reference, audio, motion=z, motion_fit="trim").shape[1] == 12
    with pytest.raises(StyleTalkerError, match="audio-driven"):
        latents(head, reference, audio, motion=z, num_samples=2)


def test_motion_source_audio_reaches_the_posterior(head):
    source = torch.rand(10, 3, 16, 16, generator=torch.Generator().manual_seed(3)) * 2 - 1
    assert not torch.allclose(head.encode_motion(source), head.encode_motion(source, 0.3 * torch.randn(10 * 640)))


def test_still_mode_and_pose_scale(head, inputs):
    reference, audio = inputs
    w_id = head.encode_identity(reference)
    rng = lambda: torch.Generator().manual_seed(5)  # noqa: E731
    still = latents(head, reference, audio, still=True)
    lips = head.lip_mapper(head.audio_features(audio, 34), w_id)
    torch.testing.assert_close(still, w_id[:, None] + lips, atol=1e-5, rtol=0)
    full = latents(head, reference, audio, generator=rng())
    half = latents(head, reference, audio, generator=rng(), pose_scale=0.5)
    zero = latents(head, reference, audio, generator=rng(), pose_scale=0.0)
    torch.testing.assert_close(zero, still, atol=1e-5, rtol=0)
    torch.testing.assert_close(half - still, 0.5 * (full - still), atol=1e-5, rtol=0)


def test_motion_fitting_trims_or_loops_back_and_forth():
    z = torch.arange(4, dtype=torch.float32)[:, None]
    assert fit_motion(z, 3)[:, 0].tolist() == [0, 1, 2]
    assert fit_motion(z, 11)[:, 0].tolist() == [0, 1, 2, 3, 2, 1, 0, 1, 2, 3, 2]
    assert fit_motion(z[:1], 3)[:, 0].tolist() == [0, 0, 0]
    assert output_frames(50, 20, "trim") == 20 and output_frames(50, 20, "loop") == 50 and output_frames(50, None, "trim") == 50


def test_checkpoint_round_trip_generates_the_same_video(head, inputs, registries, tmp_path):
    reference, audio = inputs
    components = {role: getattr(head, role) for role in ("generator", "image_encoder", "audio_encoder", "lip_mapper",
                                                         "motion_vae", "prior")}
    path = save_checkpoint(tmp_path / "model.safetensors", components)
    loaded = TalkingHead.from_checkpoint(path, registries)
    expected = head.generate(reference, audio, generator=torch.Generator().manual_seed(6))
    torch.testing.assert_close(loaded.generate(reference, audio, generator=torch.Generator().manual_seed(6)), expected)
    partial = save_checkpoint(tmp_path / "partial.safetensors", {"prior": head.prior})
    with pytest.raises(StyleTalkerError, match="lacks generator"):
        TalkingHead.from_checkpoint(partial, registries)


def test_components_that_do_not_fit_are_refused(registries):
    components = toy_components(registries)
    other = toy_components(registries, resolution=16)
    other_vae = type(components["motion_vae"])(num_ws=3, w_dim=8, feature_dim=6, z_dim=5)
    with pytest.raises(StyleTalkerError, match="z_dim"):
        TalkingHead.from_components({**components, "motion_vae": other_vae})
    with pytest.raises(StyleTalkerError, match="needs"):
        TalkingHead.from_components({k: v for k, v in other.items() if k != "prior"})
