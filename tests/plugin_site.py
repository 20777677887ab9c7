"""Install a package into a temporary site directory as pip would, with a ``.dist-info`` that
declares its plugin module in the ``styletalker.plugins`` entry-point group (the ``site``
fixture of conftest.py gives each test such a directory on sys.path)."""

from __future__ import annotations

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
