"""``styletalker data synth OUT_DIR``: datasets made by styletalker itself."""

from __future__ import annotations

import argparse
import os

from styletalker_core.cli.data_encode import add_encode_parser


def _seconds(text: str) -> tuple[float, float]:
    """"3" -> (3, 3); "2:4" -> (2, 4)."""
    try:
        parts = [float(p) for p in text.split(":")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected seconds like 3 or a range like 2:4") from None
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2 or not 0.5 <= parts[0] <= parts[1] or parts[1] > 60:
        raise argparse.ArgumentTypeError(f"{text!r}: expected 0.5 <= MIN <= MAX <= 60 seconds, as MIN:MAX or one value")
    return parts[0], parts[1]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("data", help="make datasets (synthetic talking faces)")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    synth = actions.add_parser(
        "synth",
        help="render a synthetic talking-face dataset with per-frame ground truth",
        description="Render synthetic talking faces speaking eSpeak NG sentences, with per-frame labels "
        "(identity, pose, eye and mouth openness, mouth width, phonemes), into the sharded clip format.",
    )
    synth.add_argument("out_dir", metavar="OUT_DIR")
    synth.add_argument("--clips", type=int, required=True, help="number of clips")
    synth.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives the same dataset")
    synth.add_argument("--resolution", type=int, default=64, choices=(64, 128), help="frame size in pixels")
    synth.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1), help="worker processes")
    synth.add_argument("--seconds", type=_seconds, default=(2.0, 4.0), metavar="MIN:MAX", help="clip length (default 2:4)")
    synth.add_argument("--val-fraction", type=float, default=None, metavar="F",
                       help="fraction of clips in the val split, for every choice made during development (default 0.1)")
    synth.add_argument("--test-fraction", type=float, default=None, metavar="F",
                       help="fraction of clips in the test split, for reported numbers only (default 0.15); train, val "
                       "and test share no identity, sentence or voice")
    synth.add_argument("--heldout-fraction", type=float, default=None, metavar="F",
                       help="deprecated: the older train / heldout layout (the last F of the clips held out), to "
                       "reproduce a dataset made before val and test existed")
    synth.add_argument("--identities", type=int, default=0,
                       help="training identities (default: training clips / 4); val and test have one per 2 clips")
    synth.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    synth.set_defaults(func=run_synth)
    add_encode_parser(actions)


def run_synth(args: argparse.Namespace) -> int:
    import torch

    from styletalker_core.data.synthetic import SynthConfig, generate_dataset
    from styletalker_core.errors import StyleTalkerError
    from styletalker_core.sample.outputs import check_output_folder

    torch.set_num_threads(1)  # frames render in small chunks: parallelism comes from --workers

    if args.clips < 1:
        raise StyleTalkerError(f"--clips {args.clips}: give at least 1 clip")
    if args.heldout_fraction is not None:
        if args.val_fraction is not None or args.test_fraction is not None:
            raise StyleTalkerError("--heldout-fraction makes the older train / heldout layout: drop --val-fraction and --test-fraction")
        if not 0 <= args.heldout_fraction < 1:
            raise StyleTalkerError(f"--heldout-fraction {args.heldout_fraction}: give a value in [0, 1)")
    fractions = {"val": 0.1 if args.val_fraction is None else args.val_fraction,
                 "test": 0.15 if args.test_fraction is None else args.test_fraction}
    for name, value in fractions.items():
        if not 0 <= value < 1:
            raise StyleTalkerError(f"--{name}-fraction {value}: give a value in [0, 1)")
    if fractions["val"] + fractions["test"] >= 1:
        raise StyleTalkerError(f"--val-fraction + --test-fraction = {fractions['val'] + fractions['test']:g}: leave clips for training")
    if args.identities < 0:
        raise StyleTalkerError(f"--identities {args.identities}: give 0 (automatic) or a positive number")
    if args.workers < 1:
        raise StyleTalkerError(f"--workers {args.workers}: give at least 1")
    check_output_folder(args.out_dir, "OUT_DIR")
    config = SynthConfig(
        clips=args.clips,
        seed=args.seed,
        resolution=args.resolution,
        seconds=args.seconds,
        val_fraction=fractions["val"],
        test_fraction=fractions["test"],
        heldout_fraction=args.heldout_fraction,
        identities=args.identities,
    )
    if config.legacy:
        print("note: --heldout-fraction is deprecated; it makes the older train / heldout layout "
              "(use --val-fraction and --test-fraction for disjoint val and test splits)")
    manifest = generate_dataset(args.out_dir, config, workers=max(1, args.workers), progress=not args.no_progress)
    splits = [record["meta"]["split"] for record in manifest["clips"]]
    frames = sum(record["num_frames"] for record in manifest["clips"])
    if config.legacy:
        counts = f"{splits.count('train')} train, {splits.count('heldout')} held out"
    else:
        identities = manifest["info"]["identities"]
        counts = ", ".join(f"{splits.count(split)} {split} ({len(identities[split]) if splits.count(split) else 0} identities)"
                           for split in ("train", "val", "test"))
    print(f"{args.out_dir}: {len(splits)} clips ({counts}), {frames} frames at {args.resolution} px")
    return 0
