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
import struct
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, BinaryIO, ClassVar

import torch

from styletalker_core.errors import CheckpointError


class UnsafePickleError(CheckpointError):
    """The pickle asked for a global outside the allow-list; nothing was executed."""


def _load_storage_from_bytes(data: bytes) -> Any:
    # A storage pickled by plain pickle is a torch.save archive in bytes; read it with the
    # weights-only loader so no further globals can be resolved from inside it.
    if not isinstance(data, bytes):
        raise pickle.UnpicklingError(f"tensor storage given as {type(data).__name__}, not bytes")
    try:
        return torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
    except Exception as error:  # noqa: BLE001 - torch's loader fails on damaged bytes with assorted errors (AssertionError, KeyError, ...)
        raise pickle.UnpicklingError(f"a tensor storage in the file is damaged ({type(error).__name__}: {str(error)[:200]})") from None


def _rebuild_parameter(data: torch.Tensor, requires_grad: bool, backward_hooks: Any, *extra: Any) -> torch.Tensor:
    return data.detach()


def _is_index(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _check_view(storage: Any, storage_offset: Any, size: Any, stride: Any) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(size, stride) of a tensor view that lies inside ``storage``; UnpicklingError otherwise.

    torch's own rebuild would grow the storage to fit any size (a few bytes of pickle could
    ask for terabytes) and fails with assorted errors on odd arguments.
    """
    if not isinstance(storage, torch.storage.TypedStorage):
        raise pickle.UnpicklingError(f"tensor data is a {type(storage).__name__}, not a storage")
    if not isinstance(size, (tuple, list)) or not isinstance(stride, (tuple, list)) or len(size) != len(stride):
        raise pickle.UnpicklingError("tensor size and stride are not two sequences of the same length")
    if not (_is_index(storage_offset) and all(map(_is_index, size)) and all(map(_is_index, stride))):
        raise pickle.UnpicklingError("tensor offset, size and stride must be non-negative integers")
    length = storage._untyped_storage.nbytes() // storage.dtype.itemsize
    extent = storage_offset if 0 in size else storage_offset + 1 + sum((n - 1) * s for n, s in zip(size, stride))
    if extent > length:
        raise pickle.UnpicklingError(f"tensor view reaches element {extent} of a storage of {length}")
    return tuple(size), tuple(stride)


def _rebuild_tensor(storage: Any, storage_offset: Any, size: Any, stride: Any) -> torch.Tensor:
    size, stride = _check_view(storage, storage_offset, size, stride)
    return torch._utils._rebuild_tensor(storage, storage_offset, size, stride)


def _rebuild_tensor_v2(storage: Any, storage_offset: Any, size: Any, stride: Any, requires_grad: Any = False,
                       backward_hooks: Any = None, metadata: Any = None) -> torch.Tensor:
    size, stride = _check_view(storage, storage_offset, size, stride)
    if not isinstance(requires_grad, bool):
        raise pickle.UnpicklingError(f"tensor requires_grad is {requires_grad!r}, not true or false")
    if backward_hooks:  # hooks are never serialized by torch; a file holding some is not a plain tensor
        raise pickle.UnpicklingError("tensor with backward hooks")
    return torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad,
                                           collections.OrderedDict(), metadata)


def _storage_from_values(storage_type: type) -> Callable[..., Any]:
    """A stand-in for ``torch.FloatStorage`` etc.: builds a storage from the values stored in the
    file (old pickles), never one of a size the file merely names (that would allocate at will)."""

    def build(*arguments: Any) -> Any:
        if len(arguments) == 1 and isinstance(arguments[0], (list, tuple)):
            return storage_type(list(arguments[0]))
        raise pickle.UnpicklingError(f"{storage_type.__name__} called with {len(arguments)} argument(s) other than "
                                     "a list of its values")

    build.__qualname__ = build.__name__ = storage_type.__name__
    return build


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
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch.storage", "_load_from_bytes"): _load_storage_from_bytes,
    ("torch", "Size"): torch.Size,
    **{("torch", name): _storage_from_values(getattr(torch, name)) for name in (
        "FloatStorage", "DoubleStorage", "HalfStorage", "BFloat16Storage", "LongStorage",
        "IntStorage", "ShortStorage", "CharStorage", "ByteStorage", "BoolStorage",
    )},
    **{("torch", name): getattr(torch, name) for name in (
        "float32", "float16", "bfloat16", "float64", "int64", "int32", "uint8", "bool",
    )},
}


_PYTHON2_MODULES = {"__builtin__": "builtins", "copy_reg": "copyreg"}


class RestrictedUnpickler(pickle._Unpickler):
    """Unpickler whose ``find_class`` only returns allow-listed stand-ins.

    It is the pure-Python unpickler: its memo is a dict, whereas the C one sizes a table by
    the largest memo index a file names (ten bytes could make it allocate and clear 32 GB).
    """

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

    def load_build(self) -> None:
        # BUILD calls the object's __setstate__: a tensor's would re-point it at any storage size.
        stack = self.stack  # type: ignore[attr-defined]  # the pure-Python unpickler's internals are not in typeshed
        if len(stack) >= 2 and isinstance(stack[-2], (torch.Tensor, torch.storage.TypedStorage,
                                                                 torch.UntypedStorage)):
            raise pickle.UnpicklingError("the pickle sets the state of a tensor or storage (BUILD)")
        super().load_build()  # type: ignore[misc]

    dispatch: ClassVar[dict[int, Callable[..., None]]] = {**pickle._Unpickler.dispatch, pickle.BUILD[0]: load_build}

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError(f"{self._source}: refused to load: unexpected persistent id {repr(pid)[:80]}; "
                                "nothing in it was executed")


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
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, KeyError, IndexError,
                RuntimeError, OverflowError, MemoryError, RecursionError, struct.error) as error:
            # RuntimeError: torch refusing a storage or tensor; MemoryError: a length no file can hold;
            # struct.error: an opcode's argument cut short.
            raise CheckpointError(f"{path}: not a readable pickle ({type(error).__name__}: {str(error)[:300]})") from None


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
