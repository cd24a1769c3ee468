"""Start a real Label Studio 1.23.2 (from the virtualenv ``.ci/setup`` makes) for the tests.

SQLite in a temporary data directory, loopback only, offline (no version check, no analytics),
its first user made from the environment, and loopback ML backends and webhooks allowed
(``ML_BLOCK_LOCAL_IP=false SSRF_PROTECTION_ENABLED=false``), as the fixture's README says.
A missing install is an error, never a skip.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import time
from pathlib import Path

import httpx

from tests.server import free_port

__all__ = ["LabelStudio", "venv"]

VERSION = "1.23.2"


def venv() -> Path:
    """Where ``.ci/setup`` installs Label Studio (``LABELLOOP_LABEL_STUDIO_VENV`` overrides)."""
    env = os.environ.get("LABELLOOP_LABEL_STUDIO_VENV")
    if env:
        return Path(env)
    cache = Path(os.environ.get("LABELLOOP_CACHE", Path.home() / ".cache" / "labelloop"))
    return cache / f"label-studio-{VERSION}"


class LabelStudio:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir, self.port = data_dir, free_port()
        self.token = secrets.token_hex(20)  # a legacy API token: 40 hex characters
        self.proc: subprocess.Popen | None = None
        self.log = data_dir / "label-studio.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=120,
                            headers={"Authorization": f"Token {self.token}"})

    def start(self, timeout: float = 240.0) -> LabelStudio:
        exe = venv() / "bin" / "label-studio"
        if not exe.exists():
            raise RuntimeError(f"Label Studio {VERSION} is not installed at {venv()}: run "
                               "`bash .ci/setup` (it makes that virtualenv)")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO", "LABEL_STUDIO"))}
        env.update({
            "LABEL_STUDIO_USERNAME": "tester@example.com", "LABEL_STUDIO_PASSWORD": "tester-pass-1",
            "LABEL_STUDIO_USER_TOKEN": self.token, "LATEST_VERSION_CHECK": "false",
            "COLLECT_ANALYTICS": "false", "ML_BLOCK_LOCAL_IP": "false",
            "SSRF_PROTECTION_ENABLED": "false", "LABEL_STUDIO_HOST": self.url,
            "PYTHONUNBUFFERED": "1",
        })
        cmd = [str(exe), "start", "--no-browser", "--data-dir", str(self.data_dir / "ls"),
               "--internal-host", "127.0.0.1", "-p", str(self.port), "--enable-legacy-api-token"]
        self.proc = subprocess.Popen(cmd, cwd=self.data_dir, env=env, stdout=self.log.open("ab"),
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"Label Studio exited early:\n{self.log.read_text()[-3000:]}")
            try:
                r = httpx.get(self.url + "/api/projects", timeout=2,
                              headers={"Authorization": f"Token {self.token}"})
                if r.status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"Label Studio did not answer in {timeout}s:\n"
                           f"{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
