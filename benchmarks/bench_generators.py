"""Generator speed at the published sizes, against the machine's peaks and the plain baseline.

    .venv/bin/python benchmarks/bench_generators.py                 # writes out/bench/generators.{json,md}
    .venv/bin/python -m pytest benchmarks/bench_generators.py -q --benchmark-only -s   # the same, in `make bench`

Configs (each named as what it is):
- ``stylegan2-256``: NVIDIA's StyleGAN2 (config F) at 256 px, as the stylegan3 repository trains
  it: channel_base 32768, channel_max 512, z/w 512, 8 mapping layers, conv_clamp 256;
- ``stylegan3-t-256``: NVIDIA's StyleGAN3-T at 256 px: channel_base 32768, channel_max 512;
- ``stylegan3-r-256``: NVIDIA's StyleGAN3-R at 256 px: channel_base 65536, channel_max 1024
  (NVIDIA doubles both for R);
- ``shipped-64``: the shipped 64 px StyleGAN2, options and weights read from the shipped model
  (checkpoints/synthetic_64_model.safetensors; recipes/domain_synthetic_64.toml when it is missing).
Random weights for the 256 px configs (speed does not depend on them); NVIDIA's checkpoints
convert with ``styletalker convert`` (docs/generators.md).

For each config, batch 1 and 8, float32 and bfloat16 (the generators' ``dtype`` option: the
synthesis runs in that type, images come back float32), synthesis only (W+ given; the mapping
network is not timed), under ``torch.inference_mode()``:
- frames/s: the best of a few timed calls (STYLETALKER_BENCH_REPEATS) after one untimed call;
  one timed call when a call takes over SLOW_CALL_S / 4, and a call slower than SLOW_CALL_S is
  timed once, cold (StyleGAN3 at 256 px and batch 8 on a CPU);
- GFLOP per frame: ``torch.utils.flop_counter.FlopCounterMode`` on one frame (convolutions,
  transposed and depthwise ones included, and matrix products; element-wise work not counted);
- the fraction of the matching peak: GFLOP/frame x frames/s over the float32 or bfloat16 3x3
  convolution peak;
- the ratio to the plain baseline: the same generator with the plain operations of
  styletalker_core/nn/reference.py (modulated convolution one sample at a time, zero-insertion
  up-sampling, dense 2-D filters), in float32; its float32 images must equal the fast ones
  (max abs difference reported); where the plain baseline is too slow to run at batch 8
  (StyleGAN3 at 256 px) the ratio uses its batch-1 frames/s and says so;
- bfloat16 rows: PSNR of the bfloat16 images against the float32 ones (peak = the float32
  images' range).
Peaks, measured at the start and again at the end of the same run (the better of the two is the
yardstick; both are reported, since other processes share the cores): a 2048^3 matrix product
and a 3x3 convolution (batch 8, 512 channels, 32x32, channels-last), each in float32 and bfloat16.

Environment: STYLETALKER_BENCH_CONFIGS (comma-separated config names, default all),
STYLETALKER_BENCH_BATCHES (default "1,8"), STYLETALKER_BENCH_DTYPES (default
"float32,bfloat16"), STYLETALKER_BENCH_REPEATS (timed calls of a fast call, default 3),
STYLETALKER_BENCH_QUICK=1 (shipped-64 and stylegan2-256 only, one timed call each: a
smoke run of a minute), STYLETALKER_BENCH_DEVICE (default cpu; "cuda" times on the GPU, with
synchronisation, and measures the GPU's peaks on larger shapes: 8192^3 and batch 64,
tools/gpu_check.sh), STYLETALKER_BENCH_THREADS (torch threads; default torch's own),
STYLETALKER_BENCH_OUT (default out/bench).
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import platform
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from unittest import mock

import report_files  # benchmarks/report_files.py (the benchmark's folder is on sys.path)
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
SHIPPED_MODEL = ROOT / "checkpoints" / "synthetic_64_model.safetensors"
SHIPPED_RECIPE = ROOT / "recipes" / "domain_synthetic_64.toml"
SLOW_CALL_S = 20.0  # a call slower than this is timed once (the untimed first call is skipped)
PLAIN_MAX_S = 15.0  # the plain baseline runs at batch 8 only when its batch-1 call is faster than this

NVIDIA_CONFIGS = {
    "stylegan2-256": ("stylegan2", dict(resolution=256, z_dim=512, w_dim=512, channel_base=32768, channel_max=512,
                                        mapping_layers=8, conv_clamp=256),
                      "NVIDIA StyleGAN2 config F, 256 px (channel_base 32768, channel_max 512, 8 mapping layers)"),
    "stylegan3-t-256": ("stylegan3", dict(resolution=256, config="t", z_dim=512, w_dim=512, channel_base=32768,
                                          channel_max=512),
                        "NVIDIA StyleGAN3-T, 256 px (channel_base 32768, channel_max 512)"),
    "stylegan3-r-256": ("stylegan3", dict(resolution=256, config="r", z_dim=512, w_dim=512, channel_base=65536,
                                          channel_max=1024),
                        "NVIDIA StyleGAN3-R, 256 px (channel_base 65536, channel_max 1024)"),
}
CONFIG_NAMES = ("shipped-64", *NVIDIA_CONFIGS)
QUICK_CONFIGS = ("shipped-64", "stylegan2-256")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


# ---------------------------------------------------------------- settings


def settings_from_env() -> dict:
    quick = os.environ.get("STYLETALKER_BENCH_QUICK", "") not in ("", "0")
    configs = os.environ.get("STYLETALKER_BENCH_CONFIGS", "")
    configs = [c.strip() for c in configs.split(",") if c.strip()] or list(QUICK_CONFIGS if quick else CONFIG_NAMES)
    unknown = sorted(set(configs) - set(CONFIG_NAMES))
    if unknown:
        raise SystemExit(f"STYLETALKER_BENCH_CONFIGS: unknown {', '.join(unknown)}; use {', '.join(CONFIG_NAMES)}")
    dtypes = [d.strip() for d in os.environ.get("STYLETALKER_BENCH_DTYPES", "float32,bfloat16").split(",") if d.strip()]
    if set(dtypes) - set(DTYPES):
        raise SystemExit(f"STYLETALKER_BENCH_DTYPES: use float32 and/or bfloat16, got {dtypes}")
    return {
        "configs": configs,
        "batches": [int(b) for b in os.environ.get("STYLETALKER_BENCH_BATCHES", "1,8").split(",") if b.strip()],
        "dtypes": dtypes,
        "repeats": int(os.environ.get("STYLETALKER_BENCH_REPEATS", "1" if quick else "3")),
        "out": Path(os.environ.get("STYLETALKER_BENCH_OUT", ROOT / "out" / "bench")),
        "quick": quick,
        "device": os.environ.get("STYLETALKER_BENCH_DEVICE", "cpu"),
        "threads": int(os.environ.get("STYLETALKER_BENCH_THREADS", "0")),
    }


# ---------------------------------------------------------------- timing and peaks


def synchronized(fn: Callable[[], object], device: torch.device | str = "cpu") -> Callable[[], object]:
    """``fn`` followed by waiting for the GPU (a no-op on the CPU), so wall time covers its work."""
    if torch.device(device).type != "cuda":
        return fn

    def call() -> object:
        result = fn()
        torch.cuda.synchronize()
        return result

    return call


def time_calls(fn: Callable[[], object], repeats: int, device: torch.device | str = "cpu") -> dict:
    """Best wall time of ``fn``: one untimed call, then ``repeats`` timed ones; a first call slower
    than SLOW_CALL_S is itself the (single, cold) measurement."""
    fn = synchronized(fn, device)
    start = time.perf_counter()
    fn()
    first = time.perf_counter() - start
    if first > SLOW_CALL_S:
        return {"seconds": first, "timed_calls": 1, "cold": True}
    if first > SLOW_CALL_S / 4:
        repeats = 1  # a few seconds a call: one timed call after the untimed one
    best = math.inf
    for _ in range(max(repeats, 1)):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return {"seconds": best, "timed_calls": max(repeats, 1), "cold": False}


def peak_shapes(device: torch.device | str = "cpu") -> dict:
    """Matrix size n (n^3 product) and convolution (batch, channels, size) of the peak measurement."""
    if torch.device(device).type == "cuda":
        return {"matmul": 8192, "conv": (64, 512, 32)}
    return {"matmul": 2048, "conv": (8, 512, 32)}


def measure_peaks(repeats: int = 5, device: torch.device | str = "cpu") -> dict:
    """GFLOP/s of a 2048^3 matrix product and of a 3x3 convolution (batch 8, 512 channels, 32x32,
    channels-last), in float32 and bfloat16 (on a GPU: 8192^3 and batch 64, see peak_shapes)."""
    peaks = {}
    shapes = peak_shapes(device)
    n, (batch, channels, size) = shapes["matmul"], shapes["conv"]
    generator = torch.Generator().manual_seed(0)
    with torch.inference_mode():
        for name, dtype in DTYPES.items():
            a = torch.randn(n, n, generator=generator).to(device, dtype)
            b = torch.randn(n, n, generator=generator).to(device, dtype)
            seconds = time_calls(functools.partial(torch.matmul, a, b), repeats, device)["seconds"]
            peaks[f"matmul_{name}"] = 2 * n ** 3 / seconds / 1e9
            x = torch.randn(batch, channels, size, size, generator=generator).to(device, dtype)
            w = torch.randn(channels, channels, 3, 3, generator=generator).to(device, dtype)
            x, w = x.contiguous(memory_format=torch.channels_last), w.contiguous(memory_format=torch.channels_last)
            seconds = time_calls(functools.partial(F.conv2d, x, w, padding=1), repeats, device)["seconds"]
            peaks[f"conv3x3_{name}"] = 2 * batch * channels * channels * 9 * size * size / seconds / 1e9
    return peaks


# ---------------------------------------------------------------- generators


def shipped_generator() -> tuple[torch.nn.Module, str]:
    """The shipped 64 px generator with its weights, or the recipe's (random weights) without the file."""
    from styletalker_core.plugin_host import build_registries

    registries = build_registries()
    if SHIPPED_MODEL.is_file():
        from styletalker_core.checkpoint import load_checkpoint, read_metadata

        options = read_metadata(SHIPPED_MODEL)["components"]["generator"]["options"]
        generator = load_checkpoint(SHIPPED_MODEL, registries, roles=["generator"])["generator"]
        source = f"{SHIPPED_MODEL.relative_to(ROOT)} (trained weights)"
    else:
        from styletalker_core.recipe.loader import read_toml
        from styletalker_core.registry import ComponentSpec, build_component

        spec = dict(read_toml(SHIPPED_RECIPE)["model"]["generator"])
        name = spec.pop("name")
        spec.pop("weights", None)
        options = spec
        generator = build_component(registries, "generator", ComponentSpec(name, options))
        source = f"{SHIPPED_RECIPE.relative_to(ROOT)} (random weights: the shipped model is missing)"
    text = ", ".join(f"{k} {v}" for k, v in options.items() if k != "resolution")
    return generator, f"shipped StyleGAN2, {options['resolution']} px ({text}); from {source}"


def build_generator(config: str) -> tuple[torch.nn.Module, str]:
    torch.manual_seed(0)
    if config == "shipped-64":
        generator, description = shipped_generator()
    else:
        from styletalker_stylegan2.generator import StyleGAN2Generator
        from styletalker_stylegan3.generator import StyleGAN3Generator

        family, options, description = NVIDIA_CONFIGS[config]
        generator = (StyleGAN2Generator if family == "stylegan2" else StyleGAN3Generator)(**options)
    return generator.eval().requires_grad_(False), description


def count_gflop(generator: torch.nn.Module, ws: torch.Tensor) -> float:
    """GFLOP of one synthesis call per frame, as FlopCounterMode counts them."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:  # not under inference_mode: the counter's module tracker needs autograd's bookkeeping
        generator.synthesis(ws)
    return counter.get_total_flops() / ws.shape[0] / 1e9


def _plain_modulated_conv2d(x, weight, styles, demodulate=True, padding=0, up=1, resample_filter=None,  # noqa: ANN001, ANN202
                            flip_weight=True, input_gain=None, noise=None, mode="auto", bias=None, output_gain=1.0):  # noqa: ANN001
    from styletalker_core.nn.reference import modulated_conv2d_reference

    if input_gain is not None:
        input_gain = torch.as_tensor(input_gain, dtype=torch.float32)
    y = modulated_conv2d_reference(x.float(), weight.float(), styles.float(), demodulate=demodulate, padding=padding,
                                   up=up, resample_filter=resample_filter, flip_weight=flip_weight,
                                   input_gain=input_gain)
    y = y + noise if noise is not None else y
    y = y + bias.float().reshape(1, -1, 1, 1) if bias is not None else y
    return y * output_gain


def _plain_upsample2d(x, f, up=2, padding=0, gain=1.0):  # noqa: ANN001, ANN202
    from styletalker_core.nn.reference import upfirdn2d_reference
    from styletalker_core.nn.upfirdn import resample_padding

    return upfirdn2d_reference(x, f, up=up, padding=resample_padding(f, up=up, padding=padding), gain=gain * up * up)


@contextlib.contextmanager
def plain_operations() -> Iterator[None]:
    """Both generator plugins computed with styletalker_core/nn/reference.py's plain operations."""
    from styletalker_core.nn.reference import filtered_lrelu_reference

    with contextlib.ExitStack() as stack:
        stack.enter_context(mock.patch("styletalker_stylegan2.layers.modulated_conv2d", _plain_modulated_conv2d))
        stack.enter_context(mock.patch("styletalker_stylegan2.layers.upsample2d", _plain_upsample2d))
        stack.enter_context(mock.patch("styletalker_stylegan3.layers.modulated_conv2d", _plain_modulated_conv2d))
        stack.enter_context(mock.patch("styletalker_stylegan3.layers.filtered_lrelu", filtered_lrelu_reference))
        yield


def psnr(test: torch.Tensor, reference: torch.Tensor) -> float:
    """PSNR in dB with the reference images' range as the peak."""
    peak = (reference.max() - reference.min()).item()
    mse = (test.double() - reference.double()).square().mean().item()
    return math.inf if mse == 0 else 10 * math.log10(peak ** 2 / mse)


def bench_config(config: str, settings: dict, log: Callable[[str], None]) -> dict:
    device = torch.device(settings.get("device", "cpu"))
    generator, description = build_generator(config)
    generator = generator.to(device)
    generator.compute_dtype = torch.float32  # the ``dtype`` option of both plugins, switched per row below
    z = torch.randn(max(settings["batches"]), generator.z_dim, generator=torch.Generator().manual_seed(1)).to(device)
    ws_all = generator.mapping(z).detach()
    gflop = count_gflop(generator, ws_all[:1])
    result = {"config": config, "what": description, "gflop_per_frame": gflop, "rows": [], "plain": {}}
    log(f"{config}: {description}; {gflop:.2f} GFLOP/frame")

    # the plain baseline, float32
    references: dict[int, torch.Tensor] = {}
    plain_b1_seconds = math.inf
    for batch in settings["batches"]:
        ws = ws_all[:batch]
        if batch > 1 and plain_b1_seconds > PLAIN_MAX_S:
            result["plain"][batch] = {"frames_per_s": None, "note": f"not run (batch 1 took {plain_b1_seconds:.0f} s)"}
            continue
        with torch.inference_mode(), plain_operations():
            images = {}
            timing = time_calls(lambda: images.setdefault("x", generator.synthesis(ws)), repeats=1, device=device)  # noqa: B023 - called here
        references[batch] = images["x"]
        if batch == 1:
            plain_b1_seconds = timing["seconds"]
        result["plain"][batch] = {"frames_per_s": batch / timing["seconds"], **timing}
        log(f"  plain float32 batch {batch}: {batch / timing['seconds']:.3f} frames/s")

    float32_images: dict[int, torch.Tensor] = {}
    for dtype_name in settings["dtypes"]:
        generator.compute_dtype = DTYPES[dtype_name]
        for batch in settings["batches"]:
            ws = ws_all[:batch]
            images = {}
            with torch.inference_mode():
                timing = time_calls(lambda: images.__setitem__("x", generator.synthesis(ws)), settings["repeats"], device)  # noqa: B023 - called here
            row = {"batch": batch, "dtype": dtype_name, "frames_per_s": batch / timing["seconds"],
                   "seconds_per_frame": timing["seconds"] / batch, **timing}
            if dtype_name == "float32":
                float32_images[batch] = images["x"]
                reference = references.get(batch, references.get(1))
                if reference is not None:
                    row["max_abs_diff_vs_plain"] = (images["x"][: reference.shape[0]] - reference).abs().max().item()
                    row["image_max_abs"] = reference.abs().max().item()
            elif batch in float32_images:
                row["psnr_vs_float32_db"] = psnr(images["x"], float32_images[batch])
            plain = result["plain"].get(batch, {}).get("frames_per_s")
            if plain is None and result["plain"].get(1, {}).get("frames_per_s"):
                plain = result["plain"][1]["frames_per_s"]
                row["plain_ratio_note"] = "plain baseline at batch 1"
            row["x_plain"] = row["frames_per_s"] / plain if plain else None
            result["rows"].append(row)
            log(f"  {dtype_name} batch {batch}: {row['frames_per_s']:.3f} frames/s "
                f"({timing['timed_calls']} timed call{'s' if timing['timed_calls'] > 1 else ''}{', cold' if timing['cold'] else ''})")
    return result


# ---------------------------------------------------------------- report


def machine(device: torch.device | str = "cpu") -> dict:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    found = {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
             "python": platform.python_version(), "device": str(device)}
    if torch.device(device).type == "cuda":
        found["gpu"] = torch.cuda.get_device_name(device)
        found["cuda"] = torch.version.cuda
    return found


def run_benchmark(settings: dict | None = None, log: Callable[[str], None] = print) -> dict:
    settings = settings or settings_from_env()
    if settings.get("threads"):
        torch.set_num_threads(settings["threads"])
    started = time.time()
    device = settings.get("device", "cpu")
    report: dict = {"command": "python benchmarks/bench_generators.py", "machine": machine(device),
                    "settings": {k: str(v) if isinstance(v, Path) else v for k, v in settings.items()},
                    "load_average_start": os.getloadavg()[0], "date": time.strftime("%Y-%m-%d %H:%M")}
    report["peak_shapes"] = peak_shapes(device)
    report["peaks_start"] = measure_peaks(device=device)
    log("peaks at the start: " + ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in report["peaks_start"].items()))
    report["configs"] = [bench_config(config, settings, log) for config in settings["configs"]]
    report["peaks_end"] = measure_peaks(device=device)
    log("peaks at the end: " + ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in report["peaks_end"].items()))
    report["peaks"] = {k: max(report["peaks_start"][k], report["peaks_end"][k]) for k in report["peaks_start"]}
    report["load_average_end"] = os.getloadavg()[0]
    for config in report["configs"]:
        for row in config["rows"]:
            row["gflop_per_s"] = config["gflop_per_frame"] * row["frames_per_s"]
            row["fraction_of_conv_peak"] = row["gflop_per_s"] / report["peaks"][f"conv3x3_{row['dtype']}"]
    report["seconds"] = time.time() - started
    return report


def _number(value: float | None, digits: int = 2) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if value < 1000 else f"{value:.0f}"


def format_markdown(report: dict) -> str:
    m, shapes = report["machine"], report["peak_shapes"]
    n, (pb, pc, ps) = shapes["matmul"], shapes["conv"]
    gpu = f"GPU {m['gpu']} (CUDA {m['cuda']}); " if "gpu" in m else ""
    lines = [
        f"# Generator speed ({report['date']})",
        "",
        f"Machine: {gpu}{m['cpu']}, {m['cores']} cores, {m['torch_threads']} torch threads, torch {m['torch']}; "
        f"load average {report['load_average_start']:.1f} at the start and {report['load_average_end']:.1f} at the end "
        "(other processes shared the cores). Run took {:.0f} s: `{}`.".format(report["seconds"], report["command"]),
        "",
        "Peaks in this run (GFLOP/s; start / end; the better is the yardstick):",
        "",
        "| | float32 | bfloat16 |",
        "|---|---|---|",
    ]
    for op, label in (("matmul", f"matrix product {n}^3"), ("conv3x3", f"3x3 convolution, {pb}x{pc}x{ps}x{ps}, channels-last")):
        cells = [f"{report['peaks_start'][f'{op}_{d}']:.0f} / {report['peaks_end'][f'{op}_{d}']:.0f}" for d in DTYPES]
        lines.append(f"| {label} | {' | '.join(cells)} |")
    lines += [
        "",
        "Synthesis only (W+ given), inference mode. GFLOP/frame from FlopCounterMode; % of peak: GFLOP/s over the "
        "3x3 convolution peak of the same dtype; x plain: frames/s over the plain baseline's (reference.py "
        "operations, float32, same batch unless marked *: batch 1); check: max abs difference of the float32 "
        "images from the plain baseline's, or PSNR of the bfloat16 images against float32.",
        "",
        "| config | batch | dtype | frames/s | s/frame | GFLOP/frame | GFLOP/s | % of peak | x plain | check | timed calls |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for config in report["configs"]:
        for row in config["rows"]:
            if "max_abs_diff_vs_plain" in row:
                check = f"max diff {row['max_abs_diff_vs_plain']:.1e}"
            elif "psnr_vs_float32_db" in row:
                check = f"PSNR {row['psnr_vs_float32_db']:.1f} dB"
            else:
                check = "-"
            ratio = _number(row["x_plain"]) + ("*" if row.get("plain_ratio_note") else "")
            calls = f"{row['timed_calls']}{' (cold)' if row['cold'] else ''}"
            lines.append(
                f"| {config['config']} | {row['batch']} | {row['dtype']} | {_number(row['frames_per_s'], 3)} | "
                f"{_number(row['seconds_per_frame'], 3)} | {config['gflop_per_frame']:.3g} | {row['gflop_per_s']:.0f} | "
                f"{100 * row['fraction_of_conv_peak']:.1f} | {ratio} | {check} | {calls} |")
    lines += ["", "Configs:", ""]
    for config in report["configs"]:
        plain = ", ".join(f"batch {b}: " + (f"{v['frames_per_s']:.3f} frames/s" if v.get("frames_per_s") else v["note"])
                          for b, v in config["plain"].items())
        lines.append(f"- `{config['config']}`: {config['what']}. Plain baseline (float32): {plain}.")
    return "\n".join(lines) + "\n"


def write_report(report: dict, out: Path) -> tuple[Path, Path]:
    return report_files.write_report(report, out, "generators", format_markdown)


def test_generator_speed(benchmark, capsys) -> None:  # noqa: ANN001
    settings = settings_from_env()

    def log(line: str) -> None:
        with capsys.disabled():
            print(line, flush=True)

    report = benchmark.pedantic(run_benchmark, args=(settings, log), rounds=1, iterations=1)
    paths = write_report(report, settings["out"])
    with capsys.disabled():
        print("\n" + format_markdown(report) + f"\nwritten: {paths[0]}, {paths[1]}")
    for config in report["configs"]:
        for row in config["rows"]:
            if "max_abs_diff_vs_plain" in row:  # float32 images equal the plain baseline's
                assert row["max_abs_diff_vs_plain"] < 1e-4 * max(1.0, row["image_max_abs"]), (config["config"], row)


def main() -> None:
    settings = settings_from_env()
    report = run_benchmark(settings, log=lambda line: print(line, flush=True))
    paths = write_report(report, settings["out"])
    print(format_markdown(report))
    print(f"written: {paths[0]}, {paths[1]}", file=sys.stderr)


if __name__ == "__main__":
    main()
