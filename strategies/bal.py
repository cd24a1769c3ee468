"""BAL, the assertion bandit (Kang et al., "Model Assertions for Monitoring and Improving ML
Models", MLSys 2020, Algorithm 2), as specified in the team's assertion-bandit design notes.

Each round: reward r_m = relative drop in how many still-unlabeled items assertion m flags,
previous model vs current model, measured on the same items (the current unlabeled candidates).
The first round (no history) calibrates: uniform over assertions, then uniform inside one. Then,
per draw, with probability ``explore_share`` an explore draw (uniform assertion, uniform item),
otherwise an exploit draw (assertion with probability proportional to r, item with probability
proportional to its severity rank, average ranks for ties). When every r is below
``min_reduction`` the round falls back to a baseline (least confidence by default). Draws are
without replacement.

Design choices beyond the paper:

* Exploration is drawn per item (so every prefix of the ranking is mixed, as leases take
  batches off its head).
* Counts are taken on the current candidates; r < 0 is clamped to 0; assertions new in this
  round or not model-dependent get exploration only.
* Assertions that flag exactly the same candidates in a round (e.g. model-vs-LF and label
  model-vs-end model with a single LF) are one group of arms, drawn as one assertion (the first
  registered) in calibration, exploration and exploitation alike.
* Surplus (spec 2.3.4): an assertion that runs out of items passes its exploit draws to the
  others in proportion to r. When no assertion with r > 0 has items left, an exploit draw comes
  from the baseline, not from an assertion with r = 0 (its share of the exploit budget is 0); it
  takes the baseline's next item at that place in the queue (mode ``fill``), so fill items are
  interleaved with the round's other draws. Explore draws still go to any assertion with items
  left; when none has any, they are filled the same way.
"""

from __future__ import annotations

import numpy as np

from strategies.base import QueryContext, Selection
from strategies.scores import scorer as get_scorer
from strategies.selectors import top_k

__all__ = ["BAL", "rewards"]


def rewards(prev: dict[str, list[int]], flagged: dict[str, np.ndarray], candidates: np.ndarray,
            model_dependent: dict[str, bool]) -> dict[str, float]:
    """Relative reduction in firings on the current candidates, per assertion (0 when unknown)."""
    out = {}
    for name, now_flags in flagged.items():
        before = prev.get(name)
        if before is None or not model_dependent[name]:
            out[name] = 0.0
            continue
        before = np.asarray(before, dtype=np.int64)
        before = before[before < len(candidates)]
        c_prev = int(candidates[before].sum())
        c_cur = int(candidates[now_flags].sum())
        out[name] = max(0.0, (c_prev - c_cur) / c_prev) if c_prev else 0.0
    return out


class BAL:
    name = "bal"
    requires = frozenset({"assertions"})

    def __call__(self, ctx: QueryContext, k: int, rng: np.random.Generator) -> Selection:
        p = ctx.params
        explore_share = float(p.get("explore_share", 0.25))
        min_reduction = float(p.get("min_reduction", 0.01))
        baseline = p.get("fallback", "least_confidence")
        a = ctx.assertions
        names = list(a.names)
        dependent = dict(zip(names, a.model_dependent, strict=True))
        flagged = {m: np.flatnonzero(a.severity[:, j] > 0) for j, m in enumerate(names)}
        prev = ctx.state.get("flags")
        r = rewards(prev or {}, flagged, ctx.candidates, dependent)
        next_state = {"round": int(ctx.state.get("round", 0)) + 1,
                      "flags": {m: f.tolist() for m, f in flagged.items()},
                      "rewards": {m: round(v, 6) for m, v in r.items()}}
        if prev is None:
            mode = "calibration"
        elif max(r.values(), default=0.0) < min_reduction:
            mode = "fallback"
        else:
            mode = "bal"
        next_state["mode"] = mode
        if mode == "fallback":
            sel = self._baseline(ctx, k, rng, baseline, np.zeros(ctx.n, bool), "fallback")
            return Selection(sel[0], sel[1], sel[2], next_state)
        # per-assertion pools of candidate items with their rank weights
        from scipy.stats import rankdata  # here, not at import: scipy.stats takes a second

        pools: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        for j, m in enumerate(names):
            items = flagged[m][ctx.candidates[flagged[m]]]
            if len(items):
                sev = a.severity[items, j]
                pools[m] = (items, rankdata(sev, method="average"), sev)
        # assertions that flag the same candidates this round are one arm: the first registered
        # stands for them (the others still appear in every pick's flagged_by)
        first: dict[bytes, str] = {}
        arms = {m for m in names if m in pools and first.setdefault(pools[m][0].tobytes(), m) == m}
        taken = np.zeros(ctx.n, dtype=bool)
        picks, scores, reasons = [], [], []
        fill = _Fill(self, ctx, rng, baseline)
        while len(picks) < k:
            live = [m for m in names if m in arms and (~taken[pools[m][0]]).any()]
            explore = mode == "calibration" or rng.random() < explore_share
            earning = [m for m in live if r[m] > 0]
            if not live or (not explore and not earning):
                # exploit surplus goes to the other assertions in proportion to r (spec 2.3.4):
                # none with r > 0 has items left, so this draw comes from the baseline
                item, reason = fill.next(taken)
                if item is None:
                    break
                taken[item] = True
                picks.append(item)
                scores.append(reason["value"])
                reasons.append(reason)
                continue
            if explore:
                m, how = live[int(rng.integers(len(live)))], "calibration" if mode == "calibration" else "explore"
            else:
                w = np.array([r[m] for m in earning])
                m, how = earning[int(rng.choice(len(earning), p=w / w.sum()))], "exploit"
            items, ranks, sev = pools[m]
            free = ~taken[items]
            if how == "exploit":
                w = ranks[free]
                pos = int(rng.choice(free.sum(), p=w / w.sum()))
            else:
                pos = int(rng.integers(free.sum()))
            idx = np.flatnonzero(free)[pos]
            item = int(items[idx])
            taken[item] = True
            picks.append(item)
            scores.append(float(sev[idx]))
            reasons.append({
                "strategy": self.name, "mode": how, "drawn_for": m,
                "flagged_by": [n for j, n in enumerate(names) if a.severity[item, j] > 0],
                "severity": round(float(sev[idx]), 6), "rank": float(ranks[idx]),
                "reward": round(r[m], 6), "value": round(float(sev[idx]), 6), "scorer": "assertions",
            })
        return Selection(np.array(picks, dtype=np.int64), np.array(scores, dtype=np.float64),
                         reasons, next_state)

    def _baseline(self, ctx, k, rng, baseline, taken, how):
        cand = ctx.candidates & ~taken
        if baseline == "random" or ctx.probs is None:
            idx = np.flatnonzero(cand)
            picks = rng.permutation(idx)[: min(k, len(idx))].astype(np.int64)
            scores, scorer = np.zeros(len(picks)), "random"
        else:
            s = get_scorer(baseline, "params['fallback']")(ctx.probs)
            picks, scorer = top_k(s, cand, k, rng), baseline
            scores = s[picks]
        reasons = [{"strategy": self.name, "mode": how, "scorer": scorer,
                    "value": round(float(v), 6)} for v in scores]
        return picks, np.asarray(scores, dtype=np.float64), reasons


class _Fill:
    """The baseline's ranking of the candidates, computed on first use and handed out one item
    at a time, skipping items already picked: fill draws sit where they were drawn in the
    ranking, so every prefix of the queue keeps the round's mix."""

    def __init__(self, bal: BAL, ctx: QueryContext, rng: np.random.Generator, baseline: str):
        self.bal, self.ctx, self.rng, self.baseline = bal, ctx, rng, baseline
        self.order: np.ndarray | None = None
        self.pos = 0

    def next(self, taken: np.ndarray) -> tuple[int | None, dict]:
        if self.order is None:
            k = int(self.ctx.candidates.sum())
            picks, _, reasons = self.bal._baseline(
                self.ctx, k, self.rng, self.baseline, np.zeros(self.ctx.n, bool), "fill")
            self.order, self.reasons = picks, reasons
        while self.pos < len(self.order) and taken[self.order[self.pos]]:
            self.pos += 1
        if self.pos >= len(self.order):
            return None, {}
        self.pos += 1
        return int(self.order[self.pos - 1]), self.reasons[self.pos - 1]
