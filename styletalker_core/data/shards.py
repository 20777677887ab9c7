"""The sharded clip dataset format written by preprocessing and by the synthetic generator.

Layout of a dataset folder::

    manifest.json               every clip's record (written last, atomically)
    shards/<name>.safetensors   tensors of the clips of one shard
    shards/<name>.json          the shard's clip records; its presence marks the shard complete
    latents/<cache>/<clip_id>.safetensors   optional W+ latent cache, one file per clip

Tensors of a clip in its shard (t frames at ``fps``, s samples at ``sample_rate``)::

    <clip_id>/frames        uint8   [t, h, w, 3]   aligned RGB face crops
    <clip_id>/audio         float32 [s]            mono, 16 kHz
    <clip_id>/landmarks     float32 [t, 68, 2]     optional, pixel coordinates in the crop
    <clip_id>/label/<name>  float32 [t, ...]       optional per-frame ground truth

Shards are written to a temporary name and renamed, and the index after the tensors, so
an interrupted run never leaves a shard that looks complete. Re-running skips shards whose
index exists. Readers open shards memory-mapped and slice windows without loading clips.

Splits: a clip's ``meta["split"]`` is ``train``, ``val`` or ``test`` (datasets made before the
validation split existed have ``train`` and ``heldout``: there ``val`` and ``test`` select the
``heldout`` clips, see :func:`clips_in_split`). ``meta`` may also record who speaks and what:
``identity_id`` (or ``speaker``), ``sentence_id`` (else derived from ``transcript``) and
``voice_id`` (:func:`clip_keys`).
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from styletalker_core.errors import StyleTalkerError
from styletalker_core.io.atomic import atomic_path, write_json_atomic

FORMAT_NAME = "styletalker-clips"
FORMAT_VERSION = 1
LEGACY_HELDOUT = "heldout"
LEGACY_SPLITS = ("val", "test")  # served by the heldout clips of a dataset without them
LOG = logging.getLogger(__name__)
_warned_legacy: set[tuple[str, str]] = set()


def sentence_id(text: str) -> str:
    """A sentence's id: the first 12 hex digits of the SHA-1 of its text (equal texts, equal ids)."""
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def record_split(record: dict[str, Any]) -> str:
    meta = record.get("meta")
    split = meta.get("split", "") if isinstance(meta, dict) else ""
    return split if isinstance(split, str) else ""


def is_legacy_split(records: dict[str, dict[str, Any]], split: str) -> bool:
    """True when ``split`` (val or test) is served by the ``heldout`` clips: the dataset has no clip
    marked val or test but has held-out ones (made before the validation split existed)."""
    if split not in LEGACY_SPLITS:
        return False
    present = {record_split(record) for record in records.values()}
    return LEGACY_HELDOUT in present and not present & set(LEGACY_SPLITS)


def clips_in_split(records: dict[str, dict[str, Any]], split: str, source: str = "") -> list[str]:
    """Ids of the clips of ``split`` (in record order). In a dataset of the older train / heldout
    layout ``val`` and ``test`` both select the ``heldout`` clips (logged once per dataset and split)."""
    wanted = split
    if is_legacy_split(records, split):
        wanted = LEGACY_HELDOUT
        if (source, split) not in _warned_legacy:
            _warned_legacy.add((source, split))
            LOG.warning("%s has the older train / heldout splits: its heldout clips serve as %r (make a dataset with "
                        "separate val and test splits with `styletalker data synth`)", source or "the dataset", split)
    return [clip for clip, record in records.items() if record_split(record) == wanted]


def clip_keys(record: dict[str, Any]) -> dict[str, str]:
    """What a clip's record says of who speaks what: ``identity`` (meta identity_id, else speaker),
    ``sentence`` (meta sentence_id, else the id of its transcript) and ``voice`` (meta voice_id);
    only the ones recorded."""
    meta = record.get("meta")
    if not isinstance(meta, dict):
        return {}
    keys = {}
    if meta.get("identity_id") is not None:
        keys["identity"] = f"identity {meta['identity_id']}"
    elif meta.get("speaker"):
        keys["identity"] = f"speaker {meta['speaker']}"
    if meta.get("sentence_id"):
        keys["sentence"] = f"sentence {meta['sentence_id']}"
    elif isinstance(meta.get("transcript"), str) and meta["transcript"].strip():
        keys["sentence"] = f"sentence {sentence_id(meta['transcript'])}"
    if meta.get("voice_id") is not None:
        keys["voice"] = f"voice {meta['voice_id']}"
    return keys



@attrs.define
class Clip:
    """One talking-face clip in memory, ready to be written to a shard."""

    clip_id: str
    frames: np.ndarray  # [t, h, w, 3] uint8
    audio: np.ndarray  # [s] float32 at sample_rate
    fps: int = 25
    sample_rate: int = 16000
    source: str = ""
    landmarks: np.ndarray | None = None  # [t, 68, 2] float32
    labels: dict[str, np.ndarray] = attrs.Factory(dict)  # name -> [t, ...]
    meta: dict[str, Any] = attrs.Factory(dict)  # JSON-serialisable extras (transcript, phonemes, ...)

    def __attrs_post_init__(self) -> None:
        if "/" in self.clip_id or not self.clip_id:
            raise ValueError(f"clip id {self.clip_id!r}: must be non-empty and contain no '/'")
        if self.frames.dtype != np.uint8 or self.frames.ndim != 4 or self.frames.shape[-1] != 3:
            raise ValueError(f"clip {self.clip_id}: frames must be uint8 [t, h, w, 3], got {self.frames.dtype} {self.frames.shape}")
        for name, label in self.labels.items():
            if len(label) != len(self.frames):
                raise ValueError(f"clip {self.clip_id}: label {name} has {len(label)} rows for {len(self.frames)} frames")

    def record(self, shard: str) -> dict[str, Any]:
        """The manifest record of this clip."""
        return {
            "clip_id": self.clip_id,
            "shard": shard,
            "source": self.source,
            "num_frames": int(self.frames.shape[0]),
            "height": int(self.frames.shape[1]),
            "width": int(self.frames.shape[2]),
            "fps": self.fps,
            "sample_rate": self.sample_rate,
            "audio_samples": int(self.audio.shape[0]),
            "has_landmarks": self.landmarks is not None,
            "labels": {name: list(label.shape[1:]) for name, label in self.labels.items()},
            "meta": self.meta,
        }

    def tensors(self) -> dict[str, torch.Tensor]:
        out = {
            f"{self.clip_id}/frames": torch.from_numpy(np.ascontiguousarray(self.frames)),
            f"{self.clip_id}/audio": torch.from_numpy(np.ascontiguousarray(self.audio, dtype=np.float32)),
        }
        if self.landmarks is not None:
            out[f"{self.clip_id}/landmarks"] = torch.from_numpy(np.ascontiguousarray(self.landmarks, dtype=np.float32))
        for name, label in self.labels.items():
            out[f"{self.clip_id}/label/{name}"] = torch.from_numpy(np.ascontiguousarray(label, dtype=np.float32))
        return out


class ShardWriter:
    """Writes shards of clips into ``root``; safe to use from several processes on distinct shard names."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.shard_dir = self.root / "shards"
        self.shard_dir.mkdir(parents=True, exist_ok=True)

    def is_done(self, shard: str) -> bool:
        """True when ``shard`` was completely written by an earlier (possibly interrupted) run."""
        return (self.shard_dir / f"{shard}.json").is_file() and (self.shard_dir / f"{shard}.safetensors").is_file()

    def write(self, shard: str, clips: list[Clip]) -> list[dict[str, Any]]:
        """Write ``clips`` as shard ``shard`` atomically; returns their records. An empty list writes an empty index."""
        tensors: dict[str, torch.Tensor] = {}
        records = []
        for clip in clips:
            tensors.update(clip.tensors())
            records.append(clip.record(shard))
        with atomic_path(self.shard_dir / f"{shard}.safetensors") as temporary:
            save_file(tensors, str(temporary))
        write_json_atomic(self.shard_dir / f"{shard}.json", {"shard": shard, "clips": records})
        return records

    def finalize(self, info: dict[str, Any] | None = None) -> dict[str, Any]:
        """Gather every shard index into ``manifest.json`` (atomically) and return it."""
        records = []
        for index_path in sorted(self.shard_dir.glob("*.json")):
            records += json.loads(index_path.read_text())["clips"]
        manifest = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "info": info or {}, "clips": records}
        write_json_atomic(self.root / "manifest.json", manifest)
        return manifest


def latent_path(root: str | Path, cache: str, clip_id: str) -> Path:
    """Where the W+ latent cache named ``cache`` stores ``clip_id``."""
    return Path(root) / "latents" / cache / f"{clip_id}.safetensors"


class ShardReader:
    """Random access to the clips of a dataset folder. Shard files are opened lazily per process."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        manifest_path = self.root / "manifest.json"
        if not manifest_path.is_file():
            raise StyleTalkerError(
                f"{self.root}: not a styletalker clip dataset (no manifest.json); create one with "
                "`styletalker preprocess` or `styletalker data synth`"
            )
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("format") != FORMAT_NAME:
            raise StyleTalkerError(f"{manifest_path}: unknown dataset format {manifest.get('format')!r}")
        self.info: dict[str, Any] = manifest.get("info", {})
        self.records: dict[str, dict[str, Any]] = {r["clip_id"]: r for r in manifest["clips"]}
        self._handles: dict[str, Any] = {}

    def __getstate__(self) -> dict[str, Any]:
        # Open file handles do not cross process boundaries (DataLoader workers reopen them).
        state = dict(self.__dict__)
        state["_handles"] = {}
        return state

    def clip_ids(self) -> list[str]:
        return list(self.records)

    def split_clip_ids(self, split: str) -> list[str]:
        """Clips of ``split`` (``val`` and ``test`` select ``heldout`` in the older layout: :func:`clips_in_split`)."""
        return clips_in_split(self.records, split, str(self.root))

    def _shard(self, clip_id: str) -> Any:
        shard = self.records[clip_id]["shard"]
        handle = self._handles.get(shard)
        if handle is None:
            handle = safe_open(str(self.root / "shards" / f"{shard}.safetensors"), framework="pt")
            self._handles[shard] = handle
        return handle

    def _slice(self, key: str, clip_id: str, start: int | None, stop: int | None) -> torch.Tensor:
        return self._shard(clip_id).get_slice(f"{clip_id}/{key}")[start:stop]

    def frames(self, clip_id: str, start: int | None = None, stop: int | None = None) -> torch.Tensor:
        """uint8 [t, h, w, 3] frames ``start:stop``."""
        return self._slice("frames", clip_id, start, stop)

    def audio(self, clip_id: str, start: int | None = None, stop: int | None = None) -> torch.Tensor:
        """float32 [s] samples ``start:stop``."""
        return self._slice("audio", clip_id, start, stop)

    def landmarks(self, clip_id: str, start: int | None = None, stop: int | None = None) -> torch.Tensor | None:
        """float32 [t, 68, 2] or None when the clip has none."""
        if not self.records[clip_id]["has_landmarks"]:
            return None
        return self._slice("landmarks", clip_id, start, stop)

    def labels(self, clip_id: str, start: int | None = None, stop: int | None = None) -> dict[str, torch.Tensor]:
        """Per-frame labels name -> float32 [t, ...]."""
        return {name: self._slice(f"label/{name}", clip_id, start, stop) for name in self.records[clip_id]["labels"]}
