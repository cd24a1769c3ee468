"""Redis servers for tests: the shared one (REDIS_URL, default 127.0.0.1:6379) or a private one
started on a free loopback port with its own persistence settings."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import redis

from tests.server import free_port

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


def shared_redis() -> redis.Redis:
    """The suite's Redis; a missing server fails the test loudly (never a skip)."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.ConnectionError as exc:
        raise RuntimeError(f"no Redis server answers at {REDIS_URL} ({exc}); start one "
                           "(bash .ci/test does)") from exc
    return client


def namespace() -> str:
    return f"test-{uuid.uuid4().hex[:10]}"


def drop_namespace(client: redis.Redis, ns: str) -> None:
    for key in client.scan_iter(match=f"{ns}:*", count=1000):
        client.delete(key)


class PrivateRedis:
    """A redis-server process of our own (killed only by us), for persistence and crash tests."""

    def __init__(self, workdir: Path, *, appendonly: bool, fsync: str = "always",
                 policy: str = "noeviction", extra: tuple[str, ...] = ()) -> None:
        if shutil.which("redis-server") is None:
            raise RuntimeError("redis-server is not installed")
        self.dir, self.port = workdir, free_port()
        self.args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                     "--appendonly", "yes" if appendonly else "no", "--appendfsync", fsync,
                     "--maxmemory-policy", policy, "--dir", str(workdir), *extra]
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> PrivateRedis:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(self.args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis.from_url(self.url)
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    if client.ping():
                        # a restart replays the AOF before answering PING with +PONG
                        return self
                except redis.ConnectionError:  # BusyLoadingError included
                    if self.proc.poll() is not None:
                        break
                    time.sleep(0.05)
        finally:
            client.close()
        self.kill()
        raise RuntimeError(f"private redis on port {self.port} did not start: {' '.join(self.args)}")

    def kill(self) -> None:
        """SIGKILL the process this object started (and only it): no shutdown save."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    stop = kill
