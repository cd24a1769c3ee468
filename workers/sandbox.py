"""A local pool of worker processes for registered user code (LFs, assertions).

User code never runs in the coordinator process. Each worker is a fresh interpreter
(``python -m workers.sandbox_worker``) started with :func:`scrubbed_env`: no labelloop setting
(tokens, the tokens-file path, store URLs), nothing whose name says token, secret, password or key,
and no URL with credentials. Inside, every call runs under :mod:`workers.limits` (wall clock, CPU
time, memory); here, a call that does not answer by its ``timeout`` gets its worker killed and
raises :class:`~labeling.errors.UserCodeFault`, as does a worker that dies mid-call. The next call
starts a fresh worker.

Workers are plain subprocesses rather than a ``multiprocessing`` pool: only a subprocess can be
given its own environment at ``exec`` (so not even ``/proc/self/environ`` holds a secret), and a
stuck call can be killed without breaking the calls of the other workers.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from multiprocessing.connection import Connection
from typing import Any

from labeling.errors import UserCodeFault
from workers.limits import ENV_VAR, Limits

__all__ = [
    "GRACE_S",
    "NO_LIMITS",
    "Sandbox",
    "harden_worker",
    "protect_process",
    "scrubbed_env",
    "scrubbed_environ",
    "shared",
]

GRACE_S = 5.0  # past a call's own wall-clock limit, how long before its worker is killed
NO_LIMITS = Limits(None, None, None)
START_S = 120.0  # how long a worker may take to start
_SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSW|CREDENTIAL|PRIVATE|API_?KEY|ACCESS_?KEY|AUTH",
                          re.IGNORECASE)
_URL_CREDENTIALS = re.compile(r"://[^/\s@]*:[^/\s@]*@")


def scrubbed_env(environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` without labelloop's settings and anything that looks like a secret."""
    return {k: v for k, v in environ.items()
            if not k.upper().startswith("LABELLOOP_") and not _SECRET_NAME.search(k)
            and not _URL_CREDENTIALS.search(v)}


@contextlib.contextmanager
def scrubbed_environ(**extra: str) -> Iterator[None]:
    """This process's environment scrubbed (plus ``extra``) for the body, for starting processes
    that copy it, such as a local Ray instance; restored afterwards."""
    saved = dict(os.environ)
    clean = scrubbed_env(saved)
    for key in set(saved) - set(clean):
        del os.environ[key]
    os.environ.update(extra)
    try:
        yield
    finally:
        for key in set(os.environ) - set(saved):
            del os.environ[key]
        os.environ.update(saved)


_hardened = False


def harden_worker() -> None:
    """Prepare this worker process for user code, once: drop from its environment what
    :func:`scrubbed_env` would (a Ray worker may have started from an unscrubbed one), and on
    Linux give up every capability and the right to gain new privileges, so that even when run
    as root it can no longer read the memory or ``/proc/<pid>/environ`` of a non-dumpable
    process (:func:`protect_process`: the coordinator)."""
    global _hardened
    if _hardened:
        return
    clean = scrubbed_env(os.environ)
    for key in set(os.environ) - set(clean):
        del os.environ[key]
    if sys.platform.startswith("linux"):
        _drop_capabilities()
    _hardened = True


def _drop_capabilities() -> None:
    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                    ("inheritable", ctypes.c_uint32)]

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(38, 1, 0, 0, 0)  # PR_SET_NO_NEW_PRIVS
    libc.capset(ctypes.byref(Header(0x20080522, 0)), (Data * 2)())  # _LINUX_CAPABILITY_VERSION_3


def protect_process() -> None:
    """Make this process non-dumpable (Linux): another process of the same user, such as a
    worker running user code, can then read neither its memory nor ``/proc/<pid>/environ``."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE = 4


class _Worker:
    def __init__(self, limits: Limits) -> None:
        env = scrubbed_env(os.environ)
        env[ENV_VAR] = limits.encode()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "workers.sandbox_worker"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, env=env, close_fds=True)
        self.tx = Connection(os.dup(self.proc.stdin.fileno()), readable=False)
        self.rx = Connection(os.dup(self.proc.stdout.fileno()), writable=False)
        self.proc.stdin.close()
        self.proc.stdout.close()
        # start-up (the interpreter, numpy, pandas, snorkel) is not a call's time
        try:
            ready = self.rx.poll(START_S) and self.rx.recv() == "ready"
        except (EOFError, OSError):
            ready = False
        if not ready:
            self.close(kill=True)
            raise UserCodeFault(f"WorkerDied: a sandbox worker did not start within {START_S:g} s")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self, *, kill: bool = False) -> None:
        with contextlib.suppress(OSError):
            self.tx.close()
        if kill:
            self.proc.kill()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        with contextlib.suppress(OSError):
            self.rx.close()


class Sandbox:
    """At most ``size`` worker processes, started on first use; a call waits for a free one."""

    def __init__(self, *, size: int = 2, limits: Limits | None = None) -> None:
        self.size, self.limits = max(1, size), limits or Limits()
        self._idle: list[_Worker] = []
        self._started = 0
        self._cond = threading.Condition()
        self._closed = False

    def _acquire(self) -> _Worker:
        with self._cond:
            while True:
                if self._closed:
                    raise RuntimeError("the sandbox is closed")
                while self._idle:
                    worker = self._idle.pop()
                    if worker.alive():
                        return worker
                    worker.close()
                    self._started -= 1
                if self._started < self.size:
                    self._started += 1
                    break
                self._cond.wait()
        try:
            protect_process()
            return _Worker(self.limits)
        except BaseException:
            self._release(None)
            raise

    def _release(self, worker: _Worker | None) -> None:
        with self._cond:
            if worker is not None and worker.alive() and not self._closed:
                self._idle.append(worker)
            else:
                if worker is not None:
                    worker.close(kill=True)
                self._started -= 1
            self._cond.notify()

    def run(self, fn: Callable[..., Any], *args: Any, limits: Limits | None = None,
            timeout: float | None = None, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)`` in a worker under ``limits`` (default: the sandbox's); the
        worker is killed when no answer came ``timeout`` seconds after the call (default: the
        wall-clock limit plus :data:`GRACE_S`). What ``fn`` raises is raised here (an exception
        that cannot travel as its text, in a :class:`UserCodeFault`)."""
        limits = self.limits if limits is None else limits
        if timeout is None and limits.wall_s is not None:
            timeout = limits.wall_s + GRACE_S
        worker: _Worker | None = self._acquire()
        try:
            try:
                worker.tx.send((fn, args, kwargs, limits, self.limits))
                if not worker.rx.poll(timeout):
                    worker.close(kill=True)
                    worker = None
                    raise UserCodeFault(f"LimitExceeded: no answer within {timeout:g} s "
                                        "(the worker running it was stopped)")
                kind, value = worker.rx.recv()
            except (EOFError, OSError) as exc:
                code = None
                if worker is not None:
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        code = worker.proc.wait(timeout=5)
                raise UserCodeFault(_death(code)) from exc
        finally:
            self._release(worker)
        if kind == "ok":
            return value
        raise value

    def close(self) -> None:
        """Stop every worker (each exits when its input closes)."""
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            self._cond.notify_all()
        for worker in idle:
            worker.close()


def _death(code: int | None) -> str:
    if code is not None and code < 0:
        import signal

        name = signal.Signals(-code).name
        why = {"SIGKILL": " (killed: out of memory, or over its limits)",
               "SIGXCPU": " (over its CPU-time limit)"}.get(name, "")
        return f"WorkerDied: the worker process running it ended by {name}{why}"
    return f"WorkerDied: the worker process running it exited (code {code})"


_shared: Sandbox | None = None
_shared_lock = threading.Lock()


def shared(limits: Limits | None = None, size: int | None = None) -> Sandbox:
    """This process's sandbox (created on first use, closed at exit); ``limits`` and ``size``
    replace its defaults for the calls that follow."""
    global _shared
    with _shared_lock:
        if _shared is None or _shared._closed:
            _shared = Sandbox(size=size or 2, limits=limits)
            atexit.register(_shared.close)
        else:
            if limits is not None:
                _shared.limits = limits
            if size is not None:
                _shared.size = max(1, size)
        return _shared
