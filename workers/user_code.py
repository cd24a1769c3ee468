"""What the coordinator asks of registered code, as functions a sandbox worker runs.

Loading a source executes it, so registration (names and versions) and the checks before a job
(does every registered source still load?) run here, out of the coordinator, like application.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
from collections.abc import Sequence

from labeling.assertion_runs import AssertionSpec, load_assertions
from labeling.consistency_assertions import ConsistencyAssertion
from labeling.errors import LFLoadError
from labeling.lf import lf_version, load_lfs_from_source
from labeling.user_assertions import assertion_version, load_assertions_from_source
from workers.lf_tasks import LFSpec, load_lfs

__all__ = ["check_assertions", "check_lfs", "describe_assertions", "describe_lfs", "module_source"]

MODULE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:10]


def module_source(module: str) -> str:
    """The Python source of the importable module ``module`` (finding it imports its parent
    packages, so this runs in a worker too)."""
    if not isinstance(module, str) or len(module) > 300 or MODULE.fullmatch(module) is None \
            or module == "__main__":
        raise LFLoadError(f"module must be a dotted Python module name, got {module[:60]!r}")
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError, AttributeError) as exc:
        raise LFLoadError(f"cannot find module {module!r}: {type(exc).__name__}: {exc}") from None
    if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
        raise LFLoadError(f"cannot find a Python source file for module {module!r}")
    try:
        with open(spec.origin, encoding="utf-8") as fh:
            return fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise LFLoadError(f"cannot read the source of module {module!r}: {exc}") from None


def describe_lfs(source: str) -> list[tuple[str, str]]:
    """(name, version) of each LF ``source`` defines, in definition order."""
    return [(lf.name, lf_version(lf))
            for lf in load_lfs_from_source(source, filename=f"<lfs {_digest(source)}>")]


def describe_assertions(source: str) -> list[tuple[str, str, str, str]]:
    """(name, version, kind, text) of each assertion ``source`` defines: kind ``"source"`` with
    the source as text, or ``"consistency"`` with its JSON spec."""
    found = load_assertions_from_source(source, filename=f"<assertions {_digest(source)}>")
    return [(a.name, assertion_version(a), "consistency", a.spec_json())
            if isinstance(a, ConsistencyAssertion)
            else (a.name, assertion_version(a), "source", source) for a in found]


def check_lfs(specs: Sequence[LFSpec]) -> None:
    """Raise ``LFLoadError`` when a registered LF no longer loads."""
    load_lfs(specs)


def check_assertions(specs: Sequence[AssertionSpec]) -> None:
    """Raise ``LFLoadError`` when a registered assertion no longer loads."""
    load_assertions(specs)
