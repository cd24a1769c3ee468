"""The embedded store's lease process (``api.storage.sqlite_leaser``): a real child process on a
real SQLite file, driven from an event loop as the lease route's batcher drives it, and through
the app's lease route."""

from __future__ import annotations

import asyncio
import os
import signal

import orjson
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.deps import HotPath
from api.schemas import LeaseOut
from api.service.services import Services
from api.settings import Settings
from api.storage.base import StoreUnavailable
from api.storage.records import LeaseRequest
from api.storage.sqlite import SQLiteStore
from api.storage.sqlite_leaser import LeaseProcess
from labeling.errors import InvalidInput, NotFound
from tests.store_contract import T0, make_project
from workers.executor import InProcessExecutor


def req(annotator: str, n: int = 3, project: str = "p1", lease_id: str | None = None) -> LeaseRequest:
    return LeaseRequest(project, annotator, n, 0, 60.0, lease_id or f"L-{annotator}")


def test_a_batch_comes_back_as_bodies_and_refusals_in_order(tmp_path):
    store = SQLiteStore(tmp_path / "s.db")
    make_project(store, n_items=10)
    process = LeaseProcess(store.path)

    async def main():
        try:
            return await process.lease_bodies_async(
                [req("a"), req("b", project="nope"), req("c", n=-1), req("d", n=20)], now=T0)
        finally:
            await process.aclose()

    got = asyncio.run(main())
    a, d = (LeaseOut.model_validate_json(got[i]) for i in (0, 3))
    assert isinstance(got[1], NotFound) and "nope" in str(got[1])
    assert isinstance(got[2], InvalidInput) and "n=-1" in str(got[2])
    assert (a.lease_id, a.annotator, len(a.items), a.expires_at) == ("L-a", "a", 3, T0 + 60.0)
    assert len(d.items) == 7  # the rest of the pool: no item twice
    assert not {i.id for i in a.items} & {i.id for i in d.items}
    # committed to the file, as the coordinator's own connection sees it
    assert set(store.get_lease("L-d").item_ids) == {i.id for i in d.items}
    store.close()


def test_a_killed_process_fails_its_batches_and_the_next_lease_starts_another(tmp_path):
    store = SQLiteStore(tmp_path / "s.db")
    make_project(store, n_items=30)
    process = LeaseProcess(store.path)

    async def main():
        first = await process.lease_bodies_async([req("a")], now=T0)
        pid = process._child.proc.pid
        os.kill(pid, signal.SIGSTOP)  # stopped, so that the next batch is surely in its hands
        pending = asyncio.ensure_future(process.lease_bodies_async([req("b")], now=T0))
        await asyncio.sleep(0.2)
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(StoreUnavailable, match="exited"):
            await pending
        again = await process.lease_bodies_async([req("c")], now=T0)
        new_pid = process._child.proc.pid
        await process.aclose()
        return first, again, pid, new_pid

    first, again, pid, new_pid = asyncio.run(main())
    assert new_pid != pid
    a, c = LeaseOut.model_validate_json(first[0]), LeaseOut.model_validate_json(again[0])
    assert len(a.items) == len(c.items) == 3
    assert not {i.id for i in a.items} & {i.id for i in c.items}
    with pytest.raises(NotFound):  # the killed batch never ran
        store.get_lease("L-b")
    store.close()


def test_aclose_ends_the_child(tmp_path):
    store = SQLiteStore(tmp_path / "s.db")
    make_project(store)
    process = LeaseProcess(store.path)

    async def main():
        await process.lease_bodies_async([req("a")], now=T0)
        proc = process._child.proc
        await process.aclose()
        return proc

    proc = asyncio.run(main())
    assert proc.poll() == 0
    store.close()


def services(tmp_path, **settings) -> Services:
    store = SQLiteStore(tmp_path / "s.db")
    make_project(store, n_items=40)
    return Services(store, InProcessExecutor(), Settings(data_dir=tmp_path, **settings),
                    clock=lambda: T0)


def test_the_lease_route_leases_through_the_process_and_shutdown_ends_it(tmp_path):
    svc = services(tmp_path)
    app = create_app(services=svc)
    try:
        with TestClient(app) as client:
            bodies = [client.post("/projects/p1/leases", json={"annotator": f"a{k}", "size": 5})
                      for k in range(8)]
            hot: HotPath = app.state.hot_path
            proc = hot.process._child.proc
            assert proc is not None and proc.poll() is None
            refused = client.post("/projects/nope/leases", json={"annotator": "a", "size": 5})
        assert proc.poll() == 0  # the lifespan's end closed it
    finally:
        svc.jobs.shutdown()
        svc.store.close()
    assert [b.status_code for b in bodies] == [201] * 8
    ids = [i["id"] for b in bodies for i in b.json()["items"]]
    assert len(ids) == len(set(ids)) == 40
    assert refused.status_code == 404 and "nope" in refused.json()["detail"]
    assert orjson.loads(bodies[0].content)["annotator"] == "a0"


def test_with_the_process_the_other_hot_path_calls_leave_the_event_loop(tmp_path):
    """The child may hold the file's write lock, so a submission or project read waits for it on
    a store thread, never on the event loop; without the child they run on the loop."""
    import threading

    async def where(hot: HotPath) -> bool:
        loop_thread = threading.get_ident()
        return await hot.call(threading.get_ident) != loop_thread

    for on in (True, False):
        svc = services(tmp_path / str(on), lease_process=on)
        try:
            assert asyncio.run(where(HotPath.for_services(svc))) is on
        finally:
            svc.jobs.shutdown()
            svc.store.close()


def test_the_process_can_be_turned_off(tmp_path, monkeypatch):
    svc = services(tmp_path, lease_process=False)
    app = create_app(services=svc)
    try:
        with TestClient(app) as client:
            got = client.post("/projects/p1/leases", json={"annotator": "a", "size": 5})
            assert app.state.hot_path.process is None
    finally:
        svc.jobs.shutdown()
        svc.store.close()
    assert got.status_code == 201 and len(got.json()["items"]) == 5
    monkeypatch.setenv("LABELLOOP_LEASE_PROCESS", "false")
    assert Settings.from_env().lease_process is False
    monkeypatch.setenv("LABELLOOP_LEASE_PROCESS", "sometimes")
    with pytest.raises(InvalidInput, match="LABELLOOP_LEASE_PROCESS"):
        Settings.from_env()


def test_batches_that_find_no_process_start_one_between_them(tmp_path):
    """Batches that arrive while the child is starting wait for that one: each reply reaches
    the batch it answers."""
    store = SQLiteStore(tmp_path / "s.db")
    make_project(store, n_items=60)
    process = LeaseProcess(store.path)

    async def main():
        try:
            got = await asyncio.gather(*(process.lease_bodies_async([req(f"a{k}"), req(f"b{k}")], now=T0)
                                         for k in range(10)))
            return got, process._child.proc
        finally:
            await process.aclose()

    got, proc = asyncio.run(main())
    assert proc.poll() == 0
    leases = [LeaseOut.model_validate_json(body) for pair in got for body in pair]
    assert [x.annotator for x in leases] == [f"{w}{k}" for k in range(10) for w in "ab"]
    ids = [i.id for x in leases for i in x.items]
    assert len(ids) == len(set(ids)) == 60
    store.close()
