"""The labelloop exception tree.

::

    LabelloopError
    ├── InvalidInput (ValueError)      bad data or parameters; names what was wrong
    │   └── SchemaError                a label, class or column that the project does not know
    ├── NotFound (KeyError)            an unknown project, item, lease, LF or job
    ├── Conflict                       a state clash: repeated id, lease not yours or expired,
    │                                  a job of that kind already running
    ├── NotFittedError                 a model or featurizer used before ``fit``
    └── LFLoadError                    LF or assertion source that cannot be loaded
        └── UserCodeFault              registered code over its sandbox limits, or it killed its worker

``api/`` maps these to HTTP status codes in one place; nothing below ``api/`` knows HTTP.
"""

from __future__ import annotations

__all__ = [
    "Conflict",
    "InvalidInput",
    "LFLoadError",
    "LabelloopError",
    "NotFittedError",
    "NotFound",
    "SchemaError",
    "StaleToken",
    "UserCodeFault",
]


class LabelloopError(Exception):
    """Base class of every error labelloop raises on purpose."""


class InvalidInput(LabelloopError, ValueError):
    """Input data or a parameter is malformed; the message names it."""


class SchemaError(InvalidInput):
    """A class index or name, or a column, that the project's schema does not have."""


class NotFound(LabelloopError, KeyError):
    """A project, item, lease, labeling function or job that does not exist."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else "not found"


class Conflict(LabelloopError):
    """The request clashes with the current state (repeated id, foreign or expired lease...)."""


class StaleToken(Conflict):
    """A write fenced by a lock token that is no longer the lock's latest: its holder lost the
    lock (it stalled past the expiry and another holder took over)."""


class NotFittedError(LabelloopError, AttributeError):
    """A fitted-only method was called before ``fit``."""


class LFLoadError(LabelloopError):
    """Labeling-function or assertion source could not be loaded."""


class UserCodeFault(LFLoadError):
    """Registered code (an LF or assertion) ran past its limits or killed the worker process
    running it; the message says which limit."""
