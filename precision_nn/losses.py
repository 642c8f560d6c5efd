"""Loss functions, mean over the m examples, each beside its gradient.

A loss paired with its canonical output activation (cross-entropy with sigmoid, softmax
cross-entropy with softmax, squared error with identity) is evaluated from the output
pre-activation ``z`` in numerically stable forms, and its backprop ``∂J/∂z`` likewise:

- sigmoid cross-entropy, per entry ``max(z, 0) − y·z + log1p(e^{−|z|})``, written as
  ``(1−y)·z`` or ``−y·z`` (by the sign of Re z) plus the softplus term: three terms ≥ 0
  for y ∈ [0, 1], so no cancellation, and ``e^{−|z|} <= 1`` never overflows;
- softmax cross-entropy through log-sum-exp about the top logit ``t`` of each row:
  ``−log softmax_k = (z_t − z_k) + log1p(Σ_{j≠t} e^{z_j − z_t})``, again terms ≥ 0.

The textbook forms ``−y log a − (1−y) log(1−a)`` and ``−Σ y log a`` lose everything once
``a`` rounds to 0 or 1: NaN (0·log 0) for a confident correct softmax class at a logit gap
of 20 in float16, 110 in float32, 760 in float64, and inf instead of 40 for a sigmoid
cross-entropy at z = 40, y = 0. The stable forms are accurate to a few u relative there.

Every branch is chosen on the real part only (``max`` of Re z, the argmax of Re z), and
both sides of a branch are the same holomorphic function, so the complex-step derivative
of the loss is exact to rounding. ``value(ns, a, y)`` (from the outputs) serves
non-canonical pairs (cross-entropy on an erf_logistic output), with ``0·log 0 = 0``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from precision_nn.numbers import NumberSystem
from precision_nn.numbers.composite import rank_one_stacks

__all__ = ["LOSSES", "Loss", "get_loss"]


@dataclass(frozen=True)
class Loss:
    """A loss and its backward rules.

    ``value(ns, a, y)``: the loss per parameter set from the outputs (sums over the last two
    axes, mean over examples); ``grad(ns, a, y)``: ∂L/∂a; ``from_logits(ns, z, y)``: the
    same loss of ``canonical_output(z)``, in a stable form; ``logit_delta(ns, z, a, y)``:
    ∂L/∂z for the canonical output, formed without dividing by a(1−a) or building the
    softmax Jacobian; ``rank_one(ns, z, y, u, v)``, if given: `from_logits` of each
    ``z + u_r ⊗ v_r`` without forming the stacks where the system can (`from_rank_one`).
    """

    name: str
    value: Callable[[NumberSystem, Any, Any], Any]
    grad: Callable[[NumberSystem, Any, Any], Any]
    canonical_output: str
    from_logits: Callable[[NumberSystem, Any, Any], Any]
    logit_delta: Callable[[NumberSystem, Any, Any, Any], Any]
    target_range: tuple[int, int] | None = None
    rank_one: Callable[[NumberSystem, Any, Any, Any, Any], Any] | None = None

    def from_rank_one(self, ns: NumberSystem, z: Any, y: Any, u: Any, v: Any) -> Any:
        """`from_logits` of each logit matrix ``z + u_r ⊗ v_r`` (z, y (m, n); u (R, m);
        v (R, n)), one loss per r: a last hidden layer's perturbations move the output
        logits by such rank-one updates (`precision_nn.perturbation`). The loss's own
        `rank_one` where it has one, else the stacks formed in pieces."""
        if self.rank_one is not None:
            return self.rank_one(ns, z, y, u, v)
        return rank_one_stacks(z, u, v, lambda stack: self.from_logits(ns, stack, y))


def _m(a: Any) -> int:
    return np.shape(a)[-2]


def _mean(ns: NumberSystem, terms: Any) -> Any:
    """Σ over examples and outputs, divided by m (the last two axes), summed by the
    system's `accurate_sum` (a loss is one evaluation a finite difference rounds)."""
    return ns.accurate_sum(terms, (-2, -1)) / _m(terms)


def _xlogy(ns: NumberSystem, y: Any, a: Any) -> Any:
    """y·log a with 0·log 0 = 0 (a target of 0 ignores its output, as the limit says)."""
    absent = np.asarray(ns.real_part(y) == 0, dtype=bool)
    return y * ns.log(np.where(absent, ns.one, a))


# -- cross-entropy on sigmoid outputs -------------------------------------------------------
# Coursera convention: J = -(1/m) Σ_i Σ_k [y log a + (1-y) log(1-a)]
def _cross_entropy(ns, a, y):
    ones = ns.one - y
    return -_mean(ns, _xlogy(ns, y, a) + _xlogy(ns, ones, ns.one - a))


def _cross_entropy_grad(ns, a, y):
    return (a - y) / (a * (ns.one - a)) / _m(a)


# with a = σ(z): -y log σ(z) - (1-y) log σ(-z) = max(z, 0) - y·z + log1p(e^{-|z|})
# (softplus(z) = max(z, 0) + log1p(e^{-|z|})); max(z, 0) - y·z is (1-y)·z for Re z > 0 and
# -y·z otherwise, each >= 0 for y in [0, 1]. The system forms the entries
# (`NumberSystem.sigmoid_cross_entropy`: that formula, or a fused evaluation of it) and
# sums them over examples and outputs.
def _sigmoid_cross_entropy_logits(ns, z, y):
    return ns.sigmoid_cross_entropy_sum(z, y) / _m(z)


# the same of each z + u_r ⊗ v_r, the entries summed by the system (which may form the
# stacks on float parts: `NumberSystem.sigmoid_cross_entropy_rank_one_sum`)
def _sigmoid_cross_entropy_rank_one(ns, z, y, u, v):
    return ns.sigmoid_cross_entropy_rank_one_sum(z, y, u, v) / _m(z)


# ∂/∂z = σ(z) - y, formed by the system without the cancellation of σ(z) - 1 at saturation
# (`NumberSystem.sigmoid_residual`: (1-y)·σ(z) - y·σ(-z), two terms >= 0 for y in [0, 1]).
def _sigmoid_delta(ns, z, a, y):
    return ns.sigmoid_residual(z, y) / _m(z)


# -- softmax cross-entropy ------------------------------------------------------------------
# J = -(1/m) Σ y log softmax(z)
def _softmax_cross_entropy(ns, a, y):
    return -_mean(ns, _xlogy(ns, y, a))


def _softmax_cross_entropy_grad(ns, a, y):
    return -(y / a) / _m(a)


def _top(ns: NumberSystem, z: Any) -> tuple[np.ndarray, Any, Any, Any]:
    """Per row: the index t of the largest Re z (kept as an axis), the gaps z_t − z_k
    (Re >= 0, exactly 0 at t), the terms e^{z_k − z_t} with the top one set to 0, and their
    sum S = Σ_{j≠t} e^{z_j − z_t} (each term <= 1 in modulus).

    The shift is the complex z_t itself, not its real part, so e^{z_t − z_t} = 1 exactly
    and the top term can be taken out of the sum into log1p's 1 also for complex z. Any t
    gives the same function (only the conditioning is best at the top), so balls that
    cannot be ordered take t = 0.
    """
    try:
        top = np.argmax(ns.real_part(z), axis=-1)[..., None]
    except ValueError:  # balls that cannot be ordered: any t gives the same function
        top = np.zeros((*np.shape(z)[:-1], 1), dtype=np.intp)
    gap = np.take_along_axis(z, top, axis=-1) - z
    e = ns.exp(-gap)
    np.put_along_axis(e, top, ns.zero, axis=-1)
    return top, gap, e, np.sum(e, axis=-1, keepdims=True)


# -log softmax_k = lse - z_k = (z_t - z_k) + log1p(S); so J = (1/m) Σ_i Σ_k y_k [gap_k + log1p S]
def _softmax_cross_entropy_logits(ns, z, y):
    _, gap, _, rest = _top(ns, z)
    return _mean(ns, y * (gap + ns.log1p(rest)))


# ∂/∂z_k = (Σ_j y_j)·a_k − y_k (Σ y = 1 for one-hot rows, but soft targets need not sum
# to 1). a_k = e_k/(1+S) off the top; at the top a_t = 1 − S/(1+S), so the top entry is
# (Σ_{j≠t} y_j) − (Σ y)·S/(1+S), which keeps S/(1+S) where a_t − 1 would cancel to 0.
def _softmax_delta(ns, z, a, y):
    top, _, e, rest = _top(ns, z)
    y = np.broadcast_to(y, np.shape(z))
    denominator = ns.one + rest
    total = np.sum(y, axis=-1, keepdims=True)
    y_off_top = y.copy()
    np.put_along_axis(y_off_top, top, ns.zero, axis=-1)
    delta = total * (e / denominator) - y
    top_entry = np.sum(y_off_top, axis=-1, keepdims=True) - total * (rest / denominator)
    np.put_along_axis(delta, top, top_entry, axis=-1)
    return delta / _m(z)


# -- squared error --------------------------------------------------------------------------
# J = (1/2m) Σ (y - a)²
def _squared_error(ns, a, y):
    r = y - a
    return ns.accurate_sum(r * r, (-2, -1)) / (2 * _m(a))


def _squared_error_grad(ns, a, y):
    return (a - y) / _m(a)


LOSSES: dict[str, Loss] = {
    "cross_entropy": Loss(
        "cross_entropy", _cross_entropy, _cross_entropy_grad, canonical_output="sigmoid",
        from_logits=_sigmoid_cross_entropy_logits, logit_delta=_sigmoid_delta,
        target_range=(0, 1), rank_one=_sigmoid_cross_entropy_rank_one),
    "softmax_cross_entropy": Loss(
        "softmax_cross_entropy", _softmax_cross_entropy, _softmax_cross_entropy_grad,
        canonical_output="softmax", from_logits=_softmax_cross_entropy_logits,
        logit_delta=_softmax_delta, target_range=(0, 1)),
    "squared_error": Loss(
        "squared_error", _squared_error, _squared_error_grad, canonical_output="identity",
        from_logits=_squared_error, logit_delta=lambda ns, z, a, y: (z - y) / _m(z)),
}


def get_loss(name: str) -> Loss:
    """The loss called `name`; `ValueError` naming `loss` when unknown."""
    if name not in LOSSES:
        raise ValueError(f"`loss` must be one of {sorted(LOSSES)}; got {name!r}.")
    return LOSSES[name]
