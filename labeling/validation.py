"""What labelloop accepts as text, numbers and identifiers, checked once at every entry.

Every entry (JSON bodies through ``api/schemas.py``, file imports through
:func:`labeling.ingest.read_records`, the CLI through both) calls these, so nothing that a later
read could not encode or a round could not compute with is ever stored:

* **Text** (item text, ids, metadata keys and values, class names, LF source, annotator names)
  must be encodable as UTF-8: a lone surrogate (``"\\ud83d"``, common in scraped data) is refused
  with the field and position, never replaced silently.
* **Numbers** in features and metadata must be finite: ``Infinity`` and ``1e999`` are refused
  with the item and the column. In a file, ``NaN`` in a feature (an empty CSV cell, a Parquet
  null) means the value is missing: the feature is left out of that item, as if absent, and the
  round treats it as missing. A JSON body cannot hold ``NaN`` (it is not JSON) and is refused.
* **Identifiers**: a project id is 1-64 of ``A-Z a-z 0-9 _ . -``, starting with a letter or digit;
  an item id is 1-512 characters with no ``/``, no control or format character (NUL, the
  right-to-left override...), no surrogate, and not only whitespace. Patterns are matched whole
  (``fullmatch``), so a trailing newline is not let through.
* Nested metadata is at most :data:`MAX_DEPTH` levels deep.

Messages quote at most :data:`QUOTE` characters of any input, escaped so they always encode.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Mapping
from typing import Any

from labeling.errors import InvalidInput

__all__ = ["ITEM_ID_RULE", "MAX_DEPTH", "PROJECT_ID", "QUOTE", "check_item_id", "check_project_id",
           "check_record", "check_text", "check_value", "quote"]

PROJECT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
ITEM_ID_RULE = "1-512 characters, no '/', no control or format characters, not only whitespace"
MAX_DEPTH = 32
QUOTE = 60
_SURROGATE = re.compile("[\ud800-\udfff]")
_BAD_ID_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}


def quote(value: Any, limit: int = QUOTE) -> str:
    """A short, always-encodable ``repr`` of ``value`` for an error message."""
    text = repr(value) if not isinstance(value, str) else repr(value[: limit + 1])
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= limit + 2 else text[:limit] + "..."


def check_text(value: str, field: str) -> str:
    """``value`` when it encodes as UTF-8; else ``InvalidInput`` naming ``field`` and where."""
    bad = _SURROGATE.search(value)
    if bad is not None:
        raise InvalidInput(f"{field}: a lone surrogate U+{ord(bad.group()):04X} at character "
                           f"{bad.start()} (text must be valid Unicode; fix the encoding)")
    return value


def check_value(value: Any, field: str, depth: int = 0) -> Any:
    """Check a JSON-like value (metadata, settings): text as :func:`check_text`, finite
    numbers, at most :data:`MAX_DEPTH` levels of lists and objects."""
    if isinstance(value, str):
        return check_text(value, field)
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidInput(f"{field}: {value!r} is not a finite number")
    if isinstance(value, Mapping | list | tuple):
        if depth >= MAX_DEPTH:
            raise InvalidInput(f"{field}: nested more than {MAX_DEPTH} levels deep")
        if isinstance(value, Mapping):
            for k, v in value.items():
                key = check_text(k, f"{field}: a key") if isinstance(k, str) else k
                check_value(v, f"{field}.{quote(key, 30) if not isinstance(key, str) else key[:30]}",
                            depth + 1)
        else:
            for j, v in enumerate(value):
                check_value(v, f"{field}[{j}]", depth + 1)
    return value


def check_project_id(value: Any) -> str:
    if not isinstance(value, str) or PROJECT_ID.fullmatch(value) is None:
        raise InvalidInput("project id must be 1-64 of letters, digits, '_', '.', '-' starting "
                           f"with a letter or digit, got {quote(value)}")
    return value


def check_item_id(value: Any, field: str = "item id") -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= 512 or not value.strip() \
            or "/" in value:
        raise InvalidInput(f"{field} must be {ITEM_ID_RULE}, got {quote(value)}")
    check_text(value, field)
    for j, ch in enumerate(value):
        if unicodedata.category(ch) in _BAD_ID_CATEGORIES:
            raise InvalidInput(f"{field} must be {ITEM_ID_RULE}: character {j} is U+{ord(ch):04X} "
                               f"({unicodedata.name(ch, unicodedata.category(ch))}), "
                               f"in {quote(value)}")
    return value


def check_record(record: Any, where: str) -> Any:
    """Check an ingest :class:`~labeling.ingest.Record` (id, text, features, metadata) and drop
    its NaN features (missing values); ``where`` names it in the error (file and record)."""
    check_item_id(record.id, f"{where}: id")
    if record.text is not None:
        check_text(record.text, f"{where}: text")
    missing = []
    for name, v in record.features.items():
        check_text(name, f"{where}: feature name")
        if math.isnan(v):
            missing.append(name)
        elif not math.isfinite(v):
            raise InvalidInput(f"{where}: feature {quote(name)} is {v!r}, not a finite number")
    for name in missing:  # a missing value: the feature is absent from this item
        del record.features[name]
    check_value(record.meta, f"{where}: meta")
    return record
