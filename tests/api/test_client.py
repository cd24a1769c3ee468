"""``api.client.Client`` against a real ``labelloop serve`` process: the annotation loop, a crash
mid-lease, a retried submit, typed errors, jobs with progress, suggestions in leases, the offline
docs and CORS."""

from __future__ import annotations

import httpx
import pytest

from api.client import Client, InvalidRequest, NotFound
from tests.lf_sources import GREAT_AWFUL_LFS
from tests.server import Server

CLASSES = [{"name": "neg", "description": "says something bad"},
           {"name": "pos", "description": "says something good"}]


def items(n: int) -> list[dict]:
    words = ["great", "awful", "fine", "quiet"]
    return [{"id": f"it{k}", "text": f"{words[k % 4]} item {k}"} for k in range(n)]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("client") / "data").start()
    yield srv
    srv.stop()


@pytest.fixture
def client(server):
    with Client(server.url, retries=2, backoff_s=0.01) as c:
        yield c


def project(c: Client, pid: str, n: int = 20, **settings) -> None:
    c.create_project(pid, CLASSES, guidelines="Label the tone.",
                     settings={"eval_fraction": 0.0, "retrain_every": 1000, **settings})
    assert c.ingest(pid, items(n), chunk=7)["inserted"] == n


def stored(server, pid: str) -> list[dict]:
    return httpx.get(f"{server.url}/projects/{pid}/annotations", timeout=30).json()


def test_annotation_loop_as_the_readme_writes_it(client, server):
    project(client, "loop")
    while True:
        with client.lease("loop", annotator="me", size=5) as lease:
            if not lease.items:
                break
            answers = [lease.answer(it, label="pos" if "great" in it["text"] else "neg")
                       for it in lease.items]
            client.submit("loop", "me", answers)
    got = stored(server, "loop")
    assert sorted(a["item_id"] for a in got) == sorted(f"it{k}" for k in range(20))
    assert all(a["label"] == (1 if a["item_id"] in {f"it{k}" for k in range(0, 20, 4)} else 0)
               for a in got)
    assert lease.exhausted and lease.classes == CLASSES and lease.guidelines_version == 1


def test_lease_carries_classes_and_guideline_version_without_suggestions(client):
    project(client, "render", n=4)
    client.update_settings("render", guidelines_version=3)
    with client.lease("render", annotator="a", size=2) as lease:
        assert lease.raw["classes"] == CLASSES
        assert lease.raw["guidelines_version"] == 3 and lease.raw["show_suggestions"] is False
        assert all("suggestion" not in it and "lf_votes" not in it for it in lease.items)
    with pytest.raises(InvalidRequest, match="guidelines_version"):
        client.update_settings("render", guidelines_version=0)


def test_crash_mid_lease_releases_its_items(client):
    project(client, "crash", n=6)
    with pytest.raises(RuntimeError, match="tool crashed"), \
            client.lease("crash", annotator="a", size=6) as lease:
        assert len(lease.items) == 6
        client.submit("crash", "a", [lease.answer(lease.items[0], label="neg")])
        raise RuntimeError("tool crashed")
    assert client.stats("crash")["queue"]["leased"] == 0
    with client.lease("crash", annotator="b", size=10) as again:  # the 5 unanswered come back
        assert sorted(it["id"] for it in again.items) == sorted(it["id"] for it in lease.items[1:])


class DropFirstSubmitReply(httpx.HTTPTransport):
    """Sends every request to the server, but loses the reply to the first submission, as a
    network fault after the server stored it would."""

    def __init__(self) -> None:
        super().__init__()
        self.dropped = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if request.url.path.endswith("/annotations") and self.dropped == 0:
            response.read()
            self.dropped += 1
            raise httpx.ReadError("reply lost", request=request)
        return response


def test_retried_submit_is_counted_once(server):
    transport = DropFirstSubmitReply()
    with Client(server.url, retries=2, backoff_s=0.01, transport=transport) as c:
        project(c, "retry", n=3)
        with c.lease("retry", annotator="a", size=3) as lease:
            # no keys given: the client adds them before the first try
            answers = [{"item_id": it["id"], "lease_id": lease.lease_id, "label": "neg"}
                       for it in lease.items]
            got = c.submit("retry", "a", answers)
    assert transport.dropped == 1
    assert [r["duplicate"] for r in got["results"]] == [True, True, True]
    assert len(stored(server, "retry")) == 3


def test_typed_errors_name_what_was_wrong(client):
    with pytest.raises(NotFound, match="nope") as err:
        client.lease("nope", annotator="a")
    assert err.value.status == 404 and err.value.error == "NotFound"
    project(client, "errors", n=2)
    with client.lease("errors", annotator="a", size=1) as lease, \
            pytest.raises(InvalidRequest, match="unknown class 'maybe'"):
        client.submit("errors", "a", [lease.answer(lease.items[0], label="maybe")])


def test_round_with_progress_then_suggestions_and_votes_by_name(client, tmp_path):
    project(client, "sugg", n=40)
    assert [r["name"] for r in client.register_lfs("sugg", source=GREAT_AWFUL_LFS)] == [
        "says_great", "says_awful"]
    seen: list[tuple[int, int, str]] = []
    job = client.run_round("sugg", progress=lambda d, t, m: seen.append((d, t, m)))
    assert job["status"] == "succeeded" and seen and seen[-1][0] == seen[-1][1] > 0
    client.update_settings("sugg", show_suggestions=True)
    with client.lease("sugg", annotator="a", size=40) as lease:
        by_text = {it["text"]: it for it in lease.items}
    great = by_text["great item 0"]
    assert great["suggestion"]["label"] in ("neg", "pos")
    assert 0.5 <= great["suggestion"]["confidence"] <= 1.0
    assert great["reasons"]["predicted_class"] == great["suggestion"]["label"]
    assert great["lf_votes"] == {"says_great": "pos"}
    assert by_text["awful item 1"]["lf_votes"] == {"says_awful": "neg"}
    assert by_text["fine item 2"]["lf_votes"] == {}
    out = client.export("sugg", tmp_path / "labels.jsonl")
    assert len(out.read_text().splitlines()) == 40


def test_docs_are_served_offline(server):
    html = httpx.get(f"{server.url}/docs").text
    assert "/docs-assets/swagger-ui-bundle.js" in html and "/docs-assets/swagger-ui.css" in html
    assert "cdn" not in html.lower() and "https://" not in html
    js = httpx.get(f"{server.url}/docs-assets/swagger-ui-bundle.js")
    assert js.status_code == 200 and len(js.content) > 100_000
    assert httpx.get(f"{server.url}/openapi.json").json()["info"]["title"] == "labelloop"
    redoc = httpx.get(f"{server.url}/redoc").text
    assert "/docs-assets/redoc.standalone.js" in redoc and "https://" not in redoc


def preflight(url: str) -> httpx.Response:
    return httpx.options(f"{url}/projects", headers={
        "origin": "https://tool.example.com", "access-control-request-method": "POST",
        "access-control-request-headers": "authorization,content-type"})


def test_cors_is_off_by_default_and_allows_the_configured_origins(server, tmp_path):
    assert "access-control-allow-origin" not in preflight(server.url).headers
    srv = Server(tmp_path / "data", env={"LABELLOOP_CORS_ORIGINS": "https://tool.example.com"}).start()
    try:
        r = preflight(srv.url)
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == "https://tool.example.com"
        other = httpx.get(f"{srv.url}/health", headers={"origin": "https://evil.example.com"})
        assert "access-control-allow-origin" not in other.headers
    finally:
        srv.stop()
