"""Seed 002: the Coursera ML 3-5-3 network, its regulariser, and whether C or F order matters.

The network (m = 5 examples, debug initialisation sin(1..n)/10) regularises its cost with
ΣΘ1² + ΣΘ2² - (b1·b1 - b2·b2) instead of leaving the bias columns out, while its gradient
leaves them out correctly. The user also asks whether unrolling the matrices in C
(numpy) or Fortran (Octave) order matters. Walkthrough: ``docs/seeds/seed002.md``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from precision_nn.gradcheck import check_gradient
from studies.seeds.replay import Replay, sigmoid

CASE = "seed002"
READING = (
    "The user's check fails on the regulariser alone (finding `regularization`): with "
    "λ = 0 the cost and gradient agree. Fixed, the check passes in C order and in F order "
    "alike, so the flattening order does not matter as long as the parameters are read and "
    "the gradient written in the same order; reading in F and writing in C fails with "
    "finding `layout`.")


SIZES = (3, 5, 3)
M = 5
LAMBDA = 3.0  # the regularised check of the exercise
EPSILON = 1e-4  # the exercise's step
SHAPES = [(SIZES[1], SIZES[0] + 1), (SIZES[2], SIZES[1] + 1)]


def debug_weights(fan_out: int, fan_in: int) -> np.ndarray:
    """The exercise's deterministic weights: sin(1), sin(2), ... over 10, shape (out, in+1)."""
    return (np.sin(np.arange(1, fan_out * (fan_in + 1) + 1)) / 10).reshape(fan_out, fan_in + 1)


def problem_data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Parameters (C order), inputs X (m × 3) and one-hot targets Y (m × 3)."""
    theta1 = debug_weights(SIZES[1], SIZES[0])
    theta2 = debug_weights(SIZES[2], SIZES[1])
    X = debug_weights(M, SIZES[0] - 1)
    labels = np.arange(M) % SIZES[2]  # classes 1, 2, 3, 1, 2 (0-based here)
    return np.concatenate([theta1.ravel(), theta2.ravel()]), X, np.eye(SIZES[2])[labels]


def _unroll(params: np.ndarray, order: str) -> tuple[np.ndarray, np.ndarray]:
    n1 = SHAPES[0][0] * SHAPES[0][1]
    return (params[:n1].reshape(SHAPES[0], order=order),
            params[n1:].reshape(SHAPES[1], order=order))



def _forward(theta1: np.ndarray, theta2: np.ndarray, X: np.ndarray) -> tuple:
    a1 = np.hstack([np.ones((len(X), 1)), X])
    z2 = a1 @ theta1.T
    a2 = np.hstack([np.ones((len(X), 1)), sigmoid(z2)])
    return a1, z2, a2, sigmoid(a2 @ theta2.T)


def cost(params: np.ndarray, *, buggy: bool = True, read: str = "C",
         lam: float = LAMBDA) -> Any:
    """Cross-entropy + (λ/2m)·penalty; ``buggy`` uses ΣΘ1² + ΣΘ2² - (b1·b1 - b2·b2)."""
    _, X, Y = problem_data()
    theta1, theta2 = _unroll(params, read)
    *_, a3 = _forward(theta1, theta2, X)
    data = -np.sum(Y * np.log(a3) + (1 - Y) * np.log(1 - a3)) / M
    b1, b2 = theta1[:, 0], theta2[:, 0]
    if buggy:
        penalty = np.sum(theta1 ** 2) + np.sum(theta2 ** 2) - (b1 @ b1 - b2 @ b2)
    else:
        penalty = np.sum(theta1[:, 1:] ** 2) + np.sum(theta2[:, 1:] ** 2)
    return data + lam / (2 * M) * penalty


def gradient(params: np.ndarray, *, read: str = "C", write: str = "C",
             lam: float = LAMBDA) -> np.ndarray:
    """Backprop with the bias columns left out of the penalty's gradient (correct)."""
    _, X, Y = problem_data()
    theta1, theta2 = _unroll(params, read)
    a1, z2, a2, a3 = _forward(theta1, theta2, X)
    d3 = a3 - Y
    d2 = (d3 @ theta2[:, 1:]) * sigmoid(z2) * (1 - sigmoid(z2))
    grads = [d2.T @ a1 / M, d3.T @ a2 / M]
    for g, theta in zip(grads, (theta1, theta2)):
        g[:, 1:] += lam / M * theta[:, 1:]
    return np.concatenate([g.ravel(order=write) for g in grads])


def user_difference(params: np.ndarray, *, buggy: bool = True) -> float:
    """The exercise's check: central differences at 1e-4, ‖n - a‖/‖n + a‖ (< 1e-9 hoped)."""
    a = gradient(params)
    n = np.empty_like(params)
    for i in range(params.size):
        e = np.zeros_like(params)
        e[i] = EPSILON
        n[i] = (cost(params + e, buggy=buggy) -
                cost(params - e, buggy=buggy)) / (2 * EPSILON)
    return float(np.linalg.norm(n - a) / np.linalg.norm(n + a))


def replay() -> Replay:
    """Replay seed 002: regulariser bug, then C, F and mixed layouts."""
    params, _, _ = problem_data()
    params_f = np.concatenate([m.ravel(order="F") for m in _unroll(params, "C")])
    shapes = {"shapes": SHAPES, "batch_size": M}
    reports = {
        "user": check_gradient(cost, gradient, params, **shapes),
        "fixed_C": check_gradient(lambda p: cost(p, buggy=False), gradient,
                                  params, **shapes),
        "fixed_F": check_gradient(lambda p: cost(p, buggy=False, read="F"),
                                  lambda p: gradient(p, read="F", write="F"),
                                  params_f, order="F", **shapes),
        "mixed_read_F_write_C": check_gradient(
            lambda p: cost(p, buggy=False, read="F"),
            lambda p: gradient(p, read="F", write="C"), params, **shapes),
    }
    user = user_difference(params)
    fixed = user_difference(params, buggy=False)
    saw = (f"The exercise's relative difference ‖n - a‖/‖n + a‖ is {user:.3g} with λ = "
           f"{LAMBDA:g} (it should be below 1e-9); with λ = 0 the cost and gradient agree "
           f"(the bug is in the regulariser), and after the fix it is {fixed:.2g}.")
    return Replay(CASE, saw, reports, {"user": user, "fixed_C": fixed},
                  {"lambda0_difference": _lambda0(params)})


def _lambda0(params: np.ndarray) -> float:
    a = gradient(params, lam=0.0)
    report = check_gradient(lambda p: cost(p, lam=0.0), lambda p: a, params)
    return report.relative_difference
