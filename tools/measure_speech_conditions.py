"""Mouth openness and lip-sync of a model under degraded speech: wide-band against phone-band.

    .venv/bin/python tools/measure_speech_conditions.py checkpoints/synthetic_64_model.safetensors \
        --data data/synthetic_64 --clips 20

Each held-out clip is generated audio-driven (seed = clip index, as `styletalker ablate` does)
from its own speech as recorded (wide-band, 16 kHz) and from the same speech passed through a
telephone channel: resampled to 8 kHz and back (what Debian's flite writes, or a phone call),
and additionally through G.711 mu-law. The factor oracle reads mouth openness from every
frame; reported per condition: the mean openness of the generated frames (against the ground
truth's), the lip-sync correlation with the ground-truth mouth track and the mean absolute
openness error. A model that reads the channel instead of the speech holds the mouth open on
phone-band input.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

import attrs
import numpy as np
import torch
import torchaudio.functional as AF

from styletalker_core.ablate.clips import load_clips
from styletalker_core.ablate.generation import generate_items
from styletalker_core.data.audio_augment import band_limit
from styletalker_core.model import TalkingHead
from styletalker_core.plugin_host import get_registries
from styletalker_synthetic.metrics import LipSyncCorrelation

CONDITIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "wide-band 16 kHz": lambda wave: wave,
    "phone-band (8 kHz)": lambda wave: band_limit(wave, 8000),
    "phone-band + mu-law": lambda wave: AF.mu_law_decoding(AF.mu_law_encoding(band_limit(wave, 8000).clamp(-1, 1), 256), 256),
}


def measure(model: Path, data: Path, clips: int) -> dict[str, dict[str, float]]:
    """{condition: {mean_open, truth_open, lipsync_corr, mouth_open_mae}} over ``clips`` held-out clips."""
    head = TalkingHead.from_checkpoint(model, get_registries())
    heldout = load_clips(data, clips, explicit=False)
    metric = LipSyncCorrelation()
    results = {}
    for condition, channel in CONDITIONS.items():
        degraded = [attrs.evolve(clip, audio=channel(clip.audio)) for clip in heldout]
        opens, truths, scores = [], [], []
        for _, item, _ in generate_items(head, degraded, "audio"):
            opens.append(metric.read(item.frames)["mouth_open"].mean())
            truths.append(float(item.labels["mouth_open"].float().mean()))
            scores.append(metric.compute(item))
        results[condition] = {
            "mean_open": float(np.mean(opens)),
            "truth_open": float(np.mean(truths)),
            "lipsync_corr": float(np.mean([s["lipsync_corr"] for s in scores])),
            "mouth_open_mae": float(np.mean([s["mouth_open_mae"] for s in scores])),
        }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("--data", type=Path, default=Path("data/synthetic_64"))
    parser.add_argument("--clips", type=int, default=20)
    parser.add_argument("--json", type=Path, help="also write the table as JSON")
    args = parser.parse_args()
    results = measure(args.model, args.data, args.clips)
    print(f"{args.model}, {args.clips} held-out clips of {args.data}")
    print("| speech | mean mouth openness (truth) | lip-sync corr | openness MAE |")
    print("|---|---|---|---|")
    for condition, row in results.items():
        print(f"| {condition} | {row['mean_open']:.3f} ({row['truth_open']:.3f}) | {row['lipsync_corr']:.3f} "
              f"| {row['mouth_open_mae']:.3f} |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
