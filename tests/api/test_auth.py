"""Every role boundary, over real HTTP against a server started with tokens."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.server import Server

TOKENS = {
    "admin": "admin-token-0123456789",
    "eng": "engineer-token-0123456789",
    "alice": "alice-token-0123456789",
    "bob": "bob-token-0123456789abc",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("auth")
    tokens = tmp / "tokens.json"
    tokens.write_text(json.dumps([
        {"token": TOKENS["eng"], "name": "eng", "role": "engineer", "projects": ["p"]},
        {"token": TOKENS["alice"], "name": "alice", "role": "annotator", "projects": ["p"]},
        {"token": TOKENS["bob"], "name": "bob", "role": "annotator", "projects": ["other"]},
    ]))
    srv = Server(tmp / "data", env={"LABELLOOP_TOKENS_FILE": str(tokens),
                                    "LABELLOOP_ADMIN_TOKEN": TOKENS["admin"]}).start()
    yield srv
    srv.stop()


def client(server, who: str | None) -> httpx.Client:
    headers = {"authorization": f"Bearer {TOKENS[who]}"} if who else {}
    return httpx.Client(base_url=server.url, headers=headers, timeout=30)


@pytest.fixture(scope="module")
def project(server):
    with client(server, "admin") as c:
        for pid in ("p", "other"):
            assert c.post("/projects", json={"id": pid, "classes": ["a", "b"],
                                             "settings": {"eval_fraction": 0}}).status_code == 201
            r = c.post(f"/projects/{pid}/items",
                       json={"items": [{"id": f"i{k}", "text": f"t {k}"} for k in range(10)]})
            assert r.status_code == 201
    return "p"


def test_no_or_unknown_token_is_401(server, project):
    with client(server, None) as c:
        assert c.get("/projects").status_code == 401
        assert c.post("/projects/p/leases", json={"annotator": "alice"}).status_code == 401
    with httpx.Client(base_url=server.url, headers={"authorization": "Bearer nope-nope-nope-nope"}) as c:
        assert c.get("/projects").status_code == 401
        assert c.post("/projects/p/leases", json={"annotator": "alice"}).status_code == 401
    with client(server, None) as c:
        assert c.get("/health").status_code == 200  # probes need no token


def test_annotator_boundaries(server, project):
    with client(server, "alice") as c:
        assert c.post("/projects", json={"id": "z", "classes": ["a", "b"]}).status_code == 403
        assert c.post("/projects/p/lfs", json={"source": "x = 1"}).status_code == 403
        assert c.post("/projects/p/jobs", json={"kind": "round"}).status_code == 403
        assert c.get("/projects/p/export").status_code == 403
        assert c.get("/projects/p/annotations").status_code == 403
        assert c.post("/projects/p/items", json={"items": [{"text": "x"}]}).status_code == 403
        assert c.patch("/projects/p/settings", json={"batch_size": 3}).status_code == 403
        assert c.post("/projects/other/leases", json={"annotator": "alice"}).status_code == 403
        assert c.post("/projects/p/leases", json={"annotator": "bob"}).status_code == 403
        assert [p["id"] for p in c.get("/projects").json()] == ["p"]
        lease = c.post("/projects/p/leases", json={"annotator": "alice", "size": 2})
        assert lease.status_code == 201
        lease = lease.json()
        item = lease["items"][0]["id"]
        r = c.post("/projects/p/annotations", json={"annotator": "alice", "annotations": [
            {"item_id": item, "lease_id": lease["lease_id"], "label": 0}]})
        assert r.status_code == 200
        assert c.post(f"/leases/{lease['lease_id']}/renew", json={"annotator": "alice"}).status_code == 200
    with client(server, "bob") as c:  # another project's annotator cannot touch alice's lease
        assert c.get(f"/leases/{lease['lease_id']}").status_code == 403
        assert c.post(f"/leases/{lease['lease_id']}/release", json={"annotator": "bob"}).status_code == 403
        assert c.get("/projects/p").status_code == 403


def test_engineer_boundaries(server, project):
    with client(server, "eng") as c:
        assert c.post("/projects", json={"id": "z2", "classes": ["a", "b"]}).status_code == 403
        assert c.patch("/projects/p/settings", json={"batch_size": 3}).status_code == 403
        assert c.get("/projects/other/lfs").status_code == 403
        src = ("from snorkel.labeling import labeling_function\n"
               "@labeling_function()\ndef odd(x):\n    return 1 if x.text.endswith('1') else -1\n")
        assert c.post("/projects/p/lfs", json={"source": src}).status_code == 201
        assert c.get("/projects/p/lfs/analysis").status_code == 200
        assert c.get("/projects/p/annotations").status_code == 200
        assert c.get("/projects/p/export").status_code == 200


def test_admin_can_do_everything(server, project):
    with client(server, "admin") as c:
        assert c.patch("/projects/p/settings", json={"batch_size": 3}).status_code == 200
        assert c.get("/projects/other/lfs").status_code == 200
        assert len(c.get("/projects").json()) == 2


def test_refuses_open_service_off_loopback(tmp_path):
    from api.app import create_app
    from api.settings import Settings
    from labeling.errors import InvalidInput

    with pytest.raises(InvalidInput, match="without tokens"):
        create_app(Settings(data_dir=tmp_path, host="0.0.0.0"))
