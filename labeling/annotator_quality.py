"""Per-annotator figures from the answer log: labels, skips, flags, median time per item,
agreement with the others' consensus, accuracy on gold items, and a CROWDLAB quality estimate
(``cleanlab.multiannotator.get_label_quality_multiannotator``); an annotator far below the others
on any of these is marked, with the reason.

Arrays in, dicts out: the service turns the log into an :class:`AnswerLog` and serves the result.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from labeling.errors import InvalidInput

__all__ = ["KINDS", "MARGIN", "MIN_ITEMS", "AnswerLog", "annotator_report", "crowdlab_quality",
           "far_below"]

KINDS = ("label", "skip", "flag")  # codes 0, 1, 2 of AnswerLog.kind
MIN_ITEMS = 10  # items a figure needs before it may mark an annotator
MARGIN = 0.1  # how far below the median a figure must be, at least, to mark an annotator
MAD_SCALE = 3 * 1.4826  # ... or this many robust standard deviations (MAD x 1.4826), if more


@dataclass(frozen=True)
class AnswerLog:
    """The answer log as arrays, one entry per event in log order.

    item : (e,) int, pool position of the item
    annotator : (e,) int, index into ``names``
    kind : (e,) int, index into :data:`KINDS`
    label : (e,) int, the class of a label event, -1 otherwise
    time_spent : (e,) float, seconds the annotator reported, NaN when not given
    names : annotator names
    n_items : pool size
    """

    item: np.ndarray
    annotator: np.ndarray
    kind: np.ndarray
    label: np.ndarray
    time_spent: np.ndarray
    names: tuple[str, ...]
    n_items: int

    def __post_init__(self) -> None:
        e = len(self.item)
        for name in ("annotator", "kind", "label", "time_spent"):
            if np.asarray(getattr(self, name)).shape != (e,):
                raise InvalidInput(f"AnswerLog.{name} must have shape ({e},), got "
                                   f"{np.asarray(getattr(self, name)).shape}")
        if e and (self.item.min() < 0 or self.item.max() >= self.n_items):
            raise InvalidInput(f"AnswerLog.item must be positions 0..{self.n_items - 1}")
        if e and (self.annotator.min() < 0 or self.annotator.max() >= len(self.names)):
            raise InvalidInput(f"AnswerLog.annotator must index the {len(self.names)} names")

    def ratings(self) -> np.ndarray:
        """(n_items, n_annotators) int64: each annotator's latest label on each item, -1 none (a
        later label by the same annotator corrects the earlier one)."""
        out = np.full((self.n_items, len(self.names)), -1, dtype=np.int64)
        is_label = self.kind == 0
        out[self.item[is_label], self.annotator[is_label]] = self.label[is_label]  # last wins
        return out


def _figure(hits: np.ndarray) -> dict:
    n = int(hits.size)
    return {"value": float(hits.mean()) if n else None, "n_items": n}


def _loo_agreement(ratings: np.ndarray, n_classes: int) -> list[dict]:
    """Per annotator, the share of their labels that match the majority of the *other*
    annotators of the item (items where the others tie or no one else answered are left out)."""
    counts = np.zeros((len(ratings), n_classes), dtype=np.int64)
    rows, cols = np.nonzero(ratings >= 0)
    np.add.at(counts, (rows, ratings[rows, cols]), 1)
    out = []
    for j in range(ratings.shape[1]):
        mine = np.flatnonzero(ratings[:, j] >= 0)
        others = counts[mine].copy()
        others[np.arange(len(mine)), ratings[mine, j]] -= 1
        top = others.max(axis=1) if len(mine) else np.zeros(0, dtype=np.int64)
        decided = (top > 0) & ((others == top[:, None]).sum(axis=1) == 1)
        hits = others[decided].argmax(axis=1) == ratings[mine[decided], j]
        out.append(_figure(hits))
    return out


def _gold_accuracy(ratings: np.ndarray, gold: np.ndarray) -> list[dict]:
    out = []
    for j in range(ratings.shape[1]):
        on_gold = (ratings[:, j] >= 0) & (gold >= 0)
        out.append(_figure(ratings[on_gold, j] == gold[on_gold]))
    return out


def crowdlab_quality(ratings: np.ndarray, names: tuple[str, ...],
                     pred_probs: np.ndarray | None) -> tuple[list[dict], str | None]:
    """CROWDLAB annotator quality per annotator, or Nones and the reason it could not run."""
    none = [{"value": None, "n_items": 0} for _ in names]
    if pred_probs is None:
        return none, "no model probabilities yet (run a round)"
    answered = (ratings >= 0).sum(axis=1) >= 1
    active = (ratings >= 0).any(axis=0)
    if active.sum() < 2 or not ((ratings[answered] >= 0).sum(axis=1) >= 2).any():
        return none, "needs two annotators and an item with two labels"
    import pandas as pd
    from cleanlab.multiannotator import get_label_quality_multiannotator

    cols = np.flatnonzero(active)
    sub = ratings[np.ix_(answered, cols)].astype(np.float64)
    sub[sub < 0] = np.nan
    probs = np.asarray(pred_probs, dtype=np.float64)[answered]
    probs = np.clip(probs, 1e-6, None)
    probs /= probs.sum(axis=1, keepdims=True)
    frame = pd.DataFrame(sub, columns=[names[c] for c in cols])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            stats = get_label_quality_multiannotator(
                frame, probs, verbose=False, return_detailed_quality=False)["annotator_stats"]
    except ValueError as exc:  # cleanlab's own input checks
        return none, f"cleanlab refused the answers: {exc}"
    out = list(none)
    for c in cols:
        row = stats.loc[names[c]]
        out[c] = {"value": float(row["annotator_quality"]),
                  "n_items": int(row["num_examples_labeled"])}
    return out, None


def far_below(values: list[dict], what: str, *,
              min_items: int = MIN_ITEMS) -> dict[int, str]:
    """Annotators whose figure is far below the others': more than max(:data:`MARGIN`,
    3 robust standard deviations) under the median of everyone with ``min_items`` items on it
    (at least three annotators). Returns {annotator index: reason}."""
    ok = [j for j, v in enumerate(values) if v["value"] is not None and v["n_items"] >= min_items]
    if len(ok) < 3:
        return {}
    xs = np.array([values[j]["value"] for j in ok])
    median = float(np.median(xs))
    gap = max(MARGIN, MAD_SCALE * float(np.median(np.abs(xs - median))))
    return {j: (f"{what} {values[j]['value']:.3f} on {values[j]['n_items']} items is "
                f"{median - values[j]['value']:.3f} below the median {median:.3f} of "
                f"{len(ok)} annotators (marked beyond {gap:.3f})")
            for j in ok if values[j]["value"] < median - gap}


def annotator_report(log: AnswerLog, n_classes: int, *, gold: np.ndarray | None = None,
                     pred_probs: np.ndarray | None = None, min_items: int = MIN_ITEMS) -> list[dict]:
    """One entry per annotator, best first.

    Parameters
    ----------
    log : the answer log
    n_classes : K
    gold : (n_items,) int, the known answer of gold items, -1 elsewhere; None = no gold items
    pred_probs : (n_items, K) model probabilities for CROWDLAB (out-of-sample where possible);
        None = no CROWDLAB quality
    min_items : items a figure needs before it may mark an annotator

    Returns
    -------
    list of dicts: annotator, labels (label events), items (items labeled), skips, flags,
    median_time_s, agreement_with_consensus, gold_accuracy, quality (each ``{value, n_items}``),
    quality_note (why quality is None, or None), rank (1 = best, by ``rank_by``), rank_by,
    below_others (bool) and reasons (why it is marked).
    """
    ratings = log.ratings()
    if gold is None:
        gold = np.full(log.n_items, -1, dtype=np.int64)
    gold = np.asarray(gold)
    if gold.shape != (log.n_items,):
        raise InvalidInput(f"gold must have shape ({log.n_items},), got {gold.shape}")
    if pred_probs is not None and np.asarray(pred_probs).shape != (log.n_items, n_classes):
        raise InvalidInput(f"pred_probs must have shape ({log.n_items}, {n_classes}), got "
                           f"{np.asarray(pred_probs).shape}")
    figures = {
        "agreement_with_consensus": _loo_agreement(ratings, n_classes),
        "gold_accuracy": _gold_accuracy(ratings, gold),
    }
    figures["quality"], note = crowdlab_quality(ratings, log.names, pred_probs)
    reasons: dict[int, list[str]] = {}
    for what, values in figures.items():
        for j, why in far_below(values, what.replace("_", " "),
                                min_items=min_items).items():
            reasons.setdefault(j, []).append(why)
    rank_by = next((w for w in ("quality", "agreement_with_consensus", "gold_accuracy")
                    if any(v["value"] is not None for v in figures[w])), "agreement_with_consensus")
    key = [figures[rank_by][j]["value"] for j in range(len(log.names))]
    order = sorted(range(len(log.names)),
                   key=lambda j: (key[j] is None, -(key[j] or 0.0), log.names[j]))
    out = []
    for place, j in enumerate(order, 1):
        mine = log.annotator == j
        times = log.time_spent[mine & (log.kind == 0)]
        times = times[~np.isnan(times)]
        out.append({
            "annotator": log.names[j],
            "labels": int((mine & (log.kind == 0)).sum()),
            "items": int((ratings[:, j] >= 0).sum()),
            "skips": int((mine & (log.kind == 1)).sum()),
            "flags": int((mine & (log.kind == 2)).sum()),
            "median_time_s": float(np.median(times)) if len(times) else None,
            **{w: figures[w][j] for w in figures},
            "quality_note": note,
            "rank": place,
            "rank_by": rank_by,
            "below_others": j in reasons,
            "reasons": reasons.get(j, []),
        })
    return out
