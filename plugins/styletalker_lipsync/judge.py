"""The independent lip-sync judge: measuring whether a discriminator finds true AV offsets, and
exporting a trained one as the shipped judge of the ``lse`` metric.

    python -m styletalker_lipsync.judge measure CHECKPOINT [CHECKPOINT ...] --data data/judge_64
    python -m styletalker_lipsync.judge export runs/lipsync_judge checkpoints/lipsync_judge.safetensors

**Offset test.** For every held-out clip (whole clip, as the ``lse`` metric sees a video) and
every true offset k in ``shifts``, the clip's audio is made to lag its video by k frames and the
SyncNet search over -``max_offset`` .. ``max_offset`` must return k. The search sees the video's
frames ``margin`` .. t - ``margin`` with the clip's own audio around them (no padding with silence
for |k| <= margin). ``degraded`` repeats the test with each clip's speech degraded by
:class:`AudioAugmentation` (its defaults, probability 1, a fixed seed per clip).

**Export** keeps the ``lipsync_discriminator`` of the run's model.safetensors, measures it on
the held-out clips of the recipe's ``data.val`` dataset, and writes the file with the
commands that made it and the numbers in the metadata's ``extra`` (``styletalker checkpoint
info`` shows them).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any, cast

import attrs
import torch

from styletalker_core.checkpoint import load_checkpoint, save_checkpoint
from styletalker_core.data.audio_augment import AudioAugmentation
from styletalker_core.errors import StyleTalkerError
from styletalker_core.interfaces import LipSyncDiscriminator
from styletalker_core.model.sync import offset_similarities

ROLE = "lipsync_discriminator"
DEFAULT_SHIFTS = tuple(range(-5, 6))
COMMANDS = (
    "styletalker data synth data/judge_64 --clips 200 --seed 7 --heldout-fraction 0.2",
    "styletalker train recipes/lipsync_judge.toml",
    "python -m styletalker_lipsync.judge export runs/lipsync_judge checkpoints/lipsync_judge.safetensors",
)


@attrs.frozen
class OffsetResult:
    """Offset test of one discriminator: ``found[i][j]`` is the offset found for clip i at true shift j."""

    shifts: tuple[int, ...]
    found: list[list[int]]
    lse_c: list[float]  # per clip, at true offset 0
    lse_d: list[float]

    @property
    def accuracy(self) -> float:
        """Share of (clip, shift) pairs whose found offset is the true one."""
        pairs = [(f, s) for row in self.found for f, s in zip(row, self.shifts)]
        return sum(f == s for f, s in pairs) / max(len(pairs), 1)

    @property
    def accuracy_at_zero(self) -> float:
        """Share of clips found in sync (true offset 0)."""
        column = self.shifts.index(0) if 0 in self.shifts else None
        if column is None:
            return float("nan")
        return sum(row[column] == 0 for row in self.found) / max(len(self.found), 1)

    def summary(self) -> dict[str, float]:
        clips = max(len(self.lse_c), 1)
        return {"offset_accuracy": self.accuracy, "in_sync_accuracy": self.accuracy_at_zero,
                "lse_c": sum(self.lse_c) / clips, "lse_d": sum(self.lse_d) / clips, "clips": float(len(self.found)),
                "shifts": float(len(self.shifts))}


@torch.no_grad()
def find_offsets(discriminator: LipSyncDiscriminator, frames: torch.Tensor, audio: torch.Tensor,
                 shifts: tuple[int, ...] = DEFAULT_SHIFTS, max_offset: int = 15, margin: int | None = None
                 ) -> tuple[list[int], float, float]:
    """frames [t, 3, H, W] in [-1, 1] with their in-sync audio [s] -> (offset found for each true shift,
    LSE-C and LSE-D at true offset 0).

    A true shift k means the audio lags the video by k frames: offset o then pairs the mouth of
    frame p with the audio of frame p + o - k, so one similarity grid over offsets
    -(max_offset + margin) .. max_offset + margin serves every shift.
    """
    margin = max((abs(k) for k in shifts), default=0) if margin is None else margin
    if any(abs(k) > margin for k in shifts):
        raise ValueError(f"shifts {shifts} exceed the margin {margin}")
    if frames.shape[0] - 2 * margin < discriminator.window_frames:
        raise ValueError(f"a clip of {frames.shape[0]} frames is too short for margin {margin}")
    reach = max_offset + margin
    grid = list(range(-reach, reach + 1))
    inner = frames[margin:frames.shape[0] - margin]
    similarity = offset_similarities(discriminator, inner[None], audio[None], grid, audio_first_frame=margin)[0]
    distance = (2 - 2 * similarity).clamp_min(0).sqrt().mean(dim=1)  # [grid]
    found, lse_c, lse_d = [], float("nan"), float("nan")
    for k in shifts:
        # offsets o = -max_offset .. max_offset of a video lagging by k sit at grid offsets o - k
        window = distance[reach - k - max_offset: reach - k + max_offset + 1]
        best = int(window.argmin())
        found.append(best - max_offset)
        if k == 0:
            lse_d = float(window[best])
            lse_c = float(window.median()) - lse_d
    return found, lse_c, lse_d


def heldout_clips(root: str | Path, count: int = 0) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    """(clip id, frames [t, 3, h, w] in [-1, 1], audio [s]) of the held-out (else test) clips of a dataset (all when count is 0)."""
    from styletalker_core.data.shards import ShardReader

    reader = ShardReader(root)
    splits = {c: (r.get("meta") or {}).get("split") for c, r in reader.records.items()}
    # the older train / heldout layout, else the test split of a train / val / test dataset
    ids = sorted(c for c, split in splits.items() if split == "heldout") or sorted(c for c, split in splits.items() if split == "test")
    if not ids:
        raise StyleTalkerError(f"{root}: no held-out clips (meta.split = 'heldout' or 'test')")
    ids = ids[:count] if count else ids
    out = []
    for clip_id in ids:
        frames = reader.frames(clip_id).permute(0, 3, 1, 2).float() / 127.5 - 1.0
        out.append((clip_id, frames, reader.audio(clip_id).float().clone()))
    return out


def degrade(audio: torch.Tensor, seed: int) -> torch.Tensor:
    """The clip's speech through the default degradation chain (always applied), reproducibly."""
    return AudioAugmentation(probability=1.0).degrade(audio, torch.Generator().manual_seed(seed))


def offset_test(discriminator: LipSyncDiscriminator, clips: list[tuple[str, torch.Tensor, torch.Tensor]],
                shifts: tuple[int, ...] = DEFAULT_SHIFTS, max_offset: int = 15, degraded: bool = False) -> OffsetResult:
    """The offset test (module notes) on ``clips`` from :func:`heldout_clips`."""
    discriminator = discriminator.eval()
    found, lse_c, lse_d = [], [], []
    for index, (_, frames, audio) in enumerate(clips):
        if degraded:
            audio = degrade(audio, 1000 + index)
        row, c, d = find_offsets(discriminator, frames, audio, shifts, max_offset)
        found.append(row)
        lse_c.append(c)
        lse_d.append(d)
    return OffsetResult(tuple(shifts), found, lse_c, lse_d)


def load_discriminator(path: str | Path) -> LipSyncDiscriminator:
    module = load_checkpoint(path, roles=[ROLE])[ROLE]
    if not isinstance(module, LipSyncDiscriminator):
        raise StyleTalkerError(f"{path} [{ROLE}] is not a lip-sync discriminator")
    return module.eval()


def weights_digest(module: torch.nn.Module) -> str:
    """sha256 of a module's state (names, shapes and float32 values), independent of the file it came from."""
    digest = hashlib.sha256()
    for key, tensor in sorted(module.state_dict().items()):
        digest.update(key.encode())
        digest.update(repr(tuple(tensor.shape)).encode())
        digest.update(tensor.detach().cpu().float().contiguous().numpy().tobytes())
    return digest.hexdigest()


def measure(discriminator: LipSyncDiscriminator, data: str | Path, clips: int = 0) -> dict[str, dict[str, float]]:
    """Offset test on the held-out clips of ``data``, clean and degraded."""
    held = heldout_clips(data, clips)
    return {"clean": offset_test(discriminator, held).summary(), "degraded": offset_test(discriminator, held, degraded=True).summary()}


def export_judge(run_dir: str | Path, destination: str | Path, data: str | Path | None = None,
                 notes: dict[str, Any] | None = None) -> tuple[Path, dict[str, Any]]:
    """Write the judge file from a finished run (module notes); returns its path and the ``extra`` written."""
    run_dir = Path(run_dir)
    model = run_dir / "model.safetensors"
    if not model.is_file():
        raise StyleTalkerError(f"{run_dir}: no model.safetensors; finish the run first (styletalker train recipes/lipsync_judge.toml)")
    checkpoint = load_checkpoint(model, roles=[ROLE])
    discriminator = cast(LipSyncDiscriminator, checkpoint.components[ROLE].eval())  # built from its kind
    recipe = checkpoint.recipe or {}
    if data is None:
        data = ((recipe.get("data") or {}).get("val") or {}).get("root")
        if not data:
            raise StyleTalkerError(f"{model}: its recipe names no data.val root; give --data")
    stages = {}
    for done in sorted(run_dir.glob("*/done.json")):
        record = json.loads(done.read_text())
        stages[done.parent.name] = {key: record.get(key) for key in ("stage_plugin", "steps", "seconds_this_run", "command", "evaluation")}
    extra = {
        "judge": "independent lip-sync judge of the lse metric; no training stage loads it",
        "commands": list(COMMANDS),
        "exported_from": str(run_dir),
        "recipe_name": recipe.get("name", ""),
        "stages": stages,
        "heldout_offset_test": {"data": str(data), "shifts": list(DEFAULT_SHIFTS), "max_offset": 15, **measure(discriminator, data)},
        "weights_sha256": weights_digest(discriminator),
        **(notes or {}),
    }
    path = save_checkpoint(destination, {ROLE: discriminator}, step=checkpoint.step, recipe=checkpoint.recipe, extra=extra)
    return path, extra


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m styletalker_lipsync.judge", description=__doc__.split("\n\n")[0])
    actions = parser.add_subparsers(dest="action", required=True)
    run = actions.add_parser("measure", help="offset test of checkpoints on a dataset's held-out clips")
    run.add_argument("checkpoints", nargs="+", metavar="CHECKPOINT")
    run.add_argument("--data", default="data/judge_64")
    run.add_argument("--clips", type=int, default=0, help="first N held-out clips (0: all)")
    export = actions.add_parser("export", help="write the judge file from a finished run")
    export.add_argument("run_dir", metavar="RUN_DIR")
    export.add_argument("destination", metavar="DESTINATION.safetensors")
    export.add_argument("--data", default=None, help="dataset for the offset test (default: the recipe's data.val root)")
    export.add_argument("--note", action="append", default=[], metavar="KEY=VALUE", help="extra metadata (repeatable)")
    args = parser.parse_args(argv)
    try:
        if args.action == "measure":
            for path in args.checkpoints:
                print(json.dumps({"checkpoint": path, "data": args.data, **measure(load_discriminator(path), args.data, args.clips)}))
        else:
            notes = dict(note.split("=", 1) for note in args.note)
            path, extra = export_judge(args.run_dir, args.destination, args.data, notes)
            print(f"wrote {path} ({path.stat().st_size / 2**20:.2f} MiB)")
            print(json.dumps(extra["heldout_offset_test"]))
    except StyleTalkerError as error:
        print(f"styletalker: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
