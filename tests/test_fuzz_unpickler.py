"""Fuzzing the restricted unpickler.

Property: whatever bytes a ``.pkl`` file holds, :func:`restricted_load` returns a value or
raises CheckpointError (UnsafePickleError for a refused global), never another exception;
nothing from the file runs (a canary function, ``os.system`` and ``builtins.exec`` named in
the pickles are never called); each file loads within the example deadline, and memory does
not balloon (a few bytes must not make the loader allocate gigabytes).

Inputs: pickles (protocols 0 to 5) of random tensors (dtypes, shapes, strided views,
parameters) in random containers, and of objects that would run code on load, mutated byte
by byte with pickle opcodes spliced in; random bytes.

Profiles (environment variable STYLETALKER_FUZZ): ``ci`` (default: derandomized, the same
inputs every run) and ``explore`` (random, 20 times as many examples).
"""

from __future__ import annotations

import collections
import os
import pickle
import resource
import tempfile
import warnings
from pathlib import Path

import pytest
import torch
from fuzzing import cpu_bound, fuzz  # shared profiles and time bound
from hypothesis import event as _event
from hypothesis import example, given
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context

from styletalker_core.checkpoint.safe_pickle import UnsafePickleError, restricted_load
from styletalker_core.errors import CheckpointError

pytestmark = pytest.mark.filterwarnings("ignore:TypedStorage is deprecated")

CALLS: list[tuple] = []
MEMORY_ALLOWANCE_MB = 1024  # peak RSS may grow by this much over the whole module, no more


def canary(*arguments: object) -> None:
    """Named by the hostile pickles below; the test fails if the loader ever calls it."""
    CALLS.append(arguments)


class RunsOnLoad:
    """Pickles as a call of ``function(*arguments)``: what a malicious file does."""

    def __init__(self, function: object, *arguments: object) -> None:
        self.function, self.arguments = function, arguments

    def __reduce__(self):
        return self.function, self.arguments


@pytest.fixture(scope="module", autouse=True)
def warm_up() -> None:
    """torch's serialization code is imported once per process, before any example is timed."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "warm.pkl"
        path.write_bytes(pickle.dumps({"w": torch.ones(2), "s": torch.Size([1])}, protocol=2))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            restricted_load(path)


def event(text: str) -> None:
    if currently_in_test_context():  # check_load also serves plain regression tests
        _event(text)


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


_BASELINE_MB: list[float] = []


def check_load(data: bytes, marker: Path | None = None) -> None:
    """The property, for one file's bytes."""
    if not _BASELINE_MB:
        _BASELINE_MB.append(_rss_mb())
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "weights.pkl"
        path.write_bytes(data)
        with warnings.catch_warnings(), cpu_bound():
            warnings.simplefilter("ignore")
            try:
                restricted_load(path)
            except UnsafePickleError as error:
                assert str(path) in str(error) and "nothing in it was executed" in str(error)
                event("refused: unsafe global")
            except CheckpointError as error:
                assert str(path) in str(error)
                event("refused: unreadable")
            else:
                event("loaded")
    assert not CALLS, f"the pickle ran code: canary called with {CALLS}"
    assert marker is None or not marker.exists(), "the pickle ran a shell command"
    assert _rss_mb() - _BASELINE_MB[0] < MEMORY_ALLOWANCE_MB, f"peak memory grew to {_rss_mb():.0f} MB"


# -- strategies ------------------------------------------------------------------------------

DTYPES = [torch.float32, torch.float16, torch.bfloat16, torch.float64, torch.int64, torch.int32, torch.uint8, torch.bool]


@st.composite
def tensors(draw) -> torch.Tensor:
    shape = draw(st.lists(st.integers(0, 4), max_size=3))
    dtype = draw(st.sampled_from(DTYPES))
    tensor = (torch.arange(int(torch.tensor(shape).prod()) if shape else 1) % 7).to(dtype).reshape(shape)
    kind = draw(st.sampled_from(["plain", "view", "transposed", "parameter", "offset"]))
    if kind == "view" and tensor.dim() >= 1 and tensor.shape[0] > 1:
        tensor = tensor[1:]
    elif kind == "transposed" and tensor.dim() >= 2:
        tensor = tensor.transpose(0, -1)
    elif kind == "parameter" and dtype.is_floating_point:
        tensor = torch.nn.Parameter(tensor)
    elif kind == "offset" and tensor.numel() > 1:
        tensor = tensor.flatten()[1:]
    return tensor


leaves = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(), st.text(max_size=6), st.binary(max_size=6),
    st.complex_numbers(allow_nan=False, max_magnitude=1e6), st.builds(slice, st.integers(0, 9), st.integers(0, 9)),
    st.lists(st.integers(0, 9), max_size=3).map(torch.Size), tensors(),
)
containers = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.tuples(inner, inner),
        st.dictionaries(st.text(max_size=4), inner, max_size=3),
        st.dictionaries(st.text(max_size=4), inner, max_size=3).map(collections.OrderedDict),
        st.frozensets(st.integers(0, 9), max_size=3), st.sets(st.text(max_size=3), max_size=3),
    ),
    max_leaves=6,
)
protocols = st.integers(0, pickle.HIGHEST_PROTOCOL)

OPCODES = [
    b"c", b"R", b"(", b"t", b"l", b"d", b"s", b"a", b"b", b"o", b"i", b".", b"0", b"1", b"2", b"N", b"}", b"]",
    b"\x81", b"\x92", b"\x93", b"\x94", b"\x85", b"\x86", b"\x87", b"\x88", b"\x89", b"\x82",  # NEWOBJ, STACK_GLOBAL, MEMOIZE, TUPLEs, EXT1
    b"q\xff", b"r\xff\xff\xff\x7f", b"r\xff\xff\xff\xff", b"h\xff", b"j\xff\xff\xff\x7f", b"p999999999\n", b"g1\n",
    b"\x95\xff\xff\xff\xff\xff\xff\xff\x7f", b"\x8e\xff\xff\xff\xff\xff\xff\xff\x7f", b"B\xff\xff\xff\x7f",
    b"T\xff\xff\xff\x7f", b"X\xff\xff\xff\x7f", b"\x8a\xff", b"\x8b\xff\xff\xff\x7f", b"L" + b"9" * 5000 + b"L\n",
    b"cos\nsystem\n", b"cbuiltins\nexec\n", b"cbuiltins\ngetattr\n", b"ctorch\nload\n", b"ctorch\nFloatStorage\n",
    b"ctorch._utils\n_rebuild_tensor_v2\n", b"ctorch.storage\n_load_from_bytes\n", b"(I1000000000000\nt",
    b"(I-1\nt", b"I99999999999999999999\n", b"\x80\x05", b"(" * 64, b"P1\n", b"Q",
]


@st.composite
def mutated(draw, source: bytes) -> bytes:
    """``source`` with a few bytes replaced, deleted or inserted, or opcodes spliced in."""
    data = bytearray(source)
    for _ in range(draw(st.integers(1, 4))):
        position = draw(st.integers(0, len(data)))
        operation = draw(st.sampled_from(["opcode", "opcode", "replace", "replace", "delete", "insert", "truncate", "copy"]))
        if operation == "opcode":
            data[position:position] = draw(st.sampled_from(OPCODES))
        elif operation == "replace" and position < len(data):
            data[position] = draw(st.integers(0, 255))
        elif operation == "delete":
            del data[position:position + draw(st.integers(1, 8))]
        elif operation == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=4))
        elif operation == "truncate":
            del data[position:]
        elif operation == "copy" and data:
            start = draw(st.integers(0, len(data) - 1))
            data[position:position] = data[start:start + draw(st.integers(1, 32))]
    return bytes(data)


def hostile(marker: Path) -> list[object]:
    return [RunsOnLoad(canary, "ran"), RunsOnLoad(os.system, f"touch {marker}"),
            RunsOnLoad(exec, f"open({str(marker)!r}, 'w').close()"), {"weight": RunsOnLoad(canary, 1)}]


# -- properties ------------------------------------------------------------------------------


_SOURCES: dict[tuple[str, int], bytes] = {}


@fuzz(examples=80)
@given(data=st.data(), value=containers, protocol=protocols)
def test_mutated_pickles_of_tensors_and_containers_load_or_raise_checkpoint_error(
    data: st.DataObject, value: object, protocol: int
) -> None:
    # A pickled tensor's storage key is a memory address, so the same value can pickle to bytes of
    # another length; hypothesis needs the same draws when it replays an example: pickle each value once.
    source = _SOURCES.setdefault((repr(value), protocol), pickle.dumps(value, protocol=protocol))
    check_load(source)  # the unmutated pickle loads too, or is refused with the project's error
    check_load(data.draw(mutated(source), label="mutated"))


MARKER_FOLDER = tempfile.mkdtemp(prefix="fuzz-unpickler-")  # one fixed path, so the hostile pickles are too
_HOSTILE: dict[tuple[int, int, bool], bytes] = {}


def hostile_pickle(which: int, protocol: int, wrap: bool) -> bytes:
    """The same bytes for the same arguments within a run (a pickled tensor's storage key varies
    from process to process, and hypothesis needs the same draws when it replays an example)."""
    key = (which, protocol, wrap)
    if key not in _HOSTILE:
        payload = hostile(Path(MARKER_FOLDER) / "ran")[which]
        value = {"state": collections.OrderedDict(a=torch.ones(2)), "x": payload} if wrap else payload
        _HOSTILE[key] = pickle.dumps(value, protocol=protocol)
    return _HOSTILE[key]


@fuzz(examples=60)
@given(data=st.data(), which=st.integers(0, 3), protocol=protocols, wrap=st.booleans())
def test_mutated_hostile_pickles_never_run_anything(data: st.DataObject, which: int, protocol: int, wrap: bool) -> None:
    marker = Path(MARKER_FOLDER) / "ran"
    source = hostile_pickle(which, protocol, wrap)
    check_load(source, marker)
    check_load(data.draw(mutated(source), label="mutated"), marker)


@fuzz(examples=60)
@given(data=st.binary(max_size=300) | st.binary(max_size=60).map(lambda tail: b"\x80\x04" + tail))
@example(data=b"\x80\x02Nr\xff\xff\xff\x7f.")  # memo index 2**31 - 1
@example(data=b"\x80\x04\x95\xff\xff\xff\xff\xff\xff\xff\x7fN.")  # a frame of 2**63 bytes
@example(data=b"\x80\x04\x8e\xff\xff\xff\xff\xff\xff\xff\x7f.")  # bytes of 2**63 length
@example(data=b"ctorch\nFloatStorage\n(I100000000000000\ntR.")  # a storage of 400 TB
@example(data=b"ctorch\nFloatStorage\n(I-1\ntR.")
@example(data=b"ctorch._utils\n_rebuild_tensor_v2\n(ctorch\nFloatStorage\n((F1.0\nF2.0\nltRI0\n(I2000000000\nt(I1\ntI00\nNtR.")
@example(data=b"ctorch._utils\n_rebuild_tensor_v2\n(ctorch\nFloatStorage\n((F1.0\nltRI0\n(I-2\nt(I1\ntI00\nNtR.")
@example(data=b"ctorch.storage\n_load_from_bytes\n(C\x05hellotR.")
@example(data=b"(" * 100_000 + b"l" * 100_000 + b".")
def test_random_bytes_load_or_raise_checkpoint_error(data: bytes) -> None:
    check_load(data)


def test_damaged_storage_bytes_raise_checkpoint_error() -> None:
    """Found by fuzzing: torch's loader asserts on a storage whose key list does not match its
    records, and the AssertionError escaped restricted_load."""
    import re

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        function, (data,) = torch.ones(2).storage().__reduce__()
    key = re.findall(rb"\d{6,}", data)[0]
    other = key[::-1] if key[::-1] != key else key[:-1] + (b"1" if key[-1:] != b"1" else b"2")
    second = data.index(key, data.index(key) + 1)  # the key list after the records
    damaged = data[:second] + other + data[second + len(key):]
    check_load(pickle.dumps(RunsOnLoad(function, damaged), protocol=2))
