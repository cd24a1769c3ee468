"""``GET /metrics`` after a scripted session on a real server, parsed with
``prometheus_client.parser``: the counts match what the session did."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from api.client import Client, InvalidRequest, Unauthorized
from tests.lf_sources import GREAT_AWFUL_LFS
from tests.server import Server

ENGINEER = "engineer-token-0123456789"


def scrape(url: str, token: str | None = ENGINEER) -> dict[tuple[str, tuple], float]:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    r = httpx.get(f"{url}/metrics", headers=headers, timeout=30)
    if r.status_code == 401:
        raise Unauthorized(401, r.json()["detail"])
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    out = {}
    for family in text_string_to_metric_families(r.text):
        assert family.name.startswith("labelloop_"), family.name
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("metrics")
    tokens = root / "tokens.json"
    tokens.write_text(json.dumps([{"token": ENGINEER, "name": "eng", "role": "engineer"},
                                  {"token": "admin-token-0123456789", "name": "adm", "role": "admin"}]))
    srv = Server(root / "data", env={"LABELLOOP_TOKENS_FILE": str(tokens),
                                     "LABELLOOP_SWEEP_INTERVAL_S": "0.2"}).start()
    yield srv
    srv.stop()


def test_metrics_count_a_scripted_session(server):
    with Client(server.url, token="admin-token-0123456789") as c:
        c.create_project("m", ["neg", "pos"], settings={"eval_fraction": 0.0, "retrain_every": 1000})
        c.ingest("m", [{"id": f"i{k}", "text": ("great " if k % 2 else "awful ") + str(k)}
                       for k in range(12)])
        c.register_lfs("m", source=GREAT_AWFUL_LFS)
        first = c.lease("m", "ann", size=4)
        second = c.lease("m", "ann", size=3)
        answers = [first.answer(it, label="neg") for it in first.items]
        c.submit("m", "ann", answers)
        c.submit("m", "ann", answers[:2])  # replayed keys: duplicates
        with pytest.raises(InvalidRequest):
            c.submit("m", "ann", [second.answer(second.items[0], label="nope"),
                                  second.answer(second.items[1], label="neg")])
        c.submit("m", "ann", [second.answer(second.items[0], kind="skip")])
        c.run_round("m")
        latest = c.rounds("m")[-1]

    got = scrape(server.url)
    p = ("project", "m")

    def value(name: str, **labels: str) -> float:
        return got[(name, tuple(sorted({**dict([p]), **labels}.items())))]

    assert value("labelloop_leases_granted_total") == 2
    assert value("labelloop_annotations_total", result="accepted") == 5
    assert value("labelloop_annotations_total", result="duplicate") == 2
    assert value("labelloop_annotations_total", result="rejected") == 2
    assert value("labelloop_lease_to_submit_seconds_count") == 5
    assert value("labelloop_items", state="done") == 4  # the skip does not finish an item
    assert value("labelloop_items", state="open") == 8
    assert value("labelloop_active_lease_holds") == 2  # the second lease's two unanswered items
    assert value("labelloop_rounds_total") == 1
    assert value("labelloop_last_round_timestamp_seconds") == pytest.approx(latest["created_at"])
    assert value("labelloop_jobs", kind="round", state="succeeded") == 1
    assert value("labelloop_jobs", kind="apply_lfs", state="running") == 0
    stages = {dict(k[1])["stage"] for k in got if k[0] == "labelloop_round_stage_duration_seconds_count"}
    assert stages == {"apply_lfs", "fit", "label-errors"}
    assert got[("labelloop_round_duration_seconds_count", ())] == 1
    assert got[("labelloop_store_up", ())] == 1
    build = [k for k in got if k[0] == "labelloop_build_info"]
    assert len(build) == 1 and dict(build[0][1])["version"] == "0.1.0"
    # no item or annotator ids in any label
    labels = {v for _, ls in got for _, v in ls}
    assert not labels & {"ann", "i0", "i1", first.lease_id}


def test_metrics_need_an_engineer_token_when_tokens_are_on(server):
    with pytest.raises(Unauthorized):
        scrape(server.url, token=None)


def test_expired_leases_are_counted_by_the_sweeper(server):
    with Client(server.url, token="admin-token-0123456789") as c:
        c.create_project("exp", ["a", "b"], settings={"eval_fraction": 0.0, "lease_ttl_s": 0.1})
        c.ingest("exp", [{"id": f"e{k}", "text": f"t{k}"} for k in range(3)])
        before = scrape(server.url).get(("labelloop_expired_lease_items_total", ()), 0.0)
        assert len(c.lease("exp", "ann", size=3).items) == 3
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            got = scrape(server.url)
            if got[("labelloop_expired_lease_items_total", ())] >= before + 3:
                break
            time.sleep(0.1)
        assert got[("labelloop_expired_lease_items_total", ())] == before + 3
        assert got[("labelloop_active_lease_holds", (("project", "exp"),))] == 0
