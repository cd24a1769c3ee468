"""What the Redis store's modules share: the Lua scripts (the ``.lua`` files beside this module,
each atomic on the server) and the item codec their field separator implies.

A script gets the project's keys as ``KEYS`` (:data:`api.storage.keys.PROJECT` order, then the
lease clock and the projects hash) and the lease key prefix as ``ARGV[1]``; :func:`source` puts a
line naming them (``K.pool`` ...) and ``prelude.lua`` before it. Item and annotation JSON is made
by Python and stored as opaque strings, never re-encoded by Lua (whose JSON encoder rounds floats).
"""

from __future__ import annotations

from importlib.resources import files

from api.storage.codec import loads
from api.storage.keys import PROJECT, SEP
from api.storage.records import Item
from labeling.errors import Conflict, InvalidInput, NotFound

__all__ = ["LEASE_SCRIPTS", "refusal", "source"]

LEASE_SCRIPTS = ("lease", "submit", "renew", "release", "reclaim", "require", "queue_depth")


def source(name: str) -> str:
    """The text of script ``name`` as the server runs it."""
    names = ", ".join(f"{what} = KEYS[{i}]" for i, what in enumerate(PROJECT, 1))
    n = len(PROJECT)
    header = f"local K = {{{names}, clock = KEYS[{n + 1}], projects = KEYS[{n + 2}]}}\n"
    lua = files("api.storage").joinpath("lua")
    return header + "".join(lua.joinpath(f"{n}.lua").read_text(encoding="utf-8")
                            for n in ("prelude", name))


def refusal(exc: Exception) -> Exception:
    """A lease script's refusal (``CONFLICT ...``, ``NOTFOUND ...``) as that store error; any
    other error as it is."""
    for prefix, err in (("CONFLICT ", Conflict), ("NOTFOUND ", NotFound)):
        if str(exc).startswith(prefix):
            return err(str(exc)[len(prefix):])
    return exc


def _plain(what: str, value: str | None) -> None:
    """Refuse the field separator inside ids that the Lua scripts join with it."""
    if value is not None and SEP in value:
        raise InvalidInput(f"{what} {value!r} contains the control character U+001F, which the "
                           "Redis store reserves")


def _item(item_id: str, doc: bytes, state: bytes) -> Item:
    """An item from its stored document and its state (seq, is_eval, rand_key, pool, ...)."""
    d = loads(doc)
    seq, is_eval, _, pool = state.split(SEP.encode(), 4)[:4]
    votes = d["votes"]
    return Item(item_id, int(seq), d["text"], d["features"], d["meta"],
                None if votes is None else tuple(votes), d["gold"], is_eval == b"1", pool.decode())
