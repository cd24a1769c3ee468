"""strategies/ is pure: importing it pulls in no service, cluster or storage library."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import strategies

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = ("ray", "fastapi", "starlette", "redis", "sqlite3", "_sqlite3", "sqlalchemy", "uvicorn")


def test_importing_strategies_loads_no_service_library():
    code = (
        "import json, pkgutil, importlib, sys\n"
        "import strategies\n"
        "for m in pkgutil.iter_modules(strategies.__path__):\n"
        "    importlib.import_module('strategies.' + m.name)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         check=True, timeout=60)
    loaded = {m.split(".")[0] for m in json.loads(out.stdout)}
    assert not loaded & set(FORBIDDEN), sorted(loaded & set(FORBIDDEN))


def test_every_module_declares_its_public_surface():
    for path in Path(strategies.__file__).parent.glob("*.py"):
        text = path.read_text()
        assert "__all__" in text, path.name
        assert text.lstrip().startswith('"""'), f"{path.name} needs a module docstring"
