"""What the fuzz suites (tests/test_fuzz_*.py) share: hypothesis profiles and the time bound.

Profiles (environment variable STYLETALKER_FUZZ): ``ci`` (default: derandomized, the same inputs
every run) and ``explore`` (random, 20 times as many examples).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator

from hypothesis import HealthCheck, settings

settings.register_profile("styletalker-fuzz-ci", derandomize=True, database=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("styletalker-fuzz-explore", derandomize=False, database=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


CPU_BOUND_MS = 500  # per example, in CPU time of this process (other jobs on the machine do not count)


def fuzz(examples: int) -> settings:
    """Settings of one fuzz test: the profile chosen by STYLETALKER_FUZZ ('ci' or 'explore').

    The time property is checked in CPU time by :func:`cpu_bound`: a wall-clock deadline of a few
    hundred ms fails at random on a machine shared with other jobs. Hypothesis' own deadline stays
    as a 5 s wall-clock guard against hangs.
    """
    explore = os.environ.get("STYLETALKER_FUZZ", "ci") == "explore"
    parent = settings.get_profile("styletalker-fuzz-explore" if explore else "styletalker-fuzz-ci")
    return settings(parent, max_examples=examples * (20 if explore else 1), deadline=5000)


@contextlib.contextmanager
def cpu_bound(limit_ms: float = CPU_BOUND_MS) -> Iterator[None]:
    """Fails when the block takes more than ``limit_ms`` of CPU time (all threads of the process)."""
    start = time.process_time()
    yield
    spent = 1000 * (time.process_time() - start)
    assert spent <= limit_ms, f"took {spent:.0f} ms of CPU time; the bound is {limit_ms:.0f} ms"
