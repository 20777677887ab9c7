"""Conversion of published checkpoints into styletalker checkpoints.

A converter (kind ``converter``, interface :class:`styletalker_core.interfaces.Converter`)
reads a foreign file into :class:`~styletalker_core.interfaces.ComponentSource` records:
which component to build, with which options, the source tensors, and a :class:`KeyTable`.
This module does the rest, the same way for every format:

1. build the component through the registries;
2. map the source tensors onto its state dict with the table: every source key must be
   used (renamed, or dropped for a stated reason), every destination key filled, every
   shape must match; otherwise one error lists all leftovers;
3. load the weights, run the source's ``finalize`` hook, and write a normal styletalker
   checkpoint (:func:`~styletalker_core.checkpoint.save_checkpoint`) that
   :func:`~styletalker_core.checkpoint.load_checkpoint` rebuilds.

Key tables (:class:`~styletalker_core.interfaces.converter.KeyTable` and its rules
:class:`Rename`, :class:`Drop`, :class:`Computed`) are declared in the converter interface
module, which documents their pattern syntax; this module applies them.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from styletalker_core.checkpoint.format import load_state_strict, save_checkpoint
from styletalker_core.errors import CheckpointError
from styletalker_core.interfaces.converter import ComponentSource, Computed, Converter, Drop, KeyTable, Rename
from styletalker_core.registry.components import ComponentSpec, build_component
from styletalker_core.registry.registry import Registries

__all__ = [
    "ComponentSource",
    "ConversionError",
    "Converter",
    "Computed",
    "Drop",
    "KeyTable",
    "Rename",
    "convert_checkpoint",
    "find_converter",
    "map_state",
    "read_components",
]

logger = logging.getLogger(__name__)

class ConversionError(CheckpointError):
    """A source file whose keys or shapes do not fit the component it should become."""


def _compile(pattern: str) -> re.Pattern[str]:
    """'a.{i}.b{rest}' -> regex with digit groups, and text groups for names 'rest' or '*_path'."""
    parts = re.split(r"\{(\w+)\}", pattern)
    regex = ""
    for index, part in enumerate(parts):
        if index % 2 == 0:
            regex += re.escape(part)
        elif part == "rest" or part.endswith("_path"):
            regex += f"(?P<{part}>.+)"
        else:
            regex += f"(?P<{part}>\\d+)"
    return re.compile(regex + r"\Z")


def _groups(match: re.Match[str]) -> dict[str, Any]:
    return {k: (v if k == "rest" or k.endswith("_path") else int(v)) for k, v in match.groupdict().items()}


def _listing(keys: Sequence[str], limit: int = 12) -> str:
    keys = sorted(keys)
    return ", ".join(keys[:limit]) + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def map_state(
    tensors: dict[str, torch.Tensor],
    table: KeyTable,
    expected: dict[str, torch.Size],
    source: str,
) -> tuple[dict[str, torch.Tensor], set[str]]:
    """Apply ``table`` to source ``tensors``; ``expected`` is the destination state dict's shapes.

    Returns the destination tensors and the destination keys left to ``finalize``. Raises
    one ConversionError listing unused source keys, unfilled or unknown destination keys,
    keys filled twice, failed checks and shape mismatches.
    """
    compiled = [(rule, _compile(rule.source if not isinstance(rule, Computed) else rule.destination)) for rule in table.rules]
    mapped: dict[str, torch.Tensor] = {}
    origin: dict[str, str] = {}
    unused, unknown, twice, failed, mis_shaped = [], [], [], [], []
    for key, tensor in tensors.items():
        for rule, regex in compiled:
            if isinstance(rule, Computed):
                continue
            match = regex.match(key)
            if match is None:
                continue
            groups = _groups(match)
            if isinstance(rule, Drop):
                if rule.check is not None and not rule.check(tensor, groups):
                    failed.append(f"{key} ({rule.reason}, but its value differs)")
                break
            target = rule.target(groups)
            value = rule.transform(tensor) if rule.transform is not None else tensor
            if target not in expected:
                unknown.append(f"{key} -> {target}")
            elif target in mapped:
                twice.append(f"{target} (from {origin[target]} and {key})")
            elif tuple(value.shape) != tuple(expected[target]):
                mis_shaped.append(f"{key} {tuple(value.shape)} -> {target} {tuple(expected[target])}")
            else:
                mapped[target] = value
                origin[target] = key
            break
        else:
            unused.append(key)
    computed_rules = [regex for rule, regex in compiled if isinstance(rule, Computed)]
    computed = {key for key in expected if key not in mapped and any(r.match(key) for r in computed_rules)}
    unfilled = [key for key in expected if key not in mapped and key not in computed]
    problems = []
    if unused:
        problems.append(f"{len(unused)} source keys not used: {_listing(unused)}")
    if unfilled:
        problems.append(f"{len(unfilled)} destination keys not filled: {_listing(unfilled)}")
    if unknown:
        problems.append(f"keys mapped to names the component does not have: {_listing(unknown)}")
    if twice:
        problems.append(f"destination keys filled twice: {_listing(twice)}")
    if failed:
        problems.append(f"unexpected values: {_listing(failed)}")
    if mis_shaped:
        problems.append(f"shape mismatches: {_listing(mis_shaped)}")
    if problems:
        raise ConversionError(f"{source}: cannot convert; " + "; ".join(problems))
    return mapped, computed


def find_converter(path: Path, registries: Registries, format_name: str | None = None) -> tuple[str, Converter]:
    """The converter named ``format_name``, or the one registered converter that detects ``path``."""
    registry = registries["converter"]
    if format_name is not None:
        return format_name, build_component(registries, "converter", ComponentSpec(format_name))
    matches = []
    for entry in registry:
        # through build_component: a converter's nested converters are built from these registries
        converter = build_component(registries, "converter", ComponentSpec(entry.name))
        if converter.detect(path):
            matches.append((entry.name, converter))
    if len(matches) == 1:
        return matches[0]
    names = ", ".join(registry.names()) or "none registered"
    if not matches:
        raise CheckpointError(f"{path}: not a checkpoint format styletalker can convert (formats: {names}); "
                              "pass --format if you know which one it is")
    raise CheckpointError(f"{path}: matches several formats ({', '.join(n for n, _ in matches)}); choose one with --format")


def read_components(
    path: str | Path,
    registries: Registries,
    format_name: str | None = None,
    roles: Sequence[str] | None = None,
) -> dict[str, torch.nn.Module]:
    """Convert ``path`` in memory: role -> built module with the converted weights loaded; every
    converter and component is built from ``registries``."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    name, converter = find_converter(path, registries, format_name)
    sources = converter.read(path)
    if roles is not None:
        missing = [r for r in roles if r not in {s.role for s in sources}]
        if missing:
            raise CheckpointError(f"{path}: holds {', '.join(s.role for s in sources)}, not {', '.join(missing)}")
        sources = [s for s in sources if s.role in roles]
    modules = {}
    for component in sources:
        spec = ComponentSpec(component.name, dict(component.options))
        module = build_component(registries, component.kind, spec)
        expected = {key: value.shape for key, value in module.state_dict().items()}
        state, computed = map_state(component.tensors, component.table, expected, f"{path} [{component.role}]")
        own = module.state_dict()
        for key in computed:
            state[key] = own[key]
        state = {key: value.to(own[key].dtype) for key, value in state.items()}
        load_state_strict(module, state, f"{path} [{component.role}]")
        if component.finalize is not None:
            component.finalize(module)
        elif computed:
            raise ConversionError(f"{path} [{component.role}]: keys {_listing(sorted(computed))} need a finalize step")
        module.conversion_notes = dict(component.notes, format=name)
        modules[component.role] = module
    return modules


def convert_checkpoint(
    source: str | Path,
    destination: str | Path,
    format_name: str | None = None,
    registries: Registries | None = None,
    roles: Sequence[str] | None = None,
    dtype: torch.dtype | None = None,
) -> Path:
    """Convert the published checkpoint ``source`` into the styletalker checkpoint ``destination``.

    ``format_name`` picks the converter (default: the one that recognises the file);
    ``roles`` keeps only some components (for example ["generator"]); ``dtype`` stores
    floating-point weights in another precision. Returns the written path.

    ``registries`` builds the converters and components; None (a convenience for scripts, this
    being the documented entry point) means the installed plugins' registries.
    """
    if registries is None:
        from styletalker_core.plugin_host import get_registries

        registries = get_registries()
    modules = read_components(source, registries, format_name, roles)
    notes = {role: getattr(module, "conversion_notes", {}) for role, module in modules.items()}
    extra = {"converted_from": Path(source).name, "conversion": notes}
    path = save_checkpoint(destination, modules, extra=extra, dtype=dtype)
    logger.info("converted %s into %s (%s)", source, path, ", ".join(modules))
    return path
