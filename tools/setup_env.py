"""Create and fill the project's virtual environment (.venv); run by `make demo` and `make test`.

Idempotent: a stamp file records a hash of everything that decides what gets installed,
so a second run returns in well under a second.

What it does on a machine without CUDA:
  1. pins torch to the CPU wheel 2.13.0 through a pip constraint file, so no dependency
     can pull a CUDA build of torch (several GB);
  2. installs the project (editable) with its dependencies and the test tools;
  3. makes torchaudio 2.11.0 usable: that release is a CUDA build whose compiled
     extension cannot load next to a CPU torch. Its pure-Python parts (MelSpectrogram,
     resample, the wav2vec2/HuBERT models) do not need it, so the compiled libraries are
     moved aside into torchaudio/lib/cuda-only/, where torchaudio's loader does not look.
On a machine with CUDA (nvidia-smi works), the user's torch is kept and nothing is moved.
  4. installs Debian's Chromium (apt-get install chromium chromium-driver) when
     /usr/bin/chromium is missing and apt-get exists: tests/test_app_browser.py drives it.
     Checked on every run (one file lookup), so a second run stays instant.

Only the standard library is used: this runs before the venv exists.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
PYTHON = VENV / "bin" / "python"
STAMP = VENV / ".styletalker-setup"
CONSTRAINTS = VENV / "constraints.txt"
CPU_TORCH = "torch==2.13.0"
INPUTS = [ROOT / "pyproject.toml", ROOT / "setup.py", Path(__file__).resolve()]


def say(message: str) -> None:
    print(f"[setup] {message}", flush=True)


def has_cuda() -> bool:
    nvidia_smi = shutil.which("nvidia-smi")
    if nvidia_smi is None:
        return False
    return subprocess.run([nvidia_smi], capture_output=True).returncode == 0


CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_PACKAGES = ("chromium", "chromium-driver")


def ensure_chromium() -> None:
    """apt-get install Debian's chromium for the browser tests when it is missing (root, or sudo
    without a password); where that cannot be done the browser tests skip and say why."""
    if CHROMIUM.exists():
        return
    apt = shutil.which("apt-get")
    if apt is None:
        say(f"{CHROMIUM} is missing and there is no apt-get: the browser tests (tests/test_app_browser.py) will skip")
        return
    prefix: list[str] = []
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        sudo = shutil.which("sudo")
        if sudo is None or subprocess.run([sudo, "-n", "true"], capture_output=True).returncode != 0:
            say(f"{CHROMIUM} is missing and apt-get needs root: run `sudo apt-get install -y {' '.join(CHROMIUM_PACKAGES)}` "
                "for the browser tests (tests/test_app_browser.py fails without it)")
            return
        prefix = [sudo, "-n"]
    say(f"installing Debian's chromium for the browser tests: apt-get install {' '.join(CHROMIUM_PACKAGES)}")
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in ([apt, "update", "-qq"], [apt, "install", "-y", "-qq", "--no-install-recommends", *CHROMIUM_PACKAGES]):
        done = subprocess.run([*prefix, *command], env=environment, capture_output=True, text=True)
        if done.returncode != 0:
            say(f"`{' '.join(command)}` failed (exit {done.returncode}): {done.stderr.strip()[-500:]}; "
                "the browser tests will fail until chromium is installed")
            return


def fingerprint(cuda: bool) -> str:
    digest = hashlib.sha256(f"cuda={cuda}".encode())
    for path in INPUTS:
        digest.update(path.read_bytes())
    return digest.hexdigest()


def pip(*args: str) -> None:
    command = [str(PYTHON), "-m", "pip", "install", "--quiet", *args]
    say("pip install " + " ".join(args))
    subprocess.run(command, check=True)


def torchaudio_loads() -> subprocess.CompletedProcess:
    return subprocess.run([str(PYTHON), "-c", "import torchaudio"], capture_output=True, text=True)


def make_torchaudio_usable_on_cpu() -> None:
    """Move torchaudio's CUDA-linked compiled extension aside if it cannot load."""
    probe = torchaudio_loads()
    if probe.returncode == 0:
        say("torchaudio imports as installed; nothing to change")
        return
    location = subprocess.run(
        [str(PYTHON), "-c", "import importlib.util as u; print(u.find_spec('torchaudio').submodule_search_locations[0])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    lib_dir = Path(location) / "lib"
    aside = lib_dir / "cuda-only"
    aside.mkdir(exist_ok=True)
    moved = []
    for library in sorted(lib_dir.glob("*.so")):
        library.rename(aside / library.name)
        moved.append(library.name)
    say(
        "torchaudio 2.11.0 is a CUDA build and its compiled extension does not load with CPU torch; "
        f"moved {', '.join(moved) or 'nothing'} to {aside} so its pure-Python parts "
        "(MelSpectrogram, resample, wav2vec2/HuBERT models) import and run on the CPU"
    )
    probe = torchaudio_loads()
    if probe.returncode != 0:
        raise SystemExit(f"[setup] torchaudio still fails to import:\n{probe.stderr}")


def main() -> None:
    ensure_chromium()
    cuda = has_cuda()
    expected = fingerprint(cuda)
    if STAMP.exists() and STAMP.read_text() == expected and PYTHON.exists():
        return
    if not PYTHON.exists():
        say(f"creating {VENV}")
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    os.environ.setdefault("PIP_DISABLE_PIP_VERSION_CHECK", "1")
    if cuda:
        say("CUDA found: keeping whatever torch is installed (or letting pip choose a CUDA build)")
        pip("-e", f"{ROOT}[test]")
    else:
        say(f"no CUDA: pinning {CPU_TORCH} (CPU wheel) with a pip constraint")
        CONSTRAINTS.write_text(CPU_TORCH + "\n")
        pip(CPU_TORCH)
        pip("-c", str(CONSTRAINTS), "-e", f"{ROOT}[test]")
        make_torchaudio_usable_on_cpu()
    STAMP.write_text(expected)
    say("environment ready")


if __name__ == "__main__":
    main()
