"""Real-time streaming (styletalker_core.sample.stream) with the shipped model: compute per frame,
real-time factor, algorithmic and measured latency.

    .venv/bin/python -m pytest benchmarks/bench_streaming.py -q --benchmark-only -s
    .venv/bin/python benchmarks/bench_streaming.py            # the same report without pytest

The model is the shipped checkpoints/synthetic_64_model.safetensors (or STYLETALKER_BENCH_MODEL),
the speech the demo's, looped (bench_sampling's helpers), the reference the demo's face;
STYLETALKER_BENCH_THREADS sets torch's threads (default: torch's own choice).

- compute: SECONDS of speech fed as fast as possible in 40 ms chunks (one frame each); per
  frame the wall time of the feed call that made it (features, lip mapper, prior, motion
  decoder, generator at batch one): median, p95, p99; real-time factor = audio seconds /
  compute seconds; also in CPU time of the process (time.process_time), which on cores
  shared with other jobs says what the work costs apart from waiting for a core;
- algorithmic latency: the audio a frame waits for after the end of its own 40 ms (lip mapper
  look-ahead or the prior's, whichever is larger, plus the audio front-end's 98.75 ms), plus a
  chunk's duration (a sample arrives with the rest of its chunk);
- measured latency: SECONDS of speech fed at real-time pace in 20 ms chunks: from each chunk's
  arrival (the moment it is due) to the availability of the last frame it completed (median,
  p95, max); so it counts compute and any queueing behind earlier chunks, not the look-ahead;
- both at the shipped look-ahead and at a lip-mapper look-ahead of 2 frames (a model of the
  same architecture with the lip mapper's window cut to t-4..t+2, weights cut from the shipped
  one: the arithmetic and so the compute are what a trained look-ahead-2 model does; its
  frames are not meant to look right).
"""

from __future__ import annotations

import copy
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_sampling import MODEL_ENV, missing_model_message, model_path, reference_image, write_speech

SECONDS = 12.0
COMPUTE_CHUNK = 640  # 40 ms: one frame per chunk
PACED_CHUNK = 320  # 20 ms, as the app's live page sends
THREADS_ENV = "STYLETALKER_BENCH_THREADS"
TARGETS = {"rtf": 3.0, "p99_ms": 20.0, "latency_ms": 150.0}


def with_lip_lookahead(head, frames: int):  # noqa: ANN001, ANN202 - a TalkingHead copy
    """The model with its lip mapper's look-ahead cut to ``frames`` (weights cut from the trained window)."""
    from styletalker_motion.lip_mapper import ConvLipMapper

    old = head.lip_mapper
    if getattr(old, "lookahead_frames", old.context_frames) == frames:
        return head
    k = old.context_frames
    new = ConvLipMapper(old.num_ws, old.w_dim, old.feature_dim, context_frames=k, hidden=old.conv.out_channels,
                        layers=list(old.layers), identity_conditioning=old.identity is not None, lookahead_frames=frames)
    state = old.state_dict()
    state["conv.weight"] = state["conv.weight"][:, :, : k + 1 + frames]
    new.load_state_dict(state)
    copied = copy.copy(head)
    copied._modules = dict(head._modules)
    copied._modules["lip_mapper"] = new.eval()
    return copied


def compute_run(head, w_id, wave: np.ndarray) -> dict:  # noqa: ANN001
    from styletalker_core.sample.stream import StreamSession

    session = StreamSession(head, w_id, seed=0)
    wall: list[float] = []
    cpu: list[float] = []

    def timed(call, *args):  # noqa: ANN001, ANN002, ANN202
        tick, tock = time.perf_counter(), time.process_time()
        frames = call(*args)
        if frames:
            wall.extend([(time.perf_counter() - tick) / len(frames)] * len(frames))
            cpu.extend([(time.process_time() - tock) / len(frames)] * len(frames))

    started, cpu_started = time.perf_counter(), time.process_time()
    for begin in range(0, len(wave), COMPUTE_CHUNK):
        timed(session.feed, wave[begin: begin + COMPUTE_CHUNK])
    timed(session.finish)
    total, cpu_total = time.perf_counter() - started, time.process_time() - cpu_started
    ms, cpu_ms = 1000 * np.asarray(wall), 1000 * np.asarray(cpu)
    audio = len(wave) / 16000
    return {"frames": len(wall), "seconds": total, "rtf": audio / total, "cpu_seconds": cpu_total,
            "cpu_rtf": audio / cpu_total,
            "median_ms": float(np.median(ms)), "p95_ms": float(np.percentile(ms, 95)),
            "p99_ms": float(np.percentile(ms, 99)), "max_ms": float(ms.max()),
            "cpu_median_ms": float(np.median(cpu_ms)), "cpu_p95_ms": float(np.percentile(cpu_ms, 95)),
            "cpu_p99_ms": float(np.percentile(cpu_ms, 99)),
            "lookahead_ms": 1000 * session.lookahead_seconds}


def paced_run(head, w_id, wave: np.ndarray, chunk: int = PACED_CHUNK) -> dict:  # noqa: ANN001
    """Chunks arrive at real-time pace; latency from a chunk's due time to its last frame's availability."""
    from styletalker_core.sample.stream import StreamSession

    session = StreamSession(head, w_id, seed=0)
    latencies = []
    start = time.perf_counter()
    for begin in range(0, len(wave), chunk):
        due = start + (begin + chunk) / 16000  # the chunk's last sample has been recorded
        wait = due - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        frames = session.feed(wave[begin: begin + chunk])
        if frames:
            latencies.append(frames[-1].ready - due)
    session.finish()
    ms = 1000 * np.asarray(latencies)
    lookahead = 1000 * session.lookahead_seconds
    chunk_ms = 1000 * chunk / 16000
    return {"chunk_ms": chunk_ms, "chunks_with_frames": len(latencies), "median_ms": float(np.median(ms)),
            "p95_ms": float(np.percentile(ms, 95)), "max_ms": float(ms.max()), "lookahead_ms": lookahead,
            "algorithmic_ms": lookahead + chunk_ms}


def measure(model: Path, folder: Path) -> dict:
    import torch

    from styletalker_core.media import read_audio
    from styletalker_core.sample import Sampler

    if os.environ.get(THREADS_ENV):
        torch.set_num_threads(int(os.environ[THREADS_ENV]))
    sampler = Sampler.from_checkpoint(model)
    head = sampler.head
    w_id = sampler.encode_reference(reference_image(folder, head.resolution), False)[0]
    wave = read_audio(write_speech(folder / "speech.wav", SECONDS))
    compute_run(head, w_id, wave[:16000])  # warm-up
    shipped_ahead = getattr(head.lip_mapper, "lookahead_frames", head.lip_mapper.context_frames)
    two = with_lip_lookahead(head, 2)
    return {
        "model": str(model), "threads": torch.get_num_threads(), "load_average": os.getloadavg()[0],
        "audio_seconds": SECONDS, "lip_lookahead": shipped_ahead, "prior_lookahead": head.prior.lookahead,
        "compute": compute_run(head, w_id, wave),
        "paced": paced_run(head, w_id, wave),
        "compute_lookahead_2": compute_run(two, w_id, wave),
        "paced_lookahead_2": paced_run(two, w_id, wave),
    }


def targets(report: dict) -> list[tuple[str, bool, str]]:
    compute, paced2 = report["compute"], report["paced_lookahead_2"]
    return [
        ("real-time factor >= 3 at the default look-ahead (wall clock)", compute["rtf"] >= TARGETS["rtf"],
         f"{compute['rtf']:.2f}"),
        ("real-time factor >= 3 at the default look-ahead (CPU time)", compute["cpu_rtf"] >= TARGETS["rtf"],
         f"{compute['cpu_rtf']:.2f}"),
        ("p99 compute per 40 ms frame < 20 ms (wall clock)", compute["p99_ms"] < TARGETS["p99_ms"],
         f"{compute['p99_ms']:.1f} ms"),
        ("p99 compute per 40 ms frame < 20 ms (CPU time)", compute["cpu_p99_ms"] < TARGETS["p99_ms"],
         f"{compute['cpu_p99_ms']:.1f} ms"),
        ("end-to-end latency (chunk arrival -> its last frame) < 150 ms at look-ahead 2, p95",
         paced2["p95_ms"] < TARGETS["latency_ms"], f"{paced2['p95_ms']:.1f} ms"),
    ]


def format_report(report: dict) -> str:
    lines = [f"streaming {report['audio_seconds']:.0f} s of speech, shipped model, {report['threads']} torch threads, "
             f"load average {report['load_average']:.1f} at the end (the cores are shared with other jobs)",
             f"  shipped look-ahead: lip mapper {report['lip_lookahead']} frames, prior {report['prior_lookahead']} frames"]
    for label, compute, paced in (("shipped look-ahead", report["compute"], report["paced"]),
                                  ("lip look-ahead 2", report["compute_lookahead_2"], report["paced_lookahead_2"])):
        lines += [
            f"  {label}:",
            f"    compute per frame (40 ms chunks): median {compute['median_ms']:.1f} ms, p95 {compute['p95_ms']:.1f}, "
            f"p99 {compute['p99_ms']:.1f}, max {compute['max_ms']:.1f}; real-time factor {compute['rtf']:.2f}",
            f"    the same in CPU time of the process (what the work costs on a core of its own): median "
            f"{compute['cpu_median_ms']:.1f} ms, p95 {compute['cpu_p95_ms']:.1f}, p99 {compute['cpu_p99_ms']:.1f}; "
            f"real-time factor {compute['cpu_rtf']:.2f}",
            f"    algorithmic latency: look-ahead {paced['lookahead_ms']:.1f} ms + {paced['chunk_ms']:.0f} ms chunk = "
            f"{paced['algorithmic_ms']:.1f} ms after the end of a frame's own audio",
            f"    measured latency, chunk arrival -> its last frame ({paced['chunk_ms']:.0f} ms chunks at real-time pace): "
            f"median {paced['median_ms']:.1f} ms, p95 {paced['p95_ms']:.1f}, max {paced['max_ms']:.1f}",
            f"    total after a frame's own audio (algorithmic + measured median): "
            f"{paced['algorithmic_ms'] + paced['median_ms']:.1f} ms",
        ]
    for name, ok, value in targets(report):
        lines.append(f"  target {name}: {'met' if ok else 'NOT met'} ({value})")
    return "\n".join(lines)


def test_streaming(benchmark, tmp_path, capsys) -> None:  # noqa: ANN001
    import pytest

    model = model_path()
    if model is None:
        pytest.skip(missing_model_message())
    report = benchmark.pedantic(measure, args=(model, tmp_path), rounds=1, iterations=1)
    benchmark.extra_info.update(report)
    with capsys.disabled():
        print("\n" + format_report(report))


def main() -> None:
    import tempfile

    model = model_path()
    if model is None:
        sys.exit(missing_model_message())
    with tempfile.TemporaryDirectory() as folder:
        report = measure(model, Path(folder))
    print(format_report(report))
    if "--json" in sys.argv:
        print(json.dumps(report))


if __name__ == "__main__":
    main()


__all__ = ["MODEL_ENV", "measure"]
