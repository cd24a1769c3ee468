"""Store backends behind one interface; ``open_store`` picks one from a URL."""

from __future__ import annotations

from api.storage.base import Store
from labeling.errors import InvalidInput

__all__ = ["Store", "open_store"]


def open_store(url: str, *, require_durable: bool = False) -> Store:
    """``sqlite:///abs/path.db`` (or a bare path) opens the embedded store; ``redis://...`` Redis."""
    if url.startswith(("redis://", "rediss://", "unix://")):
        from api.storage.redis import RedisStore

        return RedisStore(url, require_durable=require_durable)
    if "://" in url and not url.startswith("sqlite://"):
        raise InvalidInput(f"store URL must start with sqlite:// or redis://, got {url!r}")
    from api.storage.sqlite import SQLiteStore

    path = url.removeprefix("sqlite://")
    path = path[1:] if path.startswith("//") else path  # sqlite:////abs -> //abs
    return SQLiteStore(path or ":memory:")
