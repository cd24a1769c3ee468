"""Pseudo-label selection and export writers (JSONL, formula-safe CSV, Parquet)."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from itertools import chain, islice
from pathlib import Path

import numpy as np

from labeling.errors import InvalidInput

__all__ = ["assign_labels", "write_rows", "csv_safe", "EXPORT_FORMATS"]

EXPORT_FORMATS = ("jsonl", "csv", "parquet")
_SUFFIX = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def assign_labels(
    human: np.ndarray, human_agreement: np.ndarray, lm_probs: np.ndarray | None,
    lm_covered: np.ndarray | None, end_probs: np.ndarray | None, *, min_confidence: float = 0.0,
    prefer: str = "end_model",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Label, source and confidence per item.

    Human consensus wins (confidence = annotator agreement); otherwise the end model, or the label
    model where it covers the item when ``prefer="label_model"`` (or when there is no end model).
    Below ``min_confidence`` the label is -1 and the source "none".

    Returns labels (n,) int64, source (n,) object, confidence (n,) float32.
    """
    n = len(human)
    labels = np.full(n, -1, dtype=np.int64)
    source = np.full(n, "none", dtype=object)
    conf = np.zeros(n, dtype=np.float32)
    covered = lm_covered if lm_covered is not None else np.zeros(n, dtype=bool)
    order = ["label_model", "end_model"] if prefer == "label_model" else ["end_model", "label_model"]
    for name in reversed(order):  # the preferred model writes last and wins
        probs = end_probs if name == "end_model" else lm_probs
        if probs is None:
            continue
        rows = np.ones(n, dtype=bool) if name == "end_model" else covered.astype(bool)
        labels[rows] = probs[rows].argmax(axis=1)
        conf[rows] = probs[rows].max(axis=1)
        source[rows] = name
    has_human = np.asarray(human) >= 0
    labels[has_human] = np.asarray(human)[has_human]
    conf[has_human] = np.asarray(human_agreement)[has_human]
    source[has_human] = "human"
    low = conf < min_confidence
    labels[low], source[low] = -1, "none"
    return labels, source, conf


def csv_safe(value):
    """Neutralise cells a spreadsheet would evaluate as formulas (OWASP CSV injection)."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def write_rows(rows: Iterable[dict], path: str | Path, fmt: str | None = None) -> None:
    path = Path(path)
    fmt = fmt or _SUFFIX.get(path.suffix.lower())
    if fmt not in EXPORT_FORMATS:
        raise InvalidInput(f"export format must be one of {list(EXPORT_FORMATS)}, got {fmt!r} for {path}")
    rows = iter(rows)
    if fmt == "jsonl":
        with path.open("w", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    elif fmt == "csv":
        first = next(rows, None)
        with path.open("w", encoding="utf-8", newline="") as fh:
            if first is None:
                return
            writer = csv.DictWriter(fh, fieldnames=list(first))
            writer.writeheader()
            for row in chain([first], rows):
                writer.writerow({k: csv_safe(v) for k, v in row.items()})
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        writer = None
        try:
            while batch := list(islice(rows, 50_000)):
                table = pa.Table.from_pylist(batch)
                if writer is None:
                    writer = pq.ParquetWriter(path, table.schema)
                writer.write_table(table.cast(writer.schema))
        finally:
            if writer is not None:
                writer.close()
        if writer is None:
            pq.write_table(pa.table({}), path)
