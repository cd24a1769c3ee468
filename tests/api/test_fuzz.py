"""Schema fuzzing: every route, generated from the server's own OpenAPI document, against a real
``labelloop serve`` on each store, with an admin token, an annotator token and none.

Passes when no response is a server error (5xx) and none contradicts the document (a status code,
content type or body it does not declare). The seed is fixed and the examples per route bounded
(``LABELLOOP_FUZZ_EXAMPLES``, default 25), so a run takes a few minutes and repeats exactly.
"""

from __future__ import annotations

import json
import os

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.server import Server

ADMIN = "admin-token-fuzz-0123456789abc"
ANNOTATOR = "annotator-token-fuzz-01234567"
EXAMPLES = int(os.environ.get("LABELLOOP_FUZZ_EXAMPLES", "25"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]
LF = '''
from snorkel.labeling import labeling_function

@labeling_function()
def has_a(x):
    return 1 if "a" in (x.text or "") else 0
'''


@pytest.fixture(scope="module", params=["sqlite", "redis"])
def server(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp(f"fuzz-{request.param}")
    tokens = tmp / "tokens.json"
    tokens.write_text(json.dumps([
        {"token": ANNOTATOR, "name": "ann", "role": "annotator", "projects": ["p"]}]))
    store = None
    if request.param == "redis":
        from tests.redis_server import PrivateRedis

        redis = PrivateRedis(tmp / "redis", appendonly=False).start()
        request.addfinalizer(redis.kill)
        store = redis.url
    srv = Server(tmp / "data", store_url=store, env={
        "LABELLOOP_ADMIN_TOKEN": ADMIN, "LABELLOOP_TOKENS_FILE": str(tokens),
        "LABELLOOP_LF_TIMEOUT_S": "5"}).start()
    request.addfinalizer(srv.stop)
    with httpx.Client(base_url=srv.url, timeout=60,
                      headers={"Authorization": f"Bearer {ADMIN}"}) as c:
        c.post("/projects", json={"id": "p", "classes": ["neg", "pos"]}).raise_for_status()
        c.post("/projects/p/items", json={"items": [
            {"id": f"i{k}", "text": f"{'a' if k % 2 else 'b'} item {k}", "features": {"x": k}}
            for k in range(40)]}).raise_for_status()
        c.post("/projects/p/lfs", json={"source": LF}).raise_for_status()
    return srv


def operations(srv: Server):
    doc = httpx.get(srv.url + "/openapi.json", timeout=30).json()
    schema = schemathesis.openapi.from_dict(doc)
    return [op.ok() for op in schema.get_all_operations()]


def fuzz(op, base_url: str, headers: dict, failures: list[str]):
    """The fuzz run of one operation: ``EXAMPLES`` cases from a fixed seed."""

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @given(case=op.as_strategy(), real=st.booleans())
    def run(case, real):
        if real and case.path_parameters and "project_id" in case.path_parameters:
            case.path_parameters["project_id"] = "p"  # half the cases reach the real project
        response = case.call(base_url=base_url, headers=headers, timeout=60)
        try:
            case.validate_response(response, checks=CHECKS)
        except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - reported together below
            failures.append(f"{op.label}: {type(exc).__name__}: {str(exc)[:600]}")

    return run


@pytest.mark.parametrize("token", [ADMIN, ANNOTATOR, None], ids=["admin", "annotator", "none"])
def test_no_server_error_and_no_spec_violation(server, token):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    failures: list[str] = []
    ops = operations(server)
    assert len(ops) >= 25, [op.label for op in ops]
    for op in ops:
        fuzz(op, server.url, headers, failures)()
    assert not failures, "\n".join(failures[:30])
