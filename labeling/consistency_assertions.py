"""Consistency assertions: items that share an identifier should agree on some attributes.

``consistency_assertion("track", id_column="track_id", attributes=["label"])`` groups the items by
their ``track_id``; a group whose members disagree fires for every member (cluster granularity)
with severity ``1 - majority share`` (the share of the group disagreeing with its majority; the
largest over the attributes). The attribute ``label`` is the end model's predicted class; any
other attribute is an item column (a feature or metadata key).

With ``time_column`` and ``window``, items of one identifier are sorted by time and cut into
windows: a group starts at its earliest item and takes the following ones up to ``window`` later
(same unit as the column: numbers as they are, timestamps in seconds); the next item starts a new
group. A group's span is so bounded by ``window``, and the rule does not depend on input order
(the public OMG library assumed rows already sorted by time; this sorts).

With ``max_transitions`` as well, a window fires on changes over time rather than on disagreement:
walking its members in time order, each change of an attribute's value is a transition, and a
window with more than ``max_transitions`` of them fires with severity = the transitions above
the allowance. ``max_transitions=1`` lets a class change once (A -> B) and catches a flicker
(A -> B -> A), the temporal rule of the model-assertions paper.

Weak labels (when ``label`` is an attribute): members of a group whose predictions disagree get
the group's majority prediction; ties, singleton groups and consistent groups abstain (a
consistent group would only echo the model's own prediction back to it). They join the label
model as one more labeling function in the next round.

An assertion is a declarative spec (no code), so it can be registered over HTTP as JSON.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from labeling.assertion_types import AssertionBatch, Firing
from labeling.errors import InvalidInput

__all__ = ["PREDICTION", "ConsistencyAssertion", "consistency_assertion"]

PREDICTION = "label"  # the attribute name that means "the model's predicted class"
NAME = re.compile(r"[A-Za-z0-9_.:-]{1,100}")  # matched whole (fullmatch)
SPEC_KEYS = ("name", "id_column", "attributes", "time_column", "window", "max_transitions")


@dataclass(frozen=True)
class ConsistencyAssertion:
    """A validated spec; build it with :func:`consistency_assertion` or :meth:`from_spec`."""

    name: str
    id_column: str
    attributes: tuple[str, ...]
    time_column: str | None = None
    window: float | None = None
    max_transitions: int | None = None

    granularity = "cluster"

    @property
    def model_dependent(self) -> bool:
        """Only the predicted class changes with retraining; column attributes never do."""
        return PREDICTION in self.attributes

    def spec(self) -> dict[str, Any]:
        spec = {"name": self.name, "id_column": self.id_column, "attributes": list(self.attributes),
                "time_column": self.time_column, "window": self.window}
        if self.max_transitions is not None:  # absent otherwise: earlier specs keep their version
            spec["max_transitions"] = self.max_transitions
        return spec

    def spec_json(self) -> str:
        return json.dumps(self.spec(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> ConsistencyAssertion:
        """Validate a JSON-style spec; unknown keys are refused by name."""
        if not isinstance(spec, Mapping):
            raise InvalidInput(f"a consistency spec must be an object, got {type(spec).__name__}")
        unknown = sorted(set(spec) - set(SPEC_KEYS))
        if unknown:
            raise InvalidInput(f"consistency spec: unknown keys {unknown}; allowed: {list(SPEC_KEYS)}")
        for key in ("name", "id_column"):
            if key not in spec:
                raise InvalidInput(f"consistency spec: {key!r} is required")
        return consistency_assertion(
            spec["name"], id_column=spec["id_column"], attributes=spec.get("attributes", [PREDICTION]),
            time_column=spec.get("time_column"), window=spec.get("window"),
            max_transitions=spec.get("max_transitions"),
        )

    def missing_columns(self, columns: Iterable[str]) -> list[str]:
        """The columns this spec reads that ``columns`` lacks."""
        have = set(columns)
        wanted = [self.id_column, *(a for a in self.attributes if a != PREDICTION)]
        if self.time_column is not None:
            wanted.append(self.time_column)
        return [c for c in wanted if c not in have]

    def __call__(self, batch: AssertionBatch) -> Firing:
        frame = batch.frame
        missing = self.missing_columns(frame.columns)
        if missing:
            raise InvalidInput(f"consistency assertion {self.name!r}: the items have no column "
                               f"{missing[0]!r} (columns: {sorted(map(str, frame.columns))})")
        groups, in_time = self._groups(frame)
        severity = np.zeros(len(frame), dtype=np.float64)
        weak = None
        for attr in self.attributes:
            if attr == PREDICTION:
                codes, size = np.asarray(batch.preds, dtype=np.int64), len(batch.class_names)
            else:
                codes, uniques = pd.factorize(frame[attr], use_na_sentinel=True)
                size = max(len(uniques), 1)
            share, majority = _majority(groups, codes, size)
            if self.max_transitions is None:
                sev = np.where(share > 0, 1.0 - share, 0.0)
            else:
                sev = _extra_transitions(groups, codes, in_time, self.max_transitions)
            severity = np.maximum(severity, sev)
            if attr == PREDICTION:
                weak = np.where((sev > 0) & (majority >= 0), majority, -1).astype(np.int64)
        clusters = np.unique(groups[severity > 0])
        return Firing(clusters=_clusters(groups, severity, clusters), weak_labels=weak)

    def _groups(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray | None]:
        """(n,) group number per item, -1 for items without an identifier (or time); and with a
        time column, the positions of the grouped items sorted by (identifier, time)."""
        ids, _ = pd.factorize(frame[self.id_column], use_na_sentinel=True)
        ids = ids.astype(np.int64)
        if self.time_column is None:
            return ids, None
        t = _seconds(frame[self.time_column], self.time_column)
        ok = (ids >= 0) & np.isfinite(t)
        out = np.full(len(frame), -1, dtype=np.int64)
        order = np.flatnonzero(ok)[np.lexsort((t[ok], ids[ok]))]
        group, prev_id, start = -1, None, 0.0
        for i in order:  # one pass over the items sorted by (identifier, time)
            if ids[i] != prev_id or t[i] - start > self.window:
                group, prev_id, start = group + 1, ids[i], t[i]
            out[i] = group
        return out, order


def _seconds(column: pd.Series, name: str) -> np.ndarray:
    """Numbers as they are; timestamps (datetime or ISO text) as seconds since the epoch."""
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        return column.to_numpy(dtype=np.float64)
    try:
        stamps = pd.to_datetime(column, utc=True)
    except (ValueError, TypeError) as exc:
        raise InvalidInput(f"time column {name!r} holds values that are neither numbers nor "
                           f"timestamps: {exc}") from exc
    seconds = (stamps - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
    return seconds.to_numpy(dtype=np.float64, na_value=np.nan)


def _majority(groups: np.ndarray, codes: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Per item: its group's majority share among members with a value (0 for groups of fewer
    than two such members) and the majority value (-1 on a tie or no group)."""
    n = len(groups)
    share, majority = np.zeros(n), np.full(n, -1, dtype=np.int64)
    valid = (groups >= 0) & (codes >= 0)
    if not valid.any():
        return share, majority
    g, c = groups[valid], codes[valid]
    n_groups = int(groups.max()) + 1
    pairs, counts = np.unique(g * size + c, return_counts=True)
    pg, pc = pairs // size, pairs % size
    top = np.zeros(n_groups, dtype=np.int64)
    np.maximum.at(top, pg, counts)
    at_top = counts == top[pg]
    n_top = np.bincount(pg[at_top], minlength=n_groups)
    best = np.full(n_groups, -1, dtype=np.int64)
    best[pg[at_top]] = pc[at_top]
    best[n_top != 1] = -1  # a tie has no majority
    total = np.bincount(g, minlength=n_groups)
    group_share = np.divide(top, total, out=np.zeros(n_groups), where=total >= 2)
    member = groups >= 0
    share[member] = group_share[groups[member]]
    majority[member] = best[groups[member]]
    return share, majority


def _extra_transitions(groups: np.ndarray, codes: np.ndarray, in_time: np.ndarray,
                       allowed: int) -> np.ndarray:
    """Per item: how many value changes its group makes in time order beyond ``allowed``
    (members without a value are skipped)."""
    seq = in_time[codes[in_time] >= 0]
    g, c = groups[seq], codes[seq]
    change = (g[1:] == g[:-1]) & (c[1:] != c[:-1])
    n_groups = int(groups.max()) + 1 if len(groups) else 0
    extra = np.maximum(np.bincount(g[1:][change], minlength=n_groups) - allowed, 0).astype(np.float64)
    out = np.zeros(len(groups))
    member = groups >= 0
    out[member] = extra[groups[member]]
    return out


def _clusters(groups: np.ndarray, severity: np.ndarray, fired: np.ndarray) -> list:
    order = np.argsort(groups, kind="stable")
    sorted_groups = groups[order]
    out = []
    for g in fired:
        lo, hi = np.searchsorted(sorted_groups, [g, g + 1])
        members = order[lo:hi]
        out.append((members.tolist(), float(severity[members[0]])))
    return out


def consistency_assertion(name: str, id_column: str, attributes: Iterable[str] = (PREDICTION,), *,
                          time_column: str | None = None, window: float | None = None,
                          max_transitions: int | None = None) -> ConsistencyAssertion:
    """A consistency assertion; every argument is checked here, with a message naming it.

    Parameters
    ----------
    name : unique assertion name (letters, digits, ``_.:-``; at most 100)
    id_column : the item column holding the identifier (track, user, session...)
    attributes : what members should agree on: ``"label"`` (the predicted class) and/or columns
    time_column, window : give both to group only items within ``window`` of each other
    max_transitions : with a time column, fire on more than this many value changes in a window
        (in time order) instead of on any disagreement; 1 catches A -> B -> A
    """
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise InvalidInput(f"consistency spec: name must be 1-100 letters, digits or _.:- , got {name!r}")
    if not isinstance(id_column, str) or not id_column:
        raise InvalidInput(f"consistency spec: id_column must be a non-empty column name, got {id_column!r}")
    if isinstance(attributes, str) or not isinstance(attributes, Iterable):
        raise InvalidInput(f"consistency spec: attributes must be a list of names, got {attributes!r}")
    attrs = tuple(attributes)
    if not attrs or not all(isinstance(a, str) and a for a in attrs) or len(set(attrs)) != len(attrs):
        raise InvalidInput("consistency spec: attributes must be a non-empty list of distinct names "
                           f"('{PREDICTION}' = the predicted class), got {list(attrs)!r}")
    if id_column in attrs:
        raise InvalidInput(f"consistency spec: id_column {id_column!r} cannot also be an attribute")
    if (time_column is None) != (window is None):
        raise InvalidInput("consistency spec: give time_column and window together (or neither), "
                           f"got time_column={time_column!r}, window={window!r}")
    if time_column is not None:
        if not isinstance(time_column, str) or not time_column:
            raise InvalidInput(f"consistency spec: time_column must be a column name, got {time_column!r}")
        if (isinstance(window, bool) or not isinstance(window, int | float)
                or not math.isfinite(window) or window <= 0):
            raise InvalidInput(f"consistency spec: window must be a positive number, got {window!r}")
        window = float(window)
    if max_transitions is not None:
        if time_column is None:
            raise InvalidInput("consistency spec: max_transitions needs time_column and window "
                               "(transitions are counted in time order)")
        if isinstance(max_transitions, bool) or not isinstance(max_transitions, int) or max_transitions < 0:
            raise InvalidInput(f"consistency spec: max_transitions must be an integer >= 0, got {max_transitions!r}")
    return ConsistencyAssertion(name, id_column, attrs, time_column, window, max_transitions)
