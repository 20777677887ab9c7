"""Which reference belongs to which generated video: the pairing convention of ``styletalker evaluate``.

Inputs are paths. A *source* (given to --reference, --motion or --audio) is one of:

- a clip dataset folder (it holds ``manifest.json``; made by ``styletalker preprocess`` or
  ``styletalker data synth``): entries are its clips, by clip id; a clip gives frames, audio
  and per-frame labels;
- a folder: entries are its video, image and audio files, by file name without suffix;
- a single file: used for every generated video.

A generated video ``NAME.mp4`` pairs with the entry whose name equals NAME, or else with the
longest entry name E such that NAME starts with E followed by ``_``, ``-`` or ``.`` (so
``clip7_sample2.mp4`` pairs with ``clip7``). Every given source must have an entry for every
generated video; a video without one is an error that names it.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

from styletalker_core.errors import StyleTalkerError
from styletalker_core.media import AUDIO_SUFFIXES, IMAGE_SUFFIXES, VIDEO_SUFFIXES

SEPARATORS = ("_", "-", ".")
MANIFEST_COLUMNS = (
    "generated", "name", "reference_video", "reference_image", "audio", "motion_video",
    "dataset", "clip_id", "motion_clip_id", "labels",
)


@attrs.frozen
class ClipRef:
    """Clip ``clip_id`` of the clip dataset at ``root``."""

    root: Path
    clip_id: str

    def __str__(self) -> str:
        return f"{self.root}#{self.clip_id}"


@attrs.define
class EvalJob:
    """Files that make up one evaluation item (see :func:`styletalker_core.evaluate.loading.load_job`)."""

    name: str
    generated: Path
    reference_video: Path | None = None
    reference_image: Path | None = None
    reference_clip: ClipRef | None = None
    audio: Path | None = None
    motion_video: Path | None = None
    motion_clip: ClipRef | None = None
    labels: Path | None = None

    def describe(self) -> dict[str, str]:
        """The non-empty inputs as strings (recorded with the item's results)."""
        return {field.name: str(value) for field in attrs.fields(EvalJob) if (value := getattr(self, field.name)) is not None}


def _kind(path: Path) -> str | None:
    suffix = path.suffix.lower()
    if suffix in VIDEO_SUFFIXES:
        return "video"
    if suffix in IMAGE_SUFFIXES:
        return "image"
    if suffix in AUDIO_SUFFIXES:
        return "audio"
    return None


def generated_videos(paths: list[str]) -> list[Path]:
    """Video files named by ``paths`` (files, or folders whose video files are taken, sorted)."""
    videos: list[Path] = []
    for text in paths:
        path = Path(text)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and _kind(p) == "video")
            if not found:
                raise StyleTalkerError(f"{path}: holds no video files ({', '.join(VIDEO_SUFFIXES[:3])}, ...)")
            videos.extend(found)
        elif path.is_file():
            if _kind(path) != "video":
                raise StyleTalkerError(f"{path}: not a video file; give generated videos ({', '.join(VIDEO_SUFFIXES[:3])}, ...)")
            videos.append(path)
        else:
            raise StyleTalkerError(f"{path}: no such file or folder")
    return videos


def match_name(name: str, candidates: list[str]) -> str | None:
    """The entry ``name`` pairs with (see the module notes), or None."""
    if name in candidates:
        return name
    prefixes = [c for c in candidates if len(c) < len(name) and name.startswith(c) and name[len(c)] in SEPARATORS]
    return max(prefixes, key=len) if prefixes else None


@attrs.define
class Source:
    """One --reference / --motion / --audio argument, indexed by entry name."""

    path: Path
    dataset: bool = False
    single: bool = False
    entries: dict[str, dict[str, Path]] = attrs.Factory(dict)  # name -> kind -> file

    @classmethod
    def open(cls, text: str) -> Source:
        path = Path(text)
        if path.is_dir() and (path / "manifest.json").is_file():
            from styletalker_core.data.shards import ShardReader

            return cls(path, dataset=True, entries={clip_id: {} for clip_id in ShardReader(path).clip_ids()})
        if path.is_dir():
            entries: dict[str, dict[str, Path]] = {}
            for file in sorted(path.iterdir()):
                kind = _kind(file) if file.is_file() else None
                if kind is not None:
                    entries.setdefault(file.stem, {})[kind] = file
            if not entries:
                raise StyleTalkerError(f"{path}: holds no video, image or audio files")
            return cls(path, entries=entries)
        if path.is_file():
            kind = _kind(path)
            if kind is None:
                raise StyleTalkerError(f"{path}: not a video, image or audio file")
            return cls(path, single=True, entries={path.stem: {kind: path}})
        raise StyleTalkerError(f"{path}: no such file or folder")

    def lookup(self, name: str, generated: Path) -> tuple[str, dict[str, Path]]:
        """(entry name, files by kind) for the generated video ``name``; raises when there is none."""
        if self.single:
            return next(iter(self.entries.items()))
        match = match_name(name, list(self.entries))
        if match is None:
            raise StyleTalkerError(
                f"{generated}: no match in {self.path}; entries there must be named like the generated file "
                f"('{name}') or a prefix of it followed by one of {' '.join(SEPARATORS)}"
            )
        return match, self.entries[match]


def pair_inputs(generated: Sequence[str], references: Sequence[str] = (), motions: Sequence[str] = (), audios: Sequence[str] = ()) -> list[EvalJob]:
    """EvalJobs for every generated video, with its entry in each reference, motion and audio source."""
    sources = {role: [Source.open(text) for text in texts] for role, texts in
               (("reference", references), ("motion", motions), ("audio", audios))}
    jobs = []
    for video in generated_videos(list(generated)):
        job = EvalJob(video.stem, video)
        for role, role_sources in sources.items():
            for source in role_sources:
                entry, files = source.lookup(video.stem, video)
                _assign(job, role, source, entry, files)
        jobs.append(job)
    return jobs


def _assign(job: EvalJob, role: str, source: Source, entry: str, files: dict[str, Path]) -> None:
    if source.dataset:
        if role == "reference":
            job.reference_clip = ClipRef(source.path, entry)
        elif role == "motion":
            job.motion_clip = ClipRef(source.path, entry)
        else:
            raise StyleTalkerError(f"{source.path}: a clip dataset cannot be an --audio source; give it as --reference")
        return
    if role == "reference":
        job.reference_video = files.get("video", job.reference_video)
        job.reference_image = files.get("image", job.reference_image)
        job.audio = job.audio or files.get("audio")
    elif role == "motion":
        if "video" not in files:
            raise StyleTalkerError(f"{source.path}: entry {entry!r} has no video file to use as motion source")
        job.motion_video = files["video"]
    else:
        audio = files.get("audio") or files.get("video")
        if audio is None:
            raise StyleTalkerError(f"{source.path}: entry {entry!r} has no audio or video file")
        job.audio = audio


def read_manifest(path: str | Path) -> list[EvalJob]:
    """EvalJobs from a JSON list of objects or a CSV file with a header, one row per generated video.

    Columns (all but ``generated`` optional): see :data:`MANIFEST_COLUMNS`. ``dataset`` with
    ``clip_id`` names a reference clip (``motion_clip_id`` a motion clip of the same dataset);
    ``labels`` is a .npz or .json file of per-frame labels. Relative paths are relative to the
    manifest's folder.
    """
    path = Path(path)
    if not path.is_file():
        raise StyleTalkerError(f"{path}: no such manifest file")
    if path.suffix.lower() == ".json":
        rows = json.loads(path.read_text())
        if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
            raise StyleTalkerError(f"{path}: a JSON manifest must be a list of objects, one per generated video")
    elif path.suffix.lower() == ".csv":
        with path.open(newline="") as handle:
            rows = [{k: v for k, v in row.items() if v} for row in csv.DictReader(handle)]
    else:
        raise StyleTalkerError(f"{path}: manifest must be a .json or .csv file")
    return [_job_from_row(path, number, row) for number, row in enumerate(rows, start=1)]


def _job_from_row(manifest: Path, number: int, row: dict[str, Any]) -> EvalJob:
    where = f"{manifest}: row {number}"
    unknown = sorted(set(row) - set(MANIFEST_COLUMNS))
    if unknown:
        raise StyleTalkerError(f"{where}: unknown column(s) {', '.join(unknown)}; columns are {', '.join(MANIFEST_COLUMNS)}")
    if "generated" not in row:
        raise StyleTalkerError(f"{where}: has no 'generated' video")

    def resolve(key: str) -> Path | None:
        if key not in row:
            return None
        file = Path(str(row[key]))
        file = file if file.is_absolute() else manifest.parent / file
        if not file.exists():
            raise StyleTalkerError(f"{where}: {key} {file} does not exist")
        return file

    dataset = resolve("dataset")
    if ("clip_id" in row or "motion_clip_id" in row) and dataset is None:
        raise StyleTalkerError(f"{where}: clip_id needs a 'dataset' folder")
    generated = resolve("generated")
    assert generated is not None
    return EvalJob(
        name=str(row.get("name") or generated.stem),
        generated=generated,
        reference_video=resolve("reference_video"),
        reference_image=resolve("reference_image"),
        reference_clip=ClipRef(dataset, str(row["clip_id"])) if dataset and "clip_id" in row else None,
        audio=resolve("audio"),
        motion_video=resolve("motion_video"),
        motion_clip=ClipRef(dataset, str(row["motion_clip_id"])) if dataset and "motion_clip_id" in row else None,
        labels=resolve("labels"),
    )
