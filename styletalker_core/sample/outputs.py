"""Output files of a sampling job: their names, the overwrite rule, and all-or-nothing writing.

One sample is written to OUT as given; ``n > 1`` samples to OUT_0.mp4 .. OUT_{n-1}.mp4 (the
index before the suffix). Every file is streamed into a temporary file beside it and renamed
only when all of the job's files are complete, so a failure leaves no output behind.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
from pathlib import Path
from types import TracebackType

import numpy as np

from styletalker_core.errors import StyleTalkerError
from styletalker_core.io.atomic import remove_stale_temporaries, temporary_path_for
from styletalker_core.media import VideoWriter

LOG = logging.getLogger(__name__)
VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov")
MAX_NAME_BYTES = 200  # file systems allow 255; the temporary file beside the output adds its own suffixes


def output_paths(out: str | Path, num_samples: int) -> list[Path]:
    """The files a job with ``num_samples`` samples writes: [out] or [out_0, out_1, ...]."""
    out = Path(out)
    if num_samples == 1:
        return [out]
    return [out.with_name(f"{out.stem}_{index}{out.suffix}") for index in range(num_samples)]


def folder_problem(folder: str | Path) -> str:
    """Why files cannot be written into ``folder`` ('' when they can). A missing folder is judged
    by its nearest existing parent (it will be created there). Nothing is left behind: the check
    creates and removes one empty probe file."""
    folder = Path(folder)
    existing = folder
    while not existing.exists():
        if existing.is_symlink():
            return f"{existing} is a broken link"
        if existing.parent == existing:
            return f"{existing} does not exist"
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is a file, not a folder"
    probe = existing / f".styletalker-write-test.{secrets.token_hex(4)}"
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except OSError as error:
        return f"cannot create files in {existing} ({error.strerror or error})"
    with contextlib.suppress(OSError):
        probe.unlink()
    return ""


def check_output_folder(folder: str | Path, option: str) -> Path:
    """``folder`` as a Path when output files can be written into it (it may not exist yet);
    otherwise a StyleTalkerError naming ``option`` (for example ``--out-dir``)."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise StyleTalkerError(f"{option} {folder}: is a file, not a folder; give a folder (it is created when missing)")
    problem = folder_problem(folder)
    if problem:
        raise StyleTalkerError(f"{option} {folder}: cannot write there: {problem}; choose another folder")
    return folder


def check_output_file(path: str | Path, option: str) -> Path:
    """``path`` as a Path when a file can be written there (replacing a file is allowed); otherwise a
    StyleTalkerError naming ``option`` (for example ``--out``)."""
    path = Path(path)
    if path.is_dir():
        raise StyleTalkerError(f"{option} {path}: is a folder; give a file name")
    problem = folder_problem(path.parent)
    if problem:
        raise StyleTalkerError(f"{option} {path}: cannot be written: {problem}; choose another place")
    return path


def check_outputs(paths: list[Path], overwrite: bool, inputs: list[Path]) -> None:
    """Refuse names that are not mp4, that exist (unless ``overwrite``), that are inputs of the job,
    or whose folder cannot be written."""
    for path in paths:
        if path.suffix.lower() not in VIDEO_SUFFIXES:
            raise StyleTalkerError(f"output {path}: give a name ending in .mp4")
        if len(path.name.encode()) > MAX_NAME_BYTES:
            raise StyleTalkerError(f"output {path}: the file name is longer than {MAX_NAME_BYTES} bytes; choose a shorter name")
        if path.is_dir():
            raise StyleTalkerError(f"output {path}: is a folder; give a file name ending in .mp4")
        resolved = path.resolve()
        if any(resolved == source.resolve() for source in inputs):
            raise StyleTalkerError(f"output {path}: is also an input of this job; choose another output name")
        if path.exists() and not overwrite:
            raise StyleTalkerError(f"output {path}: already exists; pass --overwrite to replace it, or choose another name")
        problem = folder_problem(path.parent)
        if problem:
            raise StyleTalkerError(f"output {path}: cannot be written: {problem}; choose another place")


class VideoSet:
    """One streaming mp4 writer per sample, committed together.

    Frames of every sample and the shared audio go in chunk by chunk (:meth:`write`); on
    :meth:`close` each file is finished under its temporary name and then all are renamed.
    On an error (leaving the ``with`` block by an exception) nothing appears under the real names.
    """

    def __init__(self, paths: list[Path], fps: int, sample_rate: int, crf: int, preset: str) -> None:
        self.paths = paths
        self.samples_per_frame = sample_rate // fps
        for path in paths:  # left by a killed run of the same output
            remove_stale_temporaries(path)
        self._staging = [temporary_path_for(path) for path in paths]
        self._writers = [VideoWriter(staging, fps=fps, sample_rate=sample_rate, crf=crf, preset=preset)
                         for staging in self._staging]

    def __enter__(self) -> VideoSet:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, trace: TracebackType | None) -> None:
        if kind is None:
            self.close()
        else:
            self.abort()

    @property
    def num_frames(self) -> int:
        return self._writers[0].num_frames

    def write(self, frames: np.ndarray, audio: np.ndarray) -> None:
        """frames uint8 [n, t, h, w, 3] (n samples) and the mono audio under these t frames [<= t * spf]
        (shorter only where the recording ends), muxed into every file."""
        if frames.shape[0] != len(self._writers):
            raise ValueError(f"expected frames of {len(self._writers)} samples, got {frames.shape[0]}")
        if len(audio) > frames.shape[1] * self.samples_per_frame:
            raise ValueError(f"{len(audio)} audio samples are more than the {frames.shape[1]} frames cover")
        for writer, sample in zip(self._writers, frames, strict=True):
            writer.write_audio(audio)
            writer.write_frames(sample)

    def close(self) -> list[Path]:
        """Finish every file, then rename them all into place; returns the final paths."""
        try:
            for writer in self._writers:
                writer.close()
        except BaseException:
            self.abort()
            raise
        for staging, path in zip(self._staging, self.paths, strict=True):
            staging.replace(path)
        return self.paths

    def abort(self) -> None:
        """Drop every file of the set (temporary and finished-but-not-renamed)."""
        for writer in self._writers:
            writer.abort()
        for staging in self._staging:
            staging.unlink(missing_ok=True)
