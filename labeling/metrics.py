"""Evaluation metrics."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, f1_score

from labeling.ties import predict

__all__ = ["evaluate"]


def evaluate(y_true: np.ndarray, probs: np.ndarray) -> dict[str, float]:
    """Accuracy and macro F1 of the predicted classes (ties broken by Snorkel's row-hash rule, as
    WRENCH scores) against ``y_true``."""
    y_true = np.asarray(y_true)
    pred = predict(probs)
    return {
        "accuracy": float(accuracy_score(y_true, pred)),
        "macro_f1": float(f1_score(y_true, pred, average="macro", zero_division=0)),
        "n": int(len(y_true)),
    }
