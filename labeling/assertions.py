"""Built-in model assertions for classification: they need no user code.

Each returns a severity per item (float >= 0, 0 = abstain; uncalibrated, only the order matters):

* ``model_lf_disagree``: the end model contradicts the LF votes (share of votes against it).
* ``lm_em_disagree``: label model and end model predict different classes (total variation).
* ``perturbation_flip``: the prediction changes under a small perturbation of the input (a few
  words dropped from text; small noise on standardised numeric features).
* ``near_duplicate_conflict``: near-duplicate items (same normalised text or rounded features)
  get different predictions; every member of the cluster carries its severity.
* ``confident_lf_contradiction``: the model confidently contradicts an LF that human labels show
  to be precise (>= 90% on >= 5 labels).
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np
import pandas as pd

__all__ = ["ASSERTION_NAMES", "builtin_assertions", "perturb_frame"]

ASSERTION_NAMES = ["model_lf_disagree", "lm_em_disagree", "perturbation_flip",
                   "near_duplicate_conflict", "confident_lf_contradiction"]
_WORD = re.compile(r"\w+")


def perturb_frame(frame: pd.DataFrame, rng: np.random.Generator, *, drop: float = 0.15,
                  noise: float = 0.05) -> pd.DataFrame:
    """A copy of ``frame`` with ~``drop`` of each text's words removed and Gaussian noise of
    ``noise`` standard deviations added to numeric feature columns."""
    out = frame.copy()
    if "text" in out.columns and out["text"].notna().any():
        def mutate(text):
            if not isinstance(text, str):
                return text
            words = text.split()
            keep = [w for w in words if rng.random() >= drop]
            return " ".join(keep or words)
        out["text"] = [mutate(t) for t in out["text"]]
    for col in frame.attrs.get("feature_columns", []):
        values = out[col].to_numpy(dtype=np.float64)
        scale = np.nanstd(values) or 1.0
        out[col] = values + rng.normal(scale=noise * scale, size=len(values))
    return out


def _duplicate_keys(frame: pd.DataFrame) -> np.ndarray:
    if "text" in frame.columns and frame["text"].notna().any():
        keys = [" ".join(_WORD.findall(t.lower())) if isinstance(t, str) else None for t in frame["text"]]
    else:
        cols = frame.attrs.get("feature_columns", [])
        keys = [tuple(np.round(row, 1)) for row in frame[cols].to_numpy(dtype=np.float64)]
    return pd.Series(keys).factorize()[0]


def builtin_assertions(
    frame: pd.DataFrame, probs: np.ndarray, votes: np.ndarray, lm_probs: np.ndarray | None,
    human: np.ndarray, perturbed_probs: Callable[[pd.DataFrame], np.ndarray] | None,
    rng: np.random.Generator,
) -> tuple[list[str], np.ndarray, list[bool]]:
    """Evaluate the built-ins. ``probs`` (n, K) end-model probabilities; ``votes`` (n, m);
    ``perturbed_probs(frame)`` re-scores a perturbed copy. Returns names, (n, a) severities and
    whether each assertion depends on the model."""
    n, k = probs.shape
    pred = probs.argmax(axis=1)
    conf = probs.max(axis=1)
    sev = np.zeros((n, len(ASSERTION_NAMES)), dtype=np.float32)
    if votes.shape[1]:
        voted = votes >= 0
        against = (voted & (votes != pred[:, None])).sum(axis=1)
        total = voted.sum(axis=1)
        sev[:, 0] = np.divide(against, total, out=np.zeros(n), where=total > 0) * (against > 0)
    if lm_probs is not None:
        covered = (votes >= 0).any(axis=1) if votes.shape[1] else np.zeros(n, bool)
        tv = 0.5 * np.abs(lm_probs - probs).sum(axis=1)
        sev[:, 1] = np.where(covered & (lm_probs.argmax(axis=1) != pred), tv, 0.0)
    if perturbed_probs is not None:
        alt = perturbed_probs(perturb_frame(frame, rng))
        tv = 0.5 * np.abs(alt - probs).sum(axis=1)
        sev[:, 2] = np.where(alt.argmax(axis=1) != pred, tv, 0.0)
    groups = _duplicate_keys(frame)
    pairs, counts = np.unique(groups * k + pred, return_counts=True)
    top = np.zeros(groups.max() + 1 if n else 0)
    np.maximum.at(top, pairs // k, counts)
    size = np.bincount(groups)[groups]
    sev[:, 3] = np.where(size > 1, 1.0 - top[groups] / size, 0.0)
    if votes.shape[1]:
        labeled = human >= 0
        for j in range(votes.shape[1]):
            fired = labeled & (votes[:, j] >= 0)
            if fired.sum() >= 5 and (votes[fired, j] == human[fired]).mean() >= 0.9:
                hit = (votes[:, j] >= 0) & (votes[:, j] != pred) & (conf >= 0.8)
                sev[:, 4] = np.maximum(sev[:, 4], np.where(hit, conf, 0.0))
    return list(ASSERTION_NAMES), sev, [True] * len(ASSERTION_NAMES)
