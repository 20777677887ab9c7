"""Generator speed: the machine's 3x3-convolution peak, and frames/s of each generator config.

    .venv/bin/python -m pytest benchmarks/bench_generators.py -q --benchmark-only -s

Reports (in pytest-benchmark's table, in each benchmark's extra_info, and as a summary at
the end of the run, also written to .benchmarks/generators.json):
- peak: the best GFLOP/s of dense 3x3 convolutions of several shapes (float32, both memory
  formats), the yardstick for the rest;
- for StyleGAN2, StyleGAN3-T and StyleGAN3-R at 256 px, batch 1 and 8: frames/s and the
  fraction of the peak achieved, counting nominal FLOPs: every convolution at its true
  resolution (the transposed up-sampling convolution of StyleGAN2 at its input resolution,
  StyleGAN3's convolutions over their padded outputs); filters and mapping not counted;
- StyleGAN3-T and -R against a plain implementation of the same maths (zero-insertion
  up-sampling and dense 2-D filtering, checked to give the same images), at batch 1;
- the shipped default size (64 px StyleGAN2, small widths) at batch 8.
Feature widths are reduced from the papers' (channel_max 512) so the run takes minutes on a
2-core CPU; the architecture, resolution and layer count are the real ones.
Targets (reported, not asserted): per-frame throughput at batch 8 >= batch 1; StyleGAN2 >= 50%
of the peak at batch 8; StyleGAN3 >= 5x the plain implementation; default model > 25 frames/s.
"""

from __future__ import annotations

import math
import time

import pytest
import torch
import torch.nn.functional as F

from styletalker_core.nn.reference import filtered_lrelu_reference
from styletalker_stylegan2.generator import StyleGAN2Generator
from styletalker_stylegan3.generator import StyleGAN3Generator

CONFIGS = {
    "stylegan2": lambda: StyleGAN2Generator(resolution=256, z_dim=256, w_dim=256, channel_base=16384, channel_max=256),
    "stylegan3-t": lambda: StyleGAN3Generator(resolution=256, config="t", z_dim=256, w_dim=256, channel_base=4096,
                                              channel_max=64),
    "stylegan3-r": lambda: StyleGAN3Generator(resolution=256, config="r", z_dim=256, w_dim=256, channel_base=8192,
                                              channel_max=128),
}
DEFAULT_64 = dict(resolution=64, z_dim=128, w_dim=128, channel_base=4096, channel_max=128, mapping_layers=4)
PEAK_SHAPES = [(8, 256, 32), (8, 128, 64), (8, 64, 128), (1, 256, 64)]  # (batch, channels, size)


def best_time(fn, rounds: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    best = math.inf
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def nominal_flops(generator: torch.nn.Module) -> float:
    """FLOPs (2 x multiply-adds) of the main convolutions for one frame."""
    total = 0.0
    if isinstance(generator, StyleGAN2Generator):
        for res in generator.block_resolutions:
            block = getattr(generator.synthesis_network, f"b{res}")
            layers = [(block.conv1, res)] + ([(block.conv0, res // 2)] if hasattr(block, "conv0") else [])
            for layer, positions in layers:
                o, i, k, _ = layer.weight.shape
                total += 2 * o * i * k * k * positions ** 2
            total += 2 * block.torgb.weight.shape[0] * block.torgb.weight.shape[1] * res ** 2
        return total
    for name in generator.layer_names:
        layer = getattr(generator.synthesis_network, name)
        o, i, k, _ = layer.weight.shape
        total += 2 * o * i * k * k * (layer.in_size + k - 1) ** 2
    return total


def plain_stylegan3_synthesis(generator: StyleGAN3Generator, ws: torch.Tensor) -> torch.Tensor:
    """The same maths with the plain filtered leaky ReLU (zero insertion, dense 2-D filters)."""
    from styletalker_core.nn import modulated_conv2d

    x = generator.synthesis_network.input(ws[:, 0])
    for name, w in zip(generator.layer_names, ws[:, 1:].unbind(1)):
        layer = getattr(generator.synthesis_network, name)
        styles = layer.affine(w)
        if layer.is_torgb:
            styles = styles / math.sqrt(layer.in_channels * layer.conv_kernel ** 2)
        x = modulated_conv2d(x, layer.weight, styles, demodulate=not layer.is_torgb, padding=layer.conv_kernel - 1,
                             input_gain=layer.magnitude_ema.rsqrt(), mode="grouped")
        fu = None if layer.up_filter is None else (layer.up_filter if layer.up_filter.ndim == 2 else torch.outer(layer.up_filter, layer.up_filter))
        fd = None if layer.down_filter is None else (layer.down_filter if layer.down_filter.ndim == 2 else torch.outer(layer.down_filter, layer.down_filter))
        x = filtered_lrelu_reference(x, fu, fd, layer.bias, up=layer.up_factor, down=layer.down_factor,
                                     padding=layer.padding, gain=1.0 if layer.is_torgb else math.sqrt(2),
                                     slope=1.0 if layer.is_torgb else 0.2, clamp=layer.conv_clamp)
    return x * generator.output_scale


@pytest.fixture(scope="module")
def peak_gflops(report) -> float:
    if "peak_gflops" not in report:
        report["peak_gflops"] = measure_peak()
    return report["peak_gflops"]


def measure_peak() -> float:
    best = 0.0
    with torch.inference_mode():
        for batch, channels, size in PEAK_SHAPES:
            w = torch.randn(channels, channels, 3, 3)
            flops = 2 * batch * channels * channels * 9 * size * size
            for memory_format in (torch.contiguous_format, torch.channels_last):
                x = torch.randn(batch, channels, size, size).contiguous(memory_format=memory_format)
                seconds = best_time(lambda: F.conv2d(x, w, padding=1), rounds=3)
                best = max(best, flops / seconds / 1e9)
    return best


def test_conv3x3_peak(benchmark, report):
    x = torch.randn(8, 128, 64, 64)
    w = torch.randn(128, 128, 3, 3)

    def run():
        with torch.inference_mode():
            return F.conv2d(x, w, padding=1)

    benchmark.pedantic(run, rounds=3, warmup_rounds=1)
    report["peak_gflops"] = max(report.get("peak_gflops", 0.0), measure_peak(),
                                2 * 8 * 128 * 128 * 9 * 64 * 64 / benchmark.stats.stats.min / 1e9)
    benchmark.extra_info["peak_gflops"] = round(report["peak_gflops"], 1)


@pytest.mark.parametrize("batch", [1, 8])
@pytest.mark.parametrize("config", list(CONFIGS))
def test_generator_fps(benchmark, report, peak_gflops, config, batch):
    torch.manual_seed(0)
    generator = CONFIGS[config]().eval()
    ws = generator.mapping(torch.randn(batch, generator.z_dim)).detach()

    def run():
        with torch.inference_mode():
            return generator.synthesis(ws)

    benchmark.pedantic(run, rounds=2 if batch == 8 else 3, warmup_rounds=1)
    fps = batch / benchmark.stats.stats.min
    fraction = nominal_flops(generator) * fps / 1e9 / peak_gflops
    report.setdefault("generators", {})[f"{config} b{batch}"] = {"frames_per_s": fps, "fraction_of_peak": fraction}
    benchmark.extra_info.update(frames_per_s=round(fps, 2), fraction_of_peak=round(fraction, 3),
                                gflop_per_frame=round(nominal_flops(generator) / 1e9, 2))


@pytest.mark.parametrize("threads", [0, 1], ids=["all-threads", "1-thread"])
@pytest.mark.parametrize("config", ["stylegan3-t", "stylegan3-r"])
def test_stylegan3_against_plain_filtering(benchmark, report, config, threads):
    """Also on one thread: the algorithmic gain, unaffected by other processes on the cores."""
    torch.manual_seed(0)
    generator = CONFIGS[config]().eval()
    ws = generator.mapping(torch.randn(1, generator.z_dim)).detach()
    previous = torch.get_num_threads()
    torch.set_num_threads(threads or previous)
    try:
        with torch.inference_mode():
            fast_seconds = best_time(lambda: generator.synthesis(ws), rounds=2)
            fast = generator.synthesis(ws)
            plain = plain_stylegan3_synthesis(generator, ws)
        difference = (fast - plain).abs().max().item()
        assert difference < 1e-3, f"fast and plain StyleGAN3 differ by {difference}"

        def run():
            with torch.inference_mode():
                return plain_stylegan3_synthesis(generator, ws)

        benchmark.pedantic(run, rounds=1, warmup_rounds=0)
    finally:
        torch.set_num_threads(previous)
    speedup = benchmark.stats.stats.min / fast_seconds
    label = f"{config} ({threads or previous} thread{'s' if (threads or previous) > 1 else ''})"
    report.setdefault("plain", {})[label] = {"speedup": speedup, "max_abs_difference": difference}
    benchmark.extra_info.update(speedup=round(speedup, 2), max_abs_difference=difference)


def test_default_model_size(benchmark, report):
    torch.manual_seed(0)
    generator = StyleGAN2Generator(**DEFAULT_64).eval()
    ws = generator.mapping(torch.randn(8, generator.z_dim)).detach()

    def run():
        with torch.inference_mode():
            return generator.synthesis(ws)

    benchmark.pedantic(run, rounds=5, warmup_rounds=1)
    fps = 8 / benchmark.stats.stats.min
    report["default_64_b8_fps"] = fps
    benchmark.extra_info["frames_per_s"] = round(fps, 1)
