"""Evaluation metrics of class probabilities against true labels."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, f1_score

from labeling.errors import InvalidInput
from labeling.ties import predict

__all__ = ["evaluate"]


def evaluate(y_true: np.ndarray, probs: np.ndarray) -> dict[str, float | int | None]:
    """Accuracy and macro F1 of the predicted classes.

    Parameters
    ----------
    y_true : (n,) int class indices
    probs : (n, K) probabilities; predictions are the argmax, ties broken by Snorkel's row-hash
        rule as WRENCH scores (:func:`labeling.ties.predict`)

    Returns
    -------
    {"accuracy": float, "macro_f1": float (sklearn: over the classes present in y_true or the
    predictions), "n": int}; accuracy and macro_f1 are None when n = 0.
    """
    y_true = np.asarray(y_true)
    probs = np.asarray(probs)
    if probs.ndim != 2 or y_true.shape != (len(probs),):
        raise InvalidInput(f"y_true must be (n,) and probs (n, K); "
                           f"got {y_true.shape} and {probs.shape}")
    if len(y_true) == 0:
        return {"accuracy": None, "macro_f1": None, "n": 0}
    pred = predict(probs)
    return {
        "accuracy": float(accuracy_score(y_true, pred)),
        "macro_f1": float(f1_score(y_true, pred, average="macro", zero_division=0)),
        "n": len(y_true),
    }
