"""Loss functions, mean over the m examples, each beside its gradient in the output.

All are holomorphic in the network output (no ``abs``, no conjugate), so the complex-step
derivative of the loss is exact to rounding.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from precision_nn.numbers import NumberSystem

__all__ = ["LOSSES", "Loss", "get_loss"]


@dataclass(frozen=True)
class Loss:
    """``value(ns, a, y)``: the loss per parameter set (sums over the last two axes);
    ``grad(ns, a, y)``: ∂L/∂a; ``fused_delta``: ∂L/∂z for its canonical output activation,
    which avoids dividing by a(1-a) or forming the softmax Jacobian."""

    name: str
    value: Callable[[NumberSystem, Any, Any], Any]
    grad: Callable[[NumberSystem, Any, Any], Any]
    canonical_output: str
    target_range: tuple[int, int] | None = None


def _m(a: Any) -> int:
    return np.shape(a)[-2]


# Coursera convention: J = -(1/m) Σ_i Σ_k [y log a + (1-y) log(1-a)]
def _cross_entropy(ns, a, y):
    terms = y * ns.log(a) + (ns.one - y) * ns.log(ns.one - a)
    return -np.sum(terms, axis=(-2, -1)) / _m(a)


def _cross_entropy_grad(ns, a, y):
    return (a - y) / (a * (ns.one - a)) / _m(a)


# J = -(1/m) Σ y log softmax(z)
def _softmax_cross_entropy(ns, a, y):
    return -np.sum(y * ns.log(a), axis=(-2, -1)) / _m(a)


def _softmax_cross_entropy_grad(ns, a, y):
    return -(y / a) / _m(a)


# J = (1/2m) Σ (y - a)²
def _squared_error(ns, a, y):
    r = y - a
    return np.sum(r * r, axis=(-2, -1)) / (2 * _m(a))


def _squared_error_grad(ns, a, y):
    return (a - y) / _m(a)


LOSSES: dict[str, Loss] = {
    "cross_entropy": Loss("cross_entropy", _cross_entropy, _cross_entropy_grad,
                          canonical_output="sigmoid", target_range=(0, 1)),
    "softmax_cross_entropy": Loss("softmax_cross_entropy", _softmax_cross_entropy,
                                  _softmax_cross_entropy_grad, canonical_output="softmax",
                                  target_range=(0, 1)),
    "squared_error": Loss("squared_error", _squared_error, _squared_error_grad,
                          canonical_output="identity"),
}


def fused_delta(ns: NumberSystem, a: Any, y: Any) -> Any:
    """∂L/∂z for a canonical (activation, loss) pair: (a - y)/m for all three."""
    return (a - y) / _m(a)


def get_loss(name: str) -> Loss:
    """The loss called `name`; `ValueError` naming `loss` when unknown."""
    if name not in LOSSES:
        raise ValueError(f"`loss` must be one of {sorted(LOSSES)}; got {name!r}.")
    return LOSSES[name]
