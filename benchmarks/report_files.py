"""Where a benchmark's report goes: one JSON file (every number) and one Markdown table."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path


def write_report(report: dict, out: Path, name: str, format_markdown: Callable[[dict], str]) -> tuple[Path, Path]:
    """Write ``out/<name>.json`` and ``out/<name>.md`` (from ``format_markdown``) -> their paths."""
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / f"{name}.json", out / f"{name}.md"
    json_path.write_text(json.dumps(report, indent=2, default=str) + "\n")
    md_path.write_text(format_markdown(report))
    return json_path, md_path
