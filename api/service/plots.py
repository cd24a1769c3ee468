"""Learning-curve plots (matplotlib, headless)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

__all__ = ["plot_comparison", "plot_curves"]


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


def plot_comparison(report: dict, path: str | Path) -> None:
    """The figure of a multi-strategy simulation (:func:`api.service.simulate_compare.compare`):
    accuracy and macro-F1 against human labels, one colour per strategy (mean over seeds, band =
    +-1 std), runs without LFs dashed in the same colour, the label model's accuracy as a dotted
    grey line, random's final accuracy as a thin dash-dot line, and each strategy's labels to
    reach it in the legend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = report["summary"]
    strategies = report["strategies"]
    colours = plt.get_cmap("tab10")
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.4), sharex=True)
    panels = (("accuracy", "test accuracy"), ("macro_f1", "test macro-F1"))
    for ax, (key, ylabel) in zip(axes, panels, strict=True):
        for k, strategy in enumerate(strategies):
            for name, style in ((strategy, "-"), (f"{strategy}/no-weak", "--")):
                entry = summary.get(name)
                if entry is None:
                    continue
                x = np.array(entry["labels"])
                mean, std = np.array(entry[f"{key}_mean"]), np.array(entry[f"{key}_std"])
                ax.plot(x, mean, style, color=colours(k % 10), lw=1.8, marker="o", ms=3,
                        label=_legend(name, entry) if key == "accuracy" else None)
                ax.fill_between(x, mean - std, mean + std, color=colours(k % 10),
                                alpha=0.15 if style == "-" else 0.08, lw=0)
        lm = [e["label_model_accuracy"] for e in summary.values()
              if e["label_model_accuracy"] is not None]
        if key == "accuracy" and lm:
            ax.axhline(float(np.mean(lm)), color="0.35", ls=":", lw=1.5,
                       label=f"label model alone ({np.mean(lm):.3f})")
        target = next((e["labels_to_reach_random"]["target_accuracy"] for e in summary.values()
                       if e["labels_to_reach_random"]), None)
        if key == "accuracy" and target is not None:
            ax.axhline(target, color="0.6", ls="-.", lw=1.0,
                       label=f"random's final accuracy ({target:.3f})")
        ax.set_xlabel("human labels")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    seeds = len(report["seeds"])
    fig.suptitle(f"{report['dataset']}: mean and ±1 std over {seeds} seed{'s' * (seeds > 1)}, "
                 f"batches of {report['batch_size']}", fontsize=11)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(3, len(labels)), fontsize=8,
               frameon=False)
    fig.tight_layout(rect=(0, 0.06 + 0.045 * ((len(labels) - 1) // 3), 1, 1))
    fig.savefig(path, dpi=150)
    plt.close(fig)


def _legend(name: str, entry: dict) -> str:
    label = name.replace("/no-weak", " (no LFs)")
    reach = entry.get("labels_to_reach_random")
    if reach and reach["mean"] is not None:
        label += f": {reach['mean']:.0f} ± {reach['std']:.0f} labels to random's final"
        if reach["reached"] < reach["seeds"]:
            label += f" ({reach['reached']}/{reach['seeds']} seeds)"
    elif reach:
        label += ": does not reach random's final"
    return label
