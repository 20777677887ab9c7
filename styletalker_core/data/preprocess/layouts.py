"""Finding the videos of a source folder and naming their clips.

Layouts:
- ``voxceleb2`` (and LRS3-like): ``.../<speaker id>/<youtube id>/<utterance>.mp4``; the key is
  ``<speaker>_<youtube id>_<utterance>``, meta holds the speaker as ``speaker`` and ``identity``;
  a ``test`` folder in the path puts the clips in the ``test`` split (VoxCeleb2's own test set).
- ``hdtf``: one folder of long videos named like ``WRA_KellyAyotte_000.mp4``; the key is the
  file name, the speaker (and identity) the name without its trailing number.
- ``folder``: any videos anywhere below the source; the key is the relative path with
  separators turned into ``__``. When every video sits in a subfolder (``<person>/<video>``, a
  folder per person) the first folder is the identity; videos directly in the source have none.
The other splits are drawn by :mod:`styletalker_core.data.preprocess.splits` (by identity, else
by source video).
``auto`` picks voxceleb2 when every video sits two folders deep under an ``idNNNNN`` speaker
folder, hdtf when every name starts with WDA_, WRA_ or RD_, else folder.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import attrs

from styletalker_core.errors import StyleTalkerError
from styletalker_core.media.video_reader import VIDEO_SUFFIXES

LAYOUTS = ("auto", "folder", "voxceleb2", "hdtf")
_SPEAKER = re.compile(r"id\d+")
_HDTF = re.compile(r"(WDA|WRA|RD)_.+")


@attrs.frozen
class VideoJob:
    """One source video: ``key`` names its clips, shards and report; ``meta`` goes into each clip."""

    key: str
    path: Path
    relative: str
    meta: dict[str, Any]


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", text)


def _is_voxceleb(relative: Path) -> bool:
    return len(relative.parts) >= 3 and _SPEAKER.fullmatch(relative.parts[-3]) is not None


def discover_videos(source: str | Path, layout: str = "auto") -> list[VideoJob]:
    """Every video file below ``source`` (sorted), as jobs named by ``layout``."""
    source = Path(source)
    if layout not in LAYOUTS:
        raise StyleTalkerError(f"layout {layout!r}: choose one of {', '.join(LAYOUTS)}")
    if not source.is_dir():
        raise StyleTalkerError(f"{source}: no such folder; give the folder that holds the videos")
    paths = sorted(p for p in source.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
    if not paths:
        raise StyleTalkerError(f"{source}: no video files found (looked for {', '.join(VIDEO_SUFFIXES)})")
    relatives = [p.relative_to(source) for p in paths]
    if layout == "auto":
        if all(_is_voxceleb(r) for r in relatives):
            layout = "voxceleb2"
        elif all(_HDTF.fullmatch(r.stem) for r in relatives):
            layout = "hdtf"
        else:
            layout = "folder"
    per_person = layout == "folder" and all(len(r.parts) >= 2 for r in relatives)  # a folder per person
    jobs, used = [], set()
    for path, relative in zip(paths, relatives, strict=True):
        meta: dict[str, Any] = {"layout": layout}
        if layout == "voxceleb2":
            if not _is_voxceleb(relative):
                raise StyleTalkerError(f"{path}: not in the VoxCeleb2 layout <speaker id>/<video id>/<n>.mp4; use --layout folder")
            speaker, video, utterance = relative.parts[-3], relative.parts[-2], relative.stem
            key = _safe(f"{speaker}_{video}_{utterance}")
            meta |= {"speaker": speaker, "identity": speaker}
            if "test" in relative.parts[:-3]:
                meta["split"] = "test"  # VoxCeleb2's own test set (identities disjoint from dev)
        elif layout == "hdtf":
            key = _safe(relative.stem)
            speaker = re.sub(r"_\d+$", "", relative.stem)
            meta |= {"speaker": speaker, "identity": speaker}
        else:
            key = _safe("__".join(relative.with_suffix("").parts))
            if per_person:
                meta |= {"speaker": relative.parts[0], "identity": relative.parts[0]}
        base, number = key, 2
        while key in used:
            key, number = f"{base}-{number}", number + 1
        used.add(key)
        jobs.append(VideoJob(key, path, relative.as_posix(), meta))
    return jobs
