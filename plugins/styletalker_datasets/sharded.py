"""The ``sharded`` dataset: random windows of clips stored in the sharded clip format.

Axis letters: t frames of the window, h w pixels, s audio samples, l W+ layers, w latent width.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open

from styletalker_core.data.latent_cache import LATENT_KEY
from styletalker_core.data.shards import ShardReader, latent_path
from styletalker_core.errors import StyleTalkerError
from styletalker_core.interfaces import ClipDataset

REFERENCE_MODES = ("none", "random", "first")


class ShardedClipDataset(ClipDataset):
    """Random windows of clips from a sharded clip dataset (made by styletalker preprocess or data synth).

    Each item: frames [t, 3, h, w] float in [-1, 1]; audio [s] float at 16 kHz covering the
    window plus ``audio_context_frames`` frames on each side (zeros beyond the clip's ends),
    s = (t + 2 * audio_context_frames) * 640; audio_context_frames; clip_id; start_frame.
    Optional: labels (dict name -> [t, ...]) when ``labels`` and every selected clip has them;
    landmarks [t, 68, 2] when ``landmarks``; reference_frame [3, h, w] when ``reference`` is
    "random" (any frame of the clip) or "first"; ws [t, l, w] and reference_ws [l, w] from the
    W+ latent cache named ``latent_cache`` (written by ``styletalker data encode``: files
    ``latents/<cache>/<clip_id>.safetensors`` holding ``ws`` [frames, l, w]), served as float32.

    Selection: ``split`` keeps clips whose ``meta["split"]`` equals it (``val`` and ``test`` keep the
    ``heldout`` clips of a dataset made before those splits existed); ``clip_ids`` keeps the
    listed clips; clips shorter than ``max(window_frames, min_frames)`` are left out.
    ``resolution`` > 0 requires square frames of that size. ``windows_per_clip`` repeats each
    clip that many times per epoch (each index still seeds its own window).
    Index i reads clip ``(i % len) % clips`` with randomness seeded by (seed, i).
    """

    def __init__(
        self,
        root: str,
        window_frames: int = 25,
        audio_context_frames: int = 0,
        reference: str = "none",
        latent_cache: str = "",
        split: str = "",
        clip_ids: list[str] | None = None,
        min_frames: int = 0,
        resolution: int = 0,
        labels: bool = True,
        landmarks: bool = False,
        windows_per_clip: int = 1,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if window_frames <= 0 or audio_context_frames < 0 or windows_per_clip <= 0:
            raise ValueError("window_frames and windows_per_clip must be positive, audio_context_frames not negative")
        if reference not in REFERENCE_MODES:
            raise StyleTalkerError(f"dataset option reference={reference!r}: choose one of {', '.join(REFERENCE_MODES)}")
        self.root = Path(root)
        self.reader = ShardReader(self.root)
        self.window_frames = window_frames
        self.audio_context_frames = audio_context_frames
        self.reference = reference
        self.latent_cache = latent_cache
        self.want_landmarks = landmarks
        self.windows_per_clip = windows_per_clip
        self.seed = seed
        self.clips = self._select(split, clip_ids, max(window_frames, min_frames), resolution)
        self.label_names = self._common_labels() if labels else []
        self._latent_handles: dict[str, Any] = {}

    def _select(self, split: str, clip_ids: list[str] | None, min_frames: int, resolution: int) -> list[str]:
        records = self.reader.records
        if clip_ids is not None:
            missing = [clip for clip in clip_ids if clip not in records]
            if missing:
                raise StyleTalkerError(f"{self.root}: clip ids not in the dataset: {', '.join(missing[:5])}")
            chosen = list(clip_ids)
        else:
            chosen = self.reader.clip_ids()
        if split:  # val and test select the heldout clips of a dataset of the older layout
            in_split = set(self.reader.split_clip_ids(split))
            chosen = [clip for clip in chosen if clip in in_split]
        chosen = [clip for clip in chosen if records[clip]["num_frames"] >= min_frames]
        if not chosen:
            raise StyleTalkerError(
                f"{self.root}: no clip matches split={split!r}, clip_ids={'given' if clip_ids else 'all'} and at least "
                f"{min_frames} frames; check the dataset's manifest.json"
            )
        for clip in chosen:
            record = records[clip]
            if (record["fps"], record["sample_rate"]) != (self.fps, self.sample_rate):
                raise StyleTalkerError(
                    f"{self.root}: clip {clip} is at {record['fps']} fps / {record['sample_rate']} Hz; "
                    f"this dataset reads {self.fps} fps / {self.sample_rate} Hz clips"
                )
            if resolution and (record["height"], record["width"]) != (resolution, resolution):
                raise StyleTalkerError(
                    f"{self.root}: clip {clip} is {record['width']}x{record['height']}, the recipe asks for "
                    f"{resolution}x{resolution}; preprocess again with --resolution {resolution}"
                )
            if self.want_landmarks and not record["has_landmarks"]:
                raise StyleTalkerError(f"{self.root}: clip {clip} has no landmarks; set landmarks = false")
            if self.latent_cache and not latent_path(self.root, self.latent_cache, clip).is_file():
                raise StyleTalkerError(
                    f"{latent_path(self.root, self.latent_cache, clip)}: missing from latent cache {self.latent_cache!r}; "
                    f"make it with `styletalker data encode {self.root} --checkpoint MODEL.safetensors --cache "
                    f"{self.latent_cache}` (MODEL: the image encoder's weights or a trained model file), or remove "
                    "latent_cache (the frames are then encoded during training)"
                )
        return chosen

    def _common_labels(self) -> list[str]:
        names = [set(self.reader.records[clip]["labels"]) for clip in self.clips]
        return sorted(set.intersection(*names))

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_latent_handles"] = {}  # file handles are reopened in each worker process
        return state

    def __len__(self) -> int:
        return len(self.clips) * self.windows_per_clip

    @property
    def samples_per_frame(self) -> int:
        return self.sample_rate // self.fps

    def _latents(self, clip: str) -> Any:
        handle = self._latent_handles.get(clip)
        if handle is None:
            handle = safe_open(str(latent_path(self.root, self.latent_cache, clip)), framework="pt")
            self._latent_handles[clip] = handle
        return handle.get_slice(LATENT_KEY)

    def _audio(self, clip: str, start: int) -> torch.Tensor:
        spf, context = self.samples_per_frame, self.audio_context_frames
        total = self.reader.records[clip]["audio_samples"]
        low, high = (start - context) * spf, (start + self.window_frames + context) * spf
        piece = self.reader.audio(clip, max(low, 0), max(min(high, total), 0))
        return torch.nn.functional.pad(piece, (max(-low, 0), high - low - max(-low, 0) - piece.shape[0]))

    @staticmethod
    def _to_float(frames: torch.Tensor) -> torch.Tensor:
        """uint8 [..., h, w, 3] -> float [..., 3, h, w] in [-1, 1]."""
        return frames.movedim(-1, -3).float() / 127.5 - 1.0

    def __getitem__(self, index: int) -> dict[str, Any]:
        if index < 0:
            raise IndexError(f"dataset index must be >= 0, got {index}")
        clip = self.clips[index % len(self.clips)]  # the clip of index % len, as len is a multiple
        rng = np.random.default_rng([self.seed, index])
        num_frames = self.reader.records[clip]["num_frames"]
        start = int(rng.integers(0, num_frames - self.window_frames + 1))
        stop = start + self.window_frames
        item: dict[str, Any] = {
            "frames": self._to_float(self.reader.frames(clip, start, stop)),
            "audio": self._audio(clip, start),
            "audio_context_frames": self.audio_context_frames,
            "clip_id": clip,
            "start_frame": start,
        }
        if self.label_names:
            labels = self.reader.labels(clip, start, stop)
            item["labels"] = {name: labels[name] for name in self.label_names}
        if self.want_landmarks:
            item["landmarks"] = self.reader.landmarks(clip, start, stop)
        reference = None
        if self.reference == "random":
            reference = int(rng.integers(0, num_frames))
        elif self.reference == "first":
            reference = 0
        if reference is not None:
            item["reference_frame"] = self._to_float(self.reader.frames(clip, reference, reference + 1))[0]
        if self.latent_cache:
            latents = self._latents(clip)
            item["ws"] = latents[start:stop].float()
            if reference is not None:
                item["reference_ws"] = latents[reference : reference + 1].float()[0]
        return item
