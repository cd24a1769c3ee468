"""Hostile and broken input (issue 21's payloads) against a real ``labelloop serve`` process.

Each case: a clear 4xx naming what was wrong, nothing half-stored, and the project still serving
every read afterwards (leases, items, export, ``GET /projects``).
"""

from __future__ import annotations

import io
import json

import httpx
import pytest

from tests.server import Server

ADMIN = "admin-token-hostile-0123456789"
ANNOTATOR = "annotator-token-hostile-012345"
MARK = "@SURROGATE@"
TOTAL = 20  # the items of project p; no failed request may change it


def hostile(doc) -> str:
    """``doc`` as JSON text with each MARK written as a lone high surrogate, ``\\ud83d``."""
    return json.dumps(doc).replace(MARK, "\\ud83d")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hostile")
    tokens = tmp / "tokens.json"
    tokens.write_text(json.dumps([
        {"token": ANNOTATOR, "name": "ann", "role": "annotator", "projects": ["p"]}]))
    srv = Server(tmp / "data", env={"LABELLOOP_ADMIN_TOKEN": ADMIN,
                                    "LABELLOOP_TOKENS_FILE": str(tokens),
                                    "LABELLOOP_MAX_BODY_BYTES": str(64 * 1024 * 1024)}).start()
    with httpx.Client(base_url=srv.url, timeout=60,
                      headers={"Authorization": f"Bearer {ADMIN}"}) as admin:
        r = admin.post("/projects", json={"id": "p", "classes": ["neg", "pos"],
                                          "settings": {"eval_fraction": 0.0}})
        assert r.status_code == 201, r.text
        r = admin.post("/projects/p/items", json={"items": [
            {"id": f"i{k}", "text": f"item {k}", "features": {"x": float(k)}} for k in range(20)]})
        assert r.status_code == 201, r.text
    yield srv
    srv.stop()


@pytest.fixture
def admin(server):
    with httpx.Client(base_url=server.url, timeout=60,
                      headers={"Authorization": f"Bearer {ADMIN}"}) as c:
        yield c


def raw(client: httpx.Client, method: str, path: str, text: str | bytes, **kw) -> httpx.Response:
    body = text.encode() if isinstance(text, str) else text
    return client.request(method, path, content=body,
                          headers={"content-type": "application/json", **kw.pop("headers", {})}, **kw)


def still_serving(client: httpx.Client) -> None:
    assert client.get("/projects").status_code == 200
    assert client.get("/projects/p/items/i0").status_code == 200
    assert client.get("/projects/p/export").status_code == 200
    assert client.get("/projects/p/stats").json()["queue"]["total"] == TOTAL
    lease = client.post("/projects/p/leases", json={"annotator": "probe", "size": 2})
    assert lease.status_code == 201, lease.text
    r = client.post(f"/leases/{lease.json()['lease_id']}/release", json={"annotator": "probe"})
    assert r.status_code == 200, r.text


def assert_422(r: httpx.Response, *words: str) -> None:
    assert r.status_code == 422, (r.status_code, r.text[:500])
    assert len(r.content) < 20_000
    for w in words:
        assert w in r.text, (w, r.text[:500])


@pytest.mark.parametrize("item", [
    {"id": "s1", "text": f"a{MARK} b"},
    {"id": "s2", "text": "ok", "meta": {"k": f"v{MARK}"}},
    {"id": "s3", "text": "ok", "meta": {f"k{MARK}": 1}},
    {"id": f"s4{MARK}", "text": "ok"},
    {"id": "s5", "text": "ok", "features": {f"f{MARK}": 1.0}},
])
def test_lone_surrogates_in_items_are_refused(admin, item):
    r = raw(admin, "POST", "/projects/p/items", hostile({"items": [item]}))
    assert_422(r, "surrogate")
    still_serving(admin)


def test_lone_surrogates_elsewhere_are_refused(admin):
    r = raw(admin, "POST", "/projects", hostile({"id": "q", "classes": [f"a{MARK}", "b"]}))
    assert_422(r, "surrogate")
    r = raw(admin, "POST", "/projects/p/lfs", hostile({"source": f"x = '{MARK}'"}))
    assert_422(r, "surrogate")
    r = raw(admin, "POST", "/projects/p/leases", hostile({"annotator": f"a{MARK}"}))
    assert_422(r)  # the lease route's own parser refuses it as JSON
    still_serving(admin)


@pytest.mark.parametrize("value", ["Infinity", "-Infinity", "1e999", "NaN"])
def test_non_finite_features_are_refused(admin, value):
    r = raw(admin, "POST", "/projects/p/items",
            '{"items": [{"id": "n1", "text": "t", "features": {"x": VALUE}}]}'.replace("VALUE", value))
    assert_422(r, "features", "x")
    still_serving(admin)


def test_a_broken_import_line_stores_nothing_and_says_so(admin):
    lines = [json.dumps({"id": f"imp{k}", "text": f"t {k}"}) for k in range(12_000)]
    lines[7_000] = hostile({"id": "imp7000", "text": f"bad {MARK}"})
    r = admin.post("/projects/p/import?format=jsonl", content="\n".join(lines).encode())
    assert_422(r, "line 7001", "nothing was stored", "surrogate")
    assert admin.get("/projects/p/stats").json()["queue"]["total"] == TOTAL
    lines[7_000] = '{"id": "imp7000", "x": 1e999}'  # no text: its numbers are features
    r = admin.post("/projects/p/import?format=jsonl", content="\n".join(lines).encode())
    assert_422(r, "nothing was stored", "finite")
    assert admin.get("/projects/p/stats").json()["queue"]["total"] == TOTAL
    still_serving(admin)


def test_deeply_nested_and_corrupt_files_are_422(admin, tmp_path):
    deep = '{"id": "d", "text": "t", "meta": ' + "[" * 100_000 + "]" * 100_000 + "}"
    r = admin.post("/projects/p/import?format=jsonl", content=deep.encode())
    assert_422(r, "nothing was stored")
    wrench = '{"a": {"label": 0, "data": {"text": "t", "x": ' + "[" * 100_000 + "]" * 100_000 + "}}}"
    r = admin.post("/projects/p/import?format=wrench", content=wrench.encode())
    assert_422(r, "nothing was stored")
    r = raw(admin, "POST", "/projects/p/items", '{"items": ' + "[" * 100_000 + "]" * 100_000 + "}")
    assert r.status_code in (400, 422), r.text[:300]

    import pyarrow as pa
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(pa.table({"id": [f"pq{k}" for k in range(5000)],
                             "text": [f"text {k}" * 20 for k in range(5000)]}), buf,
                   compression="none")
    data = bytearray(buf.getvalue())
    for k in range(200, len(data) // 2, 97):  # pages corrupt, footer intact
        data[k] ^= 0x5A
    r = admin.post("/projects/p/import?format=parquet", content=bytes(data))
    assert_422(r, "nothing was stored")
    assert admin.get("/projects/p/stats").json()["queue"]["total"] == TOTAL
    still_serving(admin)


@pytest.mark.parametrize(("settings", "name"), [
    ({"batch_size": 2.5}, "batch_size"), ({"batch_size": "5"}, "batch_size"),
    ({"seed": "x"}, "seed"), ({"seed": 2**70}, "seed"), ({"eval_fraction": None}, "eval_fraction"),
    ({"batch_size": True}, "batch_size"), ({"nope": 1}, "nope"),
    ({"explore_fraction": 0.6}, "explore_fraction"), ({"explore_fraction": -0.1}, "explore_fraction"),
])
def test_settings_are_typed(admin, settings, name):
    assert_422(admin.patch("/projects/p/settings", json=settings), name)
    assert_422(admin.post("/projects", json={"id": "typed", "classes": ["a", "b"],
                                             "settings": settings}), name)
    assert admin.get("/projects/typed").status_code == 404
    still_serving(admin)


def test_no_500_for_the_reported_cases(admin):
    r = admin.get("/projects/p/annotations", params={"since": "19901061406925764165632"})
    assert_422(r, "since")
    for module in ("__main__", "nopkg.sub", ".x", "os.path.nothing"):
        r = admin.post("/projects/p/lfs", json={"module": module})
        assert_422(r, "module")
        r = admin.post("/projects/p/assertions", json={"module": module})
        assert_422(r, "module")
    # NaN and a lone surrogate inside a field that fails validation: the 422 itself encodes
    r = raw(admin, "POST", "/projects/p/items", '{"items": [{"id": "z", "text": NaN}]}')
    assert_422(r, "text")
    r = raw(admin, "POST", "/projects/p/leases", hostile({"annotator": 5, "size": MARK}))
    assert r.status_code == 422 and r.json()["detail"]
    still_serving(admin)


def test_the_lease_route_authenticates_before_reading_the_body(server, admin):
    with httpx.Client(base_url=server.url, timeout=60) as anon:
        big = '{"annotator": "' + "x" * (40 * 1024 * 1024) + '", "size": "no"}'
        r = raw(anon, "POST", "/projects/p/leases", big)
        assert r.status_code == 401 and len(r.content) < 1000
        r = raw(anon, "POST", "/projects/p/leases", b'\xff\xfe{"annotator": "\xe9"}')
        assert r.status_code == 401
    r = raw(admin, "POST", "/projects/p/leases", big)
    assert r.status_code == 422 and len(r.content) < 20_000
    r = raw(admin, "POST", "/projects/p/leases", b'\xff\xfe{"annotator": "\xe9"}')
    assert 400 <= r.status_code < 500, r.text
    still_serving(admin)


@pytest.mark.parametrize("pid", ["pa\n", "p a", "-p", "p/q", "p\u202e", "x" * 65])
def test_project_ids_are_matched_whole(admin, pid):
    assert_422(admin.post("/projects", json={"id": pid, "classes": ["a", "b"]}), "id")


@pytest.mark.parametrize("item_id", ["a/b", "a\u0000b", "a\u202eb", "   ", "\t", "a\nb"])
def test_item_ids_follow_the_rule(admin, item_id):
    r = admin.post("/projects/p/items", json={"items": [{"id": item_id, "text": "t"}]})
    assert_422(r, "id")
    assert admin.get("/projects/p/stats").json()["queue"]["total"] == TOTAL


def test_a_token_scoped_to_pa_does_not_reach_pa_newline(server, admin):
    with httpx.Client(base_url=server.url, timeout=60,
                      headers={"Authorization": f"Bearer {ANNOTATOR}"}) as ann:
        assert ann.get("/projects/p").status_code == 200
        assert ann.get("/projects/p%0A").status_code in (403, 404)


def test_a_missing_number_in_a_file_is_missing_and_rounds_still_run(admin):
    r = admin.post("/projects", json={"id": "num", "classes": ["a", "b"],
                                      "settings": {"eval_fraction": 0.0, "retrain_every": 1000}})
    assert r.status_code == 201, r.text
    rows = ["id,x,y,label"] + [f"n{k},{k},{'' if k % 3 == 0 else k * 2},{k % 2}" for k in range(60)]
    r = admin.post("/projects/num/import?format=csv", content="\n".join(rows).encode())
    assert r.status_code == 201, r.text
    assert admin.get("/projects/num/items/n3").json()["features"] == {"x": 3.0}
    assert admin.get("/projects/num/items/n4").json()["features"] == {"x": 4.0, "y": 8.0}
    lease = admin.post("/projects/num/leases", json={"annotator": "a1", "size": 20}).json()
    anns = [{"item_id": it["id"], "lease_id": lease["lease_id"], "label": int(it["id"][1:]) % 2}
            for it in lease["items"]]
    r = admin.post("/projects/num/annotations", json={"annotator": "a1", "annotations": anns})
    assert r.status_code == 200, r.text
    job = admin.post("/projects/num/jobs", json={"kind": "round"})
    assert job.status_code == 202, job.text
    job = job.json()
    import time

    deadline = time.monotonic() + 180
    while (done := admin.get(f"/jobs/{job['id']}").json())["status"] in ("queued", "running"):
        assert time.monotonic() < deadline
        time.sleep(0.3)
    assert done["status"] == "succeeded", done
