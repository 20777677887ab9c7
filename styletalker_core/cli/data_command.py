"""``styletalker data ACTION``: dataset commands (``encode``); plugins add more actions, such as
``synth`` (the styletalker_synthetic plugin), through the ``"styletalker data"`` command group."""

from __future__ import annotations

import argparse

from styletalker_core.cli.data_encode import add_encode_parser


def register(subparsers: argparse._SubParsersAction) -> dict[str, argparse._SubParsersAction]:
    """Add ``data``; returns its action group for plugin commands (``styletalker_add_commands``)."""
    parser = subparsers.add_parser("data", help="make datasets (synthetic talking faces)")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    add_encode_parser(actions)
    return {"styletalker data": actions}
