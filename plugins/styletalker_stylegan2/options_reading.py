"""Turning the recorded constructor arguments of a published network into plugin options."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from styletalker_core.checkpoint.convert import ConversionError

MISSING = object()


def plain(value: Any) -> Any:
    """JSON-friendly copy: tuples become lists, dict subclasses plain dicts."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def read_options(
    kwargs: Mapping[str, Any],
    source: str,
    rename: Mapping[str, tuple[str, Any]],
    ignored: frozenset[str] = frozenset(),
    required: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Map recorded kwargs to options.

    ``rename``: source key -> (option name, default when absent; MISSING means the key must
    be present). ``ignored``: keys that do not change the computation (fp16 settings ...).
    ``required``: keys that must have a given value when present (an architecture variant
    the plugin does not implement is an error, not silently different images).
    """
    options: dict[str, Any] = {}
    problems = []
    for key, expected in (required or {}).items():
        if key in kwargs and plain(kwargs[key]) != plain(expected) and kwargs[key] is not None:
            problems.append(f"{key}={kwargs[key]!r} (only {expected!r} is supported)")
    for key, (option, default) in rename.items():
        if key in kwargs:
            options[option] = plain(kwargs[key])
        elif default is MISSING:
            problems.append(f"{key} is not recorded")
        else:
            options[option] = default
    unknown = sorted(set(kwargs) - set(rename) - set(ignored) - set(required or {}))
    if unknown:
        problems.append("unsupported settings " + ", ".join(f"{k}={kwargs[k]!r}" for k in unknown))
    if problems:
        raise ConversionError(f"{source}: " + "; ".join(problems))
    return options
