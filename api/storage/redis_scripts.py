"""The Redis store's Lua scripts: the ``.lua`` files beside this module, loaded once.

Each script runs atomically on the server. A lease script (:data:`LEASE_SCRIPTS`) gets the
project's keys as ``KEYS`` (:data:`api.storage.keys.PROJECT` order, then the lease clock and the projects hash) and the
lease key prefix as ``ARGV[1]``; this module puts a line naming them (``K.pool`` ...) and
``prelude.lua`` before it, so no script builds a key. Item and annotation JSON is produced by
Python and stored as opaque strings, never re-encoded by Lua (whose JSON encoder rounds floats).
"""

from __future__ import annotations

from importlib.resources import files

from api.storage.keys import PROJECT

__all__ = ["LEASE_SCRIPTS", "OTHER_SCRIPTS", "source"]

LEASE_SCRIPTS = ("lease", "submit", "renew", "release", "reclaim", "require", "queue_depth")
OTHER_SCRIPTS = ("create_job", "release_lock", "renew_lock")


def _read(name: str) -> str:
    return files("api.storage").joinpath("lua", f"{name}.lua").read_text(encoding="utf-8")


def source(name: str) -> str:
    """The text of script ``name`` as the server runs it."""
    if name not in LEASE_SCRIPTS:
        return _read(name)
    names = ", ".join(f"{what} = KEYS[{i}]" for i, what in enumerate(PROJECT, 1))
    n = len(PROJECT)
    header = f"local K = {{{names}, clock = KEYS[{n + 1}], projects = KEYS[{n + 2}]}}\n"
    return header + _read("prelude") + _read(name)
