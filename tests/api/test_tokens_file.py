"""The tokens file is checked at start-up, and an open app answers loopback only (issue 21, 9)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time

import httpx
import pytest

from api.auth import TokenRegistry
from labeling.errors import InvalidInput
from tests.server import ROOT, free_port

GOOD = "a-long-random-token-0123456789"


@pytest.mark.parametrize(("entries", "words"), [
    ([{"token": GOOD, "role": "engineer", "name": "eve", "projects": "pa"}], ["eve", "projects"]),
    ([{"token": GOOD, "role": "annotator", "name": "ann"},
      {"token": GOOD, "role": "admin", "name": "root"}], ["root", "ann", "once"]),
    ([{"token": "change-me-engineer-token-0001", "role": "engineer", "name": "engineer"}],
     ["engineer", "placeholder"]),
    ([{"token": GOOD, "role": "engineer", "name": "eve", "projects": ["pa\n"]}], ["eve"]),
])
def test_bad_entries_are_refused_by_name(tmp_path, entries, words):
    path = tmp_path / "tokens.json"
    path.write_text(json.dumps(entries))
    with pytest.raises(InvalidInput) as err:
        TokenRegistry.load(str(path), None)
    for w in words:
        assert w in str(err.value)


def test_serve_refuses_to_start_on_a_bad_tokens_file(tmp_path):
    path = tmp_path / "tokens.json"
    path.write_text(json.dumps([{"token": GOOD, "role": "annotator", "name": "ann"},
                                {"token": GOOD, "role": "admin", "name": "root"}]))
    env = {**os.environ, "LABELLOOP_TOKENS_FILE": str(path), "LABELLOOP_EXECUTOR": "inprocess"}
    proc = subprocess.run([sys.executable, "-m", "api.cli", "serve", "--data-dir", str(tmp_path),
                           "--port", str(free_port())], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode != 0
    assert "root" in proc.stderr and "once" in proc.stderr, proc.stderr[-2000:]


def _outward_address() -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("192.0.2.1", 9))  # no packet is sent; this picks the outward interface
        return s.getsockname()[0]


def test_an_app_without_tokens_answers_only_on_loopback_wherever_it_is_bound(tmp_path):
    outward = _outward_address()
    assert not outward.startswith("127."), "this test needs a non-loopback interface"
    port = free_port()
    code = textwrap.dedent(f"""
        from pathlib import Path
        import uvicorn
        from api.app import create_app
        from api.settings import Settings
        app = create_app(Settings(data_dir=Path({str(tmp_path)!r}), executor="inprocess"))
        uvicorn.run(app, host="0.0.0.0", port={port}, log_level="warning")
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.2)
        assert httpx.get(f"http://127.0.0.1:{port}/projects", timeout=10).status_code == 200
        r = httpx.get(f"http://{outward}:{port}/projects", timeout=10)
        assert r.status_code == 403 and "loopback" in r.text
        r = httpx.post(f"http://{outward}:{port}/projects", json={"id": "x", "classes": ["a", "b"]},
                       timeout=10)
        assert r.status_code == 403
    finally:
        proc.terminate()
        proc.wait(timeout=30)
