"""Coordinator settings: one frozen object, built once at the edge from the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from labeling.errors import InvalidInput
from workers.limits import Limits

__all__ = ["Settings"]

_PREFIX = "LABELLOOP_"


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("data")
    store_url: str = ""  # "" = SQLite file under data_dir; "sqlite:///path" or "redis://host:port/db"
    host: str = "127.0.0.1"
    port: int = 8000
    executor: str = "ray"  # "ray" (a local instance started on first use, or RAY_ADDRESS) or "inprocess"
    ray_address: str | None = None
    ray_num_cpus: int = 2
    max_body_bytes: int = 50 * 1024 * 1024
    sweep_interval_s: float = 5.0
    job_lock_ttl_s: float = 30.0  # a dead replica's job is failed and its kind free after this
    require_durable: bool = False
    job_workers: int = 2
    tokens_file: str | None = None
    admin_token: str | None = None
    cors_origins: tuple[str, ...] = ()  # LABELLOOP_CORS_ORIGINS: comma-separated; none = CORS off
    lf_timeout_s: float = 60.0  # wall-clock and CPU seconds for one LF on one block, one assertion, one load
    lf_memory_mb: int = 4096  # memory one such call may add to its worker
    sandbox_workers: int = 2  # local worker processes for registered code (workers.sandbox)

    @property
    def loopback(self) -> bool:
        return self.host in ("127.0.0.1", "localhost", "::1")

    @property
    def user_code_limits(self) -> Limits:
        """The limits of registered code (LFs, assertions), per call."""
        return Limits(self.lf_timeout_s, self.lf_timeout_s, self.lf_memory_mb)

    @property
    def resolved_store_url(self) -> str:
        return self.store_url or f"sqlite:///{(self.data_dir / 'labelloop.db').resolve()}"

    def with_(self, **changes) -> Settings:
        return replace(self, **changes)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        kw: dict = {}
        for name, conv in (
            ("data_dir", Path), ("store_url", str), ("host", str), ("port", int),
            ("executor", str), ("ray_num_cpus", int), ("max_body_bytes", int),
            ("sweep_interval_s", float), ("job_lock_ttl_s", float), ("job_workers", int), ("tokens_file", str),
            ("admin_token", str),
            ("lf_timeout_s", float), ("lf_memory_mb", int), ("sandbox_workers", int),
        ):
            raw = env.get(_PREFIX + name.upper())
            if raw is not None:
                try:
                    kw[name] = conv(raw)
                except ValueError as exc:
                    raise InvalidInput(f"{_PREFIX}{name.upper()}={raw!r}: {exc}") from exc
        raw = env.get(_PREFIX + "CORS_ORIGINS")
        if raw is not None:
            origins = tuple(o.strip().rstrip("/") for o in raw.split(",") if o.strip())
            bad = [o for o in origins if o != "*" and not o.startswith(("http://", "https://"))]
            if bad:
                raise InvalidInput(f"{_PREFIX}CORS_ORIGINS: {bad} are not origins like "
                                   "https://tool.example.com (or *)")
            kw["cors_origins"] = origins
        if "RAY_ADDRESS" in env:
            kw["ray_address"] = env["RAY_ADDRESS"]
        for name in ("require_durable",):
            raw = env.get(_PREFIX + name.upper())
            if raw is not None:
                if raw.lower() not in ("1", "true", "yes", "0", "false", "no"):
                    raise InvalidInput(f"{_PREFIX}{name.upper()}={raw!r}: expected true or false")
                kw[name] = raw.lower() in ("1", "true", "yes")
        settings = cls(**kw)
        if settings.executor not in ("inprocess", "ray"):
            raise InvalidInput(f"executor must be 'inprocess' or 'ray', got {settings.executor!r}")
        if not settings.lf_timeout_s > 0 or settings.lf_memory_mb < 64 or settings.sandbox_workers < 1:
            raise InvalidInput("lf_timeout_s must be > 0, lf_memory_mb >= 64 and sandbox_workers >= 1, "
                               f"got {settings.lf_timeout_s}, {settings.lf_memory_mb} and "
                               f"{settings.sandbox_workers}")
        return settings
