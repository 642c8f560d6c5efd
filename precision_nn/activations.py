"""Activation functions, each beside its derivative, written once against a NumberSystem.

Every function is complex-step safe: comparisons act on the real part only, so for
``z = x + i·h`` with tiny ``h`` the imaginary part of ``g(z)`` is ``h·g'(x)`` to rounding.
Elementwise activations also give ``derivative(ns, z, a, saved)``; softmax (output only)
gives the vector–Jacobian product ``vjp(ns, z, a, saved, grad_a)`` instead.

``saved`` is what the forward pass of backprop kept for the backward rule
(`Activation.forward`): the sigmoid keeps ``σ(−z)``, which its value was formed beside, so
``σ' = σ(z)·σ(−z)`` costs one product instead of a second exponential; the others keep
nothing (None).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from precision_nn.numbers import NumberSystem

__all__ = ["ACTIVATIONS", "Activation", "branch_positive", "get_activation", "real_positive",
           "signed_exp"]


@dataclass(frozen=True)
class Activation:
    """An activation ``a = g(z)`` and its backward rule ``∂L/∂z`` from ``∂L/∂a``.

    ``value(ns, z)`` is ``a``; ``forward(ns, z)`` is ``(a, saved)``, the same ``a`` and what
    the backward rule ``vjp(ns, z, a, saved, grad_a)`` reuses (None when the activation
    keeps nothing; then `forward` is `value` with None beside it).
    """

    name: str
    value: Callable[[NumberSystem, Any], Any]
    vjp: Callable[[NumberSystem, Any, Any, Any, Any], Any]
    elementwise: bool = True
    keep: Callable[[NumberSystem, Any], tuple[Any, Any]] | None = None

    def forward(self, ns: NumberSystem, z: Any) -> tuple[Any, Any]:
        """``(g(z), saved)``: the value and what the backward rule reuses."""
        if self.keep is None:
            return self.value(ns, z), None
        return self.keep(ns, z)


def real_positive(ns: NumberSystem, z: Any) -> np.ndarray:
    """Re z > 0 as a boolean array (comparisons never see the imaginary part)."""
    return np.asarray(ns.real_part(z) > 0, dtype=bool)


def branch_positive(ns: NumberSystem, z: Any) -> np.ndarray:
    """Re z > 0 for choosing between two forms of ONE function (both valid everywhere, each
    the better-conditioned on its side), so a tie may go either way: in ball arithmetic an
    entry whose ball straddles 0 cannot be ordered, and takes the ``Re z <= 0`` form,
    which still gives a rigorous enclosure (`NumberSystem.branch_positive`). (ReLU's kink
    is a real branch: `real_positive` keeps its error there.)"""
    return ns.branch_positive(z)


def signed_exp(ns: NumberSystem, z: Any) -> tuple[np.ndarray, Any]:
    """``(Re z > 0, exp(-s·z))`` with ``s = +1`` where Re z > 0 and ``-1`` elsewhere: the
    exponential of minus "|z|", at most 1 in modulus, so it never overflows.

    ``s·z`` is ``z`` or ``-z`` per element, a branch chosen on the real part only; every
    formula built on it is one holomorphic function on each side of Re z = 0 and the two
    sides agree there, so the complex step through it stays exact.
    """
    positive = branch_positive(ns, z)
    return positive, ns.exp(np.where(positive, -z, z))


def _elementwise(derivative: Callable[[NumberSystem, Any, Any, Any], Any]):
    return lambda ns, z, a, saved, grad_a: grad_a * derivative(ns, z, a, saved)


# sigmoid: σ(z) = 1/(1+e^{-z}). The system evaluates σ (`NumberSystem.sigmoid`: from
# e^{-|z|} <= 1, so nothing overflows; balls directly), and for backprop σ(z) beside
# σ(-z) from the same exponential (`NumberSystem.sigmoid_with_complement`).
def _sigmoid(ns, z):
    return ns.sigmoid(z)


def _sigmoid_keep(ns, z):
    return ns.sigmoid_with_complement(z)


# σ' = σ(z)·σ(-z): a product of two values each accurate to a few u relative, so σ' is too,
# everywhere. Not a(1-a): at saturation 1 - a cancels (z = 40 in float64: a rounds to 1
# and a(1-a) to 0 against σ' = 4e-18; in mpf:30 at z = 40 it keeps 13 of 30 digits), and
# backprop multiplies that loss into every earlier layer. σ(-z) is the complement the
# forward pass kept (`saved`); it is formed from e^{-|z|} <= 1 as σ(z) was, so nothing
# cancels and the derivative costs one product.
def _sigmoid_derivative(ns, z, a, saved):
    return a * saved


# tanh' = 1 - tanh² = sech² z = 4e/(1+e)² with e = e^{-2|z|} (even, as for σ'): not 1 - a²,
# which cancels at saturation as a(1-a) does (tanh(20) rounds to 1 in float64)
def _tanh_derivative(ns, z, a, saved):
    _, e = signed_exp(ns, z + z)
    r = ns.one / (ns.one + e)
    return 4 * e * r * r


# relu(z) = z where Re z > 0, else 0; relu' = 1 there, else 0 (the kink at 0 gets 0)
def _relu(ns, z):
    return np.where(real_positive(ns, z), z, ns.zero)


def _relu_derivative(ns, z, a, saved):
    return np.where(real_positive(ns, z), ns.one, ns.zero)


# erf_logistic(z) = (1 + erf z)/2, derivative e^{-z²}/√π
def _erf_logistic(ns, z):
    return (ns.one + ns.erf(z)) / 2


def _erf_logistic_derivative(ns, z, a, saved):
    return ns.exp(-(z * z)) / ns.sqrt(ns.pi)


def _identity(ns, z):
    return z + ns.zero  # a copy in the system's type


def _identity_derivative(ns, z, a, saved):
    return np.ones_like(z) * ns.one


# softmax over the last axis, shifted by max Re z for range safety (the shift is a real
# constant per row, so it cancels exactly and keeps the complex step intact)
def _softmax(ns, z):
    shift = np.max(ns.real_part(z), axis=-1, keepdims=True)
    e = ns.exp(z - shift)
    return e / np.sum(e, axis=-1, keepdims=True)


# softmax vjp: ∂L/∂z_j = a_j (∂L/∂a_j - Σ_k a_k ∂L/∂a_k)
def _softmax_vjp(ns, z, a, saved, grad_a):
    return a * (grad_a - np.sum(grad_a * a, axis=-1, keepdims=True))


ACTIVATIONS: dict[str, Activation] = {
    "sigmoid": Activation("sigmoid", _sigmoid, _elementwise(_sigmoid_derivative),
                          keep=_sigmoid_keep),
    "tanh": Activation("tanh", lambda ns, z: ns.tanh(z), _elementwise(_tanh_derivative)),
    "relu": Activation("relu", _relu, _elementwise(_relu_derivative)),
    "erf_logistic": Activation("erf_logistic", _erf_logistic,
                               _elementwise(_erf_logistic_derivative)),
    "identity": Activation("identity", _identity, _elementwise(_identity_derivative)),
    "softmax": Activation("softmax", _softmax, _softmax_vjp, elementwise=False),
}


def get_activation(name: str, *, argument: str = "activation") -> Activation:
    """The activation called `name`; `ValueError` naming `argument` when unknown."""
    if name not in ACTIVATIONS:
        raise ValueError(f"`{argument}` must be one of {sorted(ACTIVATIONS)}; got {name!r}.")
    return ACTIVATIONS[name]
