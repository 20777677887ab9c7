"""Lip-sync scoring with any LipSyncDiscriminator: window extraction, the SyncNet offset
protocol (LSE-D, LSE-C, AV offset) and the sync loss on generated frames.

Frame and audio alignment: ``audio_first_frame`` is the index, in video frames of the audio
track, of the first video frame given (so audio with C frames of leading context has
``audio_first_frame = C``). Audio outside the given samples counts as silence.
"""

from __future__ import annotations

import attrs
import torch
import torch.nn.functional as F

from styletalker_core.interfaces import LipSyncDiscriminator


def audio_windows(wave: torch.Tensor, starts: torch.Tensor, window_samples: int, samples_per_frame: int) -> torch.Tensor:
    """wave [b, s], starts [b, n] (first frame of each window, in audio frames; any integer)
    -> windows [b, n, window_samples], zero where a window reaches outside the wave."""
    s = wave.shape[1]
    first = starts.long() * samples_per_frame  # [b, n]
    index = first[..., None] + torch.arange(window_samples, device=wave.device)  # [b, n, k]
    inside = (index >= 0) & (index < s)
    gathered = wave.gather(1, index.clamp(0, max(s - 1, 0)).flatten(1)).view_as(index)
    return gathered * inside


def mouth_windows(mouths: torch.Tensor, window_frames: int) -> torch.Tensor:
    """mouths [b, t, 3, h, w] -> every window of consecutive frames [b, t - window + 1, window, 3, h, w]."""
    return mouths.unfold(1, window_frames, 1).permute(0, 1, 5, 2, 3, 4)


def offset_similarities(
    discriminator: LipSyncDiscriminator,
    frames: torch.Tensor,
    audio: torch.Tensor,
    offsets: list[int],
    audio_first_frame: int = 0,
    batch_size: int = 64,
) -> torch.Tensor:
    """Cosine similarity of every mouth window with the audio shifted by each offset.

    frames [b, t, 3, H, W] aligned faces in [-1, 1], audio [b, s] -> [b, len(offsets), t - window + 1].
    Offset o pairs the mouths of frames p .. p + window - 1 with the audio of frames p + o ...
    """
    window = discriminator.window_frames
    spf = discriminator.sample_rate // discriminator.fps
    mouths = mouth_windows(discriminator.mouth_crop(frames), window)  # [b, n, k, 3, h, w]
    b, n = mouths.shape[:2]
    mouth_embeddings = torch.cat([discriminator.embed_mouth(chunk) for chunk in mouths.flatten(0, 1).split(batch_size)])
    mouth_embeddings = mouth_embeddings.view(b, n, -1)
    positions = torch.arange(n, device=frames.device) + audio_first_frame
    shift = torch.tensor(offsets, device=frames.device)
    starts = (positions[None, :] + shift[:, None]).flatten()[None].expand(b, -1)  # [b, o * n]
    windows = audio_windows(audio, starts, discriminator.window_samples, spf)
    audio_embeddings = torch.cat([discriminator.embed_audio(chunk) for chunk in windows.flatten(0, 1).split(batch_size)])
    audio_embeddings = audio_embeddings.view(b, len(offsets), n, -1)
    return (audio_embeddings * mouth_embeddings[:, None]).sum(-1)


@attrs.frozen
class SyncScores:
    """SyncNet-protocol scores of one video: mean distance per offset [o], LSE-D, LSE-C, AV offset (frames)."""

    offsets: list[int]
    mean_distance: torch.Tensor
    lse_d: float
    lse_c: float
    av_offset: int


def sync_scores(
    discriminator: LipSyncDiscriminator,
    frames: torch.Tensor,
    audio: torch.Tensor,
    max_offset: int = 15,
    audio_first_frame: int = 0,
    batch_size: int = 64,
) -> SyncScores:
    """frames [t, 3, H, W], audio [s] -> scores over offsets -max_offset .. max_offset.

    Distance of a pair is the Euclidean distance of the unit embeddings, sqrt(2 - 2 cos);
    distances are averaged over windows per offset; LSE-D is the minimum mean distance,
    LSE-C the median minus the minimum, and the AV offset the offset at the minimum
    (offset o pairs frame p's mouth with frame p + o's audio: a positive AV offset means the
    audio lags the video by that many frames).
    """
    if frames.shape[0] < discriminator.window_frames:
        raise ValueError(f"sync scores need at least {discriminator.window_frames} frames, got {frames.shape[0]}")
    offsets = list(range(-max_offset, max_offset + 1))
    with torch.no_grad():
        similarity = offset_similarities(discriminator, frames[None], audio[None], offsets, audio_first_frame, batch_size)[0]
    distance = (2 - 2 * similarity).clamp_min(0).sqrt().mean(dim=1)  # [o]
    best = int(distance.argmin())
    lse_d = float(distance[best])
    return SyncScores(offsets, distance, lse_d, float(distance.median()) - lse_d, offsets[best])


def sync_loss(
    discriminator: LipSyncDiscriminator,
    frames: torch.Tensor,
    audio: torch.Tensor,
    audio_first_frame: int,
    max_offset: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """L_sync: cross-entropy of the true offset (0) among candidate offsets -max_offset .. max_offset.

    frames [b, t, 3, H, W] generated (gradients flow into them), audio [b, s] with the video's
    first frame at ``audio_first_frame`` -> (mean loss, accuracy: share of windows whose best
    offset is 0). The discriminator is used as it is (freeze it beforehand).
    """
    offsets = list(range(-max_offset, max_offset + 1))
    similarity = offset_similarities(discriminator, frames, audio, offsets, audio_first_frame)  # [b, o, n]
    logits = discriminator.logit_scale() * similarity.transpose(1, 2).flatten(0, 1)  # [b * n, o]
    target = torch.full((logits.shape[0],), max_offset, dtype=torch.long, device=logits.device)
    accuracy = (logits.argmax(-1) == target).float().mean()
    return F.cross_entropy(logits, target), accuracy
