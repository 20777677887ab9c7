"""``styletalker convert SRC DST.safetensors``: import a published checkpoint."""

from __future__ import annotations

import argparse

EPILOG = """\
formats (detected from the file unless --format is given):
  nvlabs-stylegan2      NVlabs StyleGAN2 network pickle (.pkl) from stylegan2-ada-pytorch or the
                        stylegan3 repository's 'stylegan2' config: G_ema -> generator, D -> discriminator
                        (G, the raw training weights, and augment_pipe are listed, not converted)
  nvlabs-stylegan3      NVlabs StyleGAN3 network pickle (.pkl), configs T and R: G_ema -> generator
                        (stylegan3), D -> discriminator (stylegan2)
  rosinality-stylegan2  rosinality stylegan2-pytorch checkpoint (.pt): g_ema + latent_avg -> generator,
                        d -> discriminator
  Plugins may add formats: `styletalker plugins` lists every registered converter.

Pickles are read with a restricted unpickler: the source code NVlabs pickles carry is never
imported or run, and a file asking for anything beyond tensors and plain containers is refused.

example:
  styletalker convert stylegan2-ffhq-256x256.pkl ffhq256.safetensors
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "convert",
        help="convert a published checkpoint (NVlabs .pkl, rosinality .pt) into a styletalker checkpoint",
        description="Convert a published checkpoint into a styletalker checkpoint (safetensors + metadata).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("source", metavar="SRC", help="the published checkpoint file")
    parser.add_argument("destination", metavar="DST.safetensors", help="where to write the styletalker checkpoint")
    parser.add_argument("--format", dest="format_name", metavar="NAME", help="the source format (default: detect)")
    parser.add_argument(
        "--only", action="append", metavar="ROLE", dest="roles",
        help="keep only this component (generator, discriminator); repeatable",
    )
    parser.add_argument("--half", action="store_true", help="store weights as float16 (half the file size)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from styletalker_core.checkpoint import read_metadata
    from styletalker_core.checkpoint.convert import convert_checkpoint
    from styletalker_core.errors import CheckpointError
    from styletalker_core.plugin_host import get_registries
    from styletalker_core.sample.outputs import check_output_file

    if not str(args.destination).endswith(".safetensors"):
        raise CheckpointError(f"{args.destination}: the destination must end in .safetensors")
    check_output_file(args.destination, "destination")
    path = convert_checkpoint(
        args.source, args.destination, format_name=args.format_name, registries=get_registries(), roles=args.roles,
        dtype=torch.float16 if args.half else None,
    )
    document = read_metadata(path)
    print(f"wrote {path}")
    notes = document.get("extra", {}).get("conversion", {})
    for role, record in document["components"].items():
        options = ", ".join(f"{k}={v}" for k, v in record["options"].items())
        network = notes.get(role, {}).get("network")
        origin = f" from {network}" if network else ""
        print(f"  {role}: {record['kind']} {record['name']!r}{origin} ({options})")
    skipped = sorted({name for note in notes.values() for name in note.get("not_converted", [])})
    if skipped:
        print(f"  also in the source, not converted: {', '.join(skipped)}")
    return 0
