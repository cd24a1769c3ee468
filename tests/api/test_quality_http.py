"""Annotation quality over real HTTP against a real ``labelloop serve`` process: simulated
annotators (one of them careless) label every item three times; agreement, annotator figures,
the label-error ranking, gold items, export columns and the ``labelloop quality`` CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import httpx
import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import fleiss_kappa

from tests.server import ROOT, Server

N_ITEMS = 90
ANNOTATORS = {"ann0": 0.03, "ann1": 0.03, "ann2": 0.03, "ann3": 0.03, "sloppy": 0.4}
WORDS = {0: ["awful", "bad", "poor"], 1: ["great", "good", "fine"]}


def truth(k: int) -> int:
    return k % 2


def items() -> list[dict]:
    return [{"id": f"it{k}", "text": f"{WORDS[truth(k)][k % 3]} thing number {k}"}
            for k in range(N_ITEMS)]


@pytest.fixture(scope="module")
def crowd(tmp_path_factory):
    """A server, a project whose every item needs 3 annotators, and the answers given."""
    data = tmp_path_factory.mktemp("quality") / "data"
    srv = Server(data).start()
    c = httpx.Client(base_url=srv.url, timeout=120)
    try:
        r = c.post("/projects", json={"id": "p", "classes": ["neg", "pos"], "settings": {
            "eval_fraction": 0.0, "retrain_every": 10**6, "redundancy_fraction": 1.0,
            "redundancy_k": 3, "batch_size": 10}})
        assert r.status_code == 201, r.text
        assert c.post("/projects/p/items", json={"items": items()}).status_code == 201
        rng = np.random.default_rng(7)
        answers: dict[tuple[str, str], int] = {}
        times: dict[str, list[float]] = {a: [] for a in ANNOTATORS}
        active = set(ANNOTATORS)
        while active:
            for who in sorted(active):
                body = c.post("/projects/p/leases", json={"annotator": who}).json()
                if not body["items"]:
                    if body["exhausted"]:
                        active.discard(who)
                    continue
                anns = []
                for it in body["items"]:
                    k = int(it["id"][2:])
                    label = truth(k) if rng.random() >= ANNOTATORS[who] else 1 - truth(k)
                    spent = float(rng.integers(2, 9))
                    answers[(it["id"], who)] = label
                    times[who].append(spent)
                    anns.append({"item_id": it["id"], "lease_id": body["lease_id"],
                                 "label": label, "time_spent_s": spent})
                r = c.post("/projects/p/annotations", json={"annotator": who, "annotations": anns})
                assert r.status_code == 200, r.text
        assert len(answers) == 3 * N_ITEMS
        job = c.post("/projects/p/jobs", json={"kind": "round"}).json()
        deadline = time.monotonic() + 180
        while (job := c.get(f"/jobs/{job['id']}").json())["status"] in ("queued", "running"):
            assert time.monotonic() < deadline, job
            time.sleep(0.2)
        assert job["status"] == "succeeded", job
        yield c, srv, answers, times
    finally:
        c.close()
        srv.stop()


def matrix(answers) -> tuple[np.ndarray, list[str]]:
    names = sorted(ANNOTATORS)
    r = np.full((N_ITEMS, len(names)), -1)
    for (item, who), label in answers.items():
        r[int(item[2:]), names.index(who)] = label
    return r, names


def test_agreement_matches_sklearn_and_statsmodels(crowd):
    c, _, answers, _ = crowd
    got = c.get("/projects/p/agreement").json()
    r, names = matrix(answers)
    assert got["n_items"] == N_ITEMS
    # every item has exactly 3 ratings, so Fleiss' kappa uses them all
    table = np.stack([(r == k).sum(axis=1) for k in (0, 1)], axis=1)
    kappa = fleiss_kappa(table)
    assert got["fleiss_kappa"] == {"value": pytest.approx(kappa, abs=1e-9), "n_items": N_ITEMS,
                                   "ratings_per_item": 3}
    nm = 3 * N_ITEMS  # complete data: alpha is tied to Fleiss' kappa
    assert got["krippendorff_alpha"]["value"] == pytest.approx(1 - (1 - kappa) * (nm - 1) / nm)
    assert got["krippendorff_alpha"]["n_items"] == N_ITEMS
    pairs = {tuple(p["annotators"]): p for p in got["pairs"]}
    for (a, b), pair in pairs.items():
        both = (r[:, names.index(a)] >= 0) & (r[:, names.index(b)] >= 0)
        assert pair["n_items"] == both.sum() > 0
        want = cohen_kappa_score(r[both, names.index(a)], r[both, names.index(b)])
        assert pair["cohen_kappa"] == pytest.approx(want, abs=1e-9)
    assert "classes" not in got or got["classes"] is None
    by_class = c.get("/projects/p/agreement", params={"by": "class"}).json()
    assert [x["class"] for x in by_class["classes"]] == ["neg", "pos"]
    assert c.get("/projects/p/agreement", params={"by": "annotator"}).status_code == 422


def test_annotators_rank_the_careless_one_last_with_a_reason(crowd):
    c, _, answers, times = crowd
    got = c.get("/projects/p/annotators").json()
    assert [a["rank"] for a in got] == list(range(1, len(ANNOTATORS) + 1))
    worst = got[-1]
    assert worst["annotator"] == "sloppy" and worst["below_others"] and worst["reasons"]
    assert [a["annotator"] for a in got if a["below_others"]] == ["sloppy"]
    assert worst["rank_by"] == "quality" and worst["quality"]["value"] is not None
    for a in got:
        assert a["labels"] == a["items"] == sum(1 for (_, w) in answers if w == a["annotator"])
        assert a["median_time_s"] == pytest.approx(float(np.median(times[a["annotator"]])))
        assert a["skips"] == a["flags"] == 0


def test_label_errors_and_export_columns(crowd):
    c, _, _, _ = crowd
    got = c.get("/projects/p/label-errors", params={"limit": 5}).json()
    assert got["round"] == 1 and got["n_ranked"] == N_ITEMS and len(got["items"]) == 5
    scores = [x["label_quality"] for x in got["items"]]
    assert scores == sorted(scores)
    assert all(x["reasons"] and x["label"] in ("neg", "pos") for x in got["items"])
    assert c.get("/projects/p/label-errors", params={"limit": 0}).status_code == 422
    rows = [json.loads(line) for line in c.get("/projects/p/export").text.splitlines()]
    assert len(rows) == N_ITEMS
    for row in rows:
        assert row["n_annotators"] == 3
        assert row["agreement"] in (pytest.approx(2 / 3, abs=1e-5), 1.0)
        assert 0.0 <= row["label_quality"] <= 1.0
        assert row["gold"] is False


def test_gold_marks_are_checked_whole_and_score_annotators(crowd):
    c, _, answers, _ = crowd
    bad = c.post("/projects/p/gold", json={"labels": {"it0": "neg", "it1": "maybe"}})
    assert bad.status_code == 422 and "maybe" in bad.json()["detail"]
    missing = c.post("/projects/p/gold", json={"labels": {"it0": "neg", "nope": "pos"}})
    assert missing.status_code == 404 and "nope" in missing.json()["detail"]
    assert c.post("/projects/p/gold", json={"labels": {"it0": 0}, "unmark": ["it0"]}).status_code == 422
    assert c.post("/projects/p/gold", json={}).status_code == 422
    assert c.get("/projects/p/gold").json() == []  # nothing half-stored
    gold = {f"it{k}": ["neg", "pos"][truth(k)] for k in range(20)}
    r = c.post("/projects/p/gold", json={"labels": gold})
    assert r.status_code == 200 and r.json() == {"gold": 20, "marked": 20, "unmarked": 0}
    assert {g["id"]: g["label"] for g in c.get("/projects/p/gold").json()} == gold
    people = {a["annotator"]: a for a in c.get("/projects/p/annotators").json()}
    for who, person in people.items():
        mine = [(item, label) for (item, w), label in answers.items() if w == who and item in gold]
        right = sum(["neg", "pos"][label] == gold[item] for item, label in mine)
        assert person["gold_accuracy"] == {"value": pytest.approx(right / len(mine)),
                                           "n_items": len(mine)}
    rows = {json.loads(x)["id"]: json.loads(x) for x in c.get("/projects/p/export").text.splitlines()}
    assert all(rows[i]["gold"] and rows[i]["label"] == gold[i] for i in gold)
    r = c.post("/projects/p/gold", json={"unmark": list(gold)[:5]})
    assert r.json() == {"gold": 15, "marked": 0, "unmarked": 5}


def test_cli_quality_prints_agreement_and_annotators(crowd):
    _, srv, _, _ = crowd
    out = subprocess.run([sys.executable, "-m", "api.cli", "quality", "--project", "p",
                          "--data-dir", str(srv.data_dir), "--label-errors", "3"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["agreement"]["n_items"] == N_ITEMS
    assert doc["annotators"][-1]["annotator"] == "sloppy"
    assert len(doc["label_errors"]["items"]) == 3
    bad = subprocess.run([sys.executable, "-m", "api.cli", "quality", "--project", "nope",
                          "--data-dir", str(srv.data_dir)],
                         cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert bad.returncode == 2 and "nope" in bad.stderr
