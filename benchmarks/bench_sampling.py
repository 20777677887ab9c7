"""End-to-end sampling of the default model: frames/s split by stage, and peak memory against audio length.

    .venv/bin/python -m pytest benchmarks/bench_sampling.py -q --benchmark-only -s
    .venv/bin/python benchmarks/bench_sampling.py            # the same report without pytest

The model is the shipped checkpoints/synthetic_64_model.safetensors (or the file named by
STYLETALKER_BENCH_MODEL); the speech is the demo's assets/speech.wav looped to the length
wanted, the reference the demo's assets/reference.png.

Speed: one audio-driven job of SPEED_SECONDS of speech after a short warm-up job. Stages:
audio (decoding the file and the audio encoder's features), encoder (reference image ->
W+, with the out-of-domain check), motion (lip mapper, prior sampling and motion decoder),
generator (rendering), video writing (conversion to uint8, H.264 + AAC encoding and muxing).

Memory: each length runs in a fresh process, which reports its peak resident set size
(ru_maxrss: the process's high-water mark, torch's buffers included) and the peak of
Python-level allocations traced by tracemalloc (numpy arrays included, torch tensors not).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

SPEED_SECONDS = 20.0
MEMORY_SECONDS = (10.0, 60.0)
MODEL_ENV = "STYLETALKER_BENCH_MODEL"
STAGE_ORDER = ("audio", "encoder", "motion", "generator", "video writing")


def model_path() -> Path | None:
    from styletalker_core.sample.shipped import default_model

    path = Path(os.environ.get(MODEL_ENV) or default_model())
    return path if path.is_file() else None


def missing_model_message() -> str:
    from styletalker_core.sample.shipped import default_model, make_model_command

    return f"no model to benchmark: {default_model()} is missing (make it with `{make_model_command()}`) and {MODEL_ENV} is not set"


def write_speech(path: Path, seconds: float) -> Path:
    """The demo's speech looped to ``seconds`` (or, without the assets, a syllable-rate noise signal) as a wav."""
    import numpy as np

    from styletalker_core.media import read_audio, write_audio
    from styletalker_core.sample.shipped import ASSETS, project_root

    count = int(seconds * 16000)
    source = project_root() / ASSETS["speech"]
    if source.is_file():
        wave = np.resize(read_audio(source), count)
    else:
        times = np.arange(count) / 16000
        wave = 0.3 * np.clip(np.sin(2 * np.pi * 3 * times), 0, None) * np.random.default_rng(0).standard_normal(count)
    write_audio(path, wave.astype(np.float32))
    return path


def reference_image(folder: Path, resolution: int) -> Path:
    """The demo's reference face, or a flat grey image of the model's size when the assets are missing."""
    import numpy as np

    from styletalker_core.media import write_image
    from styletalker_core.sample.shipped import ASSETS, project_root

    source = project_root() / ASSETS["reference"]
    if source.is_file():
        return source
    path = folder / "reference.png"
    write_image(path, np.full((resolution, resolution, 3), 128, dtype=np.uint8))
    return path


def measure_speed(model: Path, folder: Path, seconds: float = SPEED_SECONDS, registries=None) -> dict:  # noqa: ANN001
    """Sample ``seconds`` of speech once (after a 1 s warm-up job); seconds per stage and frames/s."""
    import torch

    from styletalker_core.sample import SampleJob, Sampler, Stopwatch

    sampler = Sampler.from_checkpoint(model, registries)
    reference = reference_image(folder, sampler.head.resolution)
    settings = sampler.settings(align=False, seed=0)
    sampler.run(SampleJob(reference, write_speech(folder / "warmup.wav", 1.0), folder / "warmup.mp4", settings=settings),
                overwrite=True)

    watch = Stopwatch()
    encoder = sampler.head.audio_encoder
    plain = encoder.features

    def timed_features(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        with watch.time("audio features"):
            return plain(*args, **kwargs)

    encoder.features = timed_features  # instance attribute: times every call made while sampling
    try:
        job = SampleJob(reference, write_speech(folder / "speech.wav", seconds), folder / "speed.mp4", settings=settings)
        result = sampler.run(job, overwrite=True, stopwatch=watch)
    finally:
        del encoder.features
    timings = watch.seconds
    features = timings.get("audio features", 0.0)
    stages = {
        "audio": timings.get("audio", 0.0) + features,
        "encoder": timings.get("reference", 0.0),
        "motion": timings.get("latents", 0.0) - features,
        "generator": timings.get("generator", 0.0),
        "video writing": timings.get("writing", 0.0),
    }
    return {
        "frames": result.num_frames,
        "audio_seconds": seconds,
        "resolution": sampler.head.resolution,
        "threads": torch.get_num_threads(),
        "total_seconds": result.seconds,
        "frames_per_second": result.num_frames / result.seconds,
        "stages": stages,
    }


def format_speed(report: dict) -> str:
    frames = report["frames"]
    lines = [f"sampling {frames} frames ({report['audio_seconds']:.0f} s of speech, {report['resolution']} px, "
             f"audio-driven) with {report['threads']} torch threads",
             f"  {'stage':<14} {'seconds':>8} {'ms/frame':>9} {'frames/s':>9}"]
    for stage in STAGE_ORDER:
        spent = report["stages"][stage]
        rate = frames / spent if spent > 0 else float("inf")
        lines.append(f"  {stage:<14} {spent:8.2f} {1000 * spent / frames:9.2f} {rate:9.0f}")
    total = report["total_seconds"]
    lines.append(f"  {'end to end':<14} {total:8.2f} {1000 * total / frames:9.2f} {report['frames_per_second']:9.1f}"
                 f"   ({report['frames_per_second'] / 25:.1f}x real time at 25 fps)")
    return "\n".join(lines)


def memory_child(model: str, seconds: float, folder: str, trace: bool = True) -> dict:
    """In a fresh process: sample ``seconds`` of speech; peak RSS and (with ``trace``) traced Python
    allocations in MB (None untraced: tracemalloc's own bookkeeping raises the RSS of long runs)."""
    import resource
    import tracemalloc

    from styletalker_core.sample import SampleJob, Sampler

    folder_path = Path(folder)
    sampler = Sampler.from_checkpoint(model)
    reference = reference_image(folder_path, sampler.head.resolution)
    speech = write_speech(folder_path / f"speech_{seconds:.0f}.wav", seconds)
    if trace:
        tracemalloc.start()
    started = time.perf_counter()
    result = sampler.run(SampleJob(reference, speech, folder_path / f"memory_{seconds:.0f}.mp4",
                                   settings=sampler.settings(align=False)), overwrite=True)
    elapsed = time.perf_counter() - started
    traced_peak = tracemalloc.get_traced_memory()[1] / 2**20 if trace else None
    tracemalloc.stop()
    return {"audio_seconds": seconds, "frames": result.num_frames, "seconds": elapsed,
            "rss_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "traced_peak_mb": traced_peak}


def measure_memory(model: Path, folder: Path, lengths: tuple[float, ...] = MEMORY_SECONDS) -> list[dict]:
    """Peak memory of sampling each length of speech, each in its own process."""
    results = []
    for seconds in lengths:
        done = subprocess.run([sys.executable, __file__, "--memory-child", str(model), str(seconds), str(folder)],
                              capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"memory run of {seconds} s failed: {done.stderr[-2000:]}")
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return results


def format_memory(results: list[dict]) -> str:
    lines = ["peak memory of sampling against audio length (each length in a fresh process)",
             f"  {'audio':>7} {'frames':>7} {'seconds':>8} {'peak RSS MB':>12} {'traced MB':>10}"]
    for row in results:
        traced = "-" if row["traced_peak_mb"] is None else f"{row['traced_peak_mb']:.1f}"
        lines.append(f"  {row['audio_seconds']:6.0f}s {row['frames']:7d} {row['seconds']:8.1f} "
                     f"{row['rss_peak_mb']:12.1f} {traced:>10}")
    first, last = results[0], results[-1]
    summary = (f"  {last['audio_seconds']:.0f} s / {first['audio_seconds']:.0f} s: peak RSS "
               f"x{last['rss_peak_mb'] / first['rss_peak_mb']:.3f}")
    if first["traced_peak_mb"] is not None and last["traced_peak_mb"] is not None:
        summary += (f", traced x{last['traced_peak_mb'] / first['traced_peak_mb']:.2f} "
                    f"(+{last['traced_peak_mb'] - first['traced_peak_mb']:.1f} MB)")
    lines.append(summary)
    return "\n".join(lines)


def test_sampling_speed(benchmark, tmp_path, capsys) -> None:  # noqa: ANN001
    import pytest

    model = model_path()
    if model is None:
        pytest.skip(missing_model_message())
    report = benchmark.pedantic(measure_speed, args=(model, tmp_path), rounds=1, iterations=1)
    benchmark.extra_info.update(report)
    with capsys.disabled():
        print("\n" + format_speed(report))


def test_sampling_memory_is_flat_in_audio_length(benchmark, tmp_path, capsys) -> None:  # noqa: ANN001
    import pytest

    model = model_path()
    if model is None:
        pytest.skip(missing_model_message())
    results = benchmark.pedantic(measure_memory, args=(model, tmp_path), rounds=1, iterations=1)
    benchmark.extra_info["memory"] = results
    with capsys.disabled():
        print("\n" + format_memory(results))
    assert results[-1]["rss_peak_mb"] <= 1.2 * results[0]["rss_peak_mb"]


def main() -> None:
    import tempfile

    if len(sys.argv) == 5 and sys.argv[1] == "--memory-child":
        print(json.dumps(memory_child(sys.argv[2], float(sys.argv[3]), sys.argv[4])))
        return
    model = model_path()
    if model is None:
        sys.exit(missing_model_message())
    with tempfile.TemporaryDirectory() as folder:
        print(format_speed(measure_speed(model, Path(folder))))
        print(format_memory(measure_memory(model, Path(folder))))


if __name__ == "__main__":
    main()
