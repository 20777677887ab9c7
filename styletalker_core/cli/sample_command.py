"""``styletalker sample``: a reference face and speech (and a motion video) -> talking-head mp4; batch mode from a manifest."""

from __future__ import annotations

import argparse
import sys


def add_setting_arguments(parser: argparse.ArgumentParser) -> None:
    """Options that override the model's sampling defaults (the [sample] table of its recipe)."""
    group = parser.add_argument_group("generation (defaults come from the model's recipe)")
    group.add_argument("--seed", type=int, help="seed of the audio-driven motion draws (default 0)")
    group.add_argument("--temperature", type=float, help="prior temperature: 0 its mode, 1 as learned")
    group.add_argument("--num-samples", type=int, help="several videos with different motions: OUT_0.mp4, OUT_1.mp4, ...")
    group.add_argument("--pose-scale", type=float, help="scale of head motion and blinks (0 none, 1 as learned)")
    group.add_argument("--still", action="store_const", const=True, help="lips only: no head motion, no blinks")
    group.add_argument("--motion-fit", choices=("loop", "trim"),
                       help="a motion video shorter than the audio: loop it back and forth, or trim the output")
    align = group.add_mutually_exclusive_group()
    align.add_argument("--align", dest="align", action="store_const", const=True,
                       help="detect and FFHQ-align the face in the reference and the motion video")
    align.add_argument("--no-align", dest="align", action="store_const", const=False,
                       help="inputs are aligned face crops already: only centre-crop square and resize")
    group.add_argument("--paste-back", dest="paste_back", action="store_const", const=True,
                       help="paste each generated face back into the reference picture (or into each frame of a "
                       "reference video) at its own resolution, with a feathered mask")
    group.add_argument("--reference-frame", type=int,
                       help="with a video as --image: the frame (at 25 fps, from 0) whose face is the identity (default 0)")
    group.add_argument("--batch-size", type=int, help="frames per generator call")
    group.add_argument("--chunk-frames", type=int, help="frames generated per chunk (memory grows with it, not with the audio)")
    group.add_argument("--crf", type=int, help="x264 quality: 0 lossless, 18 visually lossless (default), 23 smaller")
    group.add_argument("--preset", help="x264 speed preset (default medium)")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "sample",
        help="make a talking-head video from a reference face and speech",
        description="Generate a talking-head video: lips follow --audio, the identity is --image's, and head "
        "motion and blinks are sampled from the model (audio-driven) or taken from --motion (motion-controllable). "
        "Or run many jobs from a CSV/JSON --manifest (columns image, audio, out, motion, and any setting). "
        "Existing outputs are never replaced without --overwrite.",
    )
    parser.add_argument("--image", metavar="REF", help="reference face image, or a video (its --reference-frame is the "
                        "identity; without --motion its head motion and blinks drive the result)")
    parser.add_argument("--audio", metavar="SPEECH", help="speech: any audio file (or video with sound), resampled to 16 kHz mono")
    parser.add_argument("--motion", metavar="VIDEO", help="motion-source video: head motion and blinks are taken from it")
    parser.add_argument("--out", metavar="OUT.mp4", help="output video (with several samples: OUT_0.mp4, OUT_1.mp4, ...)")
    parser.add_argument("--manifest", metavar="FILE", help="batch mode: a .csv or .json list of jobs (docs/sampling.md)")
    parser.add_argument("--report", metavar="FILE.json", help="batch mode: also write the per-row report as JSON")
    parser.add_argument("--checkpoint", metavar="PATH",
                        help="model file or run folder (default: the shipped checkpoints/synthetic_64_model.safetensors)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    add_setting_arguments(parser)
    parser.set_defaults(func=run)


def setting_overrides(args: argparse.Namespace) -> dict[str, object]:
    from styletalker_core.sample import SETTING_NAMES

    return {name: getattr(args, name) for name in SETTING_NAMES if getattr(args, name, None) is not None}


def show_progress(args: argparse.Namespace) -> bool:
    from styletalker_core.io.progress import progress_enabled

    return not args.no_progress and progress_enabled()


def load_sampler(args: argparse.Namespace):  # noqa: ANN201 - styletalker_core.sample.Sampler
    from styletalker_core.plugin_host import get_registries
    from styletalker_core.sample import Sampler
    from styletalker_core.sample.shipped import require_default_model

    checkpoint = args.checkpoint or require_default_model()
    return Sampler.from_checkpoint(checkpoint, get_registries(), device=args.device)


def run(args: argparse.Namespace) -> int:
    from styletalker_core.devices import parse_device
    from styletalker_core.errors import StyleTalkerError

    parse_device(args.device)  # before anything is read: a machine without that device fails at once
    single = [name for name in ("image", "audio", "out", "motion") if getattr(args, name)]
    if args.manifest:
        if single:
            raise StyleTalkerError(f"--manifest lists the jobs; drop --{', --'.join(single)}")
        return run_batch(args)
    if args.report:
        raise StyleTalkerError("--report goes with --manifest")
    missing = [f"--{name}" for name in ("image", "audio", "out") if not getattr(args, name)]
    if missing:
        raise StyleTalkerError(f"give {', '.join(missing)} (or --manifest FILE for batch mode); see styletalker sample --help")
    return run_single(args)


def run_single(args: argparse.Namespace) -> int:
    from styletalker_core.sample import SampleJob, SampleSettings, check_job, with_overrides

    # Bad options, missing inputs and existing outputs fail before the model loads.
    settings = with_overrides(SampleSettings(), setting_overrides(args), "command line")
    check_job(SampleJob(args.image, args.audio, args.out, args.motion, settings), args.overwrite)
    sampler = load_sampler(args)
    job = SampleJob(args.image, args.audio, args.out, args.motion, sampler.settings(**setting_overrides(args)))
    result = sampler.run(job, overwrite=args.overwrite, progress=show_progress(args))
    for path in result.outputs:
        print(f"wrote {path}: {result.num_frames} frames ({result.num_frames / sampler.head.fps:.2f} s)")
    print(f"{result.num_frames * len(result.outputs)} frames in {result.seconds:.1f} s ({result.frames_per_second:.1f} frames/s)")
    return 0


def run_batch(args: argparse.Namespace) -> int:
    from styletalker_core.io.atomic import write_json_atomic
    from styletalker_core.sample import read_manifest, run_manifest, with_overrides

    read_manifest(args.manifest)  # a malformed manifest fails before the model loads
    sampler = load_sampler(args)
    defaults = with_overrides(sampler.defaults, setting_overrides(args), "command line")

    def report(outcome) -> None:  # noqa: ANN001
        if outcome.ok:
            names = ", ".join(str(p) for p in outcome.result.outputs)
            print(f"row {outcome.row}: ok: {names} ({outcome.result.num_frames} frames, {outcome.result.seconds:.1f} s)")
        else:
            print(f"row {outcome.row}: FAILED: {outcome.error}", file=sys.stderr)

    outcomes = run_manifest(sampler, args.manifest, defaults, overwrite=args.overwrite,
                            progress=show_progress(args), on_row=report)
    failed = [outcome.row for outcome in outcomes if not outcome.ok]
    if args.report:
        write_json_atomic(args.report, {"manifest": str(args.manifest), "rows": [o.as_dict() for o in outcomes],
                                        "failed": len(failed), "succeeded": len(outcomes) - len(failed)})
    print(f"{len(outcomes) - len(failed)} of {len(outcomes)} rows done"
          + (f"; failed rows: {', '.join(map(str, failed))}" if failed else ""))
    return 1 if failed else 0
