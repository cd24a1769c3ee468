"""Each labeling module imports in a fresh interpreter without Ray, FastAPI, Redis or SQL."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.server import ROOT

FORBIDDEN = ("ray", "fastapi", "starlette", "redis", "sqlite3")
MODULES = sorted(f"labeling.{p.stem}" for p in (Path(ROOT) / "labeling").glob("*.py"))


def test_every_labeling_module_imports_alone_without_frameworks():
    assert {"labeling.ingest", "labeling.lf", "labeling.apply", "labeling.analysis",
            "labeling.label_model", "labeling.features", "labeling.end_model",
            "labeling.metrics", "labeling.export"} <= set(MODULES)
    check = ("import importlib, sys; importlib.import_module(sys.argv[1]);"
             f"bad = [m for m in {FORBIDDEN!r} if m in sys.modules];"
             "print(bad); sys.exit(bool(bad))")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = {m: subprocess.Popen([sys.executable, "-c", check, m], cwd=ROOT, env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for m in MODULES}  # one fresh interpreter per module, run side by side
    failed = {}
    for module, proc in procs.items():
        out, _ = proc.communicate(timeout=120)
        if proc.returncode:
            failed[module] = out.strip()[-500:]
    assert not failed, failed
