"""``styletalker demo``: the shipped model on the shipped face, speech and motion video."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="make the demo videos with the shipped model (out/demo.mp4, out/demo_motion.mp4, out/demo_strip.png)",
        description="Animate the shipped reference face (assets/reference.png) with the shipped speech "
        "(assets/speech.wav): out/demo.mp4 with head motion sampled from the model, out/demo_motion.mp4 with head "
        "motion and blinks from assets/motion.mp4, and out/demo_strip.png with frames of both over time. "
        "The demo's own output files are replaced on every run.",
    )
    parser.add_argument("--out-dir", default="out", metavar="DIR", help="where to write (default out)")
    parser.add_argument("--checkpoint", metavar="FILE", help="another model file instead of the shipped one")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from styletalker_core.io.progress import progress_enabled
    from styletalker_core.sample.demo import describe, run_demo

    progress = not args.no_progress and progress_enabled()
    result = run_demo(args.out_dir, args.checkpoint, progress=progress)
    for line in describe(result):
        print(line)
    return 0
