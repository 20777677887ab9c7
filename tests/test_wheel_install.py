"""A wheel of the project works outside the checkout.

The wheel is built from a copy of the source tree and installed, without dependencies, into a fresh
virtual environment. The third-party packages come from this environment's site-packages through a
path line in a .pth file, which does not run this environment's editable-install hook, so
``styletalker_core`` can only come from the wheel. From an empty folder, ``styletalker demo`` must
find the shipped model and assets, and ``styletalker recipes`` the shipped recipes, in the wheel's
package data (``styletalker_shipped``); relative paths in a shipped recipe resolve to shipped files.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile
from PIL import Image

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
# What the build reads: the metadata, package discovery, the code and the shipped files.
SOURCES = ("pyproject.toml", "setup.py", "README.md", "styletalker_core", "plugins", "checkpoints", "recipes", "assets")
SHIPPED = ("checkpoints/synthetic_64_model.safetensors", "checkpoints/synthetic_64_domain.safetensors",
           "checkpoints/lipsync_judge.safetensors", "recipes/synthetic_64.toml", "assets/reference.png",
           "assets/speech.wav", "assets/motion.mp4")
FPS = 25


def run(command: list[str | Path], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``command`` offline, without this checkout on the path; fail with its output."""
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INDEX="1", OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    result = subprocess.run([str(part) for part in command], cwd=cwd, env=env, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, f"{command} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's wheel, built from a copy of the source tree (the build writes build/ and
    *.egg-info next to its sources; the checkout stays untouched)."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "src"
    source.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "build", "*.tmp")
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=ignore)
        else:
            shutil.copy2(ROOT / name, source / name)
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", work / "dist", source])
    [built] = (work / "dist").glob("styletalker-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment holding the wheel; the dependencies are this environment's."""
    folder = tmp_path_factory.mktemp("venv") / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", folder])
    python = folder / "bin" / "python"
    run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", wheel])
    site = Path(run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    (site / "_styletalker_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return folder


def test_the_wheel_holds_the_code_and_the_shipped_files(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = {path.relative_to(ROOT).as_posix() for path in (ROOT / "styletalker_core").rglob("*.py")}
    plugins = {path.relative_to(ROOT / "plugins").as_posix() for path in (ROOT / "plugins").rglob("*.py")}
    assert modules <= names and plugins <= names
    assert {f"styletalker_shipped/{path}" for path in SHIPPED} <= names
    recipes = {f"styletalker_shipped/recipes/{path.name}" for path in (ROOT / "recipes").glob("*.toml")}
    assert recipes <= names
    # the data package holds the shipped folders only, not the project folder's own files
    assert {name.split("/")[1] for name in names if name.startswith("styletalker_shipped/")} == {
        "checkpoints", "recipes", "assets"}
    shipped = zipfile.ZipFile(wheel).read("styletalker_shipped/checkpoints/synthetic_64_model.safetensors")
    assert shipped[:8] == (ROOT / "checkpoints" / "synthetic_64_model.safetensors").read_bytes()[:8]


def test_the_code_and_the_shipped_files_come_from_the_wheel(venv, tmp_path):
    out = run([venv / "bin" / "python", "-c", "import styletalker_core, styletalker_core.paths as p; "
               "print(styletalker_core.__file__); print(p.SHIPPED_ROOT)"], cwd=tmp_path).stdout.split()
    code, shipped = (Path(line).resolve() for line in out)
    assert venv.resolve() in code.parents
    assert venv.resolve() in shipped.parents and shipped.name == "styletalker_shipped"
    assert (shipped / "checkpoints" / "synthetic_64_model.safetensors").is_file()


def test_demo_runs_in_an_empty_folder(venv, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    run([venv / "bin" / "styletalker", "demo", "--no-progress"], cwd=empty)
    assert sorted(path.name for path in (empty / "out").iterdir()) == ["demo.mp4", "demo_motion.mp4", "demo_strip.png"]
    speech_seconds = soundfile.info(str(ROOT / "assets" / "speech.wav")).duration
    for name in ("demo.mp4", "demo_motion.mp4"):
        with av.open(str(empty / "out" / name)) as container:
            assert len(container.streams.audio) == 1
            frames = np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)])
        assert frames.shape[1:] == (64, 64, 3)  # the shipped model's resolution
        assert abs(len(frames) - speech_seconds * FPS) <= 1  # one frame per 40 ms of the speech
        assert frames.std(axis=0).mean() > 1.0  # the face moves: not one frame repeated
    with Image.open(empty / "out" / "demo_strip.png") as strip:
        assert strip.width > 64 and strip.height > 64


def test_shipped_recipes_by_name_from_an_empty_folder(venv, tmp_path):
    styletalker = venv / "bin" / "styletalker"
    listed = run([styletalker, "recipes", "list"], cwd=tmp_path).stdout
    line = next(row for row in listed.splitlines() if row.startswith("synthetic_64 "))
    assert str(venv.resolve()) in line and line.rstrip().endswith("styletalker_shipped/recipes/synthetic_64.toml")
    assert "ok  synthetic_64" in run([styletalker, "recipes", "validate", "synthetic_64"], cwd=tmp_path).stdout
    shown = run([styletalker, "recipes", "show", "synthetic_64"], cwd=tmp_path).stdout
    # a shipped recipe's relative weights resolve to the shipped checkpoint in the package data
    weights = [line.split("=", 1)[1].strip().strip('"') for line in shown.splitlines() if line.startswith("weights =")]
    assert weights and all(Path(path).is_file() and venv.resolve() in Path(path).resolve().parents for path in weights)
    assert any(path.endswith("styletalker_shipped/checkpoints/synthetic_64_domain.safetensors") for path in weights)
