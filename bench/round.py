"""A full round on a large text pool: one LF changed, incremental LF application, label-model fit,
end-model training, pool scoring and queue refresh, through the same service code a
``labelloop serve`` job runs.

    python -m bench.round --items 1000000 --json

The pool is synthetic text (real YouTube comments from the bundled demo data, drawn with
replacement and numbered; say so when quoting) in a SQLite store with ten keyword batch LFs. A
first process ingests the pool, runs the first round (every LF on every item) and submits
``--labels`` human labels from the queue. A second, fresh process changes one LF and runs the round
under test, so its peak resident memory (``ru_maxrss``) is the round's own. Reported: seconds per
stage and in all, peak memory, and how many (item, LF) votes the round computed against the
pool x LFs a full re-application would compute. There is no baseline to divide by: this measures
labelloop's own round (``rows_reapplied_share`` is the incremental saving).
"""

from __future__ import annotations

import argparse
import itertools
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

KEYWORDS = [("my", 1), ("subscribe", 1), ("http", 1), ("please", 1), ("song", 0), ("check", 1),
            ("love", 0), ("channel", 1), ("video", 0), ("free", 1)]


def lf_source(changed: bool = False) -> str:
    """Ten keyword batch LFs; ``changed`` rewrites the last one (a new version of one LF)."""
    out = "import numpy as np\nfrom labeling.lf import batch_lf\n"
    for i, (word, label) in enumerate(KEYWORDS):
        words = [word, "gift"] if changed and i == len(KEYWORDS) - 1 else [word]
        pattern = "|".join(words)
        out += (f"\n@batch_lf(name='kw_{word}')\ndef kw_{word}(frame):\n"
                f"    hit = frame.text.str.lower().str.contains({pattern!r}, regex=True)\n"
                f"    return np.where(hit, {label}, -1)\n")
    return out


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def setup(db: str, items: int, labels: int) -> dict:
    from api.service.annotate import AnnotationIn, lease_batch, submit_annotations
    from api.service.ingest import ingest_records
    from api.service.lfs import register_lfs
    from api.service.projects import create_project
    from api.service.rounds import run_round
    from api.storage.sqlite import SQLiteStore
    from demo import DATA
    from labeling.ingest import Record, read_wrench
    from workers.executor import InProcessExecutor

    texts = [r.text for r in read_wrench(DATA).splits["train"]]
    gold = {t: r.gold for r in read_wrench(DATA).splits["train"] for t in [r.text]}
    rng = np.random.default_rng(0)
    picks = rng.integers(0, len(texts), items)
    store = SQLiteStore(Path(db))
    create_project(store, "p", ["ham", "spam"],
                   settings={"strategy": "entropy", "queue_size": 1000, "batch_size": 50,
                             "lease_ttl_s": 3600, "eval_fraction": 0.0}, now=0.0)
    t0 = time.perf_counter()
    ingest_records(store, "p", (Record(f"i{i}", f"{texts[j]} #{i}") for i, j in enumerate(picks)),
                   rng=rng, now=0.0)
    t_ingest = time.perf_counter() - t0
    register_lfs(store, "p", source=lf_source(), now=1.0)
    t0 = time.perf_counter()
    run_round(store, "p", InProcessExecutor(), now=2.0)
    t_first = time.perf_counter() - t0
    done = 0
    while done < labels:
        lease = lease_batch(store, "p", "bench", min(50, labels - done), now=3.0, rng=rng)
        if not lease.items:
            break
        text_of = {li.item.id: li.item.text.rsplit(" #", 1)[0] for li in lease.items}
        submit_annotations(store, "p", "bench", [
            AnnotationIn(li.item.id, lease.id, "label", int(gold[text_of[li.item.id]]))
            for li in lease.items], now=4.0)
        done += len(lease.items)
    store.close()
    return {"ingest_s": t_ingest, "first_round_s": t_first, "labels": done, "peak_mb": _peak_mb()}


def changed_round(db: str, executor: str) -> dict:
    from api.service.lfs import register_lfs
    from api.service.rounds import run_round
    from api.storage.sqlite import SQLiteStore
    from workers.executor import make_executor

    start_mb = _peak_mb()
    store = SQLiteStore(Path(db))
    changed = register_lfs(store, "p", source=lf_source(changed=True), now=5.0)
    stages: dict[str, float] = {}
    marks: list[tuple[str, float]] = []

    def progress(done: int, total: int, stage: str) -> None:
        if stage != marks[-1][0]:
            marks.append((stage, time.perf_counter()))

    exe = make_executor(executor, num_cpus=2)
    t0 = time.perf_counter()
    marks.append(("load pool", t0))
    rnd, out = run_round(store, "p", exe, now=6.0, progress=progress)
    seconds = time.perf_counter() - t0
    marks.append(("end", time.perf_counter()))
    for (stage, t), (_, t_next) in itertools.pairwise(marks):
        stages[stage] = round(stages.get(stage, 0.0) + t_next - t, 2)
    lfs = rnd.label_model["lfs"]
    items = rnd.metrics["n_items"]
    store.close()
    exe.shutdown()
    return {"seconds": seconds, "stages": stages, "peak_mb": _peak_mb(), "start_mb": start_mb,
            "lfs": len(lfs), "lfs_changed": len(changed) and 1, "items": items,
            "queue": len(out.queue), "label_model": rnd.label_model.get("kind"),
            "n_train": rnd.metrics.get("n_train")}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--items", type=int, default=1_000_000)
    p.add_argument("--labels", type=int, default=500)
    p.add_argument("--executor", default="inprocess", choices=["inprocess", "ray"])
    p.add_argument("--json", action="store_true")
    p.add_argument("--step", choices=["setup", "round"], help=argparse.SUPPRESS)
    p.add_argument("--db", help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.step == "setup":
        print(json.dumps(setup(args.db, args.items, args.labels)))
        return 0
    if args.step == "round":
        print(json.dumps(changed_round(args.db, args.executor)))
        return 0

    def child(step: str) -> dict:
        print(f"{step} ({args.items} items) ...", file=sys.stderr)
        proc = subprocess.run(
            [sys.executable, "-m", "bench.round", "--step", step, "--db", db, "--items",
             str(args.items), "--labels", str(args.labels), "--executor", args.executor],
            capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            print(proc.stderr, file=sys.stderr)
            raise SystemExit(f"step {step} failed with exit code {proc.returncode}")
        return json.loads(proc.stdout.strip().splitlines()[-1])

    with tempfile.TemporaryDirectory() as tmp:
        db = str(Path(tmp) / "round.db")
        prep = child("setup")
        rnd = child("round")
    result = {
        "benchmark": "round", "items": args.items, "executor": args.executor,
        "text": "synthetic (YouTube comments drawn with replacement, numbered)",
        "round_s": round(rnd["seconds"], 2), "stages_s": rnd["stages"],
        "peak_mb": round(rnd["peak_mb"]), "process_start_mb": round(rnd["start_mb"]),
        "lfs": rnd["lfs"], "label_model": rnd["label_model"], "queue": rnd["queue"],
        "n_train": rnd["n_train"], "human_labels": prep["labels"],
        "setup": {"ingest_s": round(prep["ingest_s"], 2), "first_round_s": round(prep["first_round_s"], 2),
                  "peak_mb": round(prep["peak_mb"])},
    }
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
