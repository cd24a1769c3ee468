"""Limits on user code (LFs, assertions) inside the worker process that runs it.

:func:`limited` bounds one call by wall-clock time (``ITIMER_REAL``), CPU time (the soft
``RLIMIT_CPU``) and memory (the soft ``RLIMIT_AS``, as headroom over what the process already
maps). Time limits raise :class:`LimitExceeded` inside the user code; it derives from
``BaseException`` so the ``except Exception`` of LF application does not count it as one row's
fault and go on to the next row: the LF as a whole is over its limit. A memory limit makes
allocations fail with ``MemoryError``, which is an ordinary fault of the row or call that hit it.

Signals reach only the main thread: elsewhere the time limits are left to the caller (the
sandbox's own timeout, which kills the worker).
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["ENV_VAR", "LimitExceeded", "Limits", "current", "limited", "set_current"]

ENV_VAR = "LLSANDBOX_LIMITS"  # "wall_s,cpu_s,memory_mb" as a worker's environment carries them


class LimitExceeded(BaseException):
    """User code ran past a time limit (``what``: "wall-clock time" or "CPU time")."""

    def __init__(self, what: str, seconds: float) -> None:
        super().__init__(f"LimitExceeded: ran past its {what} limit of {seconds:g} s")
        self.what, self.seconds = what, seconds


@dataclass(frozen=True)
class Limits:
    """Per-call limits on user code; None = no limit of that kind."""

    wall_s: float | None = 60.0
    cpu_s: float | None = 60.0
    memory_mb: int | None = 4096

    def encode(self) -> str:
        return ",".join("" if v is None else str(v) for v in (self.wall_s, self.cpu_s, self.memory_mb))

    @classmethod
    def decode(cls, text: str) -> Limits:
        wall, cpu, mem = (part.strip() for part in text.split(","))
        return cls(float(wall) if wall else None, float(cpu) if cpu else None,
                   int(mem) if mem else None)


_current: Limits | None = None


def current() -> Limits:
    """The limits for user code in this process: those the sandbox sent with the running call
    (:func:`set_current`), else those of :data:`ENV_VAR`, else the defaults."""
    if _current is not None:
        return _current
    text = os.environ.get(ENV_VAR)
    return Limits.decode(text) if text else Limits()


def set_current(limits: Limits | None) -> None:
    global _current
    _current = limits


def _mapped_bytes() -> int:
    """The process's virtual memory size now (what ``RLIMIT_AS`` counts)."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[0]) * resource.getpagesize()


@contextlib.contextmanager
def limited(limits: Limits) -> Iterator[None]:
    """Run the body under ``limits``; every limit is lifted again on the way out."""
    main = threading.current_thread() is threading.main_thread()
    old_as = resource.getrlimit(resource.RLIMIT_AS)
    old_cpu = resource.getrlimit(resource.RLIMIT_CPU)
    old_alarm = old_xcpu = None
    try:
        if limits.memory_mb is not None:
            soft = _mapped_bytes() + limits.memory_mb * 1024 * 1024
            if old_as[1] != resource.RLIM_INFINITY:
                soft = min(soft, old_as[1])
            resource.setrlimit(resource.RLIMIT_AS, (soft, old_as[1]))
        if main and limits.wall_s is not None:
            def on_alarm(signum, frame):
                raise LimitExceeded("wall-clock time", limits.wall_s)

            old_alarm = signal.signal(signal.SIGALRM, on_alarm)
            signal.setitimer(signal.ITIMER_REAL, limits.wall_s)
        if main and limits.cpu_s is not None:
            def on_xcpu(signum, frame):
                raise LimitExceeded("CPU time", limits.cpu_s)

            used = resource.getrusage(resource.RUSAGE_SELF)
            soft = int(used.ru_utime + used.ru_stime + limits.cpu_s) + 1
            if old_cpu[1] == resource.RLIM_INFINITY or soft < old_cpu[1]:
                old_xcpu = signal.signal(signal.SIGXCPU, on_xcpu)
                resource.setrlimit(resource.RLIMIT_CPU, (soft, old_cpu[1]))
        yield
    finally:
        if old_alarm is not None:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old_alarm)
        if old_xcpu is not None:
            resource.setrlimit(resource.RLIMIT_CPU, old_cpu)
            signal.signal(signal.SIGXCPU, old_xcpu)
        resource.setrlimit(resource.RLIMIT_AS, old_as)
