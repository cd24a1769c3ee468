"""File import over real HTTP: the UCI files as shipped, a column mapping, multipart upload,
repeated ids, and errors that name the user's file, never the server's temp path."""

from __future__ import annotations

import httpx
import pytest

from tests.server import DATASETS, Server

SMS = DATASETS / "sms_spam_uci" / "SMSSpamCollection"
EMINEM = DATASETS / "youtube_spam_uci" / "Youtube04-Eminem.csv"
YOUTUBE_MAPPING = {"id_column": "COMMENT_ID", "text_column": "CONTENT", "label_column": "CLASS"}


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("import") / "data").start()
    with httpx.Client(base_url=srv.url, timeout=120) as c:
        yield c
    srv.stop()


def project(client, pid: str) -> None:
    r = client.post("/projects", json={"id": pid, "classes": ["ham", "spam"],
                                       "settings": {"eval_fraction": 0.0}})
    assert r.status_code == 201, r.text


def total(client, pid: str) -> int:
    return client.get(f"/projects/{pid}/stats").json()["queue"]["total"]


def test_multipart_upload_of_the_uci_sms_file_with_a_column_mapping(client):
    project(client, "sms")
    with SMS.open("rb") as fh:
        r = client.post("/projects/sms/import", params={"columns": "label,text", "sep": "\\t",
                                                          "duplicates": "first", "format": "csv"},
                        files={"file": ("SMSSpamCollection", fh, "text/tab-separated-values")})
    assert r.status_code == 201, r.text
    assert r.json()["inserted"] == 978  # 1000 lines, 22 repeat an earlier message
    assert total(client, "sms") == 978
    # the same upload with the default duplicates=reject: refused, naming the user's file
    project(client, "sms2")
    with SMS.open("rb") as fh:
        r = client.post("/projects/sms2/import", params={"columns": "label,text", "format": "csv"},
                        files={"file": ("SMSSpamCollection", fh)})
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert detail.startswith("SMSSpamCollection: row 8 and row 104 hold the same content")
    assert "labelloop-import" not in detail and "/tmp" not in detail
    assert total(client, "sms2") == 0


def test_raw_body_csv_with_text_id_and_label_columns(client):
    project(client, "yt")
    body = EMINEM.read_bytes()
    r = client.post("/projects/yt/import", content=body,
                    params={**YOUTUBE_MAPPING, "filename": "Youtube04-Eminem.csv"})
    assert r.status_code == 422, r.text  # the UCI file repeats two comment ids
    assert r.json()["detail"].startswith("Youtube04-Eminem.csv: id '")
    assert "repeats" in r.json()["detail"] and total(client, "yt") == 0
    r = client.post("/projects/yt/import", content=body,
                    params={**YOUTUBE_MAPPING, "filename": "Youtube04-Eminem.csv",
                            "duplicates": "last"})
    assert r.status_code == 201, r.text
    assert r.json()["inserted"] == 446 and total(client, "yt") == 446
    item = client.get("/projects/yt/items/z12rwfnyyrbsefonb232i5ehdxzkjzjs2").json()
    assert item["text"] and not item["text"].endswith("\ufeff")  # the CONTENT column, BOM dropped
    assert item["meta"]["AUTHOR"]


def test_import_errors_name_the_field(client):
    project(client, "bad")
    r = client.post("/projects/bad/import", content=b"a,b\n1,2\n", params={"colour": "red"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "colour"]
    r = client.post("/projects/bad/import", content=b"x\n", params={"duplicates": "newest"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "duplicates"]
    r = client.post("/projects/bad/import", files={"other": ("a.csv", b"text\nhi\n")})
    assert r.status_code == 422 and "field named 'file'" in r.json()["detail"]
    r = client.post("/projects/bad/import", content=b"text,label\nhi,maybe\n",
                    params={"filename": "mine.csv"})
    assert r.status_code == 422 and r.json()["detail"].startswith("mine.csv row 1: label 'maybe'")
    assert total(client, "bad") == 0


def test_json_items_with_a_repeated_id(client):
    project(client, "js")
    items = [{"id": "a", "text": "one"}, {"id": "b", "text": "two"}, {"id": "a", "text": "uno"}]
    r = client.post("/projects/js/items", json={"items": items})
    assert r.status_code == 422 and "id 'a' repeats (item 1 (id 'a'), then item 3" in r.text
    r = client.post("/projects/js/items", json={"items": items, "duplicates": "last"})
    assert r.status_code == 201 and r.json()["inserted"] == 2
    assert client.get("/projects/js/items/a").json()["text"] == "uno"


BROKEN_LFS = """
from snorkel.labeling import labeling_function

@labeling_function()
def link(x):
    return 1 if "http" in x["text"] else -1

@labeling_function()
def typo(x):
    return 1 if "check" in x.txt else -1

@labeling_function()
def third_class(x):
    return 2 if "love" in x.text.lower() else -1
"""


def test_registration_reports_lfs_that_fault_everywhere_or_vote_out_of_range(client):
    project(client, "lfs")
    with EMINEM.open("rb") as fh:
        r = client.post("/projects/lfs/import", params={**YOUTUBE_MAPPING, "duplicates": "first"},
                        files={"file": ("Youtube04-Eminem.csv", fh)})
    assert r.status_code == 201, r.text
    r = client.post("/projects/lfs/lfs", json={"source": BROKEN_LFS})
    assert r.status_code == 201, r.text
    checks = {lf["name"]: lf["checks"] for lf in r.json()}
    assert checks["link"] == []  # x["text"], as Snorkel LFs read it, works
    assert [c["level"] for c in checks["typo"]] == ["error"]
    assert "faults on every one of 446 sampled items" in checks["typo"][0]["message"]
    assert [c["level"] for c in checks["third_class"]] == ["warning"]
    assert "votes outside -1..1" in checks["third_class"][0]["message"]


def test_gold_labels_of_a_file_are_a_dev_set_in_the_analysis(client):
    """The UCI CLASS column is gold: LF and label-model accuracy against it are reported, as
    Snorkel's lf_summary(Y_dev), and a round trains on no label (nobody annotated)."""
    import csv
    import time

    # the "lfs" project of the test above: 446 Eminem comments with gold CLASS and the LFs
    analysis = client.get("/projects/lfs/lfs/analysis").json()
    gold = analysis["gold"]
    assert gold["gold"] is True and gold["items"] == 446
    assert 0.0 <= gold["majority_accuracy"] <= 1.0 and 0.0 <= gold["label_model_accuracy"] <= 1.0
    rows = {row["name"]: row for row in analysis["lfs"]}
    with EMINEM.open(encoding="utf-8", newline="") as fh:
        seen, first = set(), []
        for row in csv.DictReader(fh):
            if row["COMMENT_ID"] not in seen:
                seen.add(row["COMMENT_ID"])
                first.append(row)
    fired = [int(r["CLASS"]) for r in first if "http" in r["CONTENT"].strip("\ufeff")]
    assert rows["link"]["n_gold_votes"] == len(fired)
    assert rows["link"]["gold_accuracy"] == pytest.approx(sum(fired) / len(fired))
    assert gold["coverage"] == pytest.approx(len(fired) / 446)  # only link votes validly
    assert rows["link"]["emp_accuracy"] is None and rows["link"]["n_labeled_votes"] == 0
    job = client.post("/projects/lfs/jobs", json={"kind": "round"}).json()
    deadline = time.monotonic() + 120
    while client.get(f"/jobs/{job['id']}").json()["status"] not in ("succeeded", "failed"):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert client.get(f"/jobs/{job['id']}").json()["status"] == "succeeded"
    assert client.get("/projects/lfs/stats").json()["labels"] == 0  # gold is never a label
    sms = client.get("/projects/sms/lfs/analysis").json()
    assert sms == {"lfs": [], "gold": None}  # gold but no LFs: nothing to measure
