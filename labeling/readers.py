"""Raw row readers for :mod:`labeling.ingest`: JSONL, delimited text (CSV, TSV, any separator,
with or without a header row) and Parquet, each yielding ``(row dict, where)`` in file order.

JSONL is read line by line, delimited files in pandas chunks, Parquet by pyarrow record batches.
A UTF-8 byte-order mark at the start of a file is dropped. ``where`` ("line 3", "row 7") names the
row in error messages; ``name`` is what messages call the file (never a server's temp path).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labeling.errors import InvalidInput

__all__ = [
    "CHUNK_ROWS",
    "Delimited",
    "bar",
    "delimited_rows",
    "jsonl_rows",
    "parquet_rows",
    "sniff_format",
]

CHUNK_ROWS = 50_000
SNIFF_BYTES = 64 * 1024
BOM = "\ufeff"


def bar(total: int | None, progress: bool, unit: str, desc: str):
    """A tqdm bar on stderr, or a disabled one."""
    from tqdm import tqdm

    return tqdm(total=total, unit=unit, unit_scale=True, desc=desc, disable=not progress,
                leave=False)


@dataclass(frozen=True)
class Delimited:
    """How a delimited text file is laid out.

    sep : the field separator; None = sniffed from the first 64 KiB among ``, TAB ; |``
    header : whether the first row names the columns; without one, columns are named by
        ``columns`` or else by position ("0", "1", ...)
    columns : names for the columns of a headerless file, in order
    """

    sep: str | None = None
    header: bool = True
    columns: Sequence[str] | None = None


def sniff_format(path: Path) -> str | None:
    """"parquet" for Parquet's magic bytes, "jsonl" when the first non-blank character is ``{``,
    "csv" when the start of the file reads as delimited text, else None."""
    with path.open("rb") as fh:
        raw = fh.read(SNIFF_BYTES)
    if raw.startswith(b"PAR1"):
        return "parquet"
    head = raw.decode("utf-8-sig", errors="replace").lstrip()
    if not head:
        return None
    if head.startswith("{"):
        return "jsonl"
    return "csv" if _sniff_sep(head) else None


def _sniff_sep(sample: str) -> str | None:
    lines = sample.splitlines()
    sample = "\n".join(lines[:-1] if len(lines) > 1 else lines)  # the last line may be cut
    try:
        return csv.Sniffer().sniff(sample, delimiters=",\t;|").delimiter
    except csv.Error:
        return None


def jsonl_rows(path: Path, name: str, progress: bool) -> Iterator[tuple[dict[str, Any], str]]:
    with path.open("rb") as fh, bar(path.stat().st_size, progress, "B", name) as b:
        for lineno, line in enumerate(fh, 1):
            b.update(len(line))
            if lineno == 1 and line.startswith(BOM.encode()):
                line = line[len(BOM.encode()):]
            if not line.strip():
                continue
            try:
                raw = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise InvalidInput(f"{name} line {lineno}: invalid JSON ({exc})") from exc
            if not isinstance(raw, dict):
                raise InvalidInput(f"{name} line {lineno}: expected a JSON object, "
                                   f"got {type(raw).__name__}")
            yield raw, f"line {lineno}"


def delimited_rows(path: Path, name: str, progress: bool, layout: Delimited,
                   text_columns: Sequence[str]) -> Iterator[tuple[dict[str, Any], str]]:
    """Rows of a delimited file. ``text_columns`` (id and text) stay strings: "007", "NA" and
    "null" are text, not numbers or missing. Quoted fields may hold newlines; a tab-separated
    file is read without quoting (as TSV defines it, and as the UCI files need: their texts hold
    stray double quotes)."""
    import pandas as pd

    sep = layout.sep
    if sep is None:
        with path.open("rb") as fh:
            sample = fh.read(SNIFF_BYTES).decode("utf-8-sig", errors="replace")
        sep = _sniff_sep(sample) or ","
    names, header = (None, 0) if layout.header else (layout.columns or _positions(path, sep), None)
    dtype = {c: str for c in text_columns}
    options = {"quoting": csv.QUOTE_NONE} if sep == "\t" else {}
    row = 0
    with bar(None, progress, "row", name) as b:
        try:
            chunks = pd.read_csv(path, sep=sep, header=header, names=names, chunksize=CHUNK_ROWS,
                                 dtype=dtype, keep_default_na=False, na_values=[""],
                                 encoding="utf-8-sig", **options)
            for chunk in chunks:
                for raw in chunk.to_dict("records"):
                    row += 1
                    yield raw, f"row {row}"
                b.update(len(chunk))
        except pd.errors.EmptyDataError:
            return
        except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
            raise InvalidInput(f"{name}: malformed delimited file after row {row} "
                               f"({_scrub(exc, path, name)})") from exc


def _positions(path: Path, sep: str) -> list[str]:
    """Column names "0", "1", ... for a headerless file, as many as its first row has fields."""
    with path.open(encoding="utf-8-sig", errors="replace", newline="") as fh:
        first = next(csv.reader(fh, delimiter=sep, quoting=csv.QUOTE_NONE if sep == "\t"
                                else csv.QUOTE_MINIMAL), [])
    return [str(i) for i in range(len(first))]


def _scrub(exc: Exception, path: Path, name: str) -> str:
    """The exception's message with the file's path replaced by its display name."""
    return str(exc).replace(str(path), name)


def parquet_rows(path: Path, name: str, progress: bool) -> Iterator[tuple[dict[str, Any], str]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise InvalidInput(f"{name}: not a readable Parquet file ({_scrub(exc, path, name)})") \
            from exc
    row = 0
    with bar(pf.metadata.num_rows, progress, "row", name) as b:
        for batch in pf.iter_batches(batch_size=CHUNK_ROWS):
            for raw in batch.to_pylist():
                row += 1
                yield raw, f"row {row}"
            b.update(batch.num_rows)
