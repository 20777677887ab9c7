"""Install a package into a temporary site directory as pip would, with a ``.dist-info`` that
declares its plugin module in the ``styletalker.plugins`` entry-point group (the ``site``
fixture of conftest.py gives each test such a directory on sys.path); run pytest on such a
package in a subprocess (``run_pytest``)."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from styletalker_core.plugin_host import ENTRY_POINT_GROUP


def install_fake_distribution(
    site: Path, dist_name: str, version: str, module: str, files: dict[str, str], entry_point: str = "main"
) -> None:
    """Write package ``module`` with ``files`` and a ``<dist>-<version>.dist-info`` declaring
    ``<module>.plugin`` in the styletalker.plugins entry-point group, as pip would."""
    package = site / module
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    for filename, text in files.items():
        (package / filename).write_text(textwrap.dedent(text))
    info = site / f"{dist_name.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist_name}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{entry_point} = {module}.plugin\n")
    (info / "top_level.txt").write_text(module + "\n")


PYTEST_PLUGIN = "styletalker_core.testing.pytest_plugin"


def run_pytest(arguments: list[str], folder: Path, pythonpath: list[Path]) -> subprocess.CompletedProcess[str]:
    """``python -m pytest <arguments> -v`` in ``folder`` with ``pythonpath`` first on PYTHONPATH, as a
    third party would run the contracts on a package (installed there, or only importable)."""
    declared = {ep.value for ep in importlib.metadata.entry_points(group="pytest11")}
    # an editable install made before the pytest11 entry point existed does not declare it yet
    load = [] if PYTEST_PLUGIN in declared else ["-p", PYTEST_PLUGIN]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([*map(str, pythonpath), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1", "STYLETALKER_PROGRESS": "0", "COLUMNS": "200"}
    command = [sys.executable, "-m", "pytest", *load, *arguments, "-v", "-p", "no:cacheprovider"]
    return subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=600)
