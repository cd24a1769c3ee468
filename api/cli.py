"""The ``labelloop`` command line: serve, demo, projects, ingest, LFs, rounds, jobs, export,
quality, gold, simulate.

Commands other than ``serve`` and ``demo`` work on the store directly (the same data directory or
store URL the server uses), so they also run with no server up. Everything past argument parsing
is imported inside the command that needs it, so ``--help`` and light commands start fast.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from labeling.errors import LabelloopError

if TYPE_CHECKING:
    from api.settings import Settings
    from labeling.ingest import Delimited

log = logging.getLogger(__name__)

__all__ = ["main"]


def _settings(args: argparse.Namespace) -> Settings:
    from api.settings import Settings

    s = Settings.from_env()
    if args.command != "serve" and "LABELLOOP_EXECUTOR" not in os.environ:
        s = s.with_(executor="inprocess")  # one-shot commands: no Ray start-up unless asked
    for name in ("data_dir", "store_url", "host", "port", "executor"):
        value = getattr(args, name, None)
        if value is not None:
            s = s.with_(**{name: Path(value) if name == "data_dir" else value})
    return s


def _services(args: argparse.Namespace):
    from api.service.services import build_services

    return build_services(_settings(args))


def _progress_bar(desc: str):
    from tqdm import tqdm

    bar = tqdm(desc=desc, unit="step", file=sys.stderr, leave=False)

    def update(done: int, total: int, stage: str = "") -> None:
        bar.total = total
        bar.n = done
        bar.set_postfix_str(stage)
        bar.refresh()

    return bar, update


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from api.app import SERVER_OPTIONS, create_app

    settings = _settings(args)
    if settings.host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("serving on %s: anyone who can reach it can label and run LFs", settings.host)
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info",
                **SERVER_OPTIONS)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from demo import setup_demo

    settings = _settings(args)
    services = _services(args)
    try:
        bar, update = _progress_bar("demo: first round")
        project = setup_demo(services, progress=update)
        bar.close()
    finally:
        services.close()
    base = f"http://{settings.host}:{settings.port}"
    print(f"demo project {project!r} is ready. Label it in a browser: {base}/ (no token on this "
          f"local server: sign in with a name, then keys 1/2 for HAM/SPAM); its dashboard: "
          f"{base}/#/projects/{project}; the API: {base}/docs", file=sys.stderr)
    print(
        f"  lease a batch:  curl -s -X POST {base}/projects/{project}/leases "
        "-H 'content-type: application/json' -d '{\"annotator\": \"me\", \"size\": 5}'",
        file=sys.stderr,
    )
    if args.no_serve:
        return 0
    return cmd_serve(args)


def cmd_create_project(args: argparse.Namespace) -> int:
    from api.service.projects import create_project

    services = _services(args)
    try:
        settings = json.loads(args.settings) if args.settings else {}
        p = create_project(services.store, args.id, args.classes.split(","),
                           guidelines=args.guidelines or "", settings=settings, now=time.time())
        print(json.dumps({"id": p.id, "classes": p.class_names, "settings": asdict(p.settings)}))
    finally:
        services.close()
    return 0


def _separator(value: str) -> str:
    """``--sep`` as typed: "\\t" or "tab" mean a tab."""
    return "\t" if value in ("\\t", "tab", "TAB") else value


def _layout(args: argparse.Namespace) -> Delimited:
    from labeling.ingest import Delimited

    columns = args.columns.split(",") if args.columns else None
    return Delimited(sep=_separator(args.sep) if args.sep else None,
                     header=not (args.no_header or columns), columns=columns)


def cmd_ingest(args: argparse.Namespace) -> int:
    import numpy as np

    from api.service.ingest import ingest_file

    services = _services(args)
    try:
        columns = {"text_column": args.text_column, "label_column": args.label_column,
                   "id_column": args.id_column}
        if args.vote_columns:
            columns["vote_columns"] = args.vote_columns.split(",")
        if args.feature_columns:
            columns["feature_columns"] = args.feature_columns.split(",")
        report = ingest_file(services.store, args.project, args.path, fmt=args.format,
                             on_conflict=args.on_conflict, rng=np.random.default_rng(args.seed),
                             now=time.time(), progress=True, layout=_layout(args),
                             duplicates=args.duplicates, **columns)
        print(json.dumps(report.__dict__))
    finally:
        services.close()
    return 0


def cmd_lfs(args: argparse.Namespace) -> int:
    from api.service.lfs import register_and_check

    services = _services(args)
    try:
        source = Path(args.file).read_text(encoding="utf-8") if args.file else None
        records, checks = register_and_check(services.store, args.project, services.executor,
                                             source=source, module=args.module, now=time.time())
        for name, found in checks.items():
            for c in found:
                print(f"labelloop: {c['level']}: LF {name!r} {c['message']}", file=sys.stderr)
        print(json.dumps([{"name": r.name, "version": r.version, "checks": checks.get(r.name, [])}
                          for r in records]))
    finally:
        services.close()
    return 0


def cmd_assertions(args: argparse.Namespace) -> int:
    """Register model assertions (a file, a module or a consistency spec), or list them with
    their firing counts in the latest round."""
    from api.service.assertions import assertion_status, register_assertions

    services = _services(args)
    try:
        if args.file or args.module or args.consistency:
            register_assertions(
                services.store, args.project, now=time.time(), module=args.module,
                source=Path(args.file).read_text(encoding="utf-8") if args.file else None,
                consistency=json.loads(args.consistency) if args.consistency else None)
        for a in assertion_status(services.store, args.project):
            latest = a["latest"] or {}
            print(json.dumps({"name": a["name"], "version": a["version"], "kind": a["kind"],
                              "active": a["active"], "round": latest.get("round"),
                              "items": latest.get("items"), "clusters": latest.get("clusters"),
                              "weak_votes": latest.get("weak_votes"), "fault": latest.get("fault")}))
    except json.JSONDecodeError as exc:
        print(f"labelloop: error: --consistency is not JSON: {exc}", file=sys.stderr)
        return 2
    finally:
        services.close()
    return 0


def cmd_round(args: argparse.Namespace) -> int:
    from api.service.rounds import run_round

    services = _services(args)
    try:
        bar, update = _progress_bar("round")
        rnd, _ = run_round(services.store, args.project, services.executor, now=time.time(),
                           progress=update)
        bar.close()
        print(json.dumps({"round": rnd.number, "model_version": rnd.model_version,
                          "metrics": rnd.metrics, "label_model": rnd.label_model}, default=str))
    finally:
        services.close()
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from api.service.export import export_file

    services = _services(args)
    try:
        n = export_file(services.store, args.project, args.out, fmt=args.format,
                        min_confidence=args.min_confidence, blank_below=args.blank_below,
                        prefer=args.prefer)
        print(json.dumps({"rows": n, "path": str(args.out)}))
    finally:
        services.close()
    return 0


def cmd_pseudo_label(args: argparse.Namespace) -> int:
    """Labels for every item the models are confident about, with provenance; items below the
    threshold are left out (``export --blank-below`` keeps them, with source "none")."""
    from tqdm import tqdm

    from api.service.export import SOURCES, export_file

    services = _services(args)
    try:
        bar = tqdm(desc="pseudo-label", unit="item", file=sys.stderr)

        def update(done: int, total: int) -> None:
            bar.total, bar.n = total, done
            bar.refresh()

        n = export_file(services.store, args.project, args.out, fmt=args.format,
                        min_confidence=args.min_confidence, prefer=args.prefer,
                        sources=tuple(s for s in SOURCES if s != "none"),
                        executor=services.executor, progress=update)
        bar.close()
        print(json.dumps({"rows": n, "path": str(args.out), "min_confidence": args.min_confidence,
                          "executor": services.executor.name}))
    finally:
        services.close()
    return 0


def cmd_quality(args: argparse.Namespace) -> int:
    """Agreement and per-annotator figures of a project, as one JSON object; with
    ``--label-errors N`` also the latest round's N labels most likely wrong."""
    from api.service import quality

    services = _services(args)
    try:
        out = {"agreement": quality.agreement(services.store, args.project, by_class=args.by_class,
                                              by_version=args.by_version),
               "annotators": quality.annotators(services.store, args.project)}
        if args.label_errors:
            out["label_errors"] = quality.label_errors(services.store, args.project,
                                                       limit=args.label_errors)
        print(json.dumps(out, indent=2))
    finally:
        services.close()
    return 0


def cmd_gold(args: argparse.Namespace) -> int:
    """Mark gold items: from a JSONL file of {"id", "label"} rows, from the labels the items'
    file carried (``--from-file``, optionally ``--ids``), or unmark them; or list them."""
    from api.service.gold import list_gold, mark_gold
    from labeling.errors import InvalidInput

    services = _services(args)
    try:
        labels = {}
        if args.labels:
            for n, line in enumerate(Path(args.labels).read_text(encoding="utf-8").splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                    labels[str(row["id"])] = row["label"]
                except (json.JSONDecodeError, KeyError, TypeError) as exc:
                    raise InvalidInput(f"{args.labels} line {n}: need a JSON object with id and "
                                       f"label ({exc})") from exc
        if labels or args.from_file or args.unmark:
            print(json.dumps(mark_gold(
                services.store, args.project, labels=labels, from_file=args.from_file,
                ids=args.ids.split(",") if args.ids else None,
                unmark=args.unmark.split(",") if args.unmark else (), now=time.time(),
                owner=f"cli-{os.getpid()}")))
        else:
            for row in list_gold(services.store, args.project):
                print(json.dumps(row))
    finally:
        services.close()
    return 0


def _job_line(job) -> str:
    return json.dumps(asdict(job), default=str)


def cmd_jobs(args: argparse.Namespace) -> int:
    """List, show, follow (with a progress bar) and cancel background jobs. They run in
    ``labelloop serve`` (any replica); this reads and writes the store they share."""
    from tqdm import tqdm

    from api.service.jobs import request_cancel
    from api.storage import open_store
    from api.storage.records import ACTIVE_JOB_STATES

    settings = _settings(args)
    store = open_store(settings.resolved_store_url)
    try:
        if args.action == "list":
            for job in store.list_jobs(args.project):
                print(_job_line(job))
            return 0
        if args.action == "cancel":
            print(_job_line(request_cancel(store, args.job)))
            return 0
        job = store.get_job(args.job)
        if args.action == "watch":
            bar = tqdm(desc=f"{job.kind} {job.id}", unit="step", file=sys.stderr)
            while True:
                bar.total = job.total or None
                bar.n = job.done
                bar.set_postfix_str(job.status if not job.message else f"{job.status}: {job.message}")
                bar.refresh()
                if job.status not in ACTIVE_JOB_STATES:
                    break
                time.sleep(args.interval)
                job = store.get_job(args.job)
            bar.close()
        print(_job_line(job))
        return 0 if args.action == "show" or job.status == "succeeded" else 1
    finally:
        store.close()


def cmd_simulate(args: argparse.Namespace) -> int:
    """One strategy and seed: the learning curve (as before). Several strategies (``a,b,c``) or
    ``--seeds N``: every strategy on every seed, compared (:mod:`api.service.simulate_compare`)."""
    from tqdm import tqdm

    from api.service.simulate import load_dataset, simulate

    extra = {}
    for name in ("text_column", "id_column", "format"):
        if getattr(args, name):
            extra["fmt" if name == "format" else name] = getattr(args, name)
    data = load_dataset(args.dataset, label_column=args.label_column,
                        test_fraction=args.test_fraction, seed=args.seed,
                        class_names=args.classes.split(",") if args.classes else None,
                        layout=_layout(args), duplicates=args.duplicates, **extra)
    params = json.loads(args.params) if args.params else None
    strategies = [s.strip() for s in args.strategy.split(",") if s.strip()]
    if len(strategies) > 1 or args.seeds or args.compare_no_weak:
        return _simulate_compare(args, data, strategies, params)
    bar = tqdm(total=args.budget, desc=f"simulate {args.strategy}", unit="label", file=sys.stderr)

    def update(done: int, total: int) -> None:
        bar.n = done
        bar.refresh()

    result = simulate(data, strategy=args.strategy, budget=args.budget, batch_size=args.batch_size,
                      seed=args.seed, init=args.init, use_weak=not args.no_weak,
                      strategy_params=params, eval_fraction=args.eval_fraction, progress=update)
    bar.close()
    text = json.dumps(result, indent=2)
    if args.json:
        Path(args.json).write_text(text + "\n", encoding="utf-8")
    print(text)
    if args.plot:
        from api.service.plots import plot_curves

        plot_curves([result], args.plot)
    return 0


def _simulate_compare(args: argparse.Namespace, data, strategies: list[str], params) -> int:
    from tqdm import tqdm

    from api.service.plots import plot_comparison
    from api.service.simulate_compare import compare

    seeds = list(range(args.seed, args.seed + (args.seeds or 1)))
    bar = tqdm(desc=f"simulate {','.join(strategies)} x {len(seeds)} seeds", unit="run",
               file=sys.stderr)

    def update(done: int, total: int) -> None:
        bar.total, bar.n = total, done
        bar.refresh()

    report = compare(data, strategies=strategies, seeds=seeds, budget=args.budget,
                     batch_size=args.batch_size, init=args.init, use_weak=not args.no_weak,
                     compare_no_weak=args.compare_no_weak, strategy_params=params,
                     eval_fraction=args.eval_fraction, workers=args.workers, progress=update)
    bar.close()
    text = json.dumps(report, indent=2)
    if args.json:
        Path(args.json).write_text(text + "\n", encoding="utf-8")
    print(json.dumps({"dataset": report["dataset"], "summary": {
        name: {"accuracy_at_budget": e["accuracy_mean"][-1],
               "labels_to_reach_random": e["labels_to_reach_random"]}
        for name, e in report["summary"].items()}}, indent=2))
    if args.plot:
        plot_comparison(report, args.plot)
    return 0


def _delimited_opts(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--sep", help="field separator of a delimited file (\\t or tab for a tab); "
                    "default: sniffed, a tab for .tsv")
    sp.add_argument("--no-header", action="store_true",
                    help="the file has no header row: columns are named by --columns, else 0, 1, ...")
    sp.add_argument("--columns", help="comma-separated names of a headerless file's columns, "
                    "e.g. label,text (implies --no-header)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="labelloop", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    def store_opts(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--data-dir", dest="data_dir", help="data directory (default ./data)")
        sp.add_argument("--store", dest="store_url", help="sqlite:///path.db or redis://host:port/0")
        sp.add_argument("--executor", choices=["inprocess", "ray"])

    sp = sub.add_parser("serve", help="run the HTTP coordinator")
    store_opts(sp)
    sp.add_argument("--host")
    sp.add_argument("--port", type=int)
    sp.set_defaults(fn=cmd_serve)

    sp = sub.add_parser("demo", help="create the bundled YouTube-spam project and serve it")
    store_opts(sp)
    sp.add_argument("--host")
    sp.add_argument("--port", type=int)
    sp.add_argument("--no-serve", action="store_true", help="set the project up and exit")
    sp.set_defaults(fn=cmd_demo)

    sp = sub.add_parser("create-project", help="create a project")
    store_opts(sp)
    sp.add_argument("--id", required=True)
    sp.add_argument("--classes", required=True, help="comma-separated class names, in index order")
    sp.add_argument("--guidelines")
    sp.add_argument("--settings", help="JSON object of project settings")
    sp.set_defaults(fn=cmd_create_project)

    sp = sub.add_parser("ingest", help="add items from JSONL, CSV, Parquet or a WRENCH split")
    store_opts(sp)
    sp.add_argument("--project", required=True)
    sp.add_argument("path")
    sp.add_argument("--format", choices=["jsonl", "csv", "parquet", "wrench"])
    sp.add_argument("--on-conflict", choices=["reject", "upsert"], default="reject",
                    help="an id the project already has: refuse the file, or replace the item")
    sp.add_argument("--duplicates", choices=["reject", "first", "last"], default="reject",
                    help="an id repeated inside the file: refuse the file, or keep the first or last row")
    _delimited_opts(sp)
    sp.add_argument("--text-column", default="text")
    sp.add_argument("--label-column", default="label")
    sp.add_argument("--id-column", default="id")
    sp.add_argument("--vote-columns", help="comma-separated columns of precomputed LF votes")
    sp.add_argument("--feature-columns", help="comma-separated numeric feature columns")
    sp.add_argument("--seed", type=int, default=0, help="seed of the evaluation-slice draw")
    sp.set_defaults(fn=cmd_ingest)

    sp = sub.add_parser("lfs", help="register labeling functions from a Python file or module")
    store_opts(sp)
    sp.add_argument("--project", required=True)
    group = sp.add_mutually_exclusive_group(required=True)
    group.add_argument("--file")
    group.add_argument("--module")
    sp.set_defaults(fn=cmd_lfs)

    sp = sub.add_parser("assertions", help="register model assertions, or list them with firing counts")
    store_opts(sp)
    sp.add_argument("--project", required=True)
    group = sp.add_mutually_exclusive_group()
    group.add_argument("--file", help="Python file defining @assertion functions")
    group.add_argument("--module", help="importable module defining them")
    group.add_argument("--consistency", help='JSON spec, e.g. {"name": "track", "id_column": "track_id"}')
    sp.set_defaults(fn=cmd_assertions)

    sp = sub.add_parser("round", help="run a retrain round now (apply LFs, fit, score, queue)")
    store_opts(sp)
    sp.add_argument("--project", required=True)
    sp.set_defaults(fn=cmd_round)

    sp = sub.add_parser("export", help="export every item with label, source and confidence")
    store_opts(sp)
    sp.add_argument("--project", required=True)
    sp.add_argument("--out", required=True)
    sp.add_argument("--format", choices=["jsonl", "csv", "parquet"])
    sp.add_argument("--min-confidence", type=float, default=0.0,
                    help="leave out rows whose confidence is below this")
    sp.add_argument("--blank-below", type=float, default=0.0,
                    help="keep every row, and blank the labels whose confidence is below this")
    sp.add_argument("--prefer", choices=["end_model", "label_model"], default="end_model")
    sp.set_defaults(fn=cmd_export)

    sp = sub.add_parser("pseudo-label", help="confident labels with provenance (source, versions)")
    store_opts(sp)
    sp.add_argument("--project", required=True)
    sp.add_argument("--out", required=True, help="a .parquet or .jsonl file")
    sp.add_argument("--format", choices=["jsonl", "csv", "parquet"])
    sp.add_argument("--min-confidence", type=float, default=0.9)
    sp.add_argument("--prefer", choices=["end_model", "label_model"], default="end_model")
    sp.set_defaults(fn=cmd_pseudo_label)

    sp = sub.add_parser("quality", help="agreement and per-annotator quality of a project (JSON)")
    store_opts(sp)
    sp.add_argument("--project", required=True)
    sp.add_argument("--by-class", action="store_true", help="agreement per class, one vs rest")
    sp.add_argument("--by-version", action="store_true",
                    help="agreement over the answers given under each guidelines version")
    sp.add_argument("--label-errors", type=int, metavar="N",
                    help="also the latest round's N labels most likely wrong")
    sp.set_defaults(fn=cmd_quality)

    sp = sub.add_parser("gold", help="mark gold (honeypot) items, unmark them, or list them")
    store_opts(sp)
    sp.add_argument("--project", required=True)
    sp.add_argument("--labels", help='JSONL file of {"id": ..., "label": class name or index}')
    sp.add_argument("--from-file", action="store_true",
                    help="use the labels the items' own file carried")
    sp.add_argument("--ids", help="with --from-file: only these comma-separated item ids")
    sp.add_argument("--unmark", help="comma-separated item ids to make ordinary again")
    sp.set_defaults(fn=cmd_gold)

    sp = sub.add_parser("jobs", help="list, show, watch (progress bar) or cancel background jobs")
    jobs = sp.add_subparsers(dest="action", required=True)
    jp = jobs.add_parser("list", help="a project's jobs, one JSON line each")
    jp.add_argument("--project", required=True)
    store_opts(jp)
    for action, text in (("show", "one job as JSON"),
                         ("watch", "follow a job with a progress bar until it ends (exit 1 unless it succeeded)"),
                         ("cancel", "ask the replica running the job to stop it")):
        jp = jobs.add_parser(action, help=text)
        jp.add_argument("job")
        store_opts(jp)
    jobs.choices["watch"].add_argument("--interval", type=float, default=0.5, help="seconds between polls")
    sp.set_defaults(fn=cmd_jobs)

    sp = sub.add_parser("simulate", help="run the loop with an oracle annotator from gold labels")
    sp.add_argument("--dataset", required=True, help="WRENCH folder, or CSV/TSV/JSONL/Parquet file")
    sp.add_argument("--strategy", required=True,
                    help="a strategy, or several (random,entropy,bal) to compare them")
    sp.add_argument("--seeds", type=int,
                    help="run each strategy on this many seeds (--seed, --seed+1, ...) and compare")
    sp.add_argument("--compare-no-weak", action="store_true",
                    help="with several strategies or seeds: also run each without LFs")
    sp.add_argument("--workers", type=int, help="parallel runs when comparing (default: cores)")
    sp.add_argument("--budget", type=int, required=True)
    sp.add_argument("--batch-size", type=int, required=True)
    sp.add_argument("--seed", type=int, default=0)
    sp.add_argument("--init", type=int, default=0, help="random seed labels before the loop")
    sp.add_argument("--no-weak", action="store_true", help="ignore labeling functions")
    sp.add_argument("--label-column", default="label")
    sp.add_argument("--classes", help="comma-separated class names in index order "
                    "(default: the label column's values, sorted)")
    sp.add_argument("--text-column")
    sp.add_argument("--id-column")
    sp.add_argument("--format", choices=["jsonl", "csv", "parquet"])
    sp.add_argument("--duplicates", choices=["reject", "first", "last"],
                    help="an id repeated in the file (default: every row is its own sample)")
    _delimited_opts(sp)
    sp.add_argument("--test-fraction", type=float, default=0.3)
    sp.add_argument("--params", help="JSON object of strategy parameters")
    sp.add_argument("--eval-fraction", type=float,
                    help="evaluation slice of the pool, labeled within the budget (default 0; 0.1 for auto)")
    sp.add_argument("--json", help="write the result JSON here")
    sp.add_argument("--plot", help="write a learning-curve PNG here (comparing: accuracy and "
                    "macro-F1, mean and spread per strategy)")
    sp.set_defaults(fn=cmd_simulate)
    return p


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return args.fn(args)
    except LabelloopError as exc:
        print(f"labelloop: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
