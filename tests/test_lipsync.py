"""Lip-sync scoring and training: window extraction, the SyncNet offset protocol with a
discriminator whose answer is known, the sync loss, InfoNCE pretraining and the ``lse`` metric."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from styletalker_core.checkpoint import save_checkpoint
from styletalker_core.errors import StyleTalkerError
from styletalker_core.interfaces import LipSyncDiscriminator
from styletalker_core.interfaces.metric import EvalItem
from styletalker_core.model import sync_loss, sync_scores
from styletalker_core.model.sync import audio_windows, mouth_windows
from styletalker_core.plugin_host import get_registries
from styletalker_core.registry import ComponentSpec, build_component
from styletalker_lipsync.contrastive import info_nce_loss, plan_windows

SPF = 640


class LoudnessDiscriminator(LipSyncDiscriminator):
    """Known answer: audio embedding = per-frame loudness of the window, mouth embedding = per-frame
    brightness of the lower half, both centred and normalised."""

    def __init__(self) -> None:
        super().__init__()
        self.window_frames, self.embed_dim, self.mouth_size = 5, 5, (4, 8)
        self.scale = nn.Parameter(torch.tensor(10.0))

    def embed_audio(self, wave_windows):
        loudness = wave_windows.view(len(wave_windows), 5, SPF).pow(2).mean(-1).sqrt()
        return F.normalize(loudness - loudness.mean(-1, keepdim=True) + 1e-6, dim=-1)

    def embed_mouth(self, mouth_windows):
        brightness = mouth_windows.mean(dim=(2, 3, 4))
        return F.normalize(brightness - brightness.mean(-1, keepdim=True) + 1e-6, dim=-1)

    def mouth_crop(self, faces):
        return F.interpolate(faces[..., faces.shape[-2] // 2:, :].flatten(0, -4), size=(4, 8)).view(
            *faces.shape[:-2], 4, 8)

    def logit_scale(self):
        return self.scale


def talking_clip(frames: int, delay: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Audio whose loudness follows a random track L, and faces whose lower half shows L(t + delay)."""
    rng = torch.Generator().manual_seed(seed)
    loudness = torch.rand(frames + 40, generator=rng) + 0.05
    audio = (torch.randn(frames, SPF, generator=rng) * loudness[20:20 + frames, None]).flatten()
    faces = torch.zeros(frames, 3, 16, 16)
    faces[:, :, 8:] = loudness[20 + delay:20 + delay + frames, None, None, None]
    return faces, audio


def test_audio_windows_are_aligned_and_silent_outside_the_wave():
    wave = torch.arange(1, 3 * SPF + 1, dtype=torch.float32)[None]
    windows = audio_windows(wave, torch.tensor([[-1, 0, 2]]), window_samples=2 * SPF, samples_per_frame=SPF)
    assert windows.shape == (1, 3, 2 * SPF)
    assert torch.equal(windows[0, 0, :SPF], torch.zeros(SPF)) and windows[0, 0, SPF] == 1
    assert windows[0, 1, 0] == 1 and windows[0, 2, 0] == 2 * SPF + 1 and torch.equal(windows[0, 2, SPF:], torch.zeros(SPF))


def test_mouth_windows_are_every_run_of_consecutive_frames():
    mouths = torch.arange(7, dtype=torch.float32).view(1, 7, 1, 1, 1).expand(1, 7, 3, 2, 2)
    windows = mouth_windows(mouths, 5)
    assert windows.shape == (1, 3, 5, 3, 2, 2)
    assert windows[0, :, :, 0, 0, 0].tolist() == [[0, 1, 2, 3, 4], [1, 2, 3, 4, 5], [2, 3, 4, 5, 6]]


@pytest.mark.parametrize("delay", [-4, 0, 3])
def test_offset_search_finds_a_planted_audio_video_offset(delay):
    faces, audio = talking_clip(60, delay, seed=delay + 10)
    scores = sync_scores(LoudnessDiscriminator(), faces, audio, max_offset=15)
    assert scores.av_offset == delay
    assert scores.offsets == list(range(-15, 16)) and scores.mean_distance.shape == (31,)
    assert scores.lse_d == pytest.approx(float(scores.mean_distance.min()))
    assert scores.lse_c == pytest.approx(float(scores.mean_distance.median()) - scores.lse_d)
    assert scores.lse_d < 0.3 and scores.lse_c > 0.5


def test_sync_loss_prefers_synced_frames_and_reaches_them():
    discriminator = LoudnessDiscriminator()
    synced, audio = talking_clip(12, 0, seed=1)
    shifted, _ = talking_clip(12, 3, seed=1)
    padded = torch.cat([torch.zeros(4 * SPF), audio, torch.zeros(4 * SPF)])[None]  # 4 frames of context
    frames = synced[None].clone().requires_grad_(True)
    good, accuracy = sync_loss(discriminator, frames, padded, audio_first_frame=4, max_offset=3)
    bad, _ = sync_loss(discriminator, shifted[None], padded, audio_first_frame=4, max_offset=3)
    assert good < bad and float(accuracy) == 1.0
    good.backward()
    assert frames.grad is not None and frames.grad.abs().sum() > 0


def test_window_plans_use_only_far_same_clip_negatives_inside_the_audio():
    plan = plan_windows(batch=3, frames=30, context=10, window=5, per_clip=4, negatives=6, min_offset=15,
                        generator=torch.Generator().manual_seed(0))
    assert plan.positions.shape == (3, 4) and plan.negatives.shape == plan.valid.shape == (3, 4, 6)
    starts = plan.positions[..., None] + plan.negatives + 10
    assert (plan.negatives.abs()[plan.valid] >= 15).all()
    assert (starts[plan.valid] >= 0).all() and (starts[plan.valid] + 5 <= 30 + 20).all()
    assert plan.valid.any()


def small_discriminator():
    torch.manual_seed(0)
    return build_component(get_registries(), "lipsync_discriminator", ComponentSpec(
        "contrastive", {"embed_dim": 16, "mouth_height": 4, "mouth_width": 8, "channels": 8, "audio_channels": 8,
                        "n_mels": 16}))


def test_infonce_pretraining_learns_to_find_the_true_offset():
    discriminator = small_discriminator()
    optimizer = torch.optim.Adam(discriminator.parameters(), lr=3e-3)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    losses = []
    try:
        for step in range(60):
            clips = [talking_clip(40, 0, seed=100 + (step * 8 + i) % 64) for i in range(8)]
            faces = torch.stack([c[0] for c in clips])
            audio = torch.stack([torch.cat([torch.zeros(10 * SPF), c[1], torch.zeros(10 * SPF)]) for c in clips])
            plan = plan_windows(8, 40, 10, 5, 4, 6, 15, torch.Generator().manual_seed(step))
            loss, _ = info_nce_loss(discriminator, faces, audio, 10, plan, 15)
            losses.append(float(loss.detach()))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        discriminator.eval()
        found = [sync_scores(discriminator, *talking_clip(40, 0, seed=1000 + i), max_offset=15).av_offset for i in range(6)]
    finally:
        torch.set_num_threads(threads)
    assert sum(losses[-5:]) < 0.6 * sum(losses[:5])
    assert sum(offset == 0 for offset in found) >= 5, found


def test_lse_metric_scores_a_video_with_a_saved_discriminator(tmp_path):
    path = save_checkpoint(tmp_path / "model.safetensors", {"lipsync_discriminator": small_discriminator()})
    metric = build_component(get_registries(), "metric", ComponentSpec("lse", {"checkpoint": str(path), "max_offset": 4}))
    faces, audio = talking_clip(20, 0, seed=3)
    values = metric.compute(EvalItem(frames=faces * 2 - 1, audio=audio))
    assert set(values) == set(metric.higher_is_better)
    assert values["lse_d"] >= 0 and values["lse_c"] >= 0 and 0 <= values["av_offset_abs"] <= 4
    assert values["sync_correct"] in (0.0, 1.0)
    missing = build_component(get_registries(), "metric", ComponentSpec("lse", {"checkpoint": str(tmp_path / "none")}))
    with pytest.raises(StyleTalkerError, match="checkpoint"):
        missing.compute(EvalItem(frames=faces, audio=audio))
