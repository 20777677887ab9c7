"""Long recordings: a 10-minute speech recording samples in flat memory and at the benchmark's speed.

    .venv/bin/python -m pytest benchmarks/bench_long_audio.py --benchmark-only -q
    .venv/bin/python benchmarks/bench_long_audio.py          # the same report without pytest

The recording is made at run time: the demo's speech (assets/speech.wav, eSpeak NG, 6.1 s)
repeated with pauses of 0.3 to 1.5 s between repetitions and a slightly different loudness each
time, to LONG_SECONDS (10 minutes); the short clip is its first SHORT_SECONDS (10 s). Both are
written by the parent process; each is then sampled audio-driven with the shipped model
(checkpoints/synthetic_64_model.safetensors, or STYLETALKER_BENCH_MODEL) in a fresh process by
bench_sampling's memory child, which reports the sampling wall time, the frames and the peak
resident set size (ru_maxrss). Flat memory: peak RSS of 10 min / 10 s stays near 1 (asserted
<= 1.2, bench_sampling's bound for 60 s); speed: frames/s of the long recording is not below
the short clip's (the short one carries the same fixed start-up costs over fewer frames).
The child runs without tracemalloc here: its bookkeeping (a trace per live numpy or Python
allocation) itself raised the peak RSS of long runs (120 s: 611 MB traced against 509 MB
untraced, same code) and costs about half again the CPU time.

Measured on 2026-12-04 at 20:07 with `nice -n 10 env OMP_NUM_THREADS=1 .venv/bin/python -m pytest
benchmarks/bench_long_audio.py --benchmark-only -q`, 2 shared CPU cores (load average 1.3 to 1.6),
passed, 69 s in all:

    audio  frames  seconds  peak RSS MB   frames/s
      10s     250      1.4        405.9      183.7
     600s   15000     62.3        440.4      240.7
    600 s / 10 s: peak RSS x1.085, frames/s x1.31

What made it flat (before: x1.339 and an expected failure; 10 s 486.1 MB, 600 s 650.8 MB, 38.9
and 65.3 frames/s at load average 4 to 6, traced):
- `sample` reads the speech as it goes (styletalker_core/sample/speech.py: FFmpeg decodes and
  resamples 4 s chunks; TalkingHead.stream_latents pulls them through a sliding window and
  forgets the samples no later chunk needs), instead of decoding the whole recording first
  (36 MB of float32 at 10 minutes, held twice while its chunks were joined);
- each chunk of latents is rendered, converted and written a batch at a time, instead of
  holding the chunk's float frames (12 MB per 250 frames at 64 px). Those chunk-sized
  allocations raised glibc's dynamic mmap threshold and then fragmented its heap: the RSS
  between chunks crept from 408 MB to about 500 MB; now it stays at 416-420 MB over 300 s.
With the first change alone the benchmark (still traced) gave x1.311. No allocator setting is
needed: a fixed MALLOC_MMAP_THRESHOLD_ also flattened that intermediate code (4 MB: 300 s x1.06)
but cost 7 to 8 s more system time per 300 s run (about +25% CPU; 16 MB: about +7%).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_sampling  # the helpers this benchmark reuses

LONG_SECONDS = 600.0
SHORT_SECONDS = 10.0
PAUSES = (0.3, 1.5)  # seconds of silence between repetitions of the speech
RSS_RATIO_BOUND = 1.2


def write_long_speech(path: Path, seconds: float) -> Path:
    """The demo's speech repeated with pauses and loudness changes to ``seconds`` (the first
    ``seconds`` of one fixed recording, so the 10 s clip is the start of the 10 min one)."""
    import numpy as np

    from styletalker_core.media import read_audio, write_audio
    from styletalker_core.sample.shipped import ASSETS, project_root

    source = project_root() / ASSETS["speech"]
    if not source.is_file():  # without the assets: bench_sampling's syllable-rate noise
        return bench_sampling.write_speech(path, seconds)
    speech = read_audio(source)
    rng = np.random.default_rng(0)
    count = int(seconds * 16000)
    wave = np.zeros(count, dtype=np.float32)
    at = 0
    while at < count:
        piece = speech[: count - at] * rng.uniform(0.7, 1.0)
        wave[at: at + len(piece)] = piece
        at += len(piece) + int(rng.uniform(*PAUSES) * 16000)
    write_audio(path, wave)
    return path


def speech_path(folder: Path, seconds: float) -> Path:
    return Path(folder) / f"speech_{seconds:.0f}.wav"  # the name bench_sampling's memory child asks for


def measure(model: Path, folder: Path, lengths: tuple[float, ...] = (SHORT_SECONDS, LONG_SECONDS)) -> list[dict]:
    """bench_sampling's memory child for each length, in a fresh process, on the long recording
    (written here first, so making it is not part of the child's peak)."""
    results = []
    for seconds in lengths:
        write_long_speech(speech_path(folder, seconds), seconds)
        done = subprocess.run([sys.executable, __file__, "--memory-child", str(model), str(seconds), str(folder)],
                              capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"long-audio run of {seconds} s failed: {done.stderr[-2000:]}")
        row = json.loads(done.stdout.strip().splitlines()[-1])
        row["frames_per_second"] = row["frames"] / row["seconds"]
        results.append(row)
    return results


def format_report(results: list[dict]) -> str:
    short, long = results[0], results[-1]
    lines = [bench_sampling.format_memory(results), "speed (sampling wall time in the same processes)"]
    for row in results:
        lines.append(f"  {row['audio_seconds']:6.0f}s {row['frames']:7d} frames in {row['seconds']:7.1f} s: "
                     f"{row['frames_per_second']:6.1f} frames/s ({row['frames_per_second'] / 25:.1f}x real time)")
    lines.append(f"  {long['audio_seconds']:.0f} s / {short['audio_seconds']:.0f} s: peak RSS "
                 f"x{long['rss_peak_mb'] / short['rss_peak_mb']:.3f}, frames/s "
                 f"x{long['frames_per_second'] / short['frames_per_second']:.2f}")
    return "\n".join(lines)


def test_long_recording_samples_in_flat_memory_at_speed(benchmark, tmp_path, capsys) -> None:  # noqa: ANN001
    import pytest

    model = bench_sampling.model_path()
    if model is None:
        pytest.skip(bench_sampling.missing_model_message())
    results = benchmark.pedantic(measure, args=(model, tmp_path), rounds=1, iterations=1)
    benchmark.extra_info["long_audio"] = results
    with capsys.disabled():
        print("\n" + format_report(results))
    short, long = results[0], results[-1]
    assert long["frames"] == int(LONG_SECONDS * 25)
    assert long["frames_per_second"] >= short["frames_per_second"]
    ratio = long["rss_peak_mb"] / short["rss_peak_mb"]
    assert ratio <= RSS_RATIO_BOUND, f"peak RSS of {LONG_SECONDS:.0f} s / {SHORT_SECONDS:.0f} s is x{ratio:.3f}, over x{RSS_RATIO_BOUND}"


def main() -> None:
    import tempfile

    if len(sys.argv) == 5 and sys.argv[1] == "--memory-child":
        def written(path: Path, seconds: float) -> Path:  # measure() wrote it before starting this process
            if not path.is_file():
                raise FileNotFoundError(f"{path}: the long recording was not written")
            return path

        bench_sampling.write_speech = written
        # untraced: tracemalloc's per-allocation bookkeeping itself raises the peak RSS of a long run
        print(json.dumps(bench_sampling.memory_child(sys.argv[2], float(sys.argv[3]), sys.argv[4], trace=False)))
        return
    model = bench_sampling.model_path()
    if model is None:
        sys.exit(bench_sampling.missing_model_message())
    with tempfile.TemporaryDirectory() as folder:
        print(format_report(measure(model, Path(folder))))


if __name__ == "__main__":
    main()
