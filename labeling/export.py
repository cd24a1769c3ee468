"""Pseudo-label selection and export writers (JSONL, formula-safe CSV, Parquet)."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from itertools import chain, islice
from pathlib import Path
from typing import Any

import numpy as np

from labeling.errors import InvalidInput

__all__ = ["CONFIDENCE_DIGITS", "EXPORT_FORMATS", "SOURCES", "assign_labels", "csv_safe", "write_rows"]

EXPORT_FORMATS = ("jsonl", "csv", "parquet")
SOURCES = ("human", "label_model", "end_model", "none")
BATCH_ROWS = 50_000
CONFIDENCE_DIGITS = 6  # decimals of an exported confidence
_SUFFIX = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".parquet": "parquet",
           ".pq": "parquet"}
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PREFER = ("end_model", "label_model")


def _vector(name: str, value: Any, n: int, ndim: int = 1) -> np.ndarray:
    arr = np.asarray(value)
    if arr.ndim != ndim or len(arr) != n:
        raise InvalidInput(f"{name} must have {n} rows and {ndim} dimension(s), "
                           f"got shape {arr.shape}")
    return arr


def assign_labels(
    human: np.ndarray, human_agreement: np.ndarray, lm_probs: np.ndarray | None,
    lm_covered: np.ndarray | None, end_probs: np.ndarray | None, *, min_confidence: float = 0.0,
    prefer: str = "end_model",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Label, source and confidence of every item.

    Human consensus wins (confidence = annotator agreement). Otherwise the end model labels the
    item, or, with ``prefer="label_model"``, the label model where LFs cover it; either model
    fills in where the other has nothing. Argmax ties go to the lowest class. Below
    ``min_confidence`` the label is -1 and the source "none".

    Parameters
    ----------
    human : (n,) int, -1 = no human label
    human_agreement : (n,) float, share of annotators agreeing with the consensus
    lm_probs : (n, K) label-model probabilities, or None
    lm_covered : (n,) bool, items with an LF vote, or None (then the label model covers nothing)
    end_probs : (n, K) end-model probabilities, or None
    min_confidence : labels below this confidence are withheld
    prefer : "end_model" or "label_model"

    Returns
    -------
    labels (n,) int64 (-1 = withheld), source (n,) object array of "human" / "label_model" /
    "end_model" / "none", confidence (n,) float64, rounded to :data:`CONFIDENCE_DIGITS`.
    """
    if prefer not in _PREFER:
        raise InvalidInput(f"prefer must be one of {list(_PREFER)}, got {prefer!r}")
    human = np.asarray(human)
    n = len(human)
    human = _vector("human", human, n)
    agreement = _vector("human_agreement", human_agreement, n)
    models = {"end_model": None, "label_model": None}
    if end_probs is not None:
        models["end_model"] = (_vector("end_probs", end_probs, n, 2), np.ones(n, dtype=bool))
    if lm_probs is not None:
        covered = np.zeros(n, dtype=bool) if lm_covered is None \
            else _vector("lm_covered", lm_covered, n).astype(bool)
        models["label_model"] = (_vector("lm_probs", lm_probs, n, 2), covered)
    labels = np.full(n, -1, dtype=np.int64)
    source = np.full(n, "none", dtype=object)
    conf = np.zeros(n, dtype=np.float32)
    other = "label_model" if prefer == "end_model" else "end_model"
    for name in (other, prefer):  # the preferred model writes last and wins where it speaks
        if models[name] is None:
            continue
        probs, rows = models[name]
        labels[rows] = probs[rows].argmax(axis=1)
        conf[rows] = probs[rows].max(axis=1)
        source[rows] = name
    has_human = human >= 0
    labels[has_human] = human[has_human]
    conf[has_human] = agreement[has_human]
    source[has_human] = "human"
    # to the digits an export writes, so that a threshold equal to a written confidence keeps its row
    conf = np.round(conf.astype(np.float64), CONFIDENCE_DIGITS)
    low = conf < min_confidence
    labels[low], source[low] = -1, "none"
    return labels, source, conf


def csv_safe(value: Any) -> Any:
    """Neutralise a cell a spreadsheet would evaluate as a formula (OWASP CSV injection): a
    string starting with = + - @ tab or carriage return gets a leading single quote."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def write_rows(rows: Iterable[dict], path: str | Path, fmt: str | None = None) -> None:
    """Write dict rows to ``path``, streaming.

    Parameters
    ----------
    rows : dicts with the same keys (the first row's keys are the CSV/Parquet columns)
    path : output file
    fmt : one of :data:`EXPORT_FORMATS`, or None to take it from the suffix (.jsonl/.ndjson,
        .csv, .parquet/.pq). CSV cells are made formula-safe (:func:`csv_safe`).
    """
    path = Path(path)
    fmt = fmt if fmt is not None else _SUFFIX.get(path.suffix.lower())
    if fmt not in EXPORT_FORMATS:
        raise InvalidInput(f"export format must be one of {list(EXPORT_FORMATS)} or inferable from "
                           f"the suffix {sorted(_SUFFIX)}; got fmt={fmt!r} for {path}")
    rows = iter(rows)
    if fmt == "jsonl":
        with path.open("w", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps(row, ensure_ascii=False, default=_json_default) + "\n")
    elif fmt == "csv":
        _write_csv(rows, path)
    else:
        _write_parquet(rows, path)


def _write_csv(rows: Iterable[dict], path: Path) -> None:
    rows = iter(rows)
    first = next(rows, None)
    with path.open("w", encoding="utf-8", newline="") as fh:
        if first is None:
            return
        columns = list(first)
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        for i, row in enumerate(chain([first], rows), 1):
            extra = [k for k in row if k not in first]
            if extra:
                raise InvalidInput(f"{path} row {i}: column(s) {extra} are not among the "
                                   f"first row's {columns}")
            writer.writerow({k: csv_safe(v) for k, v in row.items()})


def _write_parquet(rows: Iterable[dict], path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    writer = None
    try:
        while batch := list(islice(rows, BATCH_ROWS)):
            try:
                table = pa.Table.from_pylist(batch)
                if writer is None:
                    writer = pq.ParquetWriter(path, table.schema)
                writer.write_table(table.select(writer.schema.names).cast(writer.schema))
            except (pa.ArrowInvalid, pa.ArrowTypeError, KeyError) as exc:
                raise InvalidInput(f"{path}: rows do not fit one Parquet schema ({exc})") from exc
    finally:
        if writer is not None:
            writer.close()
    if writer is None:
        pq.write_table(pa.table({}), path)
