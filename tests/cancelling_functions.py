"""Functions that cancel to ~0 at their point, with closed-form gradients: one evaluation
rounds by ~u times f's terms there while ``u·|f|`` is ~0. Shared by the derivative tests
(step rules and error bars) and the gradient-check tests (no false accusation)."""

from __future__ import annotations

import numpy as np

__all__ = ["CANCELLING", "FIT_MATRIX"]

SYMMETRIC = np.array([0.3, -0.3, 1.1, -1.1, 2.0, -2.0])
FIT_MATRIX = np.array([[1.0, 2.0, -0.5], [0.3, -1.2, 0.7], [2.0, 0.1, 1.5],
                       [-0.4, 0.9, 0.2]])
FIT_POINT = np.array([0.7, -1.3, 0.4])
FIT_TARGET = FIT_MATRIX @ FIT_POINT  # an exact fit: every residual (A w − b)_i rounds to ~0
LOGITS = np.array([0.5, -1.0, 2.0, 0.25])


def _log_sum_exp(z):
    top = np.max(z)
    return top + np.log(np.sum(np.exp(z - top)))


def _softmax(z):
    e = np.exp(z - np.max(z))
    return e / np.sum(e)


LSE_AT_LOGITS = float(_log_sum_exp(LOGITS))

# name: (f of one point, its gradient in closed form, the point where f cancels)
CANCELLING = {
    "sin at symmetric points": (lambda x: np.sum(np.sin(x)), np.cos, SYMMETRIC),
    "cubes of opposite pairs": (lambda x: np.sum(x**3), lambda x: 3 * x**2,
                                np.array([0.7, -0.7, 1.9, -1.9, 1.3, -1.3])),
    "log-sum-exp difference": (lambda z: _log_sum_exp(z) - LSE_AT_LOGITS, _softmax,
                               LOGITS),
    "residual at an exact fit": (lambda w: np.sum(FIT_MATRIX @ w - FIT_TARGET),
                                 lambda w: FIT_MATRIX.T @ np.ones(4), FIT_POINT),
}
