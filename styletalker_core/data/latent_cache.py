"""The W+ latent cache: every frame of a clip dataset encoded once, one safetensors file per clip.

Layout (see :func:`styletalker_core.data.shards.latent_path`)::

    <dataset>/latents/<cache>/<clip_id>.safetensors   tensor "ws" float16 [t, l, w]
    <dataset>/latents/<cache>/cache.json              which encoder wrote the cache

Each clip file is written atomically, so an interrupted run leaves only complete files and
a rerun skips them (resume). ``cache.json`` records the encoder (component record and a
fingerprint of its weights); a rerun with a different encoder into the same cache is
refused rather than mixing codes of two encoders. Axis letters: t frames, l W+ layers,
w latent width, h/w image height/width.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import attrs
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from styletalker_core.data.shards import ShardReader, latent_path
from styletalker_core.errors import StyleTalkerError
from styletalker_core.interfaces.image_encoder import ImageEncoder
from styletalker_core.io.atomic import atomic_path, write_json_atomic

LOG = logging.getLogger(__name__)
CACHE_FORMAT = "styletalker-latents"
CACHE_VERSION = 1
LATENT_KEY = "ws"


@attrs.define
class CacheSummary:
    """What :func:`encode_dataset` did."""

    cache_dir: Path
    encoded: list[str]
    skipped: list[str]
    frames: int


def encoder_fingerprint(encoder: ImageEncoder) -> str:
    """A short hash of the encoder's weights and buffers (identifies which encoder wrote a cache)."""
    digest = hashlib.sha256()
    for key, tensor in sorted(encoder.state_dict().items()):
        digest.update(key.encode())
        digest.update(tensor.detach().to(torch.float32).cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def _encoder_record(encoder: ImageEncoder, source: str) -> dict[str, Any]:
    spec = getattr(encoder, "component_spec", None)
    return {
        "name": getattr(spec, "name", type(encoder).__name__),
        "options": dict(getattr(spec, "options", {}) or {}),
        "source": source,
        "fingerprint": encoder_fingerprint(encoder),
        "num_ws": int(encoder.num_ws),
        "w_dim": int(encoder.w_dim),
    }


def _check_cache_info(cache_dir: Path, record: dict[str, Any]) -> None:
    """Write cache.json, or refuse when it names a different encoder."""
    info_path = cache_dir / "cache.json"
    if info_path.is_file():
        info = json.loads(info_path.read_text())
        previous = info.get("encoder", {}).get("fingerprint")
        if previous != record["fingerprint"]:
            raise StyleTalkerError(
                f"{cache_dir}: holds latents of another encoder ({info.get('encoder', {}).get('source', '?')}); "
                "choose another cache name (--cache) or delete that folder"
            )
        return
    write_json_atomic(info_path, {"format": CACHE_FORMAT, "version": CACHE_VERSION, "encoder": record})


def frames_to_images(frames: torch.Tensor) -> torch.Tensor:
    """uint8 frames [t, h, w, 3] -> float images [t, 3, h, w] in [-1, 1]."""
    return frames.permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


@torch.no_grad()
def encode_frames(encoder: ImageEncoder, frames: torch.Tensor, batch_size: int, device: torch.device) -> torch.Tensor:
    """uint8 frames [t, h, w, 3] -> W+ codes [t, l, w] float32 on the CPU."""
    codes = []
    for start in range(0, frames.shape[0], batch_size):
        images = frames_to_images(frames[start:start + batch_size]).to(device)
        codes.append(encoder.encode(images).float().cpu())
    return torch.cat(codes)


def write_clip_latents(path: Path, ws: torch.Tensor, clip_id: str) -> None:
    """Store codes [t, l, w] of one clip as float16 at ``path`` (atomically)."""
    with atomic_path(path) as temporary:
        save_file({LATENT_KEY: ws.to(torch.float16).contiguous()}, str(temporary),
                  metadata={"clip_id": clip_id, "format": CACHE_FORMAT})


def read_clip_latents(root: str | Path, cache: str, clip_id: str, start: int | None = None,
                      stop: int | None = None) -> torch.Tensor:
    """Cached codes of frames ``start:stop`` of a clip: float16 [t, l, w] (read lazily, memory-mapped)."""
    path = latent_path(root, cache, clip_id)
    if not path.is_file():
        raise StyleTalkerError(f"{path}: no cached latents for clip {clip_id}; run `styletalker data encode {root}`")
    with safe_open(str(path), framework="pt") as handle:
        return handle.get_slice(LATENT_KEY)[start:stop]


def is_cached(root: str | Path, cache: str, clip_id: str, num_frames: int) -> bool:
    """True when the clip's latent file exists and covers all ``num_frames`` frames."""
    path = latent_path(root, cache, clip_id)
    if not path.is_file():
        return False
    try:
        with safe_open(str(path), framework="pt") as handle:
            return handle.get_slice(LATENT_KEY).get_shape()[0] == num_frames
    except Exception:  # noqa: BLE001 - a damaged file (e.g. from a crash of an older writer) is re-encoded
        return False


def encode_dataset(
    root: str | Path,
    encoder: ImageEncoder,
    cache: str,
    source: str = "",
    batch_size: int = 64,
    device: torch.device | str = "cpu",
    progress: bool = True,
    clip_ids: Iterable[str] | None = None,
) -> CacheSummary:
    """Encode every frame of every clip (or of ``clip_ids``) of the dataset at ``root`` into cache ``cache``.

    Clips whose file is already complete are skipped, so an interrupted run resumes.
    ``source`` describes where the encoder came from (recorded in cache.json).
    """
    from tqdm import tqdm

    reader = ShardReader(root)
    device = torch.device(device)
    encoder = encoder.to(device).eval()
    cache_dir = latent_path(root, cache, "x").parent
    cache_dir.mkdir(parents=True, exist_ok=True)
    _check_cache_info(cache_dir, _encoder_record(encoder, source))
    wanted = list(clip_ids) if clip_ids is not None else reader.clip_ids()
    unknown = [c for c in wanted if c not in reader.records]
    if unknown:
        raise StyleTalkerError(f"{root}: no clips named {', '.join(unknown[:5])}")
    total_frames = sum(reader.records[c]["num_frames"] for c in wanted)
    encoded, skipped, frames_done = [], [], 0
    bar = tqdm(total=total_frames, unit="frame", desc=f"encode {cache}", disable=not progress, dynamic_ncols=True)
    for clip_id in wanted:
        count = reader.records[clip_id]["num_frames"]
        if is_cached(root, cache, clip_id, count):
            skipped.append(clip_id)
        else:
            ws = encode_frames(encoder, reader.frames(clip_id), batch_size, device)
            write_clip_latents(latent_path(root, cache, clip_id), ws, clip_id)
            encoded.append(clip_id)
            frames_done += count
        bar.update(count)
    bar.close()
    LOG.info("latent cache %s: %d clips encoded, %d already cached", cache_dir, len(encoded), len(skipped))
    return CacheSummary(cache_dir, encoded, skipped, frames_done)
