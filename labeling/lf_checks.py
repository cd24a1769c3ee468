"""What registration reports about LFs, from their votes and faults on a sample of the pool.

An LF that faults on every sampled item is an error (it would abstain everywhere); one that votes
outside -1..K-1 (an invalid vote, counted as a fault by :func:`labeling.apply.apply_lfs`) or
faults on some items is a warning, as is one that abstains on every sampled item. Pure: votes
and fault counts in, per-LF findings out.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from labeling.errors import InvalidInput

__all__ = ["check_lfs"]

INVALID_VOTE = "InvalidVote"


def check_lfs(names: Sequence[str], votes: np.ndarray, faults: Sequence[int],
              first_errors: Sequence[str | None], n_classes: int) -> dict[str, list[dict]]:
    """Findings per LF on a sample.

    Parameters
    ----------
    names : m LF names
    votes : (n, m) int votes on the n sampled items, -1 = abstain (faults abstain)
    faults : (m,) items on which each LF raised or returned an invalid vote
    first_errors : (m,) each LF's first fault message, None without faults
    n_classes : K

    Returns
    -------
    {name: [{"level": "error" | "warning", "message": str}, ...]} for the LFs with findings;
    empty when the sample is empty (nothing to judge by).
    """
    votes = np.asarray(votes)
    m = len(names)
    if votes.ndim != 2 or votes.shape[1] != m or len(faults) != m or len(first_errors) != m:
        raise InvalidInput(f"need votes (n, {m}), and {m} fault counts and first errors; got "
                           f"votes {votes.shape}, {len(faults)} and {len(first_errors)}")
    n = votes.shape[0]
    out: dict[str, list[dict]] = {}
    if n == 0:
        return out
    for j, name in enumerate(names):
        found = []
        count, first = int(faults[j]), first_errors[j] or ""
        if first.startswith(INVALID_VOTE):
            found.append(("error" if count == n else "warning",
                          (f"votes outside -1..{n_classes - 1} on {count} of {n} sampled items; "
                          f"first: {first}")))
        elif count == n:
            found.append(("error", (f"faults on every one of {n} sampled items (it would abstain "
                                   f"everywhere); first: {first}")))
        elif count:
            found.append(("warning", f"faults on {count} of {n} sampled items; first: {first}"))
        if count == 0 and not (votes[:, j] >= 0).any():
            found.append(("warning", f"abstains on every one of {n} sampled items"))
        if found:
            out[str(name)] = [{"level": level, "message": msg} for level, msg in found]
    return out
