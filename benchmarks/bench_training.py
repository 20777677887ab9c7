"""Training throughput of each stage of the shipped 64 px recipes, in float32 and bfloat16.

    .venv/bin/python benchmarks/bench_training.py                 # writes out/bench/training.{json,md}
    .venv/bin/python -m pytest benchmarks/bench_training.py -q --benchmark-only -s   # the same, in `make bench`

The stages are those of recipes/domain_synthetic_64.toml (``render``: generator from labels;
``encoder``: e4e encoder against the frozen generator) and recipes/synthetic_64.toml
(``lipsync``, ``main``, ``prior``), with their own components, batch sizes, windows and loss
terms; only the data (a few tiny synthetic clips made in a temporary folder, and their
latent cache encoded with the shipped domain checkpoint), the step count and the runtime's
``precision`` are changed; evaluation and checkpoints are skipped. Each stage runs WARMUP_STEPS
untimed steps, then ``steps`` timed ones, through the real engine (styletalker_core.train.loop:
autocast, backward, optimizer step). Reported per stage and precision:
- samples/s: batch items per second of whole steps (a sample is one training item of the stage:
  one frame for the domain stages, one window of ``window_frames`` frames for the others);
- compute samples/s: the same without the time spent loading the batch (the loader runs in the
  main process, ``data.num_workers = 0`` as in the recipes);
- the bfloat16 / float32 ratio of both.
The machine's float32 and bfloat16 3x3-convolution peaks are measured in the same run.

Environment: STYLETALKER_BENCH_TRAIN_STAGES (comma-separated, default all five),
STYLETALKER_BENCH_TRAIN_STEPS (timed steps, default 6), STYLETALKER_BENCH_TRAIN_ROUNDS (default 2:
each stage and precision runs that many times, alternating, and the best round counts),
STYLETALKER_BENCH_PRECISIONS (default
"fp32,bf16"), STYLETALKER_BENCH_DEVICE (default cpu; "cuda" for tools/gpu_check.sh),
STYLETALKER_BENCH_PROFILE=1 (a torch.profiler table of one more, untimed step per stage and precision),
STYLETALKER_BENCH_THREADS (torch threads; default torch's own), STYLETALKER_BENCH_OUT (default out/bench).

Target (issue 17): bf16 at least 2.5x float32 for the domain and main stages. Missed on our CPU
(2026-12-04, 1 torch thread, 2 cores shared with other jobs, load average 3-4; best of 2 alternating
rounds; README's speed section): render 1.15x, encoder 1.20x, main 1.21x (lipsync 1.10x, prior
1.09x), while the machine's 3x3 convolution ran 6.7x faster in bfloat16 in the same run (earlier
single-round runs under heavier load gave 0.7x-1.7x: the load moves these numbers more than the
precision does). Where the time goes (torch.profiler of one untimed step per stage and precision,
STYLETALKER_BENCH_PROFILE=1, self CPU time, same run):
- in float32, convolutions (forward and backward) are only 38% (render, 234 ms a step), 44%
  (encoder, 346 ms) and 45% (main, 858 ms) of a step at 64 px with these widths (generator
  channel_max 64, encoder widths 16-128); 20-24% for lipsync and prior. The rest is element-wise
  work that bfloat16 does not speed up on a CPU: the losses' multiplications, abs and FFTs,
  reflection padding, group/batch norm, leaky ReLU and their backward passes, the Adam step. With
  free convolutions the render step would still take 144 ms: at most 1.6x (Amdahl).
- the convolutions gain 1.7-2x in bfloat16 (render 90 -> 46 ms, encoder 152 -> 90 ms, main 389 ->
  221 ms), not 6.7x: they are small (3x3 at 16-64 channels on 64 px frames, 1-D convolutions over
  audio windows of length 2-16, the losses' 11-tap depthwise filters; the depthwise FIR filters
  run in float32 on CPU, see styletalker_core/nn/upfirdn.py), and their backward passes gain least.
- the non-convolution time does not shrink (render 144 -> 146 ms, main 469 -> 443 ms), and
  autocast adds casts: `aten::copy_` calls go from 805 to 1182 per step (render) and from 657 to
  1086 (main), 13 -> 22 ms and 38 -> 77 ms.
What would help: more work per convolution (the paper's 256 px sizes, larger batches), fusing the
element-wise loss terms (torch.compile), activations kept in bfloat16 between layers instead of a
cast at every convolution; on a GPU the ratio should differ (tools/gpu_check.sh measures it).
The quality of bf16-trained models on the validation split has not been compared with float32 ones
(the shipped models are float32 runs and were not retrained).
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from unittest import mock

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import report_files  # benchmarks/report_files.py (the benchmark's folder is on sys.path)
from bench_generators import machine, measure_peaks

ROOT = Path(__file__).resolve().parent.parent
DOMAIN_RECIPE = ROOT / "recipes" / "domain_synthetic_64.toml"
MODEL_RECIPE = ROOT / "recipes" / "synthetic_64.toml"
DOMAIN_CHECKPOINT = ROOT / "checkpoints" / "synthetic_64_domain.safetensors"
STAGES = {"render": DOMAIN_RECIPE, "encoder": DOMAIN_RECIPE, "lipsync": MODEL_RECIPE, "main": MODEL_RECIPE,
          "prior": MODEL_RECIPE}
WARMUP_STEPS = 2
TARGET_RATIO = 2.5  # bfloat16 over float32, domain and main stages (issue 17)


def settings_from_env() -> dict:
    stages = [s.strip() for s in os.environ.get("STYLETALKER_BENCH_TRAIN_STAGES", "").split(",") if s.strip()]
    unknown = sorted(set(stages) - set(STAGES))
    if unknown:
        raise SystemExit(f"STYLETALKER_BENCH_TRAIN_STAGES: unknown {', '.join(unknown)}; use {', '.join(STAGES)}")
    return {
        "stages": stages or list(STAGES),
        "steps": int(os.environ.get("STYLETALKER_BENCH_TRAIN_STEPS", "6")),
        "precisions": [p.strip() for p in os.environ.get("STYLETALKER_BENCH_PRECISIONS", "fp32,bf16").split(",")],
        "device": os.environ.get("STYLETALKER_BENCH_DEVICE", "cpu"),
        "profile": os.environ.get("STYLETALKER_BENCH_PROFILE", "") not in ("", "0"),
        "threads": int(os.environ.get("STYLETALKER_BENCH_THREADS", "0")),
        "rounds": int(os.environ.get("STYLETALKER_BENCH_TRAIN_ROUNDS", "2")),
        "out": Path(os.environ.get("STYLETALKER_BENCH_OUT", ROOT / "out" / "bench")),
    }


def make_data(folder: Path) -> Path:
    """Eight tiny synthetic clips (2.4-2.8 s: long enough for the main stage's 48-frame windows) and their
    latent cache, encoded with the shipped domain checkpoint as recipes/synthetic_64.toml expects."""
    from styletalker_core.cli.main import main
    from styletalker_core.data.synthetic import SynthConfig, generate_dataset

    data = folder / "data"
    generate_dataset(data, SynthConfig(clips=8, seed=1, seconds=(2.4, 2.8), heldout_fraction=0.25, supersample=1),
                     workers=1, progress=False)
    status = main(["data", "encode", str(data), "--checkpoint", str(DOMAIN_CHECKPOINT), "--cache",
                   "synthetic_64_domain", "--no-progress"])
    if status != 0:
        raise RuntimeError(f"styletalker data encode exited with {status}")
    return data


def stage_recipe(stage: str, data: Path, run_dir: Path, precision: str, device: str, steps: int, registries):  # noqa: ANN001, ANN201
    from styletalker_core.recipe import load_recipe

    overrides = [f"data.train.root={data}", f"data.val.root={data}", "data.val.split=train", f"output_dir={run_dir}",
                 f"runtime.precision={precision}", f"runtime.device={device}",
                 f"stages.{stage}.steps={steps}", f"stages.{stage}.checkpoint_every={steps + 1}"]
    if STAGES[stage] == DOMAIN_RECIPE:
        overrides.append(f"stages.{stage}.oracle=")  # scoring is skipped; no need to load the scoring oracle
    return load_recipe(STAGES[stage], overrides, registries)


def run_one(stage: str, recipe, run_dir: Path, registries, profile: bool) -> dict:  # noqa: ANN001
    """Train ``stage`` for its steps through the engine; per-step wall times, split at the batch's arrival."""
    from styletalker_core.registry import ComponentSpec, build_component
    from styletalker_core.train import StageContext, loop, run_stage, setup_runtime

    runtime = setup_runtime(recipe.runtime)
    config = recipe.stages[stage]
    instance = build_component(registries, "stage", ComponentSpec(config.name, config.options))
    context = StageContext(recipe, stage, config, registries, runtime, run_dir)
    arrivals: list[float] = []
    ends: list[float] = []
    plain_to_device = loop.to_device
    plain_after_step = instance.after_step
    profiler = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) if profile else None
    profile_step = recipe.stages[stage].steps - 1  # one extra step after the timed ones (see run_benchmark)

    def synchronize() -> None:
        if runtime.device.type == "cuda":
            torch.cuda.synchronize(runtime.device)

    def to_device(batch, device):  # noqa: ANN001, ANN202
        if len(arrivals) > len(ends):  # a nested call of the recursive to_device
            return plain_to_device(batch, device)
        synchronize()
        arrivals.append(time.perf_counter())
        if profiler is not None and len(arrivals) == profile_step + 1:
            profiler.__enter__()
        return plain_to_device(batch, device)

    def after_step(step: int) -> None:
        plain_after_step(step)
        synchronize()
        ends.append(time.perf_counter())
        if profiler is not None and len(ends) == profile_step + 1:
            profiler.__exit__(None, None, None)

    instance.after_step = after_step
    instance.evaluate = lambda: {}
    with mock.patch.object(loop, "to_device", to_device), mock.patch.object(loop, "plot_losses", lambda *a: None):
        run_stage(instance, context, loggers=[])
    last = len(ends) - (1 if profile else 0)  # the profiled step is not timed
    ends, arrivals = ends[:last], arrivals[:last]
    steps = len(ends) - WARMUP_STEPS
    batch = config.batch_size
    total = ends[-1] - ends[WARMUP_STEPS - 1]
    compute = sum(ends[i] - arrivals[i] for i in range(WARMUP_STEPS, len(ends)))
    result = {"stage": stage, "plugin": config.name, "batch_size": batch, "timed_steps": steps,
              "seconds_per_step": total / steps, "samples_per_s": batch * steps / total,
              "compute_samples_per_s": batch * steps / compute, "precision": recipe.runtime.precision}
    if profiler is not None:
        result["profile"] = profiler.key_averages().table(sort_by="self_cpu_time_total", row_limit=15,
                                                          max_name_column_width=40)
    return result


def run_benchmark(settings: dict | None = None, log: Callable[[str], None] = print) -> dict:
    from styletalker_core.plugin_host import build_registries

    settings = settings or settings_from_env()
    if settings.get("threads"):
        torch.set_num_threads(settings["threads"])
    os.environ.setdefault("STYLETALKER_PROGRESS", "0")
    registries = build_registries()
    started = time.time()
    report: dict = {"command": "python benchmarks/bench_training.py", "machine": machine(settings["device"]),
                    "settings": {k: str(v) if isinstance(v, Path) else v for k, v in settings.items()},
                    "date": time.strftime("%Y-%m-%d %H:%M"), "load_average_start": os.getloadavg()[0]}
    report["peaks_start"] = measure_peaks(device=settings["device"])
    log("peaks at the start: " + ", ".join(f"{k} {v:.0f}" for k, v in report["peaks_start"].items()))
    with tempfile.TemporaryDirectory() as folder:
        data = make_data(Path(folder))
        log(f"data ready after {time.time() - started:.0f} s")
        best: dict[tuple[str, str], dict] = {}
        rounds = max(settings.get("rounds", 1), 1)
        for round_index in range(rounds):  # rounds alternate the precisions, so drifting load hits both alike
            for stage in settings["stages"]:
                for precision in settings["precisions"]:
                    run_dir = Path(folder) / f"run_{stage}_{precision}_{round_index}"
                    profile = settings["profile"] and round_index == rounds - 1
                    recipe = stage_recipe(stage, data, run_dir, precision, settings["device"],
                                          WARMUP_STEPS + settings["steps"] + (1 if profile else 0), registries)
                    row = run_one(stage, recipe, run_dir, registries, profile)
                    log(f"round {round_index + 1}/{rounds}: {stage} {precision}: {row['samples_per_s']:.1f} samples/s "
                        f"({row['compute_samples_per_s']:.1f} without data loading), {row['seconds_per_step']:.3f} s/step")
                    if "profile" in row:
                        log(row["profile"])
                    key = (stage, precision)
                    runs = [*best.get(key, {}).get("all_samples_per_s", []), row["samples_per_s"]]
                    profile_table = row.get("profile") or best.get(key, {}).get("profile")
                    if key not in best or row["samples_per_s"] > best[key]["samples_per_s"]:
                        best[key] = dict(row)
                    best[key]["profile"] = profile_table
                    best[key]["all_samples_per_s"] = runs
    report["rows"] = [{k: v for k, v in row.items() if v is not None} for row in best.values()]
    report["ratios"] = ratios(report["rows"])
    report["peaks_end"] = measure_peaks(device=settings["device"])
    report["peaks"] = {k: max(report["peaks_start"][k], report["peaks_end"][k]) for k in report["peaks_start"]}
    report["load_average_end"] = os.getloadavg()[0]
    report["seconds"] = time.time() - started
    return report


def ratios(rows: list[dict]) -> dict:
    by_key = {(r["stage"], r["precision"]): r for r in rows}
    result = {}
    for (stage, precision), row in by_key.items():
        base = by_key.get((stage, "fp32"))
        if precision != "fp32" and base:
            result[f"{stage} {precision}/fp32"] = {
                "samples": row["samples_per_s"] / base["samples_per_s"],
                "compute": row["compute_samples_per_s"] / base["compute_samples_per_s"],
            }
    return result


def format_markdown(report: dict) -> str:
    m = report["machine"]
    lines = [
        f"# Training throughput, 64 px recipes ({report['date']})",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['torch_threads']} torch threads, torch {m['torch']}; device "
        f"{report['settings']['device']}; load average {report['load_average_start']:.1f} at the start and "
        f"{report['load_average_end']:.1f} at the end (other processes shared the cores). "
        f"Run took {report['seconds']:.0f} s: `{report['command']}`.",
        "",
        "3x3 convolution peak in this run (GFLOP/s, start / end): float32 "
        f"{report['peaks_start']['conv3x3_float32']:.0f} / {report['peaks_end']['conv3x3_float32']:.0f}, bfloat16 "
        f"{report['peaks_start']['conv3x3_bfloat16']:.0f} / {report['peaks_end']['conv3x3_bfloat16']:.0f} "
        f"(bfloat16 / float32: {report['peaks']['conv3x3_bfloat16'] / report['peaks']['conv3x3_float32']:.1f}x).",
        "",
        "| stage | plugin | batch | precision | s/step | samples/s | samples/s without data loading |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in report["rows"]:
        lines.append(f"| {row['stage']} | {row['plugin']} | {row['batch_size']} | {row['precision']} | "
                     f"{row['seconds_per_step']:.3f} | {row['samples_per_s']:.1f} | {row['compute_samples_per_s']:.1f} |")
    lines += ["", "| ratio | whole steps | without data loading | target |", "|---|---|---|---|"]
    for name, ratio in report["ratios"].items():
        stage = name.split()[0]
        target = f">= {TARGET_RATIO}x" if stage in ("render", "encoder", "main") else ""
        lines.append(f"| {name} | {ratio['samples']:.2f}x | {ratio['compute']:.2f}x | {target} |")
    return "\n".join(lines) + "\n"


def write_report(report: dict, out: Path) -> tuple[Path, Path]:
    return report_files.write_report(report, out, "training", format_markdown)


def test_training_throughput(benchmark, capsys) -> None:  # noqa: ANN001
    import pytest

    if not DOMAIN_CHECKPOINT.is_file():
        pytest.skip(f"{DOMAIN_CHECKPOINT} is missing (the main stage's latent cache is encoded with it)")
    settings = settings_from_env()

    def log(line: str) -> None:
        with capsys.disabled():
            print(line, flush=True)

    report = benchmark.pedantic(run_benchmark, args=(settings, log), rounds=1, iterations=1)
    paths = write_report(report, settings["out"])
    with capsys.disabled():
        print("\n" + format_markdown(report) + f"\nwritten: {paths[0]}, {paths[1]}")
    for row in report["rows"]:
        assert row["samples_per_s"] > 0


def main() -> None:
    settings = settings_from_env()
    report = run_benchmark(settings, log=lambda line: print(line, flush=True))
    paths = write_report(report, settings["out"])
    print(format_markdown(report))
    print(f"written: {paths[0]}, {paths[1]}", file=sys.stderr)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
