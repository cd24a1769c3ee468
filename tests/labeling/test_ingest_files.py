"""Files as people have them: the UCI SMS and YouTube spam files as shipped (headerless TSV with
named labels, CSVs with repeated ids, quoted newlines and byte-order marks), named classes in
every format, and a WRENCH folder without train.json."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from labeling.errors import InvalidInput, SchemaError
from labeling.ingest import Delimited, infer_class_names, read_records, read_wrench
from tests.server import DATASETS

SMS = DATASETS / "sms_spam_uci" / "SMSSpamCollection"
EMINEM = DATASETS / "youtube_spam_uci" / "Youtube04-Eminem.csv"
SHAKIRA = DATASETS / "youtube_spam_uci" / "Youtube05-Shakira.csv"
UCI_TSV = Delimited(sep="\t", header=False, columns=["label", "text"])
YOUTUBE_COLUMNS = {"id_column": "COMMENT_ID", "text_column": "CONTENT", "label_column": "CLASS"}


def test_uci_sms_headerless_tsv_with_named_labels():
    classes = infer_class_names(SMS, fmt="csv", layout=UCI_TSV)
    assert classes == ["ham", "spam"]
    with pytest.raises(InvalidInput, match=r"row 8 and row 104 hold the same content"):
        list(read_records(SMS, fmt="csv", layout=UCI_TSV, class_names=classes))
    recs = list(read_records(SMS, fmt="csv", layout=UCI_TSV, class_names=classes, duplicates=None))
    assert len(recs) == 1000 and sum(r.gold == 1 for r in recs) == 152
    assert recs[0].text.startswith("Go until jurong point") and recs[0].gold == 0
    # TSV has no quoting: a text that starts with a double quote keeps it (line 283 of the file)
    assert recs[282].text.startswith('"Wen u miss someone') and recs[282].text.endswith("gdeve..")
    # the separator is sniffed and the format read from the content when not given
    sniffed = list(read_records(SMS, layout=Delimited(header=False, columns=["label", "text"]),
                                class_names=classes, duplicates=None))
    assert sniffed == recs
    # --classes fixes the order
    flipped = list(read_records(SMS, fmt="csv", layout=UCI_TSV, class_names=["spam", "ham"],
                                duplicates=None))
    assert [r.gold for r in flipped] == [1 - r.gold for r in recs]


def test_headerless_columns_are_named_by_position(tmp_path):
    recs = list(read_records(SMS, fmt="csv", layout=Delimited(sep="\t", header=False),
                             text_column="1", label_column="0", class_names=["ham", "spam"],
                             duplicates="first"))
    assert len(recs) == 978 and recs[1].text == "Ok lar... Joking wif u oni..."


def test_without_class_names_a_named_label_says_how_to_fix_it():
    with pytest.raises(SchemaError, match="label 'ham' is not a class.*give the class names"):
        list(read_records(SMS, fmt="csv", layout=UCI_TSV))


def test_uci_youtube_csv_repeated_ids_reject_first_last():
    with pytest.raises(InvalidInput, match=r"Youtube04-Eminem\.csv: id '.+' repeats \(row \d+ "
                                           r"\(id .+\), then row \d+"):
        list(read_records(EMINEM, **YOUTUBE_COLUMNS))
    every = list(read_records(EMINEM, duplicates=None, **YOUTUBE_COLUMNS))
    first = list(read_records(EMINEM, duplicates="first", **YOUTUBE_COLUMNS))
    last = list(read_records(EMINEM, duplicates="last", **YOUTUBE_COLUMNS))
    assert len(every) == 448 and len(first) == len(last) == 446
    assert len({r.id for r in first}) == 446 and {r.id for r in first} == {r.id for r in last}
    repeated = [i for i in {r.id for r in every} if sum(r.id == i for r in every) > 1]
    assert len(repeated) == 2
    for item_id in repeated:
        rows = [k for k, r in enumerate(every) if r.id == item_id]
        assert [r for r in first if r.id == item_id] == [every[rows[0]]]
        assert [r for r in last if r.id == item_id] == [every[rows[-1]]]
    # file order is kept, less the dropped rows
    assert [r.id for r in first] == [r.id for k, r in enumerate(every)
                                     if r.id not in repeated or k == min(
                                         j for j, s in enumerate(every) if s.id == r.id)]


def test_uci_youtube_texts_lose_byte_order_marks_and_keep_quoted_newlines():
    raw = SHAKIRA.read_text(encoding="utf-8")
    assert "\ufeff" in raw
    recs = list(read_records(SHAKIRA, duplicates="first", class_names=["ham", "spam"],
                             **YOUTUBE_COLUMNS))
    assert len(recs) == 369 and not any(r.text.endswith("\ufeff") for r in recs)
    assert sum(r.gold for r in recs) == 174  # the repeated comment is ham
    assert recs[0].meta["AUTHOR"] and "DATE" in recs[0].meta
    eminem = list(read_records(EMINEM, duplicates="first", **YOUTUBE_COLUMNS))
    assert sum("\n" in r.text for r in eminem) == 1  # a quoted field holding a newline


def test_byte_order_mark_at_file_start(tmp_path):
    rows = [{"id": "a", "text": "hello", "label": "pos"}, {"id": "b", "text": "bye", "label": "neg"}]
    (tmp_path / "b.csv").write_bytes(b"\xef\xbb\xbf" + pd.DataFrame(rows).to_csv(index=False).encode())
    (tmp_path / "b.jsonl").write_bytes(b"\xef\xbb\xbf" + "\n".join(map(json.dumps, rows)).encode())
    (tmp_path / "b.tsv").write_bytes(b"\xef\xbb\xbf" + pd.DataFrame(rows).to_csv(
        index=False, sep="\t").encode())
    got = [list(read_records(tmp_path / f"b.{ext}", class_names=["neg", "pos"]))
           for ext in ("csv", "jsonl", "tsv")]
    assert got[0] == got[1] == got[2]
    assert [(r.id, r.text, r.gold) for r in got[0]] == [("a", "hello", 1), ("b", "bye", 0)]


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_named_classes_come_from_the_label_column_in_every_format(tmp_path, fmt):
    frame = pd.DataFrame({"text": ["green blades", "blue above", "lawn", "clouds", "unsure"],
                          "kind": ["grass", "sky", "grass", "sky", None]})
    path = tmp_path / f"g.{fmt}"
    {"csv": lambda: frame.to_csv(path, index=False),
     "jsonl": lambda: frame.to_json(path, orient="records", lines=True),
     "parquet": lambda: frame.to_parquet(path)}[fmt]()
    assert infer_class_names(path, label_column="kind") == ["grass", "sky"]
    recs = list(read_records(path, label_column="kind", class_names=["grass", "sky"]))
    assert [r.gold for r in recs] == [0, 1, 0, 1, None]
    unnamed = path.rename(tmp_path / "upload")  # no suffix: the format is read from the content
    assert list(read_records(unnamed, label_column="kind", class_names=["grass", "sky"])) == recs


def test_integer_labels_are_classes_by_value(tmp_path):
    pd.DataFrame({"text": list("abcdef"), "stars": [1, 5, 3, 5, 1, 10]}).to_csv(
        tmp_path / "s.csv", index=False)
    names = infer_class_names(tmp_path / "s.csv", label_column="stars")
    assert names == ["1", "3", "5", "10"]  # numeric order, not "1", "10", "3", "5"
    recs = list(read_records(tmp_path / "s.csv", label_column="stars", class_names=names))
    assert [r.gold for r in recs] == [0, 2, 1, 2, 0, 3]


def test_errors_name_the_file_as_the_caller_calls_it(tmp_path):
    (tmp_path / "upload-8f2a.tmp").write_text('{"text": "ok"}\n{broken\n')
    with pytest.raises(InvalidInput) as info:
        list(read_records(tmp_path / "upload-8f2a.tmp", fmt="jsonl", name="mine.jsonl"))
    assert "mine.jsonl line 2" in str(info.value) and str(tmp_path) not in str(info.value)
    with pytest.raises(InvalidInput, match="duplicates must be one of"):
        read_records(SMS, duplicates="newest")


def test_wrench_folder_without_train():
    ds = read_wrench(DATASETS / "wrench_chemprot")
    assert list(ds.splits) == ["valid", "test"] and len(ds.class_names) == 10
    assert all(len(r.votes) == 26 for r in ds.splits["valid"])
