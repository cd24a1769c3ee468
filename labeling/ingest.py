"""Streaming readers: JSONL, CSV, Parquet and WRENCH JSON into :class:`Record` objects."""

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

__all__ = ["Record", "WrenchDataset", "read_records", "read_wrench", "derive_id", "FORMATS"]

FORMATS = ("jsonl", "csv", "parquet", "wrench")
_SUFFIX = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".parquet": "parquet",
           ".pq": "parquet", ".json": "wrench"}


@dataclass(frozen=True)
class Record:
    id: str
    text: str | None
    features: dict[str, float] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    gold: int | None = None
    votes: tuple[int, ...] | None = None


@dataclass
class WrenchDataset:
    splits: dict[str, list[Record]]
    class_names: list[str]


def derive_id(text: str | None, features: dict[str, float]) -> str:
    """A stable id from the content (not the row number), so re-reading a file gives the same ids."""
    payload = json.dumps([text, sorted(features.items())], ensure_ascii=False)
    return hashlib.sha1(payload.encode("utf-8")).hexdigest()[:16]


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


class _RowParser:
    def __init__(self, where: str, *, id_column: str, text_column: str, label_column: str,
                 feature_columns: Sequence[str] | None, vote_columns: Sequence[str] | None,
                 class_names: Sequence[str] | None) -> None:
        self.where, self.id_col, self.text_col, self.label_col = where, id_column, text_column, label_column
        self.feature_cols, self.vote_cols = feature_columns, vote_columns
        self.class_names = list(class_names) if class_names else None

    def gold(self, value: Any, row: str) -> int | None:
        if _missing(value) or value == "":
            return None
        if isinstance(value, bool):
            raise SchemaError(f"{self.where} {row}: label {value!r} is not a class")
        if isinstance(value, numbers.Integral) or (isinstance(value, float) and value.is_integer()):
            label = int(value)
            return None if label == -1 else label
        if isinstance(value, str):
            if value.lstrip("-").isdigit():
                label = int(value)
                return None if label == -1 else label
            if self.class_names and value in self.class_names:
                return self.class_names.index(value)
            raise SchemaError(
                f"{self.where} {row}: label {value!r} is not a class"
                + (f"; classes are {self.class_names}" if self.class_names else "")
            )
        raise SchemaError(f"{self.where} {row}: label {value!r} is not a class index or name")

    def __call__(self, raw: dict[str, Any], row: str) -> Record:
        text = raw.get(self.text_col)
        text = None if _missing(text) else str(text)
        reserved = {self.id_col, self.text_col, self.label_col, *(self.vote_cols or ())}
        if self.feature_cols is not None:
            names = list(self.feature_cols)
            absent = [n for n in names if n not in raw]
            if absent:
                raise InvalidInput(f"{self.where} {row}: feature column(s) {absent} missing")
        elif text is None:
            names = [k for k, v in raw.items() if k not in reserved and isinstance(v, numbers.Number)
                     and not isinstance(v, bool)]
        else:
            names = []
        features: dict[str, float] = {}
        for name in names:
            try:
                features[name] = float(raw[name])
            except (TypeError, ValueError) as exc:
                raise InvalidInput(f"{self.where} {row}: feature {name!r}={raw[name]!r} is not a number") from exc
        if text is None and not features:
            raise InvalidInput(f"{self.where} {row}: no text (column {self.text_col!r}) and no numeric features")
        votes = None
        if self.vote_cols:
            try:
                votes = tuple(int(raw[c]) if not _missing(raw.get(c)) else -1 for c in self.vote_cols)
            except (TypeError, ValueError) as exc:
                raise InvalidInput(f"{self.where} {row}: vote columns must hold integers ({exc})") from exc
        meta = {k: v for k, v in raw.items()
                if k not in reserved and k not in features and not _missing(v)
                and isinstance(v, str | int | float | bool)}
        item_id = raw.get(self.id_col)
        item_id = derive_id(text, features) if _missing(item_id) or item_id == "" else str(item_id)
        return Record(item_id, text, features, meta, self.gold(raw.get(self.label_col), row), votes)


def _progress(total: int | None, progress: bool, unit: str, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, unit=unit, unit_scale=True, desc=desc, disable=not progress, leave=False)


def read_records(
    path: str | Path, *, fmt: str | None = None, id_column: str = "id", text_column: str = "text",
    label_column: str = "label", feature_columns: Sequence[str] | None = None,
    vote_columns: Sequence[str] | None = None, class_names: Sequence[str] | None = None,
    progress: bool = False,
) -> Iterator[Record]:
    """Stream records from a file. ``fmt`` is one of :data:`FORMATS` or taken from the suffix.

    JSONL is read line by line, CSV in chunks, Parquet by record batches; a WRENCH split file is
    one JSON object (WRENCH files are small). Errors name the file and the line or row.
    """
    path = Path(path)
    fmt = fmt or _SUFFIX.get(path.suffix.lower())
    if fmt not in FORMATS:
        raise InvalidInput(f"{path}: format must be one of {list(FORMATS)} (or a known suffix), got {fmt!r}")
    if not path.is_file():
        raise InvalidInput(f"{path}: no such file")
    parse = _RowParser(str(path), id_column=id_column, text_column=text_column,
                       label_column=label_column, feature_columns=feature_columns,
                       vote_columns=vote_columns, class_names=class_names)
    if fmt == "wrench":
        yield from _read_wrench_split(path, class_names)
    elif fmt == "jsonl":
        with path.open("rb") as fh, _progress(path.stat().st_size, progress, "B", path.name) as bar:
            for lineno, line in enumerate(fh, 1):
                bar.update(len(line))
                if not line.strip():
                    continue
                try:
                    raw = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise InvalidInput(f"{path} line {lineno}: invalid JSON ({exc.msg})") from exc
                if not isinstance(raw, dict):
                    raise InvalidInput(f"{path} line {lineno}: expected a JSON object")
                yield parse(raw, f"line {lineno}")
    elif fmt == "csv":
        import pandas as pd

        row = 0
        with _progress(None, progress, "row", path.name) as bar:
            try:
                for chunk in pd.read_csv(path, chunksize=50_000, dtype={id_column: str}):
                    for raw in chunk.to_dict("records"):
                        row += 1
                        yield parse(raw, f"row {row}")
                    bar.update(len(chunk))
            except pd.errors.ParserError as exc:
                raise InvalidInput(f"{path}: malformed CSV ({exc})") from exc
    else:
        import pyarrow.parquet as pq

        try:
            pf = pq.ParquetFile(path)
        except Exception as exc:  # pyarrow raises several unrelated types for a bad file
            raise InvalidInput(f"{path}: not a readable Parquet file ({exc})") from exc
        row = 0
        with _progress(pf.metadata.num_rows, progress, "row", path.name) as bar:
            for batch in pf.iter_batches(batch_size=50_000):
                for raw in batch.to_pylist():
                    row += 1
                    yield parse(raw, f"row {row}")
                bar.update(batch.num_rows)


def _read_wrench_split(path: Path, class_names: Sequence[str] | None) -> Iterator[Record]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{path}: invalid JSON ({exc.msg} at line {exc.lineno})") from exc
    if not isinstance(doc, dict):
        raise InvalidInput(f"{path}: a WRENCH split is one JSON object keyed by id")
    parse = _RowParser(str(path), id_column="id", text_column="text", label_column="label",
                       feature_columns=None, vote_columns=None, class_names=class_names)
    for key, entry in doc.items():
        data = dict(entry.get("data") or {})
        text = data.pop("text", None)
        if text is None and "feature" in data:
            features = {f"f{j}": float(v) for j, v in enumerate(data.pop("feature"))}
        else:
            features = {}
        meta = {k: v for k, v in data.items() if isinstance(v, str | int | float | bool)}
        votes = entry.get("weak_labels")
        yield Record(str(key), text, features, meta,
                     parse.gold(entry.get("label"), f"id {key}"),
                     tuple(int(v) for v in votes) if votes is not None else None)


def read_wrench(folder: str | Path) -> WrenchDataset:
    """A WRENCH dataset folder: ``train.json`` / ``valid.json`` / ``test.json`` and ``label.json``."""
    folder = Path(folder)
    label_file = folder / "label.json"
    if not label_file.is_file():
        raise InvalidInput(f"{folder}: not a WRENCH folder (no label.json)")
    labels = json.loads(label_file.read_text(encoding="utf-8"))
    class_names = [labels[k] for k in sorted(labels, key=int)]
    splits = {name: list(_read_wrench_split(folder / f"{name}.json", class_names))
              for name in ("train", "valid", "test") if (folder / f"{name}.json").is_file()}
    if not splits:
        raise InvalidInput(f"{folder}: no train.json, valid.json or test.json")
    return WrenchDataset(splits, class_names)
