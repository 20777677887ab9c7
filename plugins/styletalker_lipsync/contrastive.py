"""InfoNCE for the lip-sync discriminator on ground-truth clips.

For every mouth window the candidates are the audio windows of the other clips in the
batch and the same clip's audio at offsets of at least ``min_offset`` frames; same-clip
windows closer than that are never used as negatives (they are nearly in sync).
"""

from __future__ import annotations

import attrs
import torch
import torch.nn.functional as F

from styletalker_core.interfaces import LipSyncDiscriminator
from styletalker_core.model.sync import audio_windows, mouth_windows


@attrs.frozen
class WindowPlan:
    """Which windows a batch uses. positions [b, n]: first frame of each mouth window;
    negatives [b, n, m]: offsets (frames) of the same-clip negative audio; valid [b, n, m]."""

    positions: torch.Tensor
    negatives: torch.Tensor
    valid: torch.Tensor


def plan_windows(batch: int, frames: int, context: int, window: int, per_clip: int, negatives: int,
                 min_offset: int, generator: torch.Generator) -> WindowPlan:
    """Random mouth windows in clips of ``frames`` frames whose audio has ``context`` extra frames
    each side, and for each up to ``negatives`` same-clip offsets with |offset| >= min_offset
    whose audio window lies inside the available audio."""
    if frames < window:
        raise ValueError(f"clips of {frames} frames are shorter than the {window}-frame sync window")
    positions = torch.randint(0, frames - window + 1, (batch, per_clip), generator=generator)
    offsets = torch.zeros(batch, per_clip, negatives, dtype=torch.long)
    valid = torch.zeros(batch, per_clip, negatives, dtype=torch.bool)
    for i in range(batch):
        for j in range(per_clip):
            p = int(positions[i, j])
            low, high = -(context + p), context + frames - window - p
            candidates = [o for o in range(low, high + 1) if abs(o) >= min_offset]
            if not candidates or negatives == 0:
                continue
            chosen = torch.randperm(len(candidates), generator=generator)[:negatives]
            offsets[i, j, : len(chosen)] = torch.tensor([candidates[c] for c in chosen])
            valid[i, j, : len(chosen)] = True
    return WindowPlan(positions, offsets, valid)


def info_nce_loss(discriminator: LipSyncDiscriminator, frames: torch.Tensor, audio: torch.Tensor, context: int,
                  plan: WindowPlan, min_offset: int) -> tuple[torch.Tensor, dict[str, float]]:
    """Symmetric InfoNCE. frames [b, t, 3, H, W] ground truth, audio [b, s] with ``context`` frames of
    audio before the first frame -> (loss, {"accuracy": share of mouths whose top candidate is the true audio})."""
    b, n = plan.positions.shape
    m = plan.negatives.shape[-1]
    window, spf = discriminator.window_frames, discriminator.sample_rate // discriminator.fps
    device = frames.device
    positions = plan.positions.to(device)
    all_mouths = mouth_windows(discriminator.mouth_crop(frames), window)  # [b, t - k + 1, k, 3, h, w]
    chosen = all_mouths[torch.arange(b, device=device)[:, None], positions]  # [b, n, k, 3, h, w]
    mouth = discriminator.embed_mouth(chosen.flatten(0, 1))  # [b n, d]
    starts = torch.cat([positions[..., None], positions[..., None] + plan.negatives.to(device)], dim=-1) + context
    waves = audio_windows(audio, starts.flatten(1), discriminator.window_samples, spf)  # [b, n (1 + m), s]
    embedded = discriminator.embed_audio(waves.flatten(0, 1)).view(b, n, 1 + m, -1)
    positive, hard = embedded[:, :, 0].flatten(0, 1), embedded[:, :, 1:].flatten(0, 1)  # [b n, d], [b n, m, d]
    scale = discriminator.logit_scale()
    clip = torch.arange(b, device=device).repeat_interleave(n)
    flat_positions = positions.flatten()
    near = (clip[:, None] == clip[None, :]) & ((flat_positions[:, None] - flat_positions[None, :]).abs() < min_offset)
    near.fill_diagonal_(False)
    cross = (scale * mouth @ positive.T).masked_fill(near, float("-inf"))  # [b n, b n]
    hard_logits = (scale * torch.einsum("id,imd->im", mouth, hard)).masked_fill(~plan.valid.to(device).flatten(0, 1), float("-inf"))
    target = torch.arange(b * n, device=device)
    mouth_to_audio = torch.cat([cross, hard_logits], dim=1)
    loss = 0.5 * (F.cross_entropy(mouth_to_audio, target) + F.cross_entropy(cross.T, target))
    accuracy = float((mouth_to_audio.argmax(-1) == target).float().mean())
    return loss, {"accuracy": accuracy, "temperature": float(1 / scale.detach())}
