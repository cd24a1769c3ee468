"""Streaming readers: JSONL, delimited text (CSV, TSV, headerless), Parquet and WRENCH JSON into
:class:`Record` objects.

Every error names the file (by the name the caller gives, never a server's temp path) and the
line, row or id. Labels may be class indices or class names; :func:`infer_class_names` reads the
classes a label column holds. Every parsed record passes through :func:`finalize`, the one place
records are completed and checked, whatever the format. Repeated ids inside one file are
rejected, or resolved by keeping the first or the last row (``duplicates``).
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from labeling.errors import InvalidInput, SchemaError
from labeling.readers import Delimited, bar, delimited_rows, jsonl_rows, parquet_rows, sniff_format
from labeling.validation import check_record

__all__ = [
    "DUPLICATES",
    "FORMATS",
    "Delimited",
    "Record",
    "WrenchDataset",
    "clean_text",
    "derive_id",
    "finalize",
    "infer_class_names",
    "read_records",
    "read_wrench",
    "unique_ids",
]

FORMATS = ("jsonl", "csv", "parquet", "wrench")
DUPLICATES = ("reject", "first", "last")
_SUFFIX = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".tsv": "csv", ".tab": "csv",
           ".parquet": "parquet", ".pq": "parquet", ".json": "wrench"}
_SCALAR = (str, int, float, bool)
BOM = "\ufeff"


@dataclass(frozen=True)
class Record:
    """One item: text and/or numeric features, metadata, an optional gold label and file votes."""

    id: str
    text: str | None
    features: dict[str, float] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    gold: int | None = None
    votes: tuple[int, ...] | None = None


@dataclass
class WrenchDataset:
    """A WRENCH folder: the splits present among train/valid/test, class names by index."""

    splits: dict[str, list[Record]]
    class_names: list[str]


def derive_id(text: str | None, features: dict[str, float]) -> str:
    """A stable id from the content, never the row number: the first 16 hex characters of the
    SHA-1 of the text and the sorted features, so re-reading or reordering a file keeps ids."""
    payload = json.dumps([text, sorted(features.items())], ensure_ascii=False)
    return hashlib.sha1(payload.encode("utf-8")).hexdigest()[:16]


def finalize(rec: Record, where: str) -> Record:
    """Complete one parsed record; every reader's records (and the HTTP items') pass here.

    A record with neither text nor features is refused; an empty id is derived from the content
    (:func:`derive_id`). Text, numbers and ids then follow the rules of every entry
    (:func:`labeling.validation.check_record`: no lone surrogates, no infinities; NaN = missing)."""
    if rec.text is None and not rec.features:
        raise InvalidInput(f"{where}: neither text nor numeric features")
    return check_record(rec if rec.id else replace(rec, id=derive_id(rec.text, rec.features)), where)


def clean_text(value: Any) -> str | None:
    """A text cell as a string, None when missing. Byte-order marks (U+FEFF) at either end are
    dropped: spreadsheet and web exports leave them in cells (the UCI YouTube comments end in
    one). WRENCH splits keep their texts verbatim, so figures compare with WRENCH's own."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return str(value).strip(BOM)


def _missing(value: Any) -> bool:
    return value is None or value == "" or (isinstance(value, float) and math.isnan(value))


def _as_int(value: Any) -> int | None:
    """An int from an int, an integral float or a string of digits; None if it is none of them."""
    if isinstance(value, bool):
        return None
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def label_key(value: Any) -> str:
    """A label cell as a class name: integers (also 1.0 or " 1") as their digits, text stripped."""
    as_int = _as_int(value)
    return str(as_int) if as_int is not None else str(value).strip()


class _RowParser:
    """Turns one raw row (a dict of column -> value) into a :class:`Record`."""

    def __init__(self, name: str, *, id_column: str, text_column: str, label_column: str,
                 feature_columns: Sequence[str] | None, vote_columns: Sequence[str] | None,
                 class_names: Sequence[str] | None) -> None:
        self.name, self.id_col = name, id_column
        self.text_col, self.label_col = text_column, label_column
        self.feature_cols = list(feature_columns) if feature_columns is not None else None
        self.vote_cols = list(vote_columns or ())
        self.class_names = list(class_names) if class_names else None
        self.index = {label_key(c): i for i, c in enumerate(self.class_names or ())}
        self.reserved = {id_column, text_column, label_column, *self.vote_cols}

    def gold(self, value: Any, where: str) -> int | None:
        """The class index of a label cell: a class name (matched first) or an index; -1 or an
        empty cell means no label."""
        if _missing(value):
            return None
        if self.index and label_key(value) in self.index:
            return self.index[label_key(value)]
        label = _as_int(value)
        if label is None or label < -1 or (self.class_names and label >= len(self.class_names)):
            allowed = f"one of {self.class_names} or 0..{len(self.class_names) - 1}" \
                if self.class_names else "an int class index (-1 = none), or give the class names"
            raise SchemaError(f"{self.name} {where}: label {value!r} is not a class; "
                              f"allowed: {allowed}")
        return None if label == -1 else label

    def _features(self, raw: dict[str, Any], where: str) -> dict[str, float]:
        if self.feature_cols is not None:
            names = self.feature_cols
            absent = [n for n in names if n not in raw]
            if absent:
                raise InvalidInput(f"{self.name} {where}: feature column(s) {absent} missing")
        elif self.text_col not in raw:  # no text column: every numeric column is a feature
            names = [k for k, v in raw.items() if k not in self.reserved
                     and isinstance(v, numbers.Number) and not isinstance(v, bool)]
        else:
            names = []
        features: dict[str, float] = {}
        for name in names:
            value = raw[name]
            if isinstance(value, bool) or not isinstance(value, numbers.Number | str):
                value = "<not a number>" if value is None else value
            try:
                features[name] = float(value)
            except (TypeError, ValueError) as exc:
                raise InvalidInput(
                    f"{self.name} {where}: feature {name!r} must be a number, got {value!r}"
                ) from exc
        return features

    def _votes(self, raw: dict[str, Any], where: str) -> tuple[int, ...] | None:
        if not self.vote_cols:
            return None
        cells = [raw.get(c) for c in self.vote_cols]
        ints = [-1 if _missing(v) else _as_int(v) for v in cells]
        bad = [(c, v) for c, v, i in zip(self.vote_cols, cells, ints, strict=True)
               if i is None or i < -1]
        if bad:
            raise InvalidInput(f"{self.name} {where}: vote column {bad[0][0]!r} must hold "
                               f"an int >= -1 (-1 = abstain), got {bad[0][1]!r}")
        return tuple(ints)

    def __call__(self, raw: dict[str, Any], row: str) -> tuple[Record, str]:
        item_id = raw.get(self.id_col)
        where = row if _missing(item_id) else f"{row} (id {item_id!r})"
        text = clean_text(raw.get(self.text_col))
        features = self._features(raw, where)
        if text is None and not features:
            raise InvalidInput(f"{self.name} {where}: neither text (column {self.text_col!r}) "
                               "nor numeric features")
        meta = {k: v for k, v in raw.items() if k not in self.reserved and k not in features
                and isinstance(v, _SCALAR) and not _missing(v)}
        if _missing(item_id):
            item_id = ""
        elif isinstance(item_id, float) and item_id.is_integer():
            item_id = str(int(item_id))
        rec = Record(str(item_id), text, features, meta, self.gold(raw.get(self.label_col), where),
                     self._votes(raw, where))
        return finalize(rec, f"{self.name} {where}"), where


def _resolve(path: str | Path, fmt: str | None, name: str | None) -> tuple[Path, str, str]:
    """(path, format, display name), checked before any row is read."""
    path = Path(path)
    name = name or str(path)
    if not path.is_file():
        raise InvalidInput(f"{name}: no such file")
    fmt = fmt if fmt is not None else _SUFFIX.get(path.suffix.lower()) or sniff_format(path)
    if fmt not in FORMATS:
        raise InvalidInput(f"{name}: format must be one of {list(FORMATS)} or inferable from the "
                           f"suffix {sorted(_SUFFIX)} or the content; got fmt={fmt!r}")
    return path, fmt, name


def _rows(path: Path, fmt: str, name: str, progress: bool, layout: Delimited,
          text_columns: Sequence[str]) -> Iterator[tuple[dict[str, Any], str]]:
    if fmt == "jsonl":
        return jsonl_rows(path, name, progress)
    if fmt == "parquet":
        return parquet_rows(path, name, progress)
    if layout.sep is None and path.suffix.lower() in (".tsv", ".tab"):
        layout = replace(layout, sep="\t")
    return delimited_rows(path, name, progress, layout, text_columns)


def read_records(
    path: str | Path, *, fmt: str | None = None, id_column: str = "id", text_column: str = "text",
    label_column: str = "label", feature_columns: Sequence[str] | None = None,
    vote_columns: Sequence[str] | None = None, class_names: Sequence[str] | None = None,
    layout: Delimited | None = None, duplicates: str | None = "reject", name: str | None = None,
    progress: bool = False,
) -> Iterator[Record]:
    """Stream the records of one file.

    Parameters
    ----------
    path : the file
    fmt : one of :data:`FORMATS`, or None to infer it from the suffix (.jsonl/.ndjson,
        .csv/.tsv/.tab, .parquet/.pq, .json = a WRENCH split) or else the content
    id_column, text_column, label_column : column names; a missing id is derived from the content
        (:func:`derive_id`); labels may be class indices or names from ``class_names``
    feature_columns : numeric feature columns; None = every numeric column when there is no text
    vote_columns : columns of precomputed LF votes (ints, -1 = abstain)
    layout : separator and header of a delimited file (:class:`~labeling.readers.Delimited`)
    duplicates : an id repeated inside the file: "reject" (an error naming both rows), "first"
        or "last" (keep that row, drop the others); None keeps every row
    name : what error messages call the file (default: its path)
    progress : show a tqdm bar on stderr (bytes for JSONL, rows otherwise)

    Returns
    -------
    An iterator of Records in file order; the format and the file are checked at the call, rows
    are read as the iterator is consumed.
    """
    path, fmt, name = _resolve(path, fmt, name)
    if duplicates is not None and duplicates not in DUPLICATES:
        raise InvalidInput(f"duplicates must be one of {list(DUPLICATES)}, got {duplicates!r}")
    parse = _RowParser(name, id_column=id_column, text_column=text_column,
                       label_column=label_column, feature_columns=feature_columns,
                       vote_columns=vote_columns, class_names=class_names)
    if fmt == "wrench":
        def pairs() -> Iterator[tuple[Record, str]]:
            return _wrench(path, name, parse, progress)
    else:
        def pairs() -> Iterator[tuple[Record, str]]:
            rows = _rows(path, fmt, name, progress, layout or Delimited(), (id_column, text_column))
            return (parse(raw, where) for raw, where in rows)
    return unique_ids(pairs, duplicates, name)


def unique_ids(pairs: Callable[[], Iterable[tuple[Record, str]]], duplicates: str | None,
               name: str) -> Iterator[Record]:
    """The records of ``pairs()`` (record, where) with repeated ids resolved as ``duplicates``
    says (see :func:`read_records`). "last" reads ``pairs()`` twice: once for the ids only."""
    if duplicates is None:
        yield from (rec for rec, _ in pairs())
        return
    if duplicates == "last":
        last = {rec.id: k for k, (rec, _) in enumerate(pairs())}
        yield from (rec for k, (rec, _) in enumerate(pairs()) if last[rec.id] == k)
        return
    seen: dict[str, str] = {}
    for rec, where in pairs():
        if rec.id in seen:
            if duplicates == "first":
                continue
            what = (f"id {rec.id!r} repeats ({seen[rec.id]}, then {where})" if "(id " in where
                    else f"{seen[rec.id]} and {where} hold the same content (id {rec.id!r}, "
                         "derived from it)")
            raise InvalidInput(f"{name}: {what}; choose duplicates 'first' or 'last' to keep "
                               "one of them")
        seen[rec.id] = where if duplicates == "reject" else ""
        yield rec


def infer_class_names(path: str | Path, *, label_column: str = "label", fmt: str | None = None,
                      layout: Delimited | None = None, name: str | None = None) -> list[str]:
    """The classes a file's label column holds, sorted (numerically when every label is an
    integer); empty cells and -1 (no label) are not classes."""
    path, fmt, name = _resolve(path, fmt, name)
    if fmt == "wrench":
        raise InvalidInput(f"{name}: a WRENCH split takes its classes from label.json")
    keys = {label_key(raw[label_column]) for raw, _ in
            _rows(path, fmt, name, False, layout or Delimited(), (label_column,))
            if not _missing(raw.get(label_column))}
    keys.discard("-1")
    if all(k.lstrip("-").isdigit() for k in keys):
        return sorted(keys, key=int)
    return sorted(keys)


def _wrench(path: Path, name: str, parse: _RowParser,
            progress: bool) -> Iterator[tuple[Record, str]]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8-sig"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{name}: invalid JSON ({exc})") from exc
    if not isinstance(doc, dict):
        raise InvalidInput(f"{name}: a WRENCH split must be one JSON object keyed by id")
    with bar(len(doc), progress, "row", name) as b:
        for key, entry in doc.items():
            b.update(1)
            where = f"id {key!r}"
            if not isinstance(entry, dict) or not isinstance(entry.get("data", {}), dict):
                raise InvalidInput(f"{name} {where}: expected an object "
                                   "{'label', 'weak_labels', 'data': {...}}")
            data = dict(entry.get("data") or {})
            text = data.pop("text", None)
            features: dict[str, float] = {}
            if text is None and isinstance(data.get("feature"), list):
                try:
                    features = {f"f{j}": float(v) for j, v in enumerate(data.pop("feature"))}
                except (TypeError, ValueError) as exc:
                    raise InvalidInput(f"{name} {where}: data.feature must hold numbers") from exc
            if text is None and not features:
                raise InvalidInput(f"{name} {where}: data has neither 'text' nor 'feature'")
            votes = entry.get("weak_labels")
            if votes is not None:
                ints = [_as_int(v) for v in votes] if isinstance(votes, list) else [None]
                if any(v is None or v < -1 for v in ints):
                    raise InvalidInput(f"{name} {where}: weak_labels must be a list of ints "
                                       f">= -1, got {votes!r}")
                votes = tuple(ints)
            meta = {k: v for k, v in data.items() if isinstance(v, _SCALAR)}
            for k, v in data.items():  # relation datasets: entity spans [start, end) in the text
                if isinstance(v, list) and len(v) == 2 and all(type(x) is int for x in v):
                    meta[f"{k}_start"], meta[f"{k}_end"] = v
            rec = Record(str(key), None if text is None else str(text), features, meta,
                         parse.gold(entry.get("label"), where), votes)
            yield finalize(rec, f"{name} {where}"), where


def read_wrench(folder: str | Path) -> WrenchDataset:
    """Read a WRENCH dataset folder.

    Parameters
    ----------
    folder : holds ``label.json`` (class index -> name) and any of ``train.json``, ``valid.json``,
        ``test.json``

    Returns
    -------
    WrenchDataset with the splits present and the class names ordered by index.
    """
    folder = Path(folder)
    label_file = folder / "label.json"
    if not label_file.is_file():
        raise InvalidInput(f"{folder}: not a WRENCH folder (no label.json)")
    try:
        labels = json.loads(label_file.read_text(encoding="utf-8-sig"))
        index = {int(k): str(v) for k, v in labels.items()}
    except (json.JSONDecodeError, AttributeError, ValueError) as exc:
        raise InvalidInput(f"{label_file}: must map class indices to names ({exc})") from exc
    if sorted(index) != list(range(len(index))) or len(index) < 2:
        raise InvalidInput(f"{label_file}: class indices must be 0..K-1 with K >= 2, "
                           f"got {sorted(index)}")
    class_names = [index[i] for i in range(len(index))]
    splits = {
        name: list(read_records(folder / f"{name}.json", fmt="wrench", class_names=class_names,
                                duplicates=None))
        for name in ("train", "valid", "test") if (folder / f"{name}.json").is_file()
    }
    if not splits:
        raise InvalidInput(f"{folder}: no train.json, valid.json or test.json")
    return WrenchDataset(splits, class_names)
