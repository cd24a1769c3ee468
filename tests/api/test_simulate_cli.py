"""The simulator and the CLI, run as a user runs them (real subprocesses, real data)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.server import DATASETS, ROOT

YOUTUBE = DATASETS / "wrench_youtube"


def run_cli(*args: str, cwd: Path = ROOT, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "api.cli", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def youtube_entropy(tmp_path_factory):
    if not YOUTUBE.is_dir():
        pytest.fail(f"dataset missing: {YOUTUBE}")
    out = tmp_path_factory.mktemp("sim") / "out.json"
    plot = out.with_suffix(".png")
    proc = run_cli("simulate", "--dataset", str(YOUTUBE), "--strategy", "entropy", "--budget", "200",
                   "--batch-size", "20", "--seed", "0", "--json", str(out), "--plot", str(plot))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(out.read_text()), plot


def test_simulate_reaches_issue_targets_on_youtube(youtube_entropy):
    result, plot = youtube_entropy
    assert result["dataset"] == "wrench_youtube" and result["strategy"] == "entropy"
    assert result["label_model"]["accuracy"] >= 0.82
    assert 0.9 <= result["label_model"]["coverage"] <= 1.0
    curve = result["curve"]
    assert [p["labels"] for p in curve] == list(range(0, 201, 20))
    assert curve[-1]["accuracy"] >= 0.92
    assert plot.stat().st_size > 1000
    ids = result["labeled_ids"]  # in the order they were labeled, each once
    assert len(ids) == len(set(ids)) == 200


def test_the_peer_starts_from_the_loops_first_batch():
    """bench.label_efficiency compares the loop and its peer on the same first batch."""
    from api.service.simulate import load_dataset, simulate
    from bench.label_efficiency import peer

    data = load_dataset(YOUTUBE, seed=0)
    first = simulate(data, strategy="random", budget=20, batch_size=20, seed=0,
                     use_weak=False)["labeled_ids"]
    again = simulate(data, strategy="margin", budget=20, batch_size=20, seed=0,
                     use_weak=False)["labeled_ids"]
    assert len(first) == 20 and again == first  # no model yet: the same draw for every strategy
    gold = {r.id: r.gold for r in data.pool}
    ids = [r.id for r in data.pool]
    # a first batch of one class: the peer's model at 20 labels predicts that class only
    for label in (0, 1):
        batch = [i for i in ids if gold[i] == label][:20]
        curve = peer(data, strategy="random", budget=20, batch_size=20, seed=0, first=batch)["curve"]
        assert curve[1]["accuracy"] == pytest.approx(np.mean([r.gold == label for r in data.test]))


def test_simulate_no_weak_with_init_on_a_csv(tmp_path):
    import csv

    src = DATASETS / "sms_spam_uci" / "SMSSpamCollection"
    rows = [line.split("\t", 1) for line in src.read_text(encoding="utf-8").splitlines()[:800]]
    path = tmp_path / "sms.csv"
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["label", "text"])
        for lab, text in rows:
            w.writerow([1 if lab == "spam" else 0, text])
    out = tmp_path / "r.json"
    proc = run_cli("simulate", "--dataset", str(path), "--strategy", "margin", "--budget", "60",
                   "--batch-size", "20", "--init", "20", "--no-weak", "--seed", "1", "--json", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["weak"] is False and result["label_model"]["kind"] == "none"
    assert [p["labels"] for p in result["curve"]] == [20, 40, 60]
    assert result["curve"][-1]["accuracy"] > 0.85  # spam vs ham with 60 labels


def test_simulate_compares_strategies_over_seeds(tmp_path):
    """Several strategies and seeds in one command: one JSON with every curve, mean and spread,
    the labels each needs to reach random's final accuracy, and one figure."""
    from api.service.simulate_compare import labels_to_reach

    out, plot = tmp_path / "cmp.json", tmp_path / "cmp.png"
    proc = run_cli("simulate", "--dataset", str(YOUTUBE), "--strategy", "random,entropy",
                   "--seeds", "2", "--budget", "40", "--batch-size", "20", "--compare-no-weak",
                   "--workers", "2", "--json", str(out), "--plot", str(plot))
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["strategies"] == ["random", "entropy"] and report["seeds"] == [0, 1]
    summary = report["summary"]
    assert set(summary) == {"random", "entropy", "random/no-weak", "entropy/no-weak"}
    assert len(report["runs"]) == 8
    runs = {(r["strategy"], r["weak"], r["seed"]): r for r in report["runs"]}
    assert len(runs) == 8 and all(r["curve"][0]["labels"] == 0 for r in runs.values())
    target = (runs["random", True, 0]["curve"][-1]["accuracy"]
              + runs["random", True, 1]["curve"][-1]["accuracy"]) / 2
    for name, entry in summary.items():
        strategy, weak = name.split("/")[0], "/" not in name
        assert entry["labels"] == [0, 20, 40] and entry["weak"] is weak
        accs = [[p["accuracy"] for p in runs[strategy, weak, seed]["curve"]] for seed in (0, 1)]
        assert entry["accuracy_mean"] == pytest.approx([(a + b) / 2 for a, b in zip(*accs)],
                                                       abs=1e-4)
        assert all(sd >= 0 for sd in entry["accuracy_std"] + entry["macro_f1_std"])
        reach = entry["labels_to_reach_random"]
        assert reach["target_accuracy"] == pytest.approx(target, abs=1e-4)
        assert reach["per_seed"] == [labels_to_reach(runs[strategy, weak, seed]["curve"], target)
                                     for seed in (0, 1)]
        assert (entry["label_model_accuracy"] is None) is (not weak)
    assert summary["random"]["label_model_accuracy"] >= 0.8
    # the figure: two panels (accuracy, macro-F1) at 150 dpi
    from PIL import Image

    with Image.open(plot) as img:
        assert img.format == "PNG" and img.size == (1650, 660)
    printed = json.loads(proc.stdout)
    assert set(printed["summary"]) == set(summary)


def test_simulate_a_headerless_tsv_with_named_labels():
    """The UCI SMS file as shipped: tab-separated, no header, labels "ham"/"spam"."""
    sms = DATASETS / "sms_spam_uci" / "SMSSpamCollection"
    common = ["--dataset", str(sms), "--format", "csv", "--sep", "\\t", "--columns", "label,text",
              "--strategy", "margin", "--budget", "40", "--batch-size", "20", "--init", "20",
              "--no-weak", "--seed", "1"]
    proc = run_cli("simulate", *common)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    assert [p["labels"] for p in result["curve"]] == [20, 40]
    assert result["curve"][-1]["accuracy"] > 0.85
    flipped = run_cli("simulate", *common, "--classes", "spam,ham")
    assert flipped.returncode == 0, flipped.stderr[-3000:]
    bad = run_cli("simulate", *common, "--classes", "spam,eggs")
    assert bad.returncode == 2 and "label 'ham' is not a class" in bad.stderr


def test_ingest_the_uci_files_as_shipped(tmp_path):
    common = ["--data-dir", str(tmp_path / "data")]
    assert run_cli("create-project", *common, "--id", "s", "--classes", "ham,spam").returncode == 0
    sms = DATASETS / "sms_spam_uci" / "SMSSpamCollection"
    proc = run_cli("ingest", *common, "--project", "s", str(sms), "--format", "csv",
                   "--columns", "label,text")
    assert proc.returncode == 2 and "row 8 and row 104 hold the same content" in proc.stderr
    proc = run_cli("ingest", *common, "--project", "s", str(sms), "--format", "csv",
                   "--sep", "tab", "--no-header", "--text-column", "1", "--label-column", "0",
                   "--duplicates", "first")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout)["inserted"] == 978


def test_simulate_a_wrench_folder_without_train():
    """ChemProt ships valid.json and test.json only: the pool is valid."""
    proc = run_cli("simulate", "--dataset", str(DATASETS / "wrench_chemprot"), "--strategy",
                   "random", "--budget", "20", "--batch-size", "20")
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    assert result["dataset"] == "wrench_chemprot" and [p["labels"] for p in result["curve"]] == [0, 20]
    assert result["label_model"]["accuracy"] is not None


def test_cli_end_to_end_ingest_lfs_round_export(tmp_path):
    data = tmp_path / "data"
    items = tmp_path / "items.jsonl"
    with items.open("w") as fh:
        for k in range(60):
            fh.write(json.dumps({"id": f"r{k}", "text": ("win cash now" if k % 3 == 0 else "see you at lunch") + f" {k}"}) + "\n")
    lfs = tmp_path / "lfs.py"
    lfs.write_text(
        "from snorkel.labeling import labeling_function\n"
        "@labeling_function()\n"
        "def cash(x):\n    return 1 if 'cash' in x.text else -1\n"
        "@labeling_function()\n"
        "def lunch(x):\n    return 0 if 'lunch' in x.text else -1\n"
    )
    common = ["--data-dir", str(data)]
    assert run_cli("create-project", *common, "--id", "sp", "--classes", "ham,spam").returncode == 0
    proc = run_cli("ingest", *common, "--project", "sp", str(items))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["inserted"] == 60
    proc = run_cli("ingest", *common, "--project", "sp", str(items))
    assert proc.returncode == 2 and "already exist" in proc.stderr  # a repeated id is never silent
    assert run_cli("lfs", *common, "--project", "sp", "--file", str(lfs)).returncode == 0
    proc = run_cli("round", *common, "--project", "sp")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["label_model"]["kind"] == "majority"  # < 3 LFs
    out = tmp_path / "labels.csv"
    proc = run_cli("export", *common, "--project", "sp", "--out", str(out), "--min-confidence", "0.5")
    assert proc.returncode == 0, proc.stderr
    text = out.read_text()
    assert "spam" in text and "end_model" in text and len(text.splitlines()) == 61
    # --min-confidence filters rows; --blank-below keeps every row and blanks the unsure labels
    every = tmp_path / "every.jsonl"
    assert run_cli("export", *common, "--project", "sp", "--out", str(every)).returncode == 0
    every_rows = [json.loads(line) for line in every.read_text().splitlines()]
    cut = sorted(r["confidence"] for r in every_rows)[len(every_rows) // 2]  # the median
    sure = tmp_path / "sure.jsonl"
    assert run_cli("export", *common, "--project", "sp", "--out", str(sure),
                   "--min-confidence", str(cut)).returncode == 0
    sure_rows = [json.loads(line) for line in sure.read_text().splitlines()]
    assert 0 < len(sure_rows) < 60
    assert [r["id"] for r in sure_rows] == [r["id"] for r in every_rows if r["confidence"] >= cut]
    blank = tmp_path / "blank.jsonl"
    assert run_cli("export", *common, "--project", "sp", "--out", str(blank),
                   "--blank-below", str(cut)).returncode == 0
    blank_rows = [json.loads(line) for line in blank.read_text().splitlines()]
    assert [r["id"] for r in blank_rows] == [r["id"] for r in every_rows]
    for b, e in zip(blank_rows, every_rows, strict=True):
        if e["confidence"] >= cut:
            assert (b["label"], b["source"]) == (e["label"], e["source"])
        else:
            assert (b["label"], b["source"], b["label_index"]) == (None, "none", -1)
    pseudo = tmp_path / "pseudo.jsonl"
    proc = run_cli("pseudo-label", *common, "--project", "sp", "--out", str(pseudo), "--min-confidence", "0.6")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["executor"] == "inprocess" and "pseudo-label" in proc.stderr
    rows = [json.loads(line) for line in pseudo.read_text().splitlines()]
    assert rows and all(r["confidence"] >= 0.6 and r["source"] != "none" for r in rows)
    assert all(r["model_version"] and r["lf_set_version"] for r in rows)
    # the same job on Ray (a local instance started for it) writes the same rows
    on_ray = tmp_path / "pseudo-ray.jsonl"
    proc = run_cli("pseudo-label", *common, "--executor", "ray", "--project", "sp", "--out",
                   str(on_ray), "--min-confidence", "0.6")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1])["executor"] == "ray"
    assert on_ray.read_text() == pseudo.read_text()


def test_demo_sets_up_and_ranks(tmp_path):
    proc = run_cli("demo", "--data-dir", str(tmp_path / "d"), "--no-serve")
    assert proc.returncode == 0, proc.stderr[-3000:]
    from api.storage.sqlite import SQLiteStore

    store = SQLiteStore(tmp_path / "d" / "labelloop.db")
    try:
        assert store.count_items("youtube-spam") == 1686
        active = [lf.name for lf in store.list_lfs("youtube-spam") if lf.active]
        assert "keyword_my" in active and "short_comment" in active and "textblob_polarity" in active
        rnd = store.latest_round("youtube-spam")
        assert rnd.label_model["kind"] in ("snorkel", "majority")
        assert store.get_array("youtube-spam", "probs").shape == (1686, 2)
    finally:
        store.close()
