"""Entry point of the ``styletalker`` command: parses arguments and turns user errors into one line.

Each subcommand lives in its own module exposing ``register(subparsers)``; modules import
their heavy dependencies (torch, av, ...) inside the command function, so ``--help`` is fast.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import logging
import sys
import warnings

from styletalker_core import __version__
from styletalker_core.errors import StyleTalkerError, one_line
from styletalker_core.signals import Terminated, terminate_like_interrupt

COMMAND_MODULES = (
    "styletalker_core.cli.plugins_command",
    "styletalker_core.cli.recipes_command",
    "styletalker_core.cli.checkpoint_command",
    "styletalker_core.cli.data_command",
    "styletalker_core.cli.preprocess_command",
    "styletalker_core.cli.train_command",
    "styletalker_core.cli.evaluate_command",
    "styletalker_core.cli.ablate_command",
    "styletalker_core.cli.sample_command",
    "styletalker_core.cli.demo_command",
    "styletalker_core.cli.stream_command",
    "styletalker_core.cli.app_command",
    "styletalker_core.cli.convert_command",
)


class ArgumentParser(argparse.ArgumentParser):
    """argparse with usage errors on one line (sub-commands inherit it); exit status 2 as usual."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"styletalker: error: {one_line(message)} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="styletalker",
        description="One-shot audio-driven talking-head generation (StyleTalker), driven by recipes and plugins.",
    )
    parser.add_argument("--version", action="version", version=f"styletalker {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def show_warning(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
    """Warnings as one line on stderr, ``styletalker: warning: ...`` (no source line); warnings of
    other packages keep their category's name in front."""
    text = one_line(str(message))
    if not getattr(category, "__module__", "").startswith("styletalker"):
        text = f"{category.__name__}: {text}"
    print(f"styletalker: warning: {text}", file=sys.stderr)


# OSError numbers that mean the user's files or disk, not a bug: reported as user errors.
USER_OS_ERRORS = frozenset({
    errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.ENOENT, errno.ENOTDIR,
    errno.EISDIR, errno.EEXIST, errno.ENAMETOOLONG, errno.EFBIG, errno.ELOOP, errno.EMFILE,
})


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    terminate_like_interrupt()  # SIGTERM unwinds like Ctrl-C: temporaries removed, exit 143
    try:
        with warnings.catch_warnings():
            warnings.showwarning = show_warning
            status = args.func(args)
    except StyleTalkerError as error:
        if args.debug:
            raise
        print(f"styletalker: error: {one_line(str(error))}", file=sys.stderr)
        return 2
    except Terminated as stop:
        print(f"styletalker: {stop}", file=sys.stderr)
        return stop.exit_status
    except KeyboardInterrupt:
        print("styletalker: interrupted", file=sys.stderr)
        return 130
    except OSError as error:  # a file or the disk, not a bug: e.g. permission denied, disk full
        if args.debug:
            raise
        if error.errno not in USER_OS_ERRORS:
            return internal_error(error)
        where = f"{error.filename}: " if error.filename is not None else "a file could not be opened or written: "
        print(f"styletalker: error: {where}{error.strerror or error}; check the path, its permissions "
              "and the free disk space", file=sys.stderr)
        return 2
    except Exception as error:  # a bug, not a user error: one line unless --debug
        if args.debug:
            raise
        return internal_error(error)
    return int(status or 0)


def internal_error(error: BaseException) -> int:
    """Report a bug on one line; exit status 1."""
    print(
        f"styletalker: internal error: {type(error).__name__}: {one_line(str(error))} "
        "(rerun with --debug for the traceback)",
        file=sys.stderr,
    )
    return 1


if __name__ == "__main__":
    sys.exit(main())
