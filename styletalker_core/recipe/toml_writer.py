"""A small TOML writer for resolved recipes (tomllib only reads)."""

from __future__ import annotations

import json
import math
from typing import Any


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # JSON string escapes are valid TOML basic-string escapes
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_scalar(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_scalar(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {type(value).__name__} {value!r} as TOML")


def _key(key: str) -> str:
    bare = key.replace("_", "").replace("-", "").isalnum()
    return key if bare else json.dumps(key)


def _is_table_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(item, dict) for item in value)


def _write_table(table: dict[str, Any], prefix: str, lines: list[str]) -> None:
    plain = {k: v for k, v in table.items() if v is not None and not isinstance(v, dict) and not _is_table_list(v)}
    for key, value in plain.items():
        lines.append(f"{_key(key)} = {_scalar(value)}")
    for key, value in table.items():
        name = f"{prefix}.{_key(key)}" if prefix else _key(key)
        if isinstance(value, dict):
            lines.append("")
            lines.append(f"[{name}]")
            _write_table(value, name, lines)
        elif _is_table_list(value):
            for item in value:
                lines.append("")
                lines.append(f"[[{name}]]")
                _write_table(item, name, lines)


def dumps(data: dict[str, Any]) -> str:
    """``data`` as TOML text. None values are omitted (TOML has no null)."""
    lines: list[str] = []
    _write_table(data, "", lines)
    return "\n".join(lines).lstrip("\n") + "\n"
