"""select() validates the context once, with messages that name the parameter."""

from __future__ import annotations

import numpy as np
import pytest

from labeling.errors import InvalidInput
from strategies import QueryContext, available, register, select
from strategies.base import AssertionVotes
from tests.strategies.test_conformance import K, N, full_context

GOOD = np.random.default_rng(0)


def bad_probs(kind: str) -> np.ndarray:
    p = full_context().probs.copy()
    if kind == "nan":
        p[3, 0] = np.nan
    elif kind == "sum":
        p[5] *= 2
    elif kind == "negative":
        p[7] = [-0.5, 1.0, 0.5]
    return p


CASES = [
    ({"probs": np.ones((N, K + 1), dtype=np.float32) / (K + 1)}, "probs must have shape"),
    ({"probs": bad_probs("nan")}, "probs must be finite"),
    ({"probs": bad_probs("sum")}, "probs rows must sum to 1"),
    ({"probs": bad_probs("negative")}, "probs must be >= 0"),
    ({"probs": [[1.0, 0.0, 0.0]] * N}, "probs must be a numpy array"),
    ({"probs": np.eye(K, dtype=np.int64)[np.zeros(N, dtype=int)]}, "probs must be a float array"),
    ({"lm_probs": np.full((N, K), 0.5, dtype=np.float32)}, "lm_probs rows must sum to 1"),
    ({"mc_probs": np.full((N, K), 1 / K)}, "mc_probs must have shape"),
    ({"n_classes": 1}, "n_classes must be an integer >= 2"),
    ({"candidates": np.ones(N, dtype=np.int8)}, "candidates must be a 1-d bool array"),
    ({"candidates": None}, "candidates must be a 1-d bool array"),
    ({"labeled": np.zeros(N - 1, dtype=bool)}, "labeled must be"),
    ({"labeled": np.zeros(N, dtype=int)}, "labeled must be"),
    ({"labels": np.full(N, K)}, "labels must hold -1 or a class"),
    ({"labels": np.zeros(N, dtype=float)}, "labels must be an integer array"),
    ({"votes": np.full((N, 2), K, dtype=np.int8)}, "votes must hold -1 or a class"),
    ({"votes": np.zeros(N, dtype=np.int8)}, "votes must have shape"),
    ({"features": np.zeros((N + 1, 4))}, "features must be"),
    ({"features": "text"}, "features must be"),
    ({"assertions": AssertionVotes(["a"], -np.ones((N, 1)), [True])}, "assertions must have"),
    ({"assertions": AssertionVotes(["a", "b"], np.ones((N, 1)), [True])}, "assertions must have"),
    ({"params": None}, "params must be a dict"),
    ({"state": []}, "state must be a dict"),
    ({"eval_metrics": 0.5}, "eval_metrics must be a dict"),
]


@pytest.mark.parametrize(("override", "message"), CASES)
def test_bad_context_names_the_field(override, message):
    with pytest.raises(InvalidInput, match=message):
        select("random", full_context(**override), 5, np.random.default_rng(0))


@pytest.mark.parametrize("k", [-1, 1.5, True, "3", None])
def test_bad_k(k):
    with pytest.raises(InvalidInput, match="k must be an integer >= 0"):
        select("random", full_context(), k, GOOD)


@pytest.mark.parametrize("rng", [0, np.random.RandomState(0), None])
def test_rng_must_be_a_generator(rng):
    with pytest.raises(InvalidInput, match="rng must be a numpy.random.Generator"):
        select("random", full_context(), 5, rng)


def test_unknown_strategy_lists_the_available_ones():
    with pytest.raises(InvalidInput, match="unknown strategy 'psychic'") as err:
        select("psychic", full_context(), 5, GOOD)
    assert all(name in str(err.value) for name in available())


def test_register_rejects_unknown_required_fields():
    class Needy:
        name = "needy"
        requires = frozenset({"crystal_ball"})

        def __call__(self, ctx, k, rng):  # pragma: no cover - never called
            raise AssertionError

    with pytest.raises(InvalidInput, match="crystal_ball"):
        register(Needy())
    assert "needy" not in available()


def test_numpy_integer_k_and_float32_probs_are_accepted():
    ctx = QueryContext(n_classes=2, candidates=np.ones(4, dtype=bool),
                       probs=np.array([[0.5, 0.5], [1, 0], [0.9, 0.1], [0.2, 0.8]], np.float32))
    sel = select("margin", ctx, np.int64(2), GOOD)
    assert sel.indices.tolist() == [0, 3]
