"""``styletalker checkpoint info FILE``: what a checkpoint holds and how it was made."""

from __future__ import annotations

import argparse
import json


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("checkpoint", help="inspect styletalker checkpoints")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    info = actions.add_parser("info", help="components, step and notes of a checkpoint")
    info.add_argument("path", metavar="FILE")
    info.add_argument("--json", action="store_true", help="print the whole metadata document")
    info.set_defaults(func=run_info)


def run_info(args: argparse.Namespace) -> int:
    from styletalker_core.checkpoint import read_metadata, read_tensors

    document = read_metadata(args.path)
    if args.json:
        print(json.dumps(document, indent=2))
        return 0
    tensors = read_tensors(args.path)
    print(f"{args.path}: format {document['format_version']}, step {document['step']}")
    for role, record in document["components"].items():
        count = sum(t.numel() for k, t in tensors.items() if k.startswith(f"{role}."))
        print(f"  {role}: {record['kind']} {record['name']!r}, {count:,} values")
    for key, value in document.get("extra", {}).items():
        print(f"  {key}: {json.dumps(value)}")
    return 0
