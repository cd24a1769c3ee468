"""``auto``: a bandit over strategies, rewarded by the accuracy gain on the evaluation slice.

UCB1 over the arms whose inputs are available; each arm's own state is kept under ``sub``. The
reward of a round is the change in end-model accuracy on the human-labeled evaluation slice since
the round that arm chose; with no evaluation labels yet, arms are tried in turn.
"""

from __future__ import annotations

import math

import numpy as np

from strategies.base import QueryContext, Selection

__all__ = ["DEFAULT_ARMS", "Auto"]

DEFAULT_ARMS = ["entropy", "margin", "hybrid", "lf_conflict", "bal", "random"]


MIN_EVAL = 30  # evaluation labels before a reward is trusted


def _accuracy(ctx: QueryContext) -> float | None:
    metrics = (ctx.eval_metrics or {}).get("end_model")
    if not metrics or metrics.get("n", 0) < int(ctx.params.get("min_eval", MIN_EVAL)):
        return None
    return float(metrics["accuracy"])


class Auto:
    name = "auto"
    requires: frozenset[str] = frozenset()

    def __init__(self, registry) -> None:
        self._registry = registry  # name -> strategy; read at call time so new ones count

    def __call__(self, ctx: QueryContext, k: int, rng: np.random.Generator) -> Selection:
        state = {"arms": {}, "sub": {}, **ctx.state}
        arms = {a: dict(v) for a, v in state["arms"].items()}
        acc = _accuracy(ctx)
        last = state.get("last")
        if last and acc is not None and last.get("accuracy") is not None:
            arm = arms.setdefault(last["arm"], {"n": 0, "mean": 0.0})
            arm["n"] += 1
            arm["mean"] += ((acc - last["accuracy"]) - arm["mean"]) / arm["n"]
        names = [a for a in ctx.params.get("arms", DEFAULT_ARMS) if a in self._registry and a != self.name
                 and all(getattr(ctx, f) is not None for f in self._registry[a].requires)]
        if not names:
            names = ["random"]
        untried = [a for a in names if arms.get(a, {}).get("n", 0) == 0]
        total = sum(arms.get(a, {}).get("n", 0) for a in names)
        if untried:
            choice = untried[int(rng.integers(len(untried)))]
            why = "untried"
        else:
            c = float(ctx.params.get("exploration", 0.02))
            ucb = {a: arms[a]["mean"] + c * math.sqrt(2 * math.log(total) / arms[a]["n"]) for a in names}
            choice = max(names, key=lambda a: (ucb[a], a))
            why = "ucb"
        sub_ctx = QueryContext(**{**ctx.__dict__, "state": state["sub"].get(choice, {}),
                                  "params": ctx.params.get("arm_params", {}).get(choice, {})})
        sel = self._registry[choice](sub_ctx, k, rng)
        reasons = [{**r, "strategy": self.name, "arm": choice, "arm_reason": why} for r in sel.reasons]
        next_state = {"arms": arms, "sub": {**state["sub"], choice: sel.state},
                      "last": {"arm": choice, "accuracy": acc}}
        return Selection(sel.indices, sel.scores, reasons, next_state)
