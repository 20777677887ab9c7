"""Training cost as the stages report it: wall time, CPU time of the process, and machine load.

On a shared machine wall time says little; CPU seconds (user + system, all threads of this
process) measure the work done, and the load average shows how contended the machine was.
"""

from __future__ import annotations

import os
import resource
import time


class ResourceClock:
    """Started at a stage's set-up; ``sample()`` every few steps records the 1-minute load average."""

    def __init__(self) -> None:
        self.wall_start = time.time()
        self.cpu_start = self._cpu()
        self.loads: list[float] = []

    @staticmethod
    def _cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    def sample(self) -> None:
        self.loads.append(os.getloadavg()[0])

    def numbers(self) -> dict[str, float]:
        """{"wall_seconds", "cpu_seconds", "load_average", "cpu_count"} since the start (this process, this run)."""
        loads = self.loads or [os.getloadavg()[0]]
        return {
            "wall_seconds": round(time.time() - self.wall_start, 1),
            "cpu_seconds": round(self._cpu() - self.cpu_start, 1),
            "load_average": round(sum(loads) / len(loads), 2),
            "cpu_count": float(os.cpu_count() or 0),
        }
