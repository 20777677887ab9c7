"""``styletalker preprocess SRC_DIR OUT_DIR``: videos -> aligned face clips (a sharded dataset)."""

from __future__ import annotations

import argparse

LAYOUT_CHOICES = ("auto", "folder", "voxceleb2", "hdtf")
POLICY_CHOICES = ("skip", "largest", "fail")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "preprocess",
        help="turn a folder of talking-face videos into aligned 25 fps face clips with 16 kHz audio",
        description=(
            "Walks SRC_DIR (a plain folder of videos, or a VoxCeleb2 / HDTF layout), detects the face and "
            "68 landmarks in every frame, aligns and crops FFHQ-style, and writes a sharded clip dataset to "
            "OUT_DIR with manifest.json and report.json. Every clip gets a train / val / test split, drawn by "
            "identity where the layout names one, else by source video. Re-running resumes: finished videos are skipped."
        ),
    )
    parser.add_argument("source", metavar="SRC_DIR", help="folder with the videos")
    parser.add_argument("output", metavar="OUT_DIR", help="dataset folder to write (created if missing)")
    parser.add_argument("--resolution", type=int, default=256, help="side of the square face crops in pixels (default 256)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument(
        "--face-policy",
        choices=POLICY_CHOICES,
        default="largest",
        help="frames with several faces: keep the largest (default), skip them, or fail the video; "
        "frames without a usable face are always dropped, except that 'fail' fails the video",
    )
    parser.add_argument("--layout", choices=LAYOUT_CHOICES, default="auto", help="how clips are named (default: detected)")
    parser.add_argument("--min-face-size", type=int, default=64, help="smallest face box side in source pixels (default 64)")
    parser.add_argument("--min-clip-seconds", type=float, default=1.0, help="shortest run of usable frames kept (default 1.0)")
    parser.add_argument("--max-clip-seconds", type=float, default=20.0, help="longer runs are cut into clips of at most this (default 20)")
    parser.add_argument("--smooth-sigma", type=float, default=2.0, help="landmark smoothing over time, in frames (default 2; 0 = none)")
    parser.add_argument("--detect-every", type=int, default=1, help="run the face detector on every n-th frame (default 1)")
    parser.add_argument("--val", type=float, default=0.1,
                        help="fraction of the identities (else source videos) whose clips form the val split (default 0.1)")
    parser.add_argument("--test", type=float, default=0.1,
                        help="fraction of the identities (else source videos) whose clips form the test split (default 0.1)")
    parser.add_argument("--split-by", choices=("auto", "identity", "video"), default="auto",
                        help="what no two splits share: the person where the layout names one (auto, default), "
                        "the person always (identity), or the source video (video)")
    parser.add_argument("--retry-failed", action="store_true", help="process again the videos an earlier run reported as failed")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import math
    import sys
    from pathlib import Path

    from styletalker_core.data.preprocess import PreprocessSettings, preprocess_folder
    from styletalker_core.errors import StyleTalkerError
    from styletalker_core.sample.outputs import check_output_folder

    for name in ("resolution", "workers", "min_face_size", "detect_every"):
        if getattr(args, name) < 1:
            raise StyleTalkerError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    if args.resolution % 2:
        raise StyleTalkerError(f"--resolution {args.resolution}: use an even size (H.264 previews need even sides)")
    for name in ("min_clip_seconds", "max_clip_seconds", "smooth_sigma"):
        value = getattr(args, name)
        if not (math.isfinite(value) and value >= 0):
            raise StyleTalkerError(f"--{name.replace('_', '-')} {value}: give a finite number of at least 0")
    from styletalker_core.data.preprocess.splits import check_fractions

    check_fractions(args.val, args.test)
    source = Path(args.source)
    if not source.is_dir():
        what = "is a file; give the folder that holds the videos" if source.exists() else "no such folder"
        raise StyleTalkerError(f"SRC_DIR {source}: {what}")
    check_output_folder(args.output, "OUT_DIR")
    if Path(args.output).resolve() == source.resolve():
        raise StyleTalkerError(f"OUT_DIR {args.output}: is the source folder; give a separate output folder")
    settings = PreprocessSettings(
        resolution=args.resolution,
        face_policy=args.face_policy,
        min_face_size=args.min_face_size,
        min_clip_frames=max(1, round(args.min_clip_seconds * 25)),
        max_clip_frames=max(1, round(args.max_clip_seconds * 25)),
        smooth_sigma=args.smooth_sigma,
        detect_every=args.detect_every,
    )
    report = preprocess_folder(
        args.source,
        args.output,
        settings,
        workers=args.workers,
        layout=args.layout,
        retry_failed=args.retry_failed,
        progress=not args.no_progress,
        val=args.val,
        test=args.test,
        split_by=args.split_by,
    )
    summary = report["summary"]
    print(
        f"{summary['videos']} video(s): {summary['ok']} ok, {summary['failed']} failed; "
        f"{summary['clips']} clip(s), {summary['frames_kept']} frames -> {args.output}"
    )
    reasons = ", ".join(f"{count} {reason}" for reason, count in summary["failures_by_reason"].items())
    if summary["clips"] == 0:  # one line that names the first failed video and why
        failed = [video for video in report["videos"] if video["status"] != "ok"]
        first = f": {failed[0]['message']}" if failed else ""
        more = f" (and {len(failed) - 1} more; by reason: {reasons})" if len(failed) > 1 else ""
        raise StyleTalkerError(f"{args.source}: no clip could be made from any video{first}{more}; "
                               f"see {args.output}/report.json")
    unit = summary["split_unit"]
    counts = "; ".join(f"{split}: {c['clips']} clips, {c['groups']} {unit}" for split, c in summary["splits"].items())
    print(f"splits: {counts}")
    empty = [split for split in ("val", "test") if summary["splits"].get(split, {}).get("clips", 0) == 0]
    if empty:
        print(f"styletalker: warning: no clip in split {' and '.join(empty)}: too few "
              f"{unit} for --val {args.val} / --test {args.test}; recipes that validate or evaluate on it will say so",
              file=sys.stderr)
    if summary["failed"]:
        print(f"failed videos by reason: {reasons}", file=sys.stderr)
    print(f"details: {args.output}/report.json")
    return 0

