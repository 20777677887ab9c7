"""Optimisation-based inversion of a generator (projection), to score a generator on held-out images.

Axis letters: n images, l W+ layers, w latent width.
"""

from __future__ import annotations

import torch

from styletalker_core.interfaces.generator import Generator
from styletalker_core.interfaces.image_encoder import psnr


def project(generator: Generator, images: torch.Tensor, steps: int = 100, lr: float = 0.05,
            batch_size: int = 64, progress: bool = False) -> dict[str, float]:
    """Fit W+ codes to ``images`` [n, 3, h, w] in [-1, 1] by Adam on the L1 + L2 error, starting from w_avg.

    -> {"projection_psnr": mean dB, "projection_l1": mean absolute error}. The generator is not changed.
    ``progress``: a bar over the optimisation steps of every batch, with an ETA.
    """
    from tqdm import tqdm

    generator.eval()
    psnrs, l1s = [], []
    batches = -(-len(images) // batch_size)
    bar = tqdm(total=batches * steps, desc=f"evaluate: projecting {len(images)} images", unit="step",
               disable=not progress, leave=False)
    for start in range(0, len(images), batch_size):
        target = images[start:start + batch_size]
        ws = generator.w_avg.detach().expand(len(target), generator.num_ws, generator.w_dim).clone().requires_grad_(True)
        optimiser = torch.optim.Adam([ws], lr=lr)
        for _ in range(steps):
            optimiser.zero_grad(set_to_none=True)
            output = generator.synthesis(ws, noise_mode="const")
            loss = (output - target).abs().mean() + (output - target).pow(2).mean()
            loss.backward()
            optimiser.step()
            bar.update(1)
        with torch.no_grad():
            output = generator.synthesis(ws, noise_mode="const").clamp(-1, 1)
            psnrs.append(psnr(output, target))
            l1s.append((output - target).abs().flatten(1).mean(1))
    bar.close()
    return {"projection_psnr": float(torch.cat(psnrs).mean()), "projection_l1": float(torch.cat(l1s).mean())}
