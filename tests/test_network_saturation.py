"""Backprop of a saturated network keeps each entry's own relative accuracy.

At saturation σ'(z) and tanh'(z) are tiny, and the textbook forms a(1−a) and 1−a² cancel:
in float64 σ(40) rounds to 1 and a(1−a) to 0 against σ'(40) = 4.2e-18; in mpf:30 they keep
13 of 30 digits. Every earlier layer's gradient is multiplied by those factors, so the
network's gradient entries lost the digits while staying tiny beside the largest entry,
and the gradient check called the library's own backprop wrong ("a missing chain-rule
factor"). The reference here is a forward pass written again in mpmath at 60 digits,
differentiated by `mpmath.diff`: independent of the library's code.
"""

from __future__ import annotations

import mpmath
import numpy as np
import pytest

from precision_nn.network import MLP
from precision_nn.numbers import number_system
from tests.test_numbers import exact

SIZES = [3, 4, 2]
# float32 values (held exactly by every system tested), so all of them compute one function
X = np.array([[0.9, -1.1, 0.4], [-0.7, 0.5, 1.2], [0.3, 0.8, -0.6]]).astype(np.float32)
Y = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
SCALE = 40  # weights ×40: |z| of 10..60, deep in saturation at both layers


def _params() -> np.ndarray:
    return (MLP(SIZES, seed=2).params * SCALE).astype(np.float32).astype(np.float64)


def _mp_loss(flat: list, hidden: str) -> mpmath.mpf:
    """The squared-error loss of the [3, 4, 2] net (hidden activation, sigmoid output),
    written from its definition: a = g(W[:, 0] + W[:, 1:] a_prev), J = Σ (a − y)² / 2m."""
    g = {"tanh": mpmath.tanh, "sigmoid": lambda t: 1 / (1 + mpmath.exp(-t))}
    total, start, m = mpmath.mpf(0), 0, len(X)
    shapes = [(SIZES[k + 1], SIZES[k] + 1) for k in range(len(SIZES) - 1)]
    for row, target in zip(X, Y):
        a = [mpmath.mpf(float(v)) for v in row]
        start = 0
        for k, (fan_out, fan_in1) in enumerate(shapes):
            W = [flat[start + i * fan_in1:start + (i + 1) * fan_in1] for i in range(fan_out)]
            start += fan_out * fan_in1
            act = g[hidden] if k + 1 < len(shapes) else g["sigmoid"]
            a = [act(w[0] + mpmath.fsum(wj * aj for wj, aj in zip(w[1:], a))) for w in W]
        total += mpmath.fsum((ai - float(t)) ** 2 for ai, t in zip(a, target))
    return total / (2 * m)


def _reference(params: np.ndarray, hidden: str) -> list:
    with mpmath.workdps(60):
        flat = [mpmath.mpf(float(p)) for p in params]
        out = []
        for i in range(len(flat)):
            def along(t, i=i):
                moved = list(flat)
                moved[i] = flat[i] + t
                return _mp_loss(moved, hidden)
            out.append(mpmath.diff(along, 0))
        return out


@pytest.fixture(scope="module")
def references():
    return {hidden: _reference(_params(), hidden) for hidden in ("tanh", "sigmoid")}


@pytest.mark.parametrize("hidden", ["tanh", "sigmoid"])
@pytest.mark.parametrize("spec", ["float32", "float64", "mpf:30", "decimal:30", "arb:30"])
def test_every_entry_keeps_its_own_relative_accuracy(references, hidden, spec):
    ns = number_system(spec)
    params = _params()
    net = MLP(SIZES, hidden=hidden, output="sigmoid", loss="squared_error", init=params,
              numbers=spec)
    g = net.gradient(ns.asarray(X), ns.asarray(Y))
    exact_grad = references[hidden]
    with mpmath.workdps(60):
        errors = [abs(exact(mpmath.mp, v) - e) / abs(e) for v, e in zip(g, exact_grad)
                  if e != 0]
        worst = float(max(errors))
    # each entry is a product of ~6 factors, each within a few u, summed over 3 examples;
    # the hidden deltas Wᵀδ sum 2 output units of either sign, which may cancel a little.
    # Measured 13-87u over these 10 cases: 256u leaves 3×. The a(1−a) and 1−a² forms
    # gave 1.0 relative in float64 (0 for σ' = 4e-18) and 1e-13 in mpf:30, ~10^17 u.
    spread = max(abs(float(e)) for e in exact_grad) / min(abs(float(e)) for e in exact_grad
                                                          if e != 0)
    assert spread > 1e6, "the net is not saturated: the test would not test anything"
    assert worst <= 256 * ns.unit_roundoff, (spec, hidden, worst)
