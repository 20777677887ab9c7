"""Held-out numbers the StyleTalker stages report at their end (on ``data.val``)."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset
from torch.utils.data.dataloader import default_collate

from styletalker_core.interfaces import LipSyncDiscriminator
from styletalker_core.io.progress import progress_bar
from styletalker_core.model import TalkingHead, compose, motion_kl, sync_scores
from styletalker_motion.batches import batch_context, batch_latents


def _mean(values: dict[str, list[float]]) -> dict[str, float]:
    return {name: sum(v) / len(v) for name, v in values.items() if v}


@torch.no_grad()
def heldout_scores(head: TalkingHead, dataset: Dataset, clips: int, device: torch.device, render: bool = True,
                   discriminator: LipSyncDiscriminator | None = None, seed: int = 0,
                   desc: str = "held-out clips") -> dict[str, float]:
    """Per-frame averages over the first ``clips`` items of ``dataset``:

    prior_nll (-log p(z), z drawn from the posterior), kl (log q - log p), latent_mse
    (posterior-mean reconstruction in W+), and with ``render`` l1 of the rendered
    reconstruction; with a ``discriminator``, audio-driven videos (z from the prior) are
    scored by the SyncNet protocol: sync_correct (AV offset 0) and lse_c. A progress bar (``desc``)
    with an ETA shows on a terminal (styletalker_core.io.progress).
    """
    values: dict[str, list[float]] = {}
    generator = torch.Generator(device="cpu").manual_seed(seed)
    spf = head.samples_per_frame
    count = min(clips, len(dataset))  # type: ignore[arg-type]
    for index in progress_bar(range(count), total=count, desc=desc, unit="clip"):
        batch = {k: v.to(device) if isinstance(v, torch.Tensor) else v
                 for k, v in default_collate([dataset[index]]).items()}
        frames = batch["frames"]
        ws, w_id = batch_latents(batch, head)
        context = batch_context(batch, spf)
        sampled = head.training_latents(ws, w_id, batch["audio"], context, sample=True, generator=generator)
        values.setdefault("prior_nll", []).append(
            float(-head.prior.log_prob(sampled.z, sampled.features, future=sampled.future).mean()))
        values.setdefault("kl", []).append(float(motion_kl(head.prior, sampled.z, sampled.mean, sampled.log_var,
                                                             sampled.features, sampled.future).mean()))
        mean = head.training_latents(ws, w_id, batch["audio"], context, sample=False)
        values.setdefault("latent_mse", []).append(float(((mean.ws - ws) ** 2).mean()))
        if render:
            rendered = head.render(mean.ws)
            values.setdefault("l1", []).append(float((rendered - frames).abs().mean()))
        if discriminator is not None:
            z, _ = head.prior.sample(mean.features, generator=generator, future=mean.future)
            driven = head.render(compose(w_id, mean.dw_lip, head.motion_vae.decode(z, w_id)))
            scores = sync_scores(discriminator, driven[0], batch["audio"][0], audio_first_frame=context)
            values.setdefault("sync_correct", []).append(float(scores.av_offset == 0))
            values.setdefault("lse_c", []).append(scores.lse_c)
    return _mean(values)
