"""The structure-aware perturbed losses against full forward passes of the same network.

Both losses are compared in the network's own system: the difference is formed there
(exactly, before any rounding to float64), so an error of 1e-20 in a 30-digit system
shows instead of vanishing when both values round to the same double.
"""

from __future__ import annotations

import numpy as np
import pytest

from precision_nn.network import MLP
from precision_nn.perturbation import NetworkEvaluator

# The rank-one update z + d·ã and a full recomputation Σ W'ã round differently, by at most
# a few ulps of the terms; the losses then agree to ~(fan_in + depth)·u·|J|. We allow 64·u.
AGREEMENT_ULPS = 64

CASES = [("float32", "relu", "sigmoid", "cross_entropy"),
         ("float64", "tanh", "softmax", "softmax_cross_entropy"),
         ("complex128", "erf_logistic", "identity", "squared_error"),
         ("decimal:30", "sigmoid", "sigmoid", "cross_entropy"),
         ("mpf:30", "relu", "softmax", "softmax_cross_entropy"),
         ("mpc:25", "tanh", "tanh", "squared_error")]


def _setup(spec, hidden, output, loss):
    net = MLP([3, 4, 5, 2], numbers=spec, hidden=hidden, output=output, loss=loss, l2="0.2")
    ns = net.numbers
    rng = np.random.default_rng(0)
    Y = ns.asarray(np.eye(2)[rng.integers(0, 2, 6)])
    # data and shifts divided by 7 in the system carry all its digits: a detour of any
    # of them through float64 would change them (float64-born values would survive it)
    with ns.context():
        X = ns.asarray(rng.standard_normal((6, 3))) / 7
        shift = ns.asarray(rng.standard_normal(net.n_params)) / 70
        if ns.is_complex:  # an imaginary part on every shift, as a complex step has
            shift = shift + ns.asarray(1j * rng.standard_normal(net.n_params)) / 70
    return net, ns, X, Y, shift


def _gap_in_ulps(ns, fast, slow) -> float:
    """max |fast - slow| / (u · max |slow|), the difference formed in `ns` itself."""
    with ns.context():  # Decimal subtraction rounds to the thread's context
        gap = np.abs(fast - slow)
    scale = float(np.max(np.abs(ns.to_float(slow))))
    return float(np.max(np.real(ns.to_float(gap)))) / (ns.unit_roundoff * scale)


@pytest.mark.parametrize("spec, hidden, output, loss", CASES, ids=[c[0] for c in CASES])
def test_every_perturbation_matches_a_full_forward_pass(spec, hidden, output, loss):
    net, ns, X, Y, shift = _setup(spec, hidden, output, loss)
    evaluator = NetworkEvaluator(net, X, Y, net.params)
    coords = np.arange(net.n_params)
    with ns.context():
        values = net.params + shift
    fast = evaluator.at_shifts(coords, values)
    stack = np.tile(net.params, (net.n_params, 1))
    stack[coords, coords] = values
    slow = net.loss(X, Y, params=stack)
    assert _gap_in_ulps(ns, fast, slow) <= AGREEMENT_ULPS, spec
    assert evaluator.evaluations == net.n_params
    # the base point is the same forward pass: identical, not merely close
    assert evaluator.at_point() == net.loss(X, Y)
