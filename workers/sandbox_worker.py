"""The worker process of :mod:`workers.sandbox`: reads calls on stdin, answers on stdout.

Started by the sandbox with a scrubbed environment. The protocol's pipes are moved off fds 0 and
1 first, so what user code prints goes to stderr and cannot corrupt an answer. The worker exits
when its input closes (the coordinator closed the sandbox or died).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import sys
from multiprocessing.connection import Connection

from labeling.errors import LabelloopError, UserCodeFault
from workers.limits import LimitExceeded, limited, set_current


def _portable(exc: BaseException) -> BaseException:
    """``exc`` when it is one of labelloop's own errors and survives pickling, else its text in a
    :class:`UserCodeFault` (a class defined in user code would not unpickle in the coordinator)."""
    if isinstance(exc, LabelloopError):
        with contextlib.suppress(Exception):
            pickle.loads(pickle.dumps(exc))
            return exc.with_traceback(None)
    return UserCodeFault(f"{type(exc).__name__}: {exc}")


def main() -> None:
    rx = Connection(os.dup(0), writable=False)
    tx = Connection(os.dup(1), readable=False)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(2, 1)
    os.close(devnull)
    import workers.lf_tasks  # noqa: F401 - the common imports, once, before the first call
    from workers.sandbox import harden_worker

    harden_worker()
    tx.send("ready")

    while True:
        try:
            fn, args, kwargs, call_limits, user_limits = rx.recv()
        except EOFError:
            return
        set_current(user_limits)
        try:
            with limited(call_limits):
                reply = ("ok", fn(*args, **kwargs))
        except LimitExceeded as exc:
            reply = ("err", UserCodeFault(str(exc)))
        except BaseException as exc:  # noqa: BLE001 - whatever user code raises goes back as its text
            reply = ("err", _portable(exc))
        try:
            tx.send(reply)
        except OSError:  # the coordinator is gone
            return
        except Exception as exc:  # noqa: BLE001 - an answer that cannot be pickled
            tx.send(("err", UserCodeFault(f"the result could not be sent back: {exc}")))


if __name__ == "__main__":
    sys.exit(main())
