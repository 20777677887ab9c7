"""A small TOML writer for resolved recipes (tomllib only reads)."""

from __future__ import annotations

import math
import string
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
        return _string(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_scalar(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_scalar(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {type(value).__name__} {value!r} as TOML")


_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}
_BARE_KEY_CHARACTERS = frozenset(string.ascii_letters + string.digits + "_-")


def _string(text: str) -> str:
    """A TOML basic string. Unlike JSON, TOML allows any character except quote, backslash
    and control characters (which are escaped); surrogate-pair escapes are not valid TOML."""
    escaped = (
        _ESCAPES.get(c) or (f"\\u{ord(c):04x}" if ord(c) < 0x20 or ord(c) == 0x7F else c) for c in text
    )
    return '"' + "".join(escaped) + '"'


def _key(key: str) -> str:
    bare = bool(key) and set(key) <= _BARE_KEY_CHARACTERS
    return key if bare else _string(key)


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
