"""The restricted unpickler: tensors and plain containers load; any other global is refused
before it is called, so nothing in the file runs."""

from __future__ import annotations

import collections
import io
import os
import pickle
from pathlib import Path

import pytest
import torch

from styletalker_core.checkpoint.safe_pickle import UnsafePickleError, restricted_load
from styletalker_core.errors import CheckpointError


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_tensors_and_plain_containers_load(tmp_path, protocol):
    original = {
        "weight": torch.randn(3, 4),
        "view": torch.arange(12.0).view(3, 4)[:, 1:],  # a strided view of a larger storage
        "half": torch.randn(5).half(),
        "ints": torch.arange(4),
        "flags": torch.tensor([True, False]),
        "parameter": torch.nn.Parameter(torch.ones(2)),
        "state": collections.OrderedDict([("a", torch.zeros(1)), ("b", [1, 2.5, "x", None])]),
        "size": torch.Size([1, 2]),
        "misc": (frozenset({1}), {2, 3}, b"raw bytes", 1 + 2j, slice(1, 5)),
    }
    path = write(tmp_path / "ok.pkl", pickle.dumps(original, protocol=protocol))
    loaded = restricted_load(path)
    assert set(loaded) == set(original)
    for key in ("weight", "view", "half", "ints", "flags"):
        assert loaded[key].dtype == original[key].dtype
        assert torch.equal(loaded[key], original[key])
    assert torch.equal(loaded["parameter"], torch.ones(2)) and not isinstance(loaded["parameter"], torch.nn.Parameter)
    assert isinstance(loaded["state"], collections.OrderedDict) and list(loaded["state"]) == ["a", "b"]
    assert loaded["state"]["b"] == [1, 2.5, "x", None]
    assert loaded["size"] == torch.Size([1, 2]) and loaded["misc"] == original["misc"]


def test_extra_allowed_stand_ins_are_used(tmp_path):
    path = write(tmp_path / "custom.pkl", b"cmy_format\nRecord\n(I7\ntR.")
    with pytest.raises(UnsafePickleError, match=r"my_format.Record"):
        restricted_load(path)
    record = restricted_load(path, extra_allowed={("my_format", "Record"): lambda value: {"value": value}})
    assert record == {"value": 7}


class RunsOnLoad:
    def __init__(self, function, *arguments) -> None:
        self.function, self.arguments = function, arguments

    def __reduce__(self):
        return (self.function, self.arguments)


def malicious_pickles(marker: Path) -> dict[str, bytes]:
    """Pickles that would create ``marker`` if their globals were resolved."""
    shell = f"touch {marker}"
    return {
        "os.system": f"cos\nsystem\n(S'{shell}'\ntR.".encode(),
        "builtins.eval": f"cbuiltins\neval\n(S'open({str(marker)!r}, \"w\")'\ntR.".encode(),
        "builtins.exec": f"cbuiltins\nexec\n(S'open({str(marker)!r}, \"w\")'\ntR.".encode(),
        "subprocess.check_call": f"csubprocess\ncheck_call\n((S'touch'\nS'{marker}'\nltR.".encode(),
        "posix.system": pickle.dumps(RunsOnLoad(os.system, shell), protocol=4),
        "io.open": pickle.dumps({"weights": [torch.ones(1)], "x": RunsOnLoad(open, str(marker), "w")}, protocol=5),
        "torch.serialization.load": pickle.dumps(RunsOnLoad(torch.load, str(marker)), protocol=3),
    }


@pytest.mark.parametrize("name", list(malicious_pickles(Path("m"))))
def test_dangerous_globals_are_refused_and_nothing_runs(tmp_path, name):
    marker = tmp_path / "pwned"
    path = write(tmp_path / "evil.pkl", malicious_pickles(marker)[name])
    with pytest.raises(UnsafePickleError) as raised:
        restricted_load(path)
    message = str(raised.value)
    assert message.startswith(f"{path}: refused to load: the pickle asks for {name},")
    assert "nothing in it was executed" in message
    assert not marker.exists()


def test_embedded_torch_archive_is_read_weights_only(tmp_path):
    """A storage stored as torch.save bytes goes through torch's weights-only loader, so a
    payload hidden in those bytes is refused too."""
    marker = tmp_path / "pwned"
    buffer = io.BytesIO()
    torch.save(RunsOnLoad(open, str(marker), "w"), buffer)
    payload = pickle.dumps(RunsOnLoad(torch.storage._load_from_bytes, buffer.getvalue()), protocol=4)
    with pytest.raises(CheckpointError):
        restricted_load(write(tmp_path / "nested.pkl", payload))
    assert not marker.exists()


def test_persistent_ids_are_refused(tmp_path):
    path = write(tmp_path / "persistent.pkl", b"(S'storage'\nS'0'\ntQ.")
    with pytest.raises(UnsafePickleError, match="unexpected persistent id"):
        restricted_load(path)


@pytest.mark.parametrize("data", [b"", b"not a pickle at all", pickle.dumps([1, 2])[:-3]])
def test_unreadable_pickles_are_a_checkpoint_error(tmp_path, data):
    path = write(tmp_path / "broken.pkl", data)
    with pytest.raises(CheckpointError, match=r"not a readable pickle"):
        restricted_load(path)
