"""A restricted unpickler for published pickle checkpoints (NVlabs .pkl and similar).

Python's pickle can call any importable function while loading, so a pickle from the
internet can run code. This unpickler resolves a global only if it is in an explicit
allow-list mapping ``(module, name)`` to a safe stand-in; anything else (``os.system``,
``builtins.eval``, a class from the pickle's embedded source code) raises
:class:`UnsafePickleError` before it is called. Nothing from the pickle is imported.

Converters extend the allow-list with stand-ins for their format (for example NVlabs'
``torch_utils.persistence._reconstruct_persistent_obj`` becomes a function that returns a
plain record of the object's state, ignoring the source code stored with it).
"""

from __future__ import annotations

import collections
import io
import pickle
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, BinaryIO

import torch

from styletalker_core.errors import CheckpointError


class UnsafePickleError(CheckpointError):
    """The pickle asked for a global outside the allow-list; nothing was executed."""


def _load_storage_from_bytes(data: bytes) -> Any:
    # A storage pickled by plain pickle is a torch.save archive in bytes; read it with the
    # weights-only loader so no further globals can be resolved from inside it.
    return torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")


def _rebuild_parameter(data: torch.Tensor, requires_grad: bool, backward_hooks: Any, *extra: Any) -> torch.Tensor:
    return data.detach()


def _latin1_bytes(text: str, encoding: str = "utf-8") -> bytes:
    # Pickle protocol 2 stores bytes (tensor storages) as _codecs.encode(text, "latin1").
    if encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"bytes encoded as {encoding!r}; only latin1 is expected")
    return text.encode("latin1")


BASE_ALLOWED: dict[tuple[str, str], Callable[..., Any]] = {
    ("_codecs", "encode"): _latin1_bytes,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "slice"): slice,
    ("builtins", "complex"): complex,
    ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
    ("torch._utils", "_rebuild_tensor"): torch._utils._rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch.storage", "_load_from_bytes"): _load_storage_from_bytes,
    ("torch", "Size"): torch.Size,
    **{("torch", name): getattr(torch, name) for name in (
        "FloatStorage", "DoubleStorage", "HalfStorage", "BFloat16Storage", "LongStorage",
        "IntStorage", "ShortStorage", "CharStorage", "ByteStorage", "BoolStorage",
        "float32", "float16", "bfloat16", "float64", "int64", "int32", "uint8", "bool",
    )},
}


_PYTHON2_MODULES = {"__builtin__": "builtins", "copy_reg": "copyreg"}


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler whose ``find_class`` only returns allow-listed stand-ins."""

    def __init__(self, file: BinaryIO, allowed: Mapping[tuple[str, str], Callable[..., Any]], source: str) -> None:
        super().__init__(file)
        self._allowed = allowed
        self._source = source

    def find_class(self, module: str, name: str) -> Any:
        # Protocol 0-2 pickles written by Python 3 name builtins by their Python 2 module.
        module = _PYTHON2_MODULES.get(module, module)
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"{self._source}: refused to load: the pickle asks for {module}.{name}, which is not an "
                "allowed tensor or container type; the file may be malicious or of an unsupported format, "
                "and nothing in it was executed"
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError(f"{self._source}: refused to load: unexpected persistent id {pid!r}")


def restricted_load(
    path: str | Path,
    extra_allowed: Mapping[tuple[str, str], Callable[..., Any]] | None = None,
) -> Any:
    """Unpickle ``path`` allowing only tensors, plain containers and ``extra_allowed`` stand-ins."""
    allowed = {**BASE_ALLOWED, **(extra_allowed or {})}
    path = Path(path)
    with path.open("rb") as handle:
        try:
            return RestrictedUnpickler(handle, allowed, str(path)).load()
        except UnsafePickleError:
            raise
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as error:
            raise CheckpointError(f"{path}: not a readable pickle ({type(error).__name__}: {error})") from None


_GLOBAL_NAME = re.compile(r"GLOBAL ([\w.]+)")


def weights_only_refusal(path: str | Path, error: BaseException, what: str) -> str:
    """One line for a file ``torch.load(weights_only=True)`` refused, naming ``path``.

    torch's own message advises re-running with ``weights_only=False``, which would run
    whatever the file holds; that advice is never passed on. The line names the global the
    file asked for, when torch reported one, or the kind of read error otherwise.
    """
    text = str(error)
    found = _GLOBAL_NAME.search(text)
    if found is not None:
        detail = (f"it asks for {found.group(1)}, which is not a tensor or plain container; "
                  f"it may be malicious or not a {what}")
    else:
        kept = [line.strip() for line in text.splitlines()
                if line.strip() and not re.search(r"weights_only|trusted source|torch\.load|pytorch\.org", line)]
        detail = f"not a readable {what} ({type(error).__name__}{': ' + kept[0][:200] if kept else ''})"
    return f"{path}: refused to load: {detail}; nothing in it was run"
