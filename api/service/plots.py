"""Learning-curve plots (matplotlib, headless)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

__all__ = ["plot_curves"]


def plot_curves(results: list[dict], path: str | Path, *, title: str | None = None) -> None:
    """One line per strategy (mean over seeds, band = +-1 std) of accuracy vs human labels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_strategy: dict[str, list[dict]] = defaultdict(list)
    for r in results:
        key = r["strategy"] + ("" if r.get("weak", True) else " (no weak)")
        by_strategy[key].append(r)
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, runs in sorted(by_strategy.items()):
        labels = [p["labels"] for p in runs[0]["curve"]]
        acc = np.array([[p["accuracy"] for p in r["curve"]][: len(labels)] for r in runs])
        mean, std = acc.mean(axis=0), acc.std(axis=0)
        ax.plot(labels, mean, label=f"{name} (n={len(runs)})")
        ax.fill_between(labels, mean - std, mean + std, alpha=0.15)
    ax.set_xlabel("human labels")
    ax.set_ylabel("test accuracy")
    ax.set_title(title or results[0]["dataset"])
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
