"""Batch mode: many sampling jobs from a CSV or JSON manifest, with a per-row report.

A manifest lists one job per row with the columns ``image``, ``audio``, ``out`` and
optionally ``motion``, plus any sampling setting as a per-row override (``seed``,
``temperature``, ``num_samples``, ``pose_scale``, ``still``, ``motion_fit``, ``align``,
``batch_size``, ``chunk_frames``, ``crf``, ``preset``). CSV: a header row, then one row per
job; an empty cell means "not given". JSON: a list of objects with those keys. Relative
paths are taken relative to the manifest's folder.

A bad row (missing file, no face, audio too short, a bad value) is reported and the next row
runs; :func:`run_manifest` returns every row's outcome.
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

from styletalker_core.errors import StyleTalkerError
from styletalker_core.sample.engine import SampleJob, Sampler, SampleResult
from styletalker_core.sample.outputs import output_paths
from styletalker_core.sample.settings import SETTING_NAMES, SampleSettings, with_overrides

LOG = logging.getLogger(__name__)
PATH_COLUMNS = ("image", "audio", "motion", "out")
REQUIRED_COLUMNS = ("image", "audio", "out")


@attrs.define
class RowOutcome:
    """One manifest row: its number (1 = first job), the job when the row parsed, and either
    the result or the error message."""

    row: int
    job: SampleJob | None
    result: SampleResult | None = None
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.result is not None

    def as_dict(self) -> dict[str, Any]:
        record: dict[str, Any] = {"row": self.row, "status": "ok" if self.ok else "failed"}
        if self.job is not None:
            record["out"] = str(self.job.out)
        if self.result is not None:
            record.update(outputs=[str(p) for p in self.result.outputs], frames=self.result.num_frames,
                          seconds=round(self.result.seconds, 3), reference_psnr=round(self.result.reference_psnr, 2),
                          in_domain=self.result.in_domain)
        else:
            record["error"] = self.error
        return record


def read_manifest(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a .csv or .json manifest as dicts (column -> raw value). Checks the columns."""
    path = Path(path)
    if not path.is_file():
        raise StyleTalkerError(f"manifest {path}: no such file; check the path")
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            with path.open(newline="", encoding="utf-8-sig") as handle:
                reader = csv.DictReader(handle)
                rows = [dict(row) for row in reader]
                columns = [name.strip() for name in reader.fieldnames or []]
                for number, row in enumerate(rows, start=1):
                    if None in row:  # DictReader puts cells beyond the header under the key None
                        raise StyleTalkerError(
                            f"manifest {path}: row {number} has {len(row[None])} cell(s) more than the header; "
                            "quote paths that contain commas")
                rows = [{(k or "").strip(): v for k, v in row.items()} for row in rows]
        elif suffix == ".json":
            rows = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
                raise StyleTalkerError(f"manifest {path}: expected a JSON list of objects, one per job")
            columns = sorted({key for row in rows for key in row})
        else:
            raise StyleTalkerError(f"manifest {path}: give a .csv or .json file")
    except (UnicodeDecodeError, csv.Error, ValueError) as error:  # ValueError: JSONDecodeError, over-long integers
        raise StyleTalkerError(f"manifest {path}: cannot be parsed ({error}); see docs/sampling.md for the format") from None
    except RecursionError:
        raise StyleTalkerError(f"manifest {path}: cannot be parsed (lists or objects nested too deeply); "
                               "see docs/sampling.md for the format") from None
    known = set(PATH_COLUMNS) | set(SETTING_NAMES)
    unknown = [name for name in columns if name not in known]
    if unknown:
        raise StyleTalkerError(f"manifest {path}: unknown column(s) {', '.join(unknown)}; "
                               f"columns are {', '.join(PATH_COLUMNS + SETTING_NAMES)}")
    missing = [name for name in REQUIRED_COLUMNS if name not in columns]
    if missing:
        raise StyleTalkerError(f"manifest {path}: missing column(s) {', '.join(missing)}")
    if not rows:
        raise StyleTalkerError(f"manifest {path}: lists no jobs")
    return rows


def job_from_row(row: dict[str, Any], base: Path, defaults: SampleSettings, source: str) -> SampleJob:
    """One manifest row -> a job; paths relative to ``base``; settings over ``defaults``."""
    paths: dict[str, Path | None] = {}
    for name in PATH_COLUMNS:
        value = row.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            if name in REQUIRED_COLUMNS:
                raise StyleTalkerError(f"{source}: the {name} column is empty; give a path")
            paths[name] = None
            continue
        if not isinstance(value, str):
            raise StyleTalkerError(f"{source}: {name} {value!r}: give a path")
        if "\0" in value:
            raise StyleTalkerError(f"{source}: {name} {value!r}: a path cannot contain a NUL character")
        try:
            path = Path(value.strip()).expanduser()
        except RuntimeError:  # "~user" of an unknown user, or no home folder
            raise StyleTalkerError(f"{source}: {name} {value!r}: '~' cannot be expanded here; give the full path") from None
        if name == "out" and not path.name:
            raise StyleTalkerError(f"{source}: out {value!r}: give a file name ending in .mp4")
        paths[name] = path if path.is_absolute() else base / path
    overrides = {k: v for k, v in row.items() if k in SETTING_NAMES}
    for name, value in overrides.items():
        if not isinstance(value, (str, int, float, bool, type(None))):  # JSON lists and objects
            raise StyleTalkerError(f"{source}: {name} {value!r}: give a number, true/false or text, not a list or object")
    try:
        settings = with_overrides(defaults, overrides, source)
    except (TypeError, ValueError, OverflowError) as error:  # a value the settings' checks did not expect
        raise StyleTalkerError(f"{source}: {error}") from None
    image, audio, out = paths["image"], paths["audio"], paths["out"]
    assert image is not None and audio is not None and out is not None  # REQUIRED_COLUMNS
    return SampleJob(image, audio, out, paths["motion"], settings)


def run_manifest(
    sampler: Sampler,
    manifest: str | Path,
    defaults: SampleSettings,
    overwrite: bool = False,
    progress: bool = False,
    on_row: Callable[[RowOutcome], None] | None = None,
) -> list[RowOutcome]:
    """Run every row of ``manifest``; a failing row is recorded and the next one runs.

    ``on_row`` is called with each outcome as soon as it is known (for printing a report).
    Two rows that would write the same file: the later one fails.
    """
    manifest = Path(manifest)
    rows = read_manifest(manifest)
    outcomes: list[RowOutcome] = []
    claimed: dict[Path, int] = {}  # output file -> the row writing it
    for number, row in enumerate(rows, start=1):
        source = f"{manifest.name} row {number}"
        outcome = RowOutcome(number, None)
        try:
            outcome.job = job_from_row(row, manifest.parent, defaults, source)
            for path in output_paths(outcome.job.out, outcome.job.settings.num_samples):
                key = path.resolve()
                if key in claimed:
                    raise StyleTalkerError(f"output {path}: also written by row {claimed[key]}; give each row its own out")
                claimed[key] = number
            outcome.result = sampler.run(outcome.job, overwrite=overwrite, progress=progress)
        except StyleTalkerError as error:
            outcome.error = str(error)
        except OSError as error:  # the file system refused a row's path (name too long, no permission, ...)
            name = f" {error.filename}" if error.filename else ""
            outcome.error = f"{source}:{name}: {error.strerror or error}; check the row's paths"
        except Exception as error:  # a bug on one row must not lose the other rows
            LOG.exception("%s failed", source)
            outcome.error = f"internal error: {type(error).__name__}: {error}"
        outcomes.append(outcome)
        if on_row is not None:
            on_row(outcome)
    return outcomes
