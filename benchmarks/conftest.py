"""Shared fixtures of the benchmark suites: a session report printed (and saved) at the end."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

_REPORT: dict = {}


@pytest.fixture(scope="session")
def report() -> dict:
    """Numbers benchmarks want summarised after the run (see pytest_terminal_summary)."""
    if "load_average" not in _REPORT:
        import torch

        _REPORT.update(load_average=os.getloadavg()[0], cpus=os.cpu_count(), threads=torch.get_num_threads())
    return _REPORT


def _generator_lines(report: dict) -> list[str]:
    lines = []
    if "load_average" in report:
        lines.append(f"machine: {report['cpus']} cores, {report['threads']} torch threads, "
                     f"load average {report['load_average']:.1f} at the start (other processes share the cores)")
    peak = report.get("peak_gflops")
    if peak:
        lines.append(f"measured 3x3 convolution peak: {peak:.1f} GFLOP/s")
    generators = report.get("generators", {})
    for name, row in sorted(generators.items()):
        lines.append(f"{name:>16}: {row['frames_per_s']:8.2f} frames/s, {100 * row['fraction_of_peak']:5.1f}% of peak")
    for config in ("stylegan2", "stylegan3-t", "stylegan3-r"):
        one, eight = generators.get(f"{config} b1"), generators.get(f"{config} b8")
        if one and eight:
            ok = eight["frames_per_s"] >= one["frames_per_s"]
            lines.append(f"target {config}: batch 8 per-frame throughput >= batch 1: {'met' if ok else 'NOT met'}")
    sg2 = generators.get("stylegan2 b8")
    if sg2:
        lines.append(f"target stylegan2 b8 >= 50% of peak: {'met' if sg2['fraction_of_peak'] >= 0.5 else 'NOT met'} "
                     f"({100 * sg2['fraction_of_peak']:.1f}%)")
    for config, row in sorted(report.get("plain", {}).items()):
        lines.append(f"target {config} >= 5x the plain implementation: {'met' if row['speedup'] >= 5 else 'NOT met'} "
                     f"({row['speedup']:.1f}x, outputs equal to {row['max_abs_difference']:.1e})")
    fps = report.get("default_64_b8_fps")
    if fps:
        lines.append(f"target default 64 px model > 25 frames/s at batch 8: {'met' if fps > 25 else 'NOT met'} ({fps:.1f})")
    return lines


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    lines = _generator_lines(_REPORT)
    if not lines:
        return
    terminalreporter.section("generator speed")
    for line in lines:
        terminalreporter.write_line(line)
    out = Path(".benchmarks")
    out.mkdir(exist_ok=True)
    (out / "generators.json").write_text(json.dumps({**_REPORT, "summary": lines}, indent=2) + "\n")
