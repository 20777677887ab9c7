"""``styletalker plugins``: every registered component with kind, name, origin package and version."""

from __future__ import annotations

import argparse
import json


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("plugins", help="list registered components (kind, name, package, version)")
    parser.add_argument("--kind", help="only this kind")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from styletalker_core.io.table import format_table
    from styletalker_core.plugin_host import get_registries

    registries = get_registries()
    entries = list(registries[args.kind]) if args.kind else list(registries.entries())
    records = [
        {
            "kind": e.kind,
            "name": e.name,
            "package": e.origin.package,
            "version": e.origin.version,
            "module": e.origin.module,
            "description": e.description,
        }
        for e in entries
    ]
    if args.json:
        print(json.dumps(records, indent=2))
        return 0
    rows = [[r["kind"], r["name"], r["package"], r["version"], r["description"]] for r in records]
    print(format_table(["kind", "name", "package", "version", "description"], rows))
    return 0
