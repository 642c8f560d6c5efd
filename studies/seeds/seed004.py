"""Seed 004: the W3 check of a 4-3-1 ReLU/sigmoid network: g'(z) for g'(a), and a missing 1/m.

The user's backprop feeds Z3 instead of a3 to the sigmoid's derivative written through
the activation, v(1 - v), and forgets to divide by m; a central difference at 1e-4 and
the complex step agree with each other and not with it. Walkthrough:
``docs/seeds/seed004.md``.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from precision_nn.gradcheck import check_gradient
from studies.seeds.replay import SEED, Replay, sigmoid

CASE = "seed004"
READING = (
    "Two bugs hide each other: with either one alone the check still fails (`mismatch` "
    "with only the 1/m fixed; `scale` by m = 8 with only σ' taken at a), and only both "
    "fixes pass. The central difference at 1e-4 was right all along: it agrees with the "
    "complex step (the numbers above), so the disagreement was never numerical.")


SIZES = (6, 4, 3, 1)
M = 8
EPSILON = 1e-4  # the user's step


def problem_data(seed: int = SEED) -> tuple[dict, np.ndarray, np.ndarray]:
    """Parameters W1..W3, b1..b3 (small, He-like), X (features × m) and labels Y (1 × m)."""
    rng = np.random.default_rng(seed)
    params = {}
    for k, (n_in, n_out) in enumerate(itertools.pairwise(SIZES), start=1):
        params[f"W{k}"] = rng.standard_normal((n_out, n_in)) * np.sqrt(2 / n_in)
        params[f"b{k}"] = np.zeros((n_out, 1))
    X = rng.standard_normal((SIZES[0], M))
    return params, X, (rng.random((1, M)) > 0.5).astype(float)


def _forward(params: dict, X: np.ndarray) -> dict:
    cache = {"a0": X}
    a = X
    for k in (1, 2, 3):
        z = params[f"W{k}"] @ a + params[f"b{k}"]
        a = sigmoid(z) if k == 3 else np.maximum(z, 0)  # ReLU keeps Im z where Re z > 0
        cache[f"Z{k}"], cache[f"a{k}"] = z, a
    return cache


def cost(W3: np.ndarray, seed: int = SEED) -> Any:
    """Mean cross-entropy as a function of W3 alone (the other parameters fixed)."""
    params, X, Y = problem_data(seed)
    a3 = _forward({**params, "W3": W3}, X)["a3"]
    return -np.sum(Y * np.log(a3) + (1 - Y) * np.log(1 - a3)) / M


def _sigmoid_back(v: np.ndarray) -> np.ndarray:
    """σ'(z) written through the activation: σ(z)(1 - σ(z)) = v(1 - v) with v = σ(z)."""
    return v * (1 - v)


def gradient(W3: np.ndarray, *, at: str = "z", mean: bool = False,
             seed: int = SEED) -> np.ndarray:
    """dJ/dW3 by the user's formula; ``at="z"`` feeds Z3 to `_sigmoid_back` (the bug)."""
    params, X, Y = problem_data(seed)
    cache = _forward({**params, "W3": W3}, X)
    a3 = cache["a3"]
    dz = -(Y / a3 - (1 - Y) / (1 - a3)) * _sigmoid_back(cache["Z3" if at == "z" else "a3"])
    grad = dz @ cache["a2"].T
    return grad / M if mean else grad


def replay(seed: int = SEED) -> Replay:
    """Replay seed 004: each bug alone, both, the fix, and the complex step."""
    params, _, _ = problem_data(seed)
    W3 = params["W3"]
    e = np.zeros_like(W3)
    e[0, 2] = EPSILON
    central = (cost(W3 + e) - cost(W3 - e)) / (2 * EPSILON)
    t = 1e-20
    complex_step = float(np.imag(cost(W3 + 1j * t * e / EPSILON)) / t)
    check = {"shapes": [W3.shape], "batch_size": M}
    reports = {name: check_gradient(cost, lambda w, at=at, mean=mean:
                                    gradient(w, at=at, mean=mean), W3, **check)
               for name, at, mean in (("user", "z", False), ("mean_only", "z", True),
                                      ("at_a_only", "a", False), ("fixed", "a", True))}
    reports["user_central_1e-4"] = check_gradient(
        cost, lambda w: gradient(w), W3, method="central", h=EPSILON,
        **check)
    user = float(gradient(W3)[0, 2])
    saw = (f"Third element of W3: central difference at 1e-4 gives {central:.9g}, the "
           f"user's backprop {user:.9g}; the complex step gives {complex_step:.9g}, "
           f"agreeing with the central difference to {abs(central - complex_step):.1e}.")
    return Replay(CASE, saw, reports, {"user": abs(user - central) / abs(central)},
                  {"central": central, "complex_step": complex_step, "backprop": user,
                   "fixed": float(gradient(W3, at="a", mean=True)[0, 2])})
