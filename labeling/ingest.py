"""Streaming readers: JSONL, CSV, Parquet and WRENCH JSON into :class:`Record` objects.

JSONL is read line by line, CSV in pandas chunks, Parquet by pyarrow record batches; a WRENCH split
is one JSON object (WRENCH files are small). Every error names the file and the line, row or id.
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labeling.errors import InvalidInput, SchemaError

__all__ = ["FORMATS", "Record", "WrenchDataset", "derive_id", "read_records", "read_wrench"]

FORMATS = ("jsonl", "csv", "parquet", "wrench")
CHUNK_ROWS = 50_000
_SUFFIX = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".parquet": "parquet",
           ".pq": "parquet", ".json": "wrench"}
_SCALAR = (str, int, float, bool)


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


class _RowParser:
    """Turns one raw row (a dict of column -> value) into a :class:`Record`."""

    def __init__(self, path: Path, *, id_column: str, text_column: str, label_column: str,
                 feature_columns: Sequence[str] | None, vote_columns: Sequence[str] | None,
                 class_names: Sequence[str] | None) -> None:
        self.path, self.id_col = path, id_column
        self.text_col, self.label_col = text_column, label_column
        self.feature_cols = list(feature_columns) if feature_columns is not None else None
        self.vote_cols = list(vote_columns or ())
        self.class_names = list(class_names) if class_names else None
        self.reserved = {id_column, text_column, label_column, *self.vote_cols}

    def gold(self, value: Any, where: str) -> int | None:
        """The class index of a label cell; -1 or an empty cell means no label."""
        if _missing(value):
            return None
        if isinstance(value, str) and self.class_names and value in self.class_names:
            return self.class_names.index(value)
        label = _as_int(value)
        if label is None or label < -1 or (self.class_names and label >= len(self.class_names)):
            allowed = f"one of {self.class_names} or 0..{len(self.class_names) - 1}" \
                if self.class_names else "an int class index (-1 = none)"
            raise SchemaError(f"{self.path} {where}: label {value!r} is not a class; "
                              f"allowed: {allowed}")
        return None if label == -1 else label

    def __call__(self, raw: dict[str, Any], row: str) -> Record:
        item_id = raw.get(self.id_col)
        where = row if _missing(item_id) else f"{row} (id {item_id!r})"
        text = raw.get(self.text_col)
        text = None if text is None or (isinstance(text, float) and math.isnan(text)) else str(text)
        if self.feature_cols is not None:
            names = self.feature_cols
            absent = [n for n in names if n not in raw]
            if absent:
                raise InvalidInput(f"{self.path} {where}: feature column(s) {absent} missing")
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
                    f"{self.path} {where}: feature {name!r} must be a number, got {value!r}"
                ) from exc
        if text is None and not features:
            raise InvalidInput(f"{self.path} {where}: neither text (column {self.text_col!r}) "
                               "nor numeric features")
        votes = None
        if self.vote_cols:
            cells = [raw.get(c) for c in self.vote_cols]
            ints = [-1 if _missing(v) else _as_int(v) for v in cells]
            bad = [(c, v) for c, v, i in zip(self.vote_cols, cells, ints, strict=True)
                   if i is None or i < -1]
            if bad:
                raise InvalidInput(f"{self.path} {where}: vote column {bad[0][0]!r} must hold "
                                   f"an int >= -1 (-1 = abstain), got {bad[0][1]!r}")
            votes = tuple(ints)
        meta = {k: v for k, v in raw.items() if k not in self.reserved and k not in features
                and isinstance(v, _SCALAR) and not _missing(v)}
        if _missing(item_id):
            item_id = derive_id(text, features)
        elif isinstance(item_id, float) and item_id.is_integer():
            item_id = str(int(item_id))
        return Record(str(item_id), text, features, meta, self.gold(raw.get(self.label_col), where),
                      votes)


def _bar(total: int | None, progress: bool, unit: str, desc: str):
    from tqdm import tqdm  # writes to stderr

    return tqdm(total=total, unit=unit, unit_scale=True, desc=desc, disable=not progress,
                leave=False)


def read_records(
    path: str | Path, *, fmt: str | None = None, id_column: str = "id", text_column: str = "text",
    label_column: str = "label", feature_columns: Sequence[str] | None = None,
    vote_columns: Sequence[str] | None = None, class_names: Sequence[str] | None = None,
    progress: bool = False,
) -> Iterator[Record]:
    """Stream the records of one file.

    Parameters
    ----------
    path : the file
    fmt : one of :data:`FORMATS`, or None to infer it from the suffix (.jsonl/.ndjson, .csv,
        .parquet/.pq, .json = a WRENCH split)
    id_column, text_column, label_column : column names; a missing id is derived from the content
        (:func:`derive_id`); labels may be class indices or names from ``class_names``
    feature_columns : numeric feature columns; None = every numeric column when there is no text
    vote_columns : columns of precomputed LF votes (ints, -1 = abstain)
    progress : show a tqdm bar on stderr (bytes for JSONL, rows otherwise)

    Returns
    -------
    An iterator of Records in file order; the format and the file are checked at the call, rows
    are read as the iterator is consumed.
    """
    path = Path(path)
    fmt = fmt if fmt is not None else _SUFFIX.get(path.suffix.lower())
    if fmt not in FORMATS:
        raise InvalidInput(f"{path}: format must be one of {list(FORMATS)} or inferable from the "
                           f"suffix {sorted(_SUFFIX)}; got fmt={fmt!r}")
    if not path.is_file():
        raise InvalidInput(f"{path}: no such file")
    parse = _RowParser(path, id_column=id_column, text_column=text_column,
                       label_column=label_column, feature_columns=feature_columns,
                       vote_columns=vote_columns, class_names=class_names)
    readers = {"jsonl": _jsonl, "csv": _csv, "parquet": _parquet, "wrench": _wrench}
    from labeling.validation import check_record  # text, numbers, ids: the rules of every entry

    rows = readers[fmt](path, parse, progress)  # arguments checked now, rows read lazily
    return (check_record(r, f"{path} record {k} (id {r.id!r:.60})") for k, r in enumerate(rows, 1))


def _jsonl(path: Path, parse: _RowParser, progress: bool) -> Iterator[Record]:
    with path.open("rb") as fh, _bar(path.stat().st_size, progress, "B", path.name) as bar:
        for lineno, line in enumerate(fh, 1):
            bar.update(len(line))
            if not line.strip():
                continue
            try:
                raw = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise InvalidInput(f"{path} line {lineno}: invalid JSON ({exc})") from exc
            if not isinstance(raw, dict):
                raise InvalidInput(f"{path} line {lineno}: expected a JSON object, "
                                   f"got {type(raw).__name__}")
            yield parse(raw, f"line {lineno}")


def _csv(path: Path, parse: _RowParser, progress: bool) -> Iterator[Record]:
    import pandas as pd

    # ids and text stay strings ("007", "NA" and "null" are text, not numbers or missing)
    dtype = {parse.id_col: str, parse.text_col: str}
    row = 0
    with _bar(None, progress, "row", path.name) as bar:
        try:
            chunks = pd.read_csv(path, chunksize=CHUNK_ROWS, dtype=dtype, keep_default_na=False,
                                 na_values=[""])
            for chunk in chunks:
                for raw in chunk.to_dict("records"):
                    row += 1
                    yield parse(raw, f"row {row}")
                bar.update(len(chunk))
        except pd.errors.EmptyDataError:
            return
        except (pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise InvalidInput(f"{path}: malformed CSV after row {row} ({exc})") from exc


def _parquet(path: Path, parse: _RowParser, progress: bool) -> Iterator[Record]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise InvalidInput(f"{path}: not a readable Parquet file ({exc})") from exc
    row = 0
    with _bar(pf.metadata.num_rows, progress, "row", path.name) as bar:
        for batch in pf.iter_batches(batch_size=CHUNK_ROWS):
            for raw in batch.to_pylist():
                row += 1
                yield parse(raw, f"row {row}")
            bar.update(batch.num_rows)


def _wrench(path: Path, parse: _RowParser, progress: bool) -> Iterator[Record]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{path}: invalid JSON ({exc})") from exc
    if not isinstance(doc, dict):
        raise InvalidInput(f"{path}: a WRENCH split must be one JSON object keyed by id")
    with _bar(len(doc), progress, "row", path.name) as bar:
        for key, entry in doc.items():
            bar.update(1)
            where = f"id {key!r}"
            if not isinstance(entry, dict) or not isinstance(entry.get("data", {}), dict):
                raise InvalidInput(f"{path} {where}: expected an object "
                                   "{'label', 'weak_labels', 'data': {...}}")
            data = dict(entry.get("data") or {})
            text = data.pop("text", None)
            features: dict[str, float] = {}
            if text is None and isinstance(data.get("feature"), list):
                try:
                    features = {f"f{j}": float(v) for j, v in enumerate(data.pop("feature"))}
                except (TypeError, ValueError) as exc:
                    raise InvalidInput(f"{path} {where}: data.feature must hold numbers") from exc
            if text is None and not features:
                raise InvalidInput(f"{path} {where}: data has neither 'text' nor 'feature'")
            votes = entry.get("weak_labels")
            if votes is not None:
                ints = [_as_int(v) for v in votes] if isinstance(votes, list) else [None]
                if any(v is None or v < -1 for v in ints):
                    raise InvalidInput(f"{path} {where}: weak_labels must be a list of ints >= -1, "
                                       f"got {votes!r}")
                votes = tuple(ints)
            meta = {k: v for k, v in data.items() if isinstance(v, _SCALAR)}
            for k, v in data.items():  # relation datasets: entity spans [start, end) in the text
                if isinstance(v, list) and len(v) == 2 and all(type(x) is int for x in v):
                    meta[f"{k}_start"], meta[f"{k}_end"] = v
            yield Record(str(key), None if text is None else str(text), features, meta,
                         parse.gold(entry.get("label"), where), votes)


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
        labels = json.loads(label_file.read_text(encoding="utf-8"))
        index = {int(k): str(v) for k, v in labels.items()}
    except (json.JSONDecodeError, AttributeError, ValueError) as exc:
        raise InvalidInput(f"{label_file}: must map class indices to names ({exc})") from exc
    if sorted(index) != list(range(len(index))) or len(index) < 2:
        raise InvalidInput(f"{label_file}: class indices must be 0..K-1 with K >= 2, "
                           f"got {sorted(index)}")
    class_names = [index[i] for i in range(len(index))]
    splits = {
        name: list(read_records(folder / f"{name}.json", fmt="wrench", class_names=class_names))
        for name in ("train", "valid", "test") if (folder / f"{name}.json").is_file()
    }
    if not splits:
        raise InvalidInput(f"{folder}: no train.json, valid.json or test.json")
    return WrenchDataset(splits, class_names)
