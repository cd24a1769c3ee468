"""Built-in model assertions for classification: they need no user code.

Each returns a severity per item (float >= 0, 0 = abstain; uncalibrated, only the order matters).
BAL draws items in proportion to their severity rank inside an assertion, so each severity is
chosen to put the likeliest model errors first, and to have few ties (ties get average ranks, and
a column of ties makes the rank draw uniform):

* ``model_lf_disagree``: the end model contradicts the LF votes. Severity: the share of votes
  against the prediction times the model's own probability for the label those votes give (the
  most-voted contradicting label). Many LFs against a model that almost agrees with them is the
  likeliest model error; one LF against a model that is sure of itself, the least likely.
  Only credible LFs count (:func:`credible_sources`): one that the human labels show to be no
  better than chance where it voted is treated as abstaining. On a set whose single LF is as
  often wrong as right on the contested items (COSINE IMDB: the end model is right on 80% of
  the items where it overrides the LF), the assertion stops firing once the labels show it.
* ``lm_em_disagree``: label model and end model predict different classes (on items the LFs
  cover). Severity: the end model's probability for the label model's class, i.e. how close the
  end model is to siding with the label model. Abstains while the label model's hard vote is
  discredited the same way.
* ``perturbation_flip``: the prediction changes under small perturbations of the input (a few
  words dropped from text, never inside entity spans, whose offsets follow the edit; small noise
  on standardised numeric features). ``perturbations`` independent copies are scored; the
  severity is the share of them that flip the prediction, ties broken by the mean total-variation
  distance of the probabilities. One copy makes it near-Boolean; several rank the items whose
  prediction is least stable first. Each item's copies are fixed (seeded by the item's key and
  the copy's number, not by the round), so a round-to-round drop in flips reflects the model
  alone, and the perturbed copies are made and featurized once per pool, not every round. A
  pool of more than ``MAX_RESCORED`` items is rescored on a fixed monitor subset of that size.
* ``near_duplicate_conflict``: near-duplicate items (same normalised text or rounded features)
  get different predictions; every member of the cluster carries the cluster's severity (the
  share of members that disagree with the cluster's majority prediction), plus a tie-breaker
  that puts members with the minority prediction and lower confidence first.
* ``confident_lf_contradiction``: the model confidently (>= 0.8) contradicts an LF that human
  labels show to be precise (>= 90% on >= 5 labels); severity: the model's confidence.

All five depend on the model (they are re-evaluated on each round's model), except that an LF
assertion whose sources are all discredited is reported as not model-dependent: its firings
stopped because of the labels, not the model, so BAL gives that drop no reward.
"""

from __future__ import annotations

import re
import threading
import zlib
from collections import OrderedDict
from collections.abc import Callable

import numpy as np
import pandas as pd

from labeling.features import frame_digest

__all__ = ["ASSERTION_NAMES", "DISCREDIT_LEVEL", "MAX_RESCORED", "PERTURBATIONS", "builtin_assertions",
           "credible_sources", "duplicate_clusters", "item_keys", "monitor_rows", "perturb_frame"]

ASSERTION_NAMES = ["model_lf_disagree", "lm_em_disagree", "perturbation_flip",
                   "near_duplicate_conflict", "confident_lf_contradiction"]
PERTURBATIONS = 5  # perturbed copies scored per round by ``perturbation_flip``
MAX_RESCORED = 20_000  # items ``perturbation_flip`` rescores at most (a fixed monitor subset)
DISCREDIT_LEVEL = 0.05  # see ``credible_sources``
_PERTURB_SALT = 0x5EED
_MONITOR_SALT = 0x3A7
_WORD = re.compile(r"\w+")
_TOKEN = re.compile(r"\S+")
_SPANS = ("span1_start", "span1_end", "span2_start", "span2_end")


def _drop_words(text: str, rng: np.random.Generator, drop: float,
                spans: list[int] | None) -> tuple[str, list[int] | None]:
    """``text`` with each word dropped with probability ``drop`` (at least one word kept). Words
    that overlap an entity span are kept, and the span offsets are moved to the new text."""
    tokens = [(m.start(), m.end()) for m in _TOKEN.finditer(text)]
    if not tokens:
        return text, spans
    pairs = [(spans[0], spans[1]), (spans[2], spans[3])] if spans is not None else []
    keep = [any(s < e and a < e and s < b for s, e in pairs) or rng.random() >= drop
            for a, b in tokens]
    if not any(keep):
        return text, spans
    out, pos, moved = [], 0, {}
    for (a, b), kept in zip(tokens, keep, strict=True):
        if not kept:
            continue
        if out:
            pos += 1
        for old in (spans or []):
            if a <= old <= b:
                moved[old] = pos + old - a
        out.append(text[a:b])
        pos += b - a
    if spans is not None:
        if any(o not in moved for o in spans):  # a span edge between words: leave this text alone
            return text, spans
        return " ".join(out), [moved[o] for o in spans]
    return " ".join(out), None


def item_keys(frame: pd.DataFrame) -> np.ndarray:
    """A stable 32-bit key per item (CRC32 of its ``id``, else of its text, else of its row
    position): the same item gets the same key in every round and every process."""
    if "id" in frame.columns:
        values = [str(v) for v in frame["id"].tolist()]
    elif "text" in frame.columns:
        values = [t if isinstance(t, str) else "" for t in frame["text"].tolist()]
    else:
        values = [str(i) for i in range(len(frame))]
    return np.array([zlib.crc32(v.encode("utf-8", "surrogatepass")) for v in values], dtype=np.int64)


def perturb_frame(frame: pd.DataFrame, rng: np.random.Generator | None = None, *, copy: int = 0,
                  drop: float = 0.15, noise: float = 0.05) -> pd.DataFrame:
    """A copy of ``frame`` with ~``drop`` of each text's words removed and Gaussian noise of
    ``noise`` standard deviations added to numeric feature columns. Relation items (entity-span
    columns ``span1_start`` ... ``span2_end``, character offsets) keep their entities whole, and
    their offsets are rewritten to point at the same words in the shortened text.

    With ``rng`` every row draws from it. Without, each row draws from its own stream, seeded by
    the item's key (:func:`item_keys`) and ``copy``: an item's ``copy``-th perturbation is the
    same in every round and whatever other rows the frame holds."""
    out = frame.copy()
    n = len(out)
    if rng is None:
        keys = item_keys(frame)
        streams = [np.random.default_rng([int(key), copy, _PERTURB_SALT]) for key in keys]
    else:
        streams = [rng] * n
    if "text" in out.columns and out["text"].notna().any():
        has_spans = all(c in out.columns for c in _SPANS)
        span_rows = out[list(_SPANS)].to_numpy() if has_spans else None
        texts, new_spans = [], []
        for i, text in enumerate(out["text"].tolist()):
            spans = None
            if span_rows is not None:
                try:
                    spans = [int(v) for v in span_rows[i]]
                except (TypeError, ValueError):
                    spans = None
            if not isinstance(text, str):
                texts.append(text)
                new_spans.append(spans)
                continue
            t, s = _drop_words(text, streams[i], drop, spans)
            texts.append(t)
            new_spans.append(s)
        out["text"] = texts
        if has_spans:
            for j, col in enumerate(_SPANS):
                out[col] = [s[j] if s is not None else out[col].iat[i] for i, s in enumerate(new_spans)]
    cols = list(frame.attrs.get("feature_columns", []))
    if cols and n:
        shocks = (rng.normal(size=(n, len(cols))) if rng is not None
                  else np.stack([g.normal(size=len(cols)) for g in streams]))
        for j, col in enumerate(cols):
            values = out[col].to_numpy(dtype=np.float64)
            scale = np.nanstd(values) or 1.0
            out[col] = values + noise * scale * shocks[:, j]
    return out


def monitor_rows(frame: pd.DataFrame, limit: int) -> np.ndarray:
    """The rows ``perturbation_flip`` rescores: all of them up to ``limit``; on a larger pool, a
    fixed monitor subset of ``limit`` rows (those with the smallest salted item keys), the same
    every round while the pool is unchanged."""
    n = len(frame)
    if n <= limit:
        return np.arange(n)
    salted = (item_keys(frame) * 2654435761 + _MONITOR_SALT) % (1 << 32)
    return np.sort(np.argsort(salted, kind="stable")[:limit])


_PERTURBED: OrderedDict[tuple[str, int], pd.DataFrame] = OrderedDict()
_PERTURBED_LOCK = threading.Lock()


def _perturbed(frame: pd.DataFrame, copy: int) -> pd.DataFrame:
    """``perturb_frame(frame, copy=copy)``, remembered for the last few frames: every round
    perturbs the same pool in the same way, so later rounds only look the copies up."""
    key = (frame_digest(frame), copy)
    with _PERTURBED_LOCK:
        if key in _PERTURBED:
            _PERTURBED.move_to_end(key)
            return _PERTURBED[key]
    out = perturb_frame(frame, copy=copy)
    with _PERTURBED_LOCK:
        _PERTURBED[key] = out
        while len(_PERTURBED) > 2 * PERTURBATIONS:
            _PERTURBED.popitem(last=False)
    return out


def duplicate_clusters(frame: pd.DataFrame) -> np.ndarray:
    """A cluster id per item: items with the same normalised text (or, without text, the same
    features rounded to one decimal) share one."""
    if "text" in frame.columns and frame["text"].notna().any():
        keys = [" ".join(_WORD.findall(t.lower())) if isinstance(t, str) else None for t in frame["text"]]
    else:
        cols = frame.attrs.get("feature_columns", [])
        keys = [tuple(np.round(row, 1)) for row in frame[cols].to_numpy(dtype=np.float64)]
    return pd.Series(keys).factorize()[0]


def credible_sources(votes: np.ndarray, human: np.ndarray, k: int, *,
                     level: float = DISCREDIT_LEVEL) -> np.ndarray:
    """Per vote column (an LF, or the label model's hard vote): False once the human labels show
    it to be no better than chance where it voted, i.e. when, under a uniform prior, the posterior
    probability that its accuracy exceeds 1/k is below ``level``. A source that is wrong at least
    as often as a coin on the labelled items is no evidence against the model, so its
    contradictions flag no model error. Without labels every source is credible."""
    m = votes.shape[1]
    if not m:
        return np.ones(0, dtype=bool)
    labeled = (human >= 0)[:, None] & (votes >= 0)
    hits = (labeled & (votes == human[:, None])).sum(axis=0)
    seen = labeled.sum(axis=0)
    from scipy.stats import beta  # here: scipy.stats takes seconds to import

    return beta.sf(1.0 / k, 1 + hits, 1 + seen - hits) >= level


def builtin_assertions(
    frame: pd.DataFrame, probs: np.ndarray, votes: np.ndarray, lm_probs: np.ndarray | None,
    human: np.ndarray, perturbed_probs: Callable[[pd.DataFrame], np.ndarray] | None,
    rng: np.random.Generator, *, perturbations: int = PERTURBATIONS, max_rescored: int = MAX_RESCORED,
) -> tuple[list[str], np.ndarray, list[bool]]:
    """Evaluate the built-ins. ``probs`` (n, K) end-model probabilities; ``votes`` (n, m);
    ``perturbed_probs(frame)`` re-scores a perturbed copy (called ``perturbations`` times, on at
    most ``max_rescored`` rows, see :func:`monitor_rows`).
    Returns names, (n, a) severities and whether each assertion depends on the model."""
    n, k = probs.shape
    rows = np.arange(n)
    pred = probs.argmax(axis=1)
    conf = probs.max(axis=1)
    sev = np.zeros((n, len(ASSERTION_NAMES)), dtype=np.float64)
    credible = credible_sources(votes, human, k)
    lm_credible = True
    if votes.shape[1]:
        voted = (votes >= 0) & credible[None, :]  # discredited LFs count as abstaining
        against = voted & (votes != pred[:, None])
        n_against = against.sum(axis=1)
        total = voted.sum(axis=1)
        per_class = np.stack([(against & (votes == c)).sum(axis=1) for c in range(k)], axis=1)
        their = per_class.argmax(axis=1)  # the label most contradicting votes give
        share = np.divide(n_against, total, out=np.zeros(n), where=total > 0)
        # + a floor so an item the model is sure about still fires (severity > 0)
        sev[:, 0] = np.where(n_against > 0, share * (probs[rows, their] + 1e-6), 0.0)
    if lm_probs is not None:
        covered = (votes >= 0).any(axis=1) if votes.shape[1] else np.zeros(n, bool)
        lm_pred = lm_probs.argmax(axis=1)
        lm_vote = np.where(covered, lm_pred, -1)[:, None]
        lm_credible = bool(credible_sources(lm_vote, human, k)[0])
        if lm_credible:
            sev[:, 1] = np.where(covered & (lm_pred != pred), probs[rows, lm_pred] + 1e-6, 0.0)
    if perturbed_probs is not None and perturbations > 0:
        rows = monitor_rows(frame, max_rescored)
        sub = frame if len(rows) == n else frame.iloc[rows]
        flips = np.zeros(len(rows))
        tv = np.zeros(len(rows))
        for c in range(perturbations):
            alt = perturbed_probs(_perturbed(sub, c))
            flips += alt.argmax(axis=1) != pred[rows]
            tv += 0.5 * np.abs(alt - probs[rows]).sum(axis=1)
        # the flip share orders; the mean distance (< 1) only breaks its ties
        sev[rows, 2] = np.where(flips > 0, flips / perturbations + tv / perturbations / (perturbations + 1), 0.0)
    groups = duplicate_clusters(frame)
    pairs, counts = np.unique(groups * k + pred, return_counts=True)
    top = np.zeros(groups.max() + 1 if n else 0)
    np.maximum.at(top, pairs // k, counts)
    size = np.bincount(groups)[groups] if n else np.zeros(0, int)
    # members predicted as their cluster's majority come after the others, the least confident first
    lead = np.zeros(n, dtype=bool)
    if n:
        mode = np.zeros(groups.max() + 1, dtype=np.int64)
        order = np.lexsort((-counts, pairs // k))
        firsts = order[np.r_[True, (pairs // k)[order][1:] != (pairs // k)[order][:-1]]]
        mode[(pairs // k)[firsts]] = (pairs % k)[firsts]
        lead = pred == mode[groups]
    minority = np.where(size > 1, 1.0 - top[groups] / np.maximum(size, 1), 0.0)
    tiebreak = (1.0 - conf) * 0.5 + np.where(lead, 0.0, 0.5)  # in [0, 1)
    sev[:, 3] = np.where(minority > 0, minority + 1e-3 * tiebreak, 0.0)
    if votes.shape[1]:
        labeled = human >= 0
        for j in range(votes.shape[1]):
            fired = labeled & (votes[:, j] >= 0)
            if fired.sum() >= 5 and (votes[fired, j] == human[fired]).mean() >= 0.9:
                hit = (votes[:, j] >= 0) & (votes[:, j] != pred) & (conf >= 0.8)
                sev[:, 4] = np.maximum(sev[:, 4], np.where(hit, conf, 0.0))
    # an LF assertion whose sources are all discredited has nothing left to check the model
    # against: its firings stop because of the labels, not the model, so they earn no reward
    dependent = [True] * len(ASSERTION_NAMES)
    dependent[0] = bool(votes.shape[1] == 0 or credible.any())
    dependent[1] = bool(lm_probs is None or lm_credible)
    return list(ASSERTION_NAMES), sev.astype(np.float32), dependent
