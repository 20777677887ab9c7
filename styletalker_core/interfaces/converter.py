"""Importers of published checkpoint formats (kind ``converter``), and the key tables they declare.

Key tables are declarative. Patterns name layer numbers with placeholders: ``{i}`` matches
digits and is passed on as an int, so ``Rename("style.{i}.weight", lambda g:
f"mapping.fc{g['i'] - 1}.weight")`` maps a whole family of keys, and
``Rename("mapping.{rest}", "mapping_network.{rest}")`` with ``{rest}`` (any text, named
``rest`` or ending in ``_path``) maps a subtree. :func:`styletalker_core.checkpoint.convert.map_state`
applies a table.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs
import torch
from torch import nn

Destination = str | Callable[[dict[str, Any]], str]
Transform = Callable[[torch.Tensor], torch.Tensor]


@attrs.frozen
class Rename:
    """Source keys matching ``source`` become ``destination`` (a pattern filled with the
    matched placeholders, or a function of them), optionally through ``transform``."""

    source: str
    destination: Destination
    transform: Transform | None = None

    def target(self, groups: dict[str, Any]) -> str:
        return self.destination(groups) if callable(self.destination) else self.destination.format(**groups)


@attrs.frozen
class Drop:
    """Source keys matching ``source`` are intentionally not carried over, for ``reason``
    (derived buffers, optimizer state). ``check(tensor, groups)`` may verify the value is the
    one the destination derives by itself; a failed check is a conversion error."""

    source: str
    reason: str
    check: Callable[[torch.Tensor, dict[str, Any]], bool] | None = None


@attrs.frozen
class Computed:
    """Destination keys matching ``destination`` are filled after loading by the source's
    ``finalize`` hook (for values the file does not hold)."""

    destination: str
    reason: str


Rule = Rename | Drop | Computed


@attrs.frozen(init=False)  # its own __init__ takes any sequence of rules
class KeyTable:
    """An ordered list of rules; the first rule whose source pattern matches a key applies."""

    rules: tuple[Rule, ...]

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.__attrs_init__(tuple(rules))


@attrs.define
class ComponentSource:
    """One component found in a published checkpoint, ready to become a styletalker component.

    ``kind``/``name``/``options`` say which registered implementation to build (options are
    JSON values: they are recorded in the converted checkpoint). ``tensors`` are the source
    tensors under their original names; ``table`` maps every one of them onto the built
    module's state dict. ``finalize`` (optional) runs on the loaded module, for values the
    source lacks and that the table marks as computed.
    """

    role: str
    kind: str
    name: str
    options: dict[str, Any]
    tensors: dict[str, torch.Tensor]
    table: KeyTable
    finalize: Callable[[nn.Module], None] | None = None
    notes: dict[str, Any] = attrs.field(factory=dict)


class Converter(abc.ABC):
    """Reads one published checkpoint format; registered under the format's name.

    ``detect`` must be cheap and must never execute anything from the file; ``read`` returns
    the components the file holds. The framework in :mod:`styletalker_core.checkpoint.convert`
    builds each component, maps its tensors with the table (every source key used, every
    destination key filled) and writes a styletalker checkpoint.
    """

    #: One line for ``styletalker convert --help`` and listings.
    description: str = ""

    @abc.abstractmethod
    def detect(self, path: Path) -> bool:
        """True when ``path`` looks like this format."""

    @abc.abstractmethod
    def read(self, path: Path) -> list[ComponentSource]:
        """The components in ``path``; raise CheckpointError (one line) when it cannot."""
