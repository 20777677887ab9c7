#!/usr/bin/env bash
# Download the project's non-torch dependencies as wheels, to carry to a GPU machine without network
# (docs/gpu.md; tools/gpu_check.sh installs them with pip --no-index):
#   tools/make_gpu_wheels.sh [DIR]          # default DIR: .whl
# The wheels are for the GPU machine's Python (PYVER, default 3.12) on x86-64 Linux (manylinux), one
# version of each package (the versions of this checkout's .venv when it has them, so both machines
# run the same code), without their dependencies (--no-deps: torch, numpy, pillow, matplotlib, tqdm,
# pluggy, einops and safetensors come with a CUDA PyTorch image; add them with EXTRA="name ..." when
# the machine lacks them).
# Default set: what sampling, training, the benchmarks and the tests import beyond such an image
# (cattrs, attrs, typing-extensions, kornia, kornia-rs, av, soundfile, cffi, pycparser,
# espeakng-loader; pytest, pytest-benchmark and hypothesis come with such an image too): about 45 MB, inside the device tool's 64 MiB.
# SET=device: without av (34 MB) and espeakng-loader (10 MB), about 9 MB: what fits beside this
# checkout (about 52 MiB) in the device tool's 64 MiB per call; tools/gpu_check.sh then samples without
# writing video and skips the training part (its synthetic clips need eSpeak's speech).
# LARGE=1 adds dlib-bin and face-recognition-models (real-video preprocessing and face metrics only;
# the latter is a 100 MB source package built into a wheel here): too large to carry with the tool.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="${1:-$ROOT/.whl}"
PYVER="${PYVER:-3.12}"
PACKAGES="cattrs attrs typing-extensions kornia kornia-rs soundfile cffi pycparser ${EXTRA:-}"
if [ "${SET:-full}" != device ]; then PACKAGES="$PACKAGES av espeakng-loader"; fi
LARGE_PACKAGES="dlib-bin face-recognition-models"
PLATFORMS=(manylinux_2_39_x86_64 manylinux_2_35_x86_64 manylinux_2_34_x86_64 manylinux_2_31_x86_64
           manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_24_x86_64 manylinux_2_17_x86_64
           manylinux2014_x86_64 manylinux1_x86_64)
PIP="${PIP:-}"
if [ -z "$PIP" ]; then
    if [ -x "$ROOT/.venv/bin/python" ]; then PIP="$ROOT/.venv/bin/python -m pip"; else PIP="python3 -m pip"; fi
fi

# name==version as installed in .venv (else the newest release)
pinned() {
    local name="$1" version=""
    if [ -x "$ROOT/.venv/bin/python" ]; then
        version="$("$ROOT/.venv/bin/python" -c "import importlib.metadata as m, sys
try: print(m.version(sys.argv[1]))
except m.PackageNotFoundError: pass" "$name")"
    fi
    if [ -n "$version" ]; then echo "$name==$version"; else echo "$name"; fi
}

mkdir -p "$DEST"
platform_args=()
for p in "${PLATFORMS[@]}"; do platform_args+=(--platform "$p"); done
for name in $PACKAGES; do
    spec="$(pinned "$name")"
    echo "wheel: $spec"
    $PIP download -q --no-deps --only-binary=:all: --python-version "$PYVER" --implementation cp \
        "${platform_args[@]}" -d "$DEST" "$spec" \
        || $PIP download -q --no-deps --only-binary=:all: --python-version "$PYVER" --implementation cp \
            "${platform_args[@]}" -d "$DEST" "$name"  # the pinned version has no wheel for that Python
done
if [ "${LARGE:-0}" = 1 ]; then
    for name in $LARGE_PACKAGES; do
        spec="$(pinned "$name")"
        echo "wheel (large): $spec"
        if ! $PIP download -q --no-deps --only-binary=:all: --python-version "$PYVER" --implementation cp \
            "${platform_args[@]}" -d "$DEST" "$spec" 2>/dev/null; then
            $PIP wheel -q --no-deps -w "$DEST" "$spec"  # source only (face-recognition-models): a pure-Python wheel
        fi
    done
fi
echo
ls -l "$DEST"/*.whl | awk '{ printf "%8.1f MB  %s\n", $5 / 1048576, $NF }'
total=$(du -cm "$DEST"/*.whl | tail -1 | cut -f1)
echo "total: ${total} MB in $DEST"
if [ "$total" -gt 60 ]; then
    echo "note: over the device tool's 64 MiB per call together with the checkout; leave LARGE unset" >&2
fi
