#!/usr/bin/env bash
# One prepared check of the project on an NVIDIA GPU machine (docs/gpu.md), in under 8 minutes:
#   tools/gpu_check.sh [WHEELS_DIR]
# 1. install: the project's non-torch dependencies from WHEELS_DIR (made by tools/make_gpu_wheels.sh;
#    offline: --no-index), next to the machine's own PyTorch, and the project itself from this checkout;
# 2. tests: `pytest -m cuda` (tests/test_cuda.py: device choice, fp32/bf16/fp16 training steps and fp16
#    resume, an NCCL process group of one, channels-last generators on the GPU equal to the CPU);
# 3. generators: StyleGAN2 / StyleGAN3-T / StyleGAN3-R at 256 px (NVIDIA's configs), frames/s at batch
#    1, 8 and 32 in float32 and bfloat16, with the GPU's peaks (benchmarks/bench_generators.py);
# 4. training: a few steps of every stage of the shipped 64 px recipes in fp32 and bf16
#    (benchmarks/bench_training.py);
# 5. sampling: the shipped model animates the demo's face with 20 s of speech on the GPU.
# Writes gpu_check.{json,md,log}, generators.{json,md} and training.{json,md} to $OUT when set (the
# device tool's output folder), else out/gpu_check. Without CUDA it runs the CPU side of each part
# (small: the 64 px generator, one training stage, sampling on the CPU), says which CUDA parts it
# skipped, and exits 0. Exit status: 1 when a part failed, else 0.
# Environment: PYTHON (default: python3 when it has torch, else .venv/bin/python), GPU_CHECK_BUDGET_S
# (default 450: parts get what is left of it, each within its own limit).
set -u
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
OUT_DIR="${OUT:-$ROOT/out/gpu_check}"
mkdir -p "$OUT_DIR"
LOG="$OUT_DIR/gpu_check.log"
: >"$LOG"
PARTS="$OUT_DIR/.parts.tsv"
: >"$PARTS"
WHEELS="${1:-${STYLETALKER_WHEELS:-}}"
BUDGET="${GPU_CHECK_BUDGET_S:-450}"
START=$(date +%s)
export PYTHONUNBUFFERED=1 STYLETALKER_PROGRESS=0 MPLBACKEND=Agg
SCRATCH="$(mktemp -d)"
export ROOT OUT_DIR SCRATCH
trap 'rm -rf "$SCRATCH"' EXIT

say() { echo "[gpu_check] $*" | tee -a "$LOG"; }

pick_python() {
    if [ -n "${PYTHON:-}" ]; then echo "$PYTHON"; return; fi
    if command -v python3 >/dev/null && python3 -c "import torch" 2>/dev/null; then echo python3; return; fi
    if [ -x "$ROOT/.venv/bin/python" ]; then echo "$ROOT/.venv/bin/python"; return; fi
    echo python3
}
PY="$(pick_python)"
export PY

# part NAME LIMIT_S COMMAND...: run with a time limit (its own, or what is left of the budget), log
# its output, record name / status / seconds.
part() {
    local name="$1" limit="$2"
    shift 2
    local left=$((BUDGET - ($(date +%s) - START)))
    if [ "$left" -lt 20 ]; then
        say "$name: not run (time budget of ${BUDGET} s spent)"
        printf '%s\tnot run (budget spent)\t0\n' "$name" >>"$PARTS"
        return 0
    fi
    [ "$limit" -gt "$left" ] && limit=$left
    say "$name: starting (limit ${limit} s)"
    local t0 status
    t0=$(date +%s)
    if [ "$(type -t "$1")" = function ]; then  # a function of this script: run it in a child bash
        export -f "$1"
        timeout --signal=TERM --kill-after=10 "$limit" bash -c "$1" >>"$LOG" 2>&1
    else
        timeout --signal=TERM --kill-after=10 "$limit" "$@" >>"$LOG" 2>&1
    fi
    status=$?
    local spent=$(($(date +%s) - t0))
    if [ $status -eq 0 ]; then
        say "$name: ok in ${spent} s"
        printf '%s\tok\t%s\n' "$name" "$spent" >>"$PARTS"
    elif [ $status -eq 124 ] || [ $status -eq 137 ]; then
        say "$name: TIMED OUT after ${spent} s"
        printf '%s\ttimed out\t%s\n' "$name" "$spent" >>"$PARTS"
    else
        say "$name: FAILED (status $status) after ${spent} s; see gpu_check.log"
        printf '%s\tfailed (status %s)\t%s\n' "$name" "$status" "$spent" >>"$PARTS"
    fi
}

install() {
    if [ -n "$WHEELS" ]; then
        mkdir -p "$SCRATCH/site"
        "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SCRATCH/site" \
            "$WHEELS"/*.whl || return 1
        export PYTHONPATH="$SCRATCH/site${PYTHONPATH:+:$PYTHONPATH}"
    fi
    if "$PY" -c "import importlib.metadata as m, styletalker_core; m.distribution('styletalker')" 2>/dev/null; then
        echo "styletalker already installed"
    elif "$PY" -m pip install -q --no-index --no-deps --no-build-isolation -e "$ROOT"; then
        echo "installed this checkout (editable)"
    else
        # no pip install possible: the checkout on the path and a dist-info that declares its plugins
        local info="$SCRATCH/site/styletalker-0.1.0.dist-info"
        mkdir -p "$info"
        printf 'Metadata-Version: 2.1\nName: styletalker\nVersion: 0.1.0\n' >"$info/METADATA"
        "$PY" - "$ROOT/pyproject.toml" >"$info/entry_points.txt" <<'EOF' || return 1
import sys, tomllib
project = tomllib.load(open(sys.argv[1], "rb"))["project"]
for group, entries in project["entry-points"].items():
    print(f"[{group}]")
    print("\n".join(f"{name} = {target}" for name, target in entries.items()))
print("[console_scripts]")
print("\n".join(f"{name} = {target}" for name, target in project["scripts"].items()))
EOF
        export PYTHONPATH="$SCRATCH/site:$ROOT:$ROOT/plugins${PYTHONPATH:+:$PYTHONPATH}"
        echo "using this checkout through PYTHONPATH"
    fi
    "$PY" -c "
import torch, styletalker_core
from styletalker_core.plugin_host import build_registries
build_registries()
print('torch', torch.__version__, 'cuda', torch.version.cuda, 'available', torch.cuda.is_available())
"
}

# The install exports PYTHONPATH for the parts after it, so it runs in this shell (with its own limit
# inside: pip has no network to wait for).
say "python: $PY; output: $OUT_DIR; wheels: ${WHEELS:-none}"
t0=$(date +%s)
if install >>"$LOG" 2>&1; then
    say "install: ok in $(($(date +%s) - t0)) s"
    printf 'install\tok\t%s\n' "$(($(date +%s) - t0))" >>"$PARTS"
else
    say "install: FAILED; see gpu_check.log"
    printf 'install\tfailed\t%s\n' "$(($(date +%s) - t0))" >>"$PARTS"
fi

if "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    CUDA=1
    say "CUDA: $("$PY" -c "import torch; print(torch.cuda.get_device_name(0))" 2>/dev/null)"
else
    CUDA=0
    say "CUDA: not available; running the CPU side of each part"
fi

tests() {
    # pytest exits 5 when it selects nothing; every cuda test skipped (no CUDA) exits 0
    "$PY" -m pytest -q -m cuda -rs -p no:cacheprovider tests/test_cuda.py tests/test_precision.py
}
part "tests (pytest -m cuda)" 150 tests

# has MODULE: importable by the check's Python (the device tool's 64 MiB per call leaves no room for the
# av and espeakng-loader wheels beside the checkout: docs/gpu.md)
has() { "$PY" -c "import $1" 2>/dev/null; }
TRAIN_DATA_OK=1
if ! has espeakng_loader; then
    TRAIN_DATA_OK=0
    say "training: skipped (espeakng-loader is not installed: the benchmark's synthetic clips need its speech)"
    printf 'training stages\tskipped: espeakng-loader missing\t0\n' >>"$PARTS"
fi

if [ $CUDA -eq 1 ]; then
    part "generators 256 px on CUDA" 150 env STYLETALKER_BENCH_DEVICE=cuda STYLETALKER_BENCH_BATCHES=1,8,32 \
        STYLETALKER_BENCH_REPEATS=10 STYLETALKER_BENCH_OUT="$OUT_DIR" "$PY" benchmarks/bench_generators.py
    [ $TRAIN_DATA_OK = 1 ] && part "training stages on CUDA" 180 env STYLETALKER_BENCH_DEVICE=cuda STYLETALKER_BENCH_TRAIN_STEPS=3 STYLETALKER_BENCH_TRAIN_ROUNDS=1 \
        STYLETALKER_BENCH_OUT="$OUT_DIR" "$PY" benchmarks/bench_training.py
    SAMPLE_DEVICE=cuda
else
    part "generators (CPU: shipped 64 px only)" 150 env STYLETALKER_BENCH_CONFIGS=shipped-64 STYLETALKER_BENCH_REPEATS=2 \
        STYLETALKER_BENCH_OUT="$OUT_DIR" "$PY" benchmarks/bench_generators.py
    [ $TRAIN_DATA_OK = 1 ] && part "training (CPU: render stage, 1 step)" 150 env STYLETALKER_BENCH_TRAIN_STAGES=render STYLETALKER_BENCH_TRAIN_STEPS=1 STYLETALKER_BENCH_TRAIN_ROUNDS=1 \
        STYLETALKER_BENCH_PRECISIONS=fp32 STYLETALKER_BENCH_OUT="$OUT_DIR" "$PY" benchmarks/bench_training.py
    SAMPLE_DEVICE=cpu
fi
export SAMPLE_DEVICE

sampling() {
    "$PY" - "$SAMPLE_DEVICE" "$SCRATCH" "$OUT_DIR/.sampling.json" <<'EOF'
import contextlib, importlib.util, json, sys, time
from pathlib import Path
from unittest import mock

sys.path.insert(0, "benchmarks")
import torch
from bench_sampling import reference_image, write_speech
from styletalker_core.plugin_host import get_registries
from styletalker_core.sample import SampleJob, Sampler
from styletalker_core.sample.shipped import require_default_model

device, folder, report = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
has_av = importlib.util.find_spec("av") is not None


class CountingVideos:
    """Stands in for the mp4 writers when PyAV is missing: counts frames, writes nothing."""

    def __init__(self, paths, *args):
        self.num_frames = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def write(self, frames, wave):
        self.num_frames += frames.shape[1]  # [n samples, t, h, w, 3]


def read_wav(path, *args, **kwargs):
    """Mono float32 at 16 kHz from a wav file, with soundfile (PyAV reads any format; it is missing)."""
    import numpy as np
    import soundfile

    wave, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    assert rate == 16000, f"{path}: {rate} Hz"
    return wave.mean(axis=1).astype(np.float32)


if not has_av:
    print("PyAV is not installed: sampling runs completely but writes no video (frames are counted), "
          "and reads the wav speech with soundfile")
    for target in ("styletalker_core.sample.engine.VideoSet",):
        mock.patch(target, CountingVideos).start()
    for module in ("styletalker_core.media", "styletalker_core.media.audio", "bench_sampling",
                   "styletalker_core.sample.engine"):
        with contextlib.suppress(AttributeError, ModuleNotFoundError):
            mock.patch(f"{module}.read_audio", read_wav).start()
started = time.perf_counter()
sampler = Sampler.from_checkpoint(require_default_model(), get_registries(), device=device)
loaded = time.perf_counter() - started
reference = reference_image(folder, sampler.head.resolution)
settings = sampler.settings(align=False, seed=0)
sampler.run(SampleJob(reference, write_speech(folder / "warmup.wav", 1.0), folder / "warmup.mp4", settings=settings),
            overwrite=True)
out = folder / "sample.mp4"
result = sampler.run(SampleJob(reference, write_speech(folder / "speech.wav", 20.0), out, settings=settings),
                     overwrite=True)
numbers = {"device": device, "gpu": torch.cuda.get_device_name(0) if device == "cuda" else None,
           "frames": result.num_frames, "seconds": result.seconds, "frames_per_s": result.num_frames / result.seconds,
           "load_seconds": loaded, "video_written": has_av}
if has_av:
    from styletalker_core.media import probe_video

    numbers["video"] = str(probe_video(out))
print(json.dumps(numbers))
report.write_text(json.dumps(numbers))
EOF
}
part "sampling the shipped model ($SAMPLE_DEVICE)" 90 sampling

"$PY" - "$OUT_DIR" "$CUDA" "$(($(date +%s) - START))" <<'EOF' | tee -a "$LOG"
import json, sys
from pathlib import Path

out, cuda, seconds = Path(sys.argv[1]), sys.argv[2] == "1", int(sys.argv[3])
parts = [dict(zip(("part", "status", "seconds"), line.split("\t"))) for line in (out / ".parts.tsv").read_text().splitlines()]
skipped = [] if cuda else [
    "pytest -m cuda: every test in tests/test_cuda.py skipped (no CUDA device)",
    "StyleGAN2 / StyleGAN3-T / StyleGAN3-R at 256 px, batch 1/8/32, float32/bfloat16 on CUDA",
    "a few steps of each training stage (render, encoder, lipsync, main, prior) on CUDA in fp32/bf16",
    "sampling the shipped model on CUDA",
]
summary = {"cuda": cuda, "seconds": seconds, "parts": parts, "skipped_cuda_parts": skipped}
for name in ("generators", "training"):
    path = out / f"{name}.json"
    if path.is_file():
        data = json.loads(path.read_text())
        summary[name] = {"peaks": data.get("peaks"), "rows": data.get("rows") or [
            {"config": c["config"], **{k: r[k] for k in ("batch", "dtype", "frames_per_s") if k in r}}
            for c in data.get("configs", []) for r in c["rows"]], "ratios": data.get("ratios")}
sampling = out / ".sampling.json"
if sampling.is_file():
    summary["sampling"] = json.loads(sampling.read_text())
(out / "gpu_check.json").write_text(json.dumps(summary, indent=2) + "\n")
lines = ["# GPU check", "", f"CUDA: {'yes' if cuda else 'no'}; {seconds} s in all.", "",
         "| part | status | seconds |", "|---|---|---|"]
lines += [f"| {p['part']} | {p['status']} | {p['seconds']} |" for p in parts]
if "sampling" in summary:
    s = summary["sampling"]
    lines += ["", f"Sampling on {s['device']}: {s['frames']} frames in {s['seconds']:.2f} s = {s['frames_per_s']:.0f} frames/s"
              + ("." if s["video_written"] else " (PyAV missing: no video written, frames counted).")]
if skipped:
    lines += ["", "Skipped (no CUDA on this machine):", ""] + [f"- {item}" for item in skipped]
lines += ["", "Details: generators.md, training.md, gpu_check.log."]
(out / "gpu_check.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
EOF
if grep -q -P '\t(failed|timed out)' "$PARTS"; then
    rm -f "$PARTS" "$OUT_DIR/.sampling.json"
    exit 1
fi
rm -f "$PARTS" "$OUT_DIR/.sampling.json"
exit 0
