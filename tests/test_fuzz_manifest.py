"""Fuzzing the batch-mode manifest parser (CSV and JSON).

Property: whatever a manifest file holds, :func:`read_manifest` returns rows or raises
StyleTalkerError; every row becomes a job or a StyleTalkerError naming the row; and
:func:`run_manifest` (with a stand-in sampler that runs the real checks made before any file
is read, then returns at once) reports every row as done or failed with the project's own
message, never as an "internal error". Within the example deadline.

Inputs: well-formed manifests with random columns and cell values (paths that exist, are
missing, empty, absolute, with ``~``, NUL or odd characters; settings with good and bad
values, numbers too large, lists and objects in JSON); valid manifests mutated byte by byte;
random bytes, each as .csv and .json.

Profiles (environment variable STYLETALKER_FUZZ): ``ci`` (default: derandomized, the same
inputs every run) and ``explore`` (random, 20 times as many examples).
"""

from __future__ import annotations

import csv
import io
import json
import tempfile
from pathlib import Path

from fuzzing import cpu_bound, fuzz  # shared profiles and time bound
from hypothesis import event, example, given
from hypothesis import strategies as st

from styletalker_core.errors import StyleTalkerError
from styletalker_core.sample.engine import SampleResult, check_job
from styletalker_core.sample.manifest import PATH_COLUMNS, job_from_row, read_manifest, run_manifest
from styletalker_core.sample.outputs import output_paths
from styletalker_core.sample.settings import SETTING_NAMES, SampleSettings


class StandInSampler:
    """Runs the checks :meth:`Sampler.run` makes before reading any file, then 'writes' nothing."""

    def run(self, job, overwrite=False, progress=False):
        check_job(job, overwrite)
        outputs = output_paths(job.out, job.settings.num_samples)
        return SampleResult(outputs, 25, 0.01, {}, 30.0, True)


def check_manifest(path: Path) -> None:
    """The property, for one manifest file."""
    with cpu_bound():
        _check_manifest(path)


def _check_manifest(path: Path) -> None:
    try:
        rows = read_manifest(path)
    except StyleTalkerError as error:
        assert str(error)
        event("manifest refused")
        return
    assert isinstance(rows, list) and rows
    for number, row in enumerate(rows, start=1):
        try:
            job = job_from_row(row, path.parent, SampleSettings(), f"{path.name} row {number}")
        except StyleTalkerError as error:
            assert f"row {number}" in str(error)
            event("row refused")
        else:
            assert job.out is not None
            event("row parsed")
    for outcome in run_manifest(StandInSampler(), path, SampleSettings()):
        assert not outcome.error.startswith("internal error"), outcome.error
        assert outcome.ok or outcome.error
        outcome.as_dict()


def write_and_check(suffix: str, data: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        for name in ("face.png", "speech.wav", "motion.mp4"):
            (root / name).write_bytes(b"not read by the stand-in sampler")
        (root / "sub").mkdir()
        path = root / f"jobs{suffix}"
        path.write_bytes(data)
        check_manifest(path)


# -- strategies ------------------------------------------------------------------------------

PATHS = ["face.png", "speech.wav", "motion.mp4", "out.mp4", "sub/out.mp4", "out.MOV", "out.avi", "missing.png",
         "sub", "", " ", "/", ".", "..", "~", "~/x.mp4", "~nobody_here_at_all/x.mp4", "/dev/null", "face.png\x00",
         "a,b.mp4", 'q"uote.mp4', "x" * 300 + ".mp4", "speech.wav/x.mp4", "out.mp4 ", "\u00e9t\u00e9.mp4"]
SETTING_TEXT = ["", " ", "0", "1", "2", "-1", "1.5", "1e5", "1e400", "nan", "inf", "-0", "true", "false", "yes",
                "2.0", "9" * 30, "1" * 5000, "loop", "trim", "medium", "ultrafast", "fast ", "\u0663", "\uff11"]
odd_columns = st.sampled_from(["", " image", "Image", "jobs"]) | st.text(max_size=6)
columns = st.sampled_from(("motion", *SETTING_NAMES))
path_cells = st.sampled_from(PATHS) | st.text(max_size=10)
setting_cells = st.sampled_from(SETTING_TEXT) | st.text(max_size=10)
cells = path_cells | setting_cells
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | cells,
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=4), inner, max_size=2),
    max_leaves=4,
)


@st.composite
def tables(draw) -> tuple[list[str], list[list[object]]]:
    """A header (usually the required columns plus known ones, sometimes odd ones) and rows of cells
    (paths under path columns, setting values under setting columns, sometimes one cell too many)."""
    header = draw(st.lists(columns, max_size=3, unique=True))
    if draw(st.integers(0, 9)) == 0:
        header += draw(st.lists(odd_columns, min_size=1, max_size=2))
    if draw(st.integers(0, 9)) > 0:
        header = ["image", "audio", "out"] + [name for name in header if name not in ("image", "audio", "out")]
    rows = []
    for _ in range(draw(st.integers(0 if draw(st.integers(0, 9)) == 0 else 1, 3))):
        row = [draw(path_cells if name in PATH_COLUMNS else setting_cells) for name in header]
        if draw(st.integers(0, 9)) == 0:
            row.append(draw(cells))
        rows.append(row)
    return header, rows


def csv_text(table: tuple[list[str], list[list[object]]]) -> bytes:
    header, rows = table
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8", "surrogatepass")


@st.composite
def json_manifests(draw) -> bytes:
    header, rows = draw(tables())
    records = []
    for row in rows:
        record = {}
        for name, cell in zip(header, row):
            record[name] = draw(st.just(cell) | json_values)
        records.append(record)
    document = draw(st.just(records) | json_values.map(lambda v: [v]) | json_values)
    return json.dumps(document, allow_nan=True).encode("utf-8", "surrogatepass")


TOKENS = [b",", b'"', b"\n", b"\r", b"\x00", b"\xff", b"\xef\xbb\xbf", b"[", b"]", b"{", b"}", b":", b"\\",
          b"NaN", b"1" * 5000, b"[" * 3000, b'"image"', b"~", b"/"]


@st.composite
def mutated(draw, source: bytes) -> bytes:
    data = bytearray(source)
    for _ in range(draw(st.integers(1, 4))):
        position = draw(st.integers(0, len(data)))
        operation = draw(st.sampled_from(["insert", "delete", "replace", "truncate"]))
        if operation == "insert":
            data[position:position] = draw(st.sampled_from(TOKENS) | st.binary(min_size=1, max_size=3))
        elif operation == "delete":
            del data[position:position + draw(st.integers(1, 8))]
        elif operation == "replace" and position < len(data):
            data[position] = draw(st.integers(0, 255))
        else:
            del data[position:]
    return bytes(data)


GOOD_CSV = b"image,audio,out,seed,temperature,still\nface.png,speech.wav,out.mp4,1,0.5,\nface.png,speech.wav,sub/b.mp4,,,true\n"
GOOD_JSON = json.dumps([{"image": "face.png", "audio": "speech.wav", "out": "out.mp4", "num_samples": 2},
                        {"image": "face.png", "audio": "speech.wav", "motion": "motion.mp4", "out": "m.mp4",
                         "motion_fit": "trim", "crf": 20}]).encode()


# -- properties ------------------------------------------------------------------------------


@fuzz(examples=80)
@given(table=tables())
@example(table=(["image", "audio", "out"], [["face.png\x00", "speech.wav", "out.mp4"]]))
@example(table=(["image", "audio", "out"], [["~nobody_here_at_all/x.png", "speech.wav", "out.mp4"]]))
@example(table=(["image", "audio", "out", "num_samples"], [["face.png", "speech.wav", "/", "2"]]))
@example(table=(["image", "audio", "out"], [["face.png", "speech", "out.mp4", "extra"]]))
def test_csv_manifests_parse_or_raise_project_errors(table: tuple) -> None:
    write_and_check(".csv", csv_text(table))


@fuzz(examples=80)
@given(data=json_manifests())
@example(data=b"[" * 100_000)
@example(data=b'[{"image": "face.png", "audio": "speech.wav", "out": "out.mp4", "seed": ' + b"1" * 5000 + b"}]")
@example(data=b'[{"image": "face.png", "audio": "speech.wav", "out": "out.mp4", "seed": [1]}]')
@example(data=b'[{"image": "face.png", "audio": "speech.wav", "out": "out.mp4", "temperature": {"a": 1}}]')
def test_json_manifests_parse_or_raise_project_errors(data: bytes) -> None:
    write_and_check(".json", data)


@fuzz(examples=60)
@given(suffix=st.sampled_from([".csv", ".json", ".CSV", ".txt"]),
       data=st.one_of(mutated(GOOD_CSV), mutated(GOOD_JSON), st.binary(max_size=200)))
def test_mutated_and_random_manifests_parse_or_raise_project_errors(suffix: str, data: bytes) -> None:
    write_and_check(suffix, data)
