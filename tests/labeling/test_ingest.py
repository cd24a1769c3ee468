"""Streaming readers: JSONL, CSV, Parquet and WRENCH into Records."""

from __future__ import annotations

import json

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from labeling import readers
from labeling.errors import InvalidInput, SchemaError
from labeling.ingest import Record, derive_id, read_records, read_wrench
from tests.server import DATASETS

YOUTUBE = DATASETS / "wrench_youtube"
SMS = DATASETS / "wrench_sms"

ROWS = [
    {"id": "a", "text": "hello there", "label": "pos", "source": "web", "likes": 3},
    {"id": "b", "text": "NA", "label": "neg", "source": "app", "likes": 0},
    {"id": "c", "text": "no label yet", "label": None, "source": "web", "likes": 1},
]


def _write_all(tmp_path, rows) -> dict:
    paths = {fmt: tmp_path / f"x.{fmt}" for fmt in ("jsonl", "csv", "parquet")}
    paths["jsonl"].write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    pd.DataFrame(rows).to_csv(paths["csv"], index=False)
    pd.DataFrame(rows).to_parquet(paths["parquet"])
    return paths


def test_jsonl_csv_parquet_give_the_same_records(tmp_path):
    paths = _write_all(tmp_path, ROWS)
    got = {fmt: list(read_records(p, class_names=["neg", "pos"])) for fmt, p in paths.items()}
    assert got["jsonl"] == got["csv"] == got["parquet"]
    a, b, c = got["jsonl"]
    assert a == Record("a", "hello there", {}, {"source": "web", "likes": 3}, 1, None)
    assert b.text == "NA" and b.gold == 0  # "NA" is text, not a missing value
    assert c.gold is None


def test_numeric_rows_features_votes_and_content_ids(tmp_path):
    df = pd.DataFrame({"x1": [1.0, 2.0, 5.5], "x2": [3, 4, 6], "lf_a": [1, -1, None],
                       "lf_b": [0, 0, 1], "label": [0, 1, -1], "site": ["p", "q", "r"]})
    df.to_csv(tmp_path / "t.csv", index=False)
    recs = list(read_records(tmp_path / "t.csv", vote_columns=["lf_a", "lf_b"]))
    assert recs[0].features == {"x1": 1.0, "x2": 3.0} and recs[0].votes == (1, 0)
    assert recs[2].votes == (-1, 1) and recs[2].gold is None and recs[1].gold == 1
    assert recs[0].meta == {"site": "p"} and recs[0].text is None
    assert recs[0].id == derive_id(None, {"x1": 1.0, "x2": 3.0}) and len(recs[0].id) == 16
    # ids come from the content, not the row number: reversing the file keeps them
    df.iloc[::-1].to_csv(tmp_path / "r.csv", index=False)
    rev = list(read_records(tmp_path / "r.csv", vote_columns=["lf_a", "lf_b"]))
    assert {r.id: r for r in rev} == {r.id: r for r in recs}


def test_explicit_feature_columns_and_ids_kept_as_text(tmp_path):
    pd.DataFrame({"id": ["007", "008"], "text": ["a", "b"], "f": [0.5, 1.5], "g": [1, 2]}).to_csv(
        tmp_path / "f.csv", index=False)
    recs = list(read_records(tmp_path / "f.csv", feature_columns=["f"]))
    assert [r.id for r in recs] == ["007", "008"]
    assert recs[0].features == {"f": 0.5} and recs[0].meta == {"g": 1}


def test_readers_stream(tmp_path, monkeypatch):
    # the first record comes out before the reader has seen the broken last line
    (tmp_path / "s.jsonl").write_text('{"text": "first"}\n{broken\n')
    it = read_records(tmp_path / "s.jsonl")
    assert next(it).text == "first"
    with pytest.raises(InvalidInput, match="line 2"):
        next(it)
    # CSV chunks and Parquet batches smaller than the file give the same records
    rows = [{"id": str(i), "text": f"t{i}", "label": i % 2} for i in range(7)]
    paths = _write_all(tmp_path, rows)
    pq.write_table(pa.Table.from_pylist(rows), paths["parquet"], row_group_size=3)
    whole = {fmt: list(read_records(p)) for fmt, p in paths.items()}
    monkeypatch.setattr(readers, "CHUNK_ROWS", 2)
    assert {fmt: list(read_records(p)) for fmt, p in paths.items()} == whole
    assert [r.id for r in whole["csv"]] == [str(i) for i in range(7)]


def test_progress_bar_goes_to_stderr(tmp_path, capsys):
    paths = _write_all(tmp_path, ROWS)
    for path in paths.values():
        assert len(list(read_records(path, class_names=["neg", "pos"], progress=True))) == 3
    captured = capsys.readouterr()
    assert captured.out == "" and "x.jsonl" in captured.err and "x.parquet" in captured.err


@pytest.mark.parametrize("name, content, kwargs, error, message", [
    ("bad.jsonl", '{"text": "ok"}\n{not json\n', {}, InvalidInput,
     r"bad\.jsonl line 2: invalid JSON"),
    ("arr.jsonl", '[1, 2]\n', {}, InvalidInput, "line 1: expected a JSON object"),
    ("cls.jsonl", '{"id": "q1", "text": "ok", "label": "maybe"}\n', {"class_names": ["no", "yes"]},
     SchemaError, r"line 1 \(id 'q1'\): label 'maybe' is not a class"),
    ("range.jsonl", '{"text": "ok", "label": 2}\n', {"class_names": ["no", "yes"]}, SchemaError,
     "label 2 is not a class"),
    ("empty.jsonl", '{"text": "ok"}\n{"other": "x"}\n', {}, InvalidInput,
     "line 2: neither text"),
    ("feat.csv", "a,b\n1,2\n3,x\n", {"feature_columns": ["a", "b"]}, InvalidInput,
     r"feat\.csv row 2: feature 'b' must be a number, got 'x'"),
    ("vote.csv", "text,v\nhi,yes\n", {"vote_columns": ["v"]}, InvalidInput,
     "row 1: vote column 'v' must hold an int"),
    ("bad.txt", "text\n", {}, InvalidInput, "format must be one of"),
    ("bad.parquet", "not parquet", {}, InvalidInput, "not a readable Parquet file"),
])
def test_malformed_input_names_file_and_row(tmp_path, name, content, kwargs, error, message):
    (tmp_path / name).write_text(content)
    with pytest.raises(error, match=message):
        list(read_records(tmp_path / name, **kwargs))


def test_missing_file_and_empty_csv(tmp_path):
    with pytest.raises(InvalidInput, match="no such file"):
        read_records(tmp_path / "nope.jsonl")  # checked at the call, before any iteration
    (tmp_path / "e.csv").write_text("")
    assert list(read_records(tmp_path / "e.csv")) == []


def test_wrench_youtube_folder():
    ds = read_wrench(YOUTUBE)
    assert ds.class_names == ["HAM", "SPAM"]
    assert {s: len(r) for s, r in ds.splits.items()} == {"train": 1686, "valid": 120, "test": 250}
    train = ds.splits["train"]
    assert all(len(r.votes) == 10 and r.text for r in train)
    assert sum(r.gold == 1 for r in train) == 885 and sum(r.gold == 0 for r in train) == 801
    assert len({r.id for r in train}) == len(train)
    assert list(read_records(YOUTUBE / "test.json")) == ds.splits["test"]  # the .json suffix


def test_wrench_sms_and_a_split_folder(tmp_path):
    ds = read_wrench(SMS)
    assert [len(ds.splits[s]) for s in ("train", "valid", "test")] == [1000, 200, 500]  # the subset
    assert len(ds.splits["train"][0].votes) == 73
    (tmp_path / "label.json").write_text('{"0": "no", "1": "yes"}')
    (tmp_path / "test.json").write_text(json.dumps({
        "7": {"label": 1, "weak_labels": [1, -1], "data": {"text": "hi", "lang": "en"}},
        "8": {"label": -1, "weak_labels": [0, 0], "data": {"feature": [0.5, 2]}},
    }))
    ds = read_wrench(tmp_path)
    assert list(ds.splits) == ["test"]
    assert ds.splits["test"] == [Record("7", "hi", {}, {"lang": "en"}, 1, (1, -1)),
                                 Record("8", None, {"f0": 0.5, "f1": 2.0}, {}, None, (0, 0))]
    bad = {"9": {"label": 0, "weak_labels": [0, "x"], "data": {"text": "a"}}}
    (tmp_path / "test.json").write_text(json.dumps(bad))
    with pytest.raises(InvalidInput, match="id '9': weak_labels"):
        read_wrench(tmp_path)
    with pytest.raises(InvalidInput, match="no label.json"):
        read_wrench(tmp_path / "nowhere")
