"""``styletalker demo``: the shipped model on the shipped assets, both modes, and a PNG strip.

Writes into ``out_dir``: demo.mp4 (audio-driven: lips from the speech, head motion and
blinks sampled from the prior), demo_motion.mp4 (motion-controllable: head motion and blinks
taken from the shipped motion video of another identity, lips still from the speech) and
demo_strip.png (the reference, then frames of both videos and of the motion source at the
same times). The demo's files are replaced on every run.
"""

from __future__ import annotations

import time
from pathlib import Path

import attrs
import torch

from styletalker_core.media import write_image
from styletalker_core.model import fit_motion
from styletalker_core.registry import Registries
from styletalker_core.sample.engine import SampleJob, Sampler, SampleResult
from styletalker_core.sample.faces import prepare_reference, resize_square
from styletalker_core.sample.outputs import check_output_folder
from styletalker_core.sample.shipped import require_assets, require_default_model
from styletalker_core.sample.strip import contact_strip, frame_indices, pick_frames

STRIP_COLUMNS = 8
DEMO_SEED = 0


@attrs.define
class DemoResult:
    audio_driven: SampleResult
    motion_controlled: SampleResult
    strip: Path
    seconds: float


def _motion_indices(output_indices: list[int], motion_frames: int, total: int) -> list[int]:
    """Frame numbers of the motion source shown at the given output frames (looped as sampling loops it)."""
    source = fit_motion(torch.arange(motion_frames, dtype=torch.float32)[:, None], total)[:, 0]
    return [int(source[index]) for index in output_indices]


def make_strip(sampler: Sampler, reference: Path, motion: Path, videos: list[tuple[str, SampleResult]], path: Path,
               align: bool) -> Path:
    """The demo strip: reference, then frames of each video and of the motion source over time."""
    from styletalker_core.media import iter_video_frames

    head = sampler.head
    face = prepare_reference(reference, head.resolution, align, sampler.aligner)
    total = min(result.num_frames for _, result in videos)
    indices = frame_indices(total, STRIP_COLUMNS)
    rows = [(label, pick_frames(result.outputs[0], indices, head.fps)) for label, result in videos]
    motion_frames = sum(1 for _ in iter_video_frames(motion, fps=head.fps))
    source = pick_frames(motion, _motion_indices(indices, motion_frames, total), head.fps)
    rows.append(("motion source", [resize_square(frame, head.resolution) for frame in source]))
    image = contact_strip(face, rows, [index / head.fps for index in indices])
    write_image(path, image)
    return path


def run_demo(out_dir: str | Path = "out", checkpoint: str | Path | None = None, progress: bool = False,
             registries: Registries | None = None) -> DemoResult:
    """Run the demo with the shipped model (or ``checkpoint``) and assets; returns what was written."""
    start = time.perf_counter()
    check_output_folder(out_dir, "--out-dir")
    model = Path(checkpoint) if checkpoint is not None else require_default_model()
    assets = require_assets()
    sampler = Sampler.from_checkpoint(model, registries)
    settings = sampler.settings(align=False, seed=DEMO_SEED)  # the assets are aligned crops of the model's domain
    out_dir = Path(out_dir)
    audio_driven = sampler.run(SampleJob(assets["reference"], assets["speech"], out_dir / "demo.mp4", settings=settings),
                               overwrite=True, progress=progress)
    motion_controlled = sampler.run(
        SampleJob(assets["reference"], assets["speech"], out_dir / "demo_motion.mp4", assets["motion"], settings),
        overwrite=True, progress=progress)
    strip = make_strip(sampler, assets["reference"], assets["motion"],
                       [("audio-driven (demo.mp4)", audio_driven), ("motion-controlled (demo_motion.mp4)", motion_controlled)],
                       out_dir / "demo_strip.png", align=False)
    return DemoResult(audio_driven, motion_controlled, strip, time.perf_counter() - start)


def describe(result: DemoResult, fps: int = 25) -> list[str]:
    """Lines the demo command prints."""
    lines = []
    for label, sample in (("audio-driven", result.audio_driven), ("motion-controlled", result.motion_controlled)):
        lines.append(f"{sample.outputs[0]}: {label}, {sample.num_frames} frames ({sample.num_frames / fps:.1f} s of video) "
                     f"in {sample.seconds:.1f} s, {sample.frames_per_second:.0f} frames/s")
    lines.append(f"{result.strip}: reference, frames of both videos and of the motion source over time")
    lines.append(f"demo finished in {result.seconds:.1f} s")
    return lines

