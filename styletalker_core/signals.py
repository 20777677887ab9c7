"""SIGTERM handled like Ctrl-C.

``kill``, ``timeout``, job schedulers and container runtimes stop a process with SIGTERM, whose
default action ends it on the spot: no ``finally`` block runs, so temporary files stay behind.
:func:`terminate_like_interrupt` makes SIGTERM raise :class:`Terminated`, a KeyboardInterrupt,
where the program is. It then unwinds exactly as after Ctrl-C: atomic writes remove their
temporary files and leave the real file as it was, training keeps its last complete
checkpoint (a rerun resumes from it), and the command line prints ``styletalker: terminated
(SIGTERM)`` and exits with status 143 (128 + 15, what a shell reports for a process ended by
SIGTERM; Ctrl-C stays ``styletalker: interrupted``, status 130).

A second SIGTERM while the first is unwinding is ignored, so the clean-up is not cut short;
SIGKILL cannot be caught, and what it leaves is removed by the next run (see
:func:`styletalker_core.io.atomic.remove_stale_temporaries`).
"""

from __future__ import annotations

import signal
import threading
from types import FrameType


class Terminated(KeyboardInterrupt):
    """Raised by the SIGTERM handler; ``exit_status`` is 128 + the signal number."""

    def __init__(self, signum: int = signal.SIGTERM) -> None:
        self.signum = int(signum)
        self.signal_name = signal.Signals(signum).name
        self.exit_status = 128 + self.signum
        super().__init__(f"terminated ({self.signal_name})")


_raised = threading.Event()


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    if _raised.is_set():
        return  # already unwinding from the first one
    _raised.set()
    raise Terminated(signum)


def terminate_like_interrupt() -> None:
    """Make SIGTERM raise :class:`Terminated` in this process (main thread only; a no-op elsewhere)."""
    if threading.current_thread() is not threading.main_thread():
        return
    _raised.clear()
    signal.signal(signal.SIGTERM, _raise_terminated)
