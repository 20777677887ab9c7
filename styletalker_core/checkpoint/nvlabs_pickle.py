"""Reading NVlabs network pickles (stylegan2-ada-pytorch, stylegan3) without running them.

Those pickles store every network object through ``torch_utils.persistence``: the pickle
calls ``_reconstruct_persistent_obj(meta)`` where ``meta`` holds the class name, the
object's state (its ``__dict__``: parameters, buffers, child modules, the recorded
``_init_kwargs``) and the *source code* of the module defining the class, which the
original loader executes. Here that function is replaced by a stand-in that returns a
:class:`PersistentRecord` and never looks at the source; ``dnnlib.EasyDict`` becomes a plain
dict, numpy scalars and arrays are rebuilt from numeric dtypes only, and every other
global is refused by :func:`~styletalker_core.checkpoint.safe_pickle.restricted_load`.

Because the original loader rebuilds each class from its embedded source under a generated
module name, nothing here depends on module paths: converters recognise a network by the
class *names* and the attribute tree of its records (:func:`check_classes`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import torch

from styletalker_core.checkpoint.convert import ConversionError
from styletalker_core.checkpoint.safe_pickle import UnsafePickleError, restricted_load
from styletalker_core.errors import CheckpointError

logger = logging.getLogger(__name__)

PERSISTENCE_MARKER = b"_reconstruct_persistent_obj"
_NUMERIC_KINDS = set("biufc")


@attrs.define
class PersistentRecord:
    """A network object from an NVlabs pickle, as plain data: its class name and state."""

    class_name: str
    state: dict[str, Any]

    @property
    def init_kwargs(self) -> dict[str, Any]:
        """The keyword arguments the object was constructed with (recorded by persistence)."""
        return dict(self.state.get("_init_kwargs") or {})

    @property
    def init_args(self) -> tuple[Any, ...]:
        return tuple(self.state.get("_init_args") or ())

    def child(self, name: str) -> PersistentRecord | None:
        value = (self.state.get("_modules") or {}).get(name)
        return value if isinstance(value, PersistentRecord) else None

    def children(self) -> dict[str, Any]:
        return dict(self.state.get("_modules") or {})

    def walk(self, prefix: str = "") -> Iterator[tuple[str, PersistentRecord]]:
        """(dotted path, record) of this object (path ``prefix``) and of every network object
        below it, in registration order, as ``torch.nn.Module.named_modules``."""
        yield prefix, self
        for name, child in self.children().items():
            if isinstance(child, PersistentRecord):
                yield from child.walk(f"{prefix}.{name}" if prefix else name)

    def class_tree(self) -> dict[str, str]:
        """Dotted path -> class name of this object ("") and everything below it."""
        return {path: record.class_name for path, record in self.walk()}

    def children_of_class(self, class_name: str) -> dict[str, PersistentRecord]:
        """The direct children whose class is named ``class_name`` (name -> record)."""
        return {name: child for name, child in self.children().items()
                if isinstance(child, PersistentRecord) and child.class_name == class_name}

    def state_dict(self, prefix: str = "") -> dict[str, torch.Tensor]:
        """Parameters and persistent buffers of this object and its children, as in
        ``torch.nn.Module.state_dict`` (dotted names)."""
        tensors: dict[str, torch.Tensor] = {}
        for name, value in (self.state.get("_parameters") or {}).items():
            if value is not None:
                tensors[prefix + name] = value.detach()
        skipped = set(self.state.get("_non_persistent_buffers_set") or ())
        for name, value in (self.state.get("_buffers") or {}).items():
            if value is not None and name not in skipped:
                tensors[prefix + name] = value.detach()
        for name, child in self.children().items():
            if isinstance(child, PersistentRecord):
                tensors.update(child.state_dict(prefix + name + "."))
            elif child is not None:
                raise CheckpointError(f"unexpected child module {prefix + name} of type {type(child).__name__}")
        return tensors


def _reconstruct_persistent_obj(meta: Any) -> PersistentRecord:
    """Stand-in for ``torch_utils.persistence._reconstruct_persistent_obj``: keeps the state,
    ignores ``meta['module_src']`` entirely."""
    if not isinstance(meta, dict) or meta.get("type") != "class" or not isinstance(meta.get("class_name"), str):
        raise CheckpointError("NVlabs pickle: a persistent object without the expected class record")
    state = meta.get("state")
    if not isinstance(state, dict):
        raise CheckpointError(f"NVlabs pickle: object {meta['class_name']} has no state dictionary")
    return PersistentRecord(meta["class_name"], dict(state))


class EasyDictRecord(dict):
    """Stand-in for ``dnnlib.EasyDict`` (a dict with attribute access)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


class _DTypeRecord:
    """Stand-in for ``numpy.dtype`` during unpickling: numeric dtypes only."""

    def __init__(self, code: Any, align: bool = False, copy: bool = True) -> None:
        if not isinstance(code, str):
            raise UnsafePickleError(f"NVlabs pickle: refused numpy dtype {code!r}")
        dtype = np.dtype(code)
        if dtype.kind not in _NUMERIC_KINDS:
            raise UnsafePickleError(f"NVlabs pickle: refused non-numeric numpy dtype {code!r}")
        self.dtype = dtype

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) > 1 and state[1] in ("<", ">"):
            self.dtype = self.dtype.newbyteorder(state[1])


def _numpy_scalar(dtype: _DTypeRecord, data: Any = None) -> Any:
    if not isinstance(dtype, _DTypeRecord) or not isinstance(data, bytes):
        raise UnsafePickleError("NVlabs pickle: refused a numpy scalar that is not plain numeric data")
    return np.frombuffer(data, dtype=dtype.dtype)[0].item()


class _ArrayRecord:
    """Stand-in for a pickled ``numpy.ndarray``: becomes ``.array`` for numeric data."""

    def __init__(self, *args: Any) -> None:
        self.array: np.ndarray | None = None

    def __setstate__(self, state: Any) -> None:
        _, shape, dtype, fortran, raw = state
        if not isinstance(dtype, _DTypeRecord) or not isinstance(raw, bytes):
            raise UnsafePickleError("NVlabs pickle: refused a numpy array that is not plain numeric data")
        self.array = np.frombuffer(raw, dtype=dtype.dtype).reshape(shape, order="F" if fortran else "C").copy()


def _array_reconstruct(cls: Any, shape: Any, code: Any) -> _ArrayRecord:
    if cls is not _ArrayRecord:
        raise UnsafePickleError("NVlabs pickle: refused a numpy array of an unexpected class")
    return _ArrayRecord()


def _numpy_frombuffer(buffer: Any, dtype: Any, shape: Any, order: Any = "C") -> _ArrayRecord:
    """Stand-in for ``numpy.core.numeric._frombuffer`` (arrays in pickle protocol 5): the same
    record as for other pickled arrays, the values in ``.array``."""
    if not isinstance(buffer, (bytes, bytearray)) or not isinstance(dtype, _DTypeRecord) or order not in ("C", "F"):
        raise UnsafePickleError("NVlabs pickle: refused a numpy array that is not plain numeric data")
    if not isinstance(shape, tuple) or not all(isinstance(n, int) for n in shape):
        raise UnsafePickleError("NVlabs pickle: refused a numpy array with an odd shape")
    record = _ArrayRecord()
    record.array = np.frombuffer(bytes(buffer), dtype=dtype.dtype).reshape(shape, order=order).copy()
    return record


def _rebuild_parameter_with_state(data: torch.Tensor, requires_grad: bool, hooks: Any, state: Any) -> torch.Tensor:
    return data.detach()


NVLABS_ALLOWED: dict[tuple[str, str], Callable[..., Any]] = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _reconstruct_persistent_obj,
    ("dnnlib.util", "EasyDict"): EasyDictRecord,
    ("dnnlib", "EasyDict"): EasyDictRecord,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter_with_state,
    **{
        (module, name): value
        for module in ("numpy.core.multiarray", "numpy._core.multiarray")
        for name, value in (("scalar", _numpy_scalar), ("_reconstruct", _array_reconstruct))
    },
    **{(module, "_frombuffer"): _numpy_frombuffer for module in ("numpy.core.numeric", "numpy._core.numeric")},
    ("numpy", "dtype"): _DTypeRecord,
    ("numpy", "ndarray"): _ArrayRecord,
}


def looks_like_nvlabs_pickle(path: Path, marker: bytes | None = None, chunk: int = 1 << 22) -> bool:
    """True when ``path`` is a pickle mentioning NVlabs persistence (and ``marker``, if given).

    Scans the raw bytes; nothing is unpickled.
    """
    try:
        with Path(path).open("rb") as handle:
            head = handle.read(2)
            if len(head) < 2 or head[0] != 0x80:
                return False
            wanted = {PERSISTENCE_MARKER} | ({marker} if marker else set())
            tail = b""
            while wanted:
                block = handle.read(chunk)
                if not block:
                    break
                window = tail + block
                wanted = {w for w in wanted if w not in window}
                tail = window[-256:]
            return not wanted
    except OSError:
        return False


def check_classes(record: PersistentRecord, expected: Mapping[str, str | tuple[str, ...]], where: str) -> None:
    """Check the class names of ``record`` ("") and of objects below it (dotted paths).

    NVlabs pickles rebuild their classes from embedded source under generated module names,
    so a network is recognised by its class *names* and attribute tree, never by a module
    path. ``expected`` maps a path to a class name (or a tuple of accepted names); a missing
    object or another class is a :class:`ConversionError` naming every mismatch.
    """
    tree = record.class_tree()
    problems = []
    for path, names in expected.items():
        names = (names,) if isinstance(names, str) else tuple(names)
        found = tree.get(path)
        label = path or "the network itself"
        if found is None:
            problems.append(f"{label}: missing (expected class {' or '.join(names)})")
        elif found not in names:
            problems.append(f"{label}: class {found} (expected {' or '.join(names)})")
    if problems:
        raise ConversionError(f"{where}: not the NVlabs network layout this converter reads: " + "; ".join(problems))


def pick_generator(data: Mapping[str, Any], path: str | Path) -> tuple[str, PersistentRecord]:
    """``G_ema`` (the generator NVlabs samples from and publishes); ``G`` (the raw training
    weights) only in a pickle without G_ema."""
    if isinstance(data.get("G_ema"), PersistentRecord):
        return "G_ema", data["G_ema"]
    if isinstance(data.get("G"), PersistentRecord):
        logger.warning("%s: no G_ema in this pickle; converting G (the raw training weights)", path)
        return "G", data["G"]
    raise ConversionError(f"{path}: no network 'G_ema' in this pickle (keys: {', '.join(map(str, data))})")


def not_converted(data: Mapping[str, Any], used: set[str]) -> list[str]:
    """The other top-level entries of a pickle (``G``, ``augment_pipe``, ``training_set_kwargs`` ...)."""
    return [str(key) for key in data if key not in used]


def load_nvlabs_pickle(path: str | Path) -> dict[str, Any]:
    """The top-level dict of an NVlabs network pickle (``G``, ``D``, ``G_ema``, ...), with every
    network object as a :class:`PersistentRecord`. Refuses any global outside tensors, plain
    containers and the stand-ins above (UnsafePickleError); nothing from the file runs."""
    data = restricted_load(path, NVLABS_ALLOWED)
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: not an NVlabs network pickle (expected a dict with 'G_ema')")
    return data
