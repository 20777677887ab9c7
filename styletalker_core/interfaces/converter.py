"""Importers of published checkpoint formats (kind ``converter``)."""

from __future__ import annotations

import abc
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import torch
from torch import nn

if TYPE_CHECKING:
    from styletalker_core.checkpoint.convert import KeyTable


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
