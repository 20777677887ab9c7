"""Writing a synthetic dataset: shards of clips built in parallel worker processes.

Shard k holds clips ``k * clips_per_shard`` onwards. Workers build whole shards and write
them themselves (ShardWriter is safe across processes on distinct shard names); a rerun
skips the shards already complete, and the manifest is written last.
"""

from __future__ import annotations

import logging
import multiprocessing
from pathlib import Path
from typing import Any

import attrs

from styletalker_core.data.shards import ShardWriter
from styletalker_core.data.synthetic.clip import LABEL_NAMES, SynthConfig, make_clip
from styletalker_core.data.synthetic.identity import IDENTITY_FACTORS
from styletalker_core.data.synthetic.visemes import PHONEMES

log = logging.getLogger(__name__)


def shard_name(shard: int) -> str:
    return f"synth-{shard:05d}"


def _shard_clips(config: SynthConfig, shard: int) -> range:
    start = shard * config.clips_per_shard
    return range(start, min(start + config.clips_per_shard, config.clips))


def _write_shard(config: SynthConfig, root: str, shard: int) -> int:
    """Build and write one shard; returns its number of clips."""
    clips = [make_clip(config, index) for index in _shard_clips(config, shard)]
    ShardWriter(root).write(shard_name(shard), clips)
    return len(clips)


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)


def _run_task(task: tuple[SynthConfig, str, int]) -> int:
    return _write_shard(*task)


def dataset_info(config: SynthConfig) -> dict[str, Any]:
    """The manifest's ``info``: how the dataset was made, its splits (clips, identity numbers and,
    in the train / val / test layout, voices of each) and what its labels mean."""
    pool = config.identity_pool()
    splits = [name for name, _ in config.split_sizes()]
    info: dict[str, Any] = {
        "generator": "styletalker synthetic talking faces",
        "config": {k: list(v) if isinstance(v, tuple) else v for k, v in attrs.asdict(config).items()},
        "splits": dict(config.split_sizes()),
        "identities": {split: pool.ids(split) for split in splits},
        "identity_factors": list(IDENTITY_FACTORS),
        "labels": {
            "identity": f"identity factors in [0, 1], [t, {len(IDENTITY_FACTORS)}]",
            "pose": "yaw, pitch, roll in degrees, [t, 3]",
            "eye_open": "eye openness in [0, 1] (0 closed), [t]",
            "mouth_open": "mouth openness in [0, 1], [t]",
            "mouth_width": "mouth width in [0, 1], [t]",
            "phoneme": "id of the sounding phoneme (index into phonemes; 0 silence), [t]",
        },
        "label_names": list(LABEL_NAMES),
        "phonemes": list(PHONEMES),
    }
    voices = config.voice_pool()
    if voices is not None:
        parameters = voices.parameters()
        info["voices"] = {split: [[number, *parameters[number]] for number in voices.ids(split)] for split in splits}
        info["voice_columns"] = ["voice_id", "variant", "pitch", "pitch_range"]
    return info


def generate_dataset(root: str | Path, config: SynthConfig, workers: int = 1, progress: bool = True) -> dict[str, Any]:
    """Write the dataset ``config`` describes into ``root``; returns the manifest.

    workers > 1 builds shards in that many processes. ``progress`` shows a progress bar
    counted in clips. Frames are rendered on one torch thread (see ``make_clip``), so the
    bytes written do not depend on the number of workers.
    """
    from tqdm import tqdm

    root = str(root)
    writer = ShardWriter(root)
    num_shards = -(-config.clips // config.clips_per_shard)
    todo = [shard for shard in range(num_shards) if not writer.is_done(shard_name(shard))]
    skipped = config.clips - sum(len(_shard_clips(config, s)) for s in todo)
    if skipped:
        log.info("%d clips already written, skipping their shards", skipped)
    bar = tqdm(total=config.clips, initial=skipped, unit="clip", disable=not progress, desc="synth")
    tasks = [(config, root, shard) for shard in todo]
    if workers <= 1 or len(tasks) <= 1:
        for task in tasks:
            bar.update(_run_task(task))
    else:
        context = multiprocessing.get_context("spawn")
        with context.Pool(min(workers, len(tasks)), initializer=_init_worker) as pool:
            for count in pool.imap_unordered(_run_task, tasks):
                bar.update(count)
    bar.close()
    return writer.finalize(dataset_info(config))
