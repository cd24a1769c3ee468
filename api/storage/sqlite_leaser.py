"""The embedded store's lease batches, run in a process of their own.

A coordinator on the embedded store spent most of a lease in SQLite's B-tree work, on the core its
event loop runs on, while the machine's other core idled (bench.lease_load). A thread does not
help: SQLite gives the GIL back for every row it steps, and gets it back only at the event loop's
next switch interval. So the lease route's batches go to a child process with its own connection
to the file. It runs :meth:`~api.storage.sqlite.SQLiteStore.lease_many` and encodes each lease's
response body itself; the event loop only moves bytes. SQLite's file locks keep leases exact
across the two processes (as across any processes sharing the file, the CLI's included), and the
lease clock orders them in time. Everything else the coordinator does stays on its own connection.

Frames: a 4-byte little-endian length, then a pickle. To the child: ``(now, requests)``, each
request as the fields of a :class:`~api.storage.records.LeaseRequest`. Back: per request, its
``LeaseOut`` body (bytes) or the error that refused it, in order; or one error for the whole
batch. Pickles pass only between a coordinator and the child it started.
"""

from __future__ import annotations

import asyncio
import logging
import pickle
import signal
import socket
import subprocess
import sys
from collections import deque
from collections.abc import Sequence
from dataclasses import astuple

from api.storage.base import StoreUnavailable
from api.storage.records import LeaseRequest
from labeling.errors import LabelloopError

__all__ = ["LeaseProcess"]

log = logging.getLogger(__name__)

_HEADER = 4


def _frame(obj: object) -> bytes:
    body = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    return len(body).to_bytes(_HEADER, "little") + body


class _Child:
    """One started child: its process, the coordinator's end of its socket, and the futures of
    the batches written to it, in order (each reply is the oldest one's)."""

    def __init__(self, proc: subprocess.Popen, writer: asyncio.StreamWriter,
                 loop: asyncio.AbstractEventLoop) -> None:
        self.proc, self.writer, self.loop = proc, writer, loop
        self.pending: deque[asyncio.Future] = deque()
        self.reader: asyncio.Task | None = None
        self.alive = True


class LeaseProcess:
    """The coordinator's end: started on first use, on the running event loop, and again after
    it exits (the batches it had in hand fail with :class:`StoreUnavailable`: their leases, if
    it committed them, expire as any lease no one uses). Batches are pipelined: one can wait in
    the socket while the child works on the one before it."""

    leases_on_loop = True  # awaited on the event loop, as a network store's batches

    def __init__(self, path: str) -> None:
        self.path = path
        self._child: _Child | None = None
        self._starting: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None

    async def lease_bodies_async(self, requests: Sequence[LeaseRequest], *,
                                 now: float) -> list[bytes | LabelloopError]:
        child = await self._running()
        done = child.loop.create_future()
        child.pending.append(done)  # no await between these two: replies come in write order
        child.writer.write(_frame((now, [astuple(r) for r in requests])))
        got = await done
        if isinstance(got, Exception):
            raise got
        if len(got) != len(requests):
            raise StoreUnavailable(f"the lease process of {self.path} answered {len(got)} of "
                                   f"{len(requests)} leases")
        return got

    async def _running(self) -> _Child:
        """The live child of this event loop, started once however many batches ask at once."""
        loop = asyncio.get_running_loop()
        child = self._child
        if child is not None and child.alive and child.loop is loop:
            return child
        if self._starting is None or self._starting[0] is not loop:
            self._starting = (loop, asyncio.Lock())
        async with self._starting[1]:
            child = self._child
            if child is None or not child.alive or child.loop is not loop:
                await self.aclose()  # one of another event loop, or one that exited
                child = self._child = await self._start(loop)
        return child

    async def _start(self, loop: asyncio.AbstractEventLoop) -> _Child:
        ours, theirs = socket.socketpair()
        try:
            proc = subprocess.Popen(  # noqa: ASYNC220 - a fork and exec, once per child
                [sys.executable, "-m", "api.storage.sqlite_leaser", self.path, str(theirs.fileno())],
                pass_fds=(theirs.fileno(),))
        finally:
            theirs.close()
        reader, writer = await asyncio.open_unix_connection(sock=ours)
        child = _Child(proc, writer, loop)
        child.reader = asyncio.ensure_future(self._read(child, reader))
        return child

    async def _read(self, child: _Child, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                size = int.from_bytes(await reader.readexactly(_HEADER), "little")
                got = pickle.loads(await reader.readexactly(size))
                done = child.pending.popleft()
                if not done.done():
                    done.set_result(got)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        except Exception:  # an unreadable frame: this child is done for
            log.exception("lease process of %s sent an unreadable reply", self.path)
            child.writer.close()  # so that it sees the end of its socket and exits
        finally:
            child.alive = False
            gone = StoreUnavailable(f"the lease process of {self.path} exited (code "
                                    f"{child.proc.poll()}); the next lease starts another")
            while child.pending:
                done = child.pending.popleft()
                if not done.done():
                    done.set_exception(gone)

    async def aclose(self) -> None:
        """End the child: it exits when its socket closes, after the batch in hand."""
        child, self._child = self._child, None
        if child is None:
            return
        if child.loop is asyncio.get_running_loop():
            child.writer.close()
            await child.reader
        else:  # its loop is gone, and its socket with it: no EOF will reach the child
            child.proc.terminate()
        try:
            await asyncio.to_thread(child.proc.wait, 10)
        except subprocess.TimeoutExpired:
            child.proc.kill()
            await asyncio.to_thread(child.proc.wait)


def _answer(store, now: float, fields: list[tuple]) -> list[bytes | LabelloopError] | LabelloopError:
    from api.schemas import lease_bodies

    try:
        got = store.lease_many([LeaseRequest(*f) for f in fields], now=now)
    except LabelloopError as e:
        return e
    except Exception as e:
        log.exception("lease batch failed")
        return StoreUnavailable(f"the lease batch failed on {store.path}: {e}")
    return lease_bodies(got)


def serve(path: str, fd: int) -> None:
    """The child's loop: a batch in, its replies out, until the coordinator closes the socket."""
    from api.storage.sqlite import SQLiteStore

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's Ctrl-C is the coordinator's to handle
    store = SQLiteStore(path, checkpoint=False)  # the coordinator's store checkpoints the file
    try:
        with socket.socket(fileno=fd) as sock, sock.makefile("rb") as stream:
            while header := stream.read(_HEADER):
                body = stream.read(int.from_bytes(header, "little"))
                now, fields = pickle.loads(body)
                sock.sendall(_frame(_answer(store, now, fields)))
    except (ConnectionError, BrokenPipeError):
        pass  # the coordinator is gone
    finally:
        store.close()


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]))
