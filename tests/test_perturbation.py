"""The structure-aware perturbed losses against full forward passes of the same network."""

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


@pytest.mark.parametrize("spec, hidden, output, loss", CASES, ids=[c[0] for c in CASES])
def test_every_perturbation_matches_a_full_forward_pass(spec, hidden, output, loss):
    net = MLP([3, 4, 5, 2], numbers=spec, hidden=hidden, output=output, loss=loss, l2="0.2")
    ns = net.numbers
    rng = np.random.default_rng(0)
    X = ns.asarray(rng.standard_normal((6, 3)))
    Y = ns.asarray(np.eye(2)[rng.integers(0, 2, 6)])
    evaluator = NetworkEvaluator(net, X, Y, net.params)
    coords = np.arange(net.n_params)
    shift = ns.asarray(rng.standard_normal(net.n_params) / 10)
    with ns.context():
        values = net.params + shift
    fast = ns.to_float(evaluator.at_shifts(coords, values))
    stack = np.tile(net.params, (net.n_params, 1))
    stack[coords, coords] = values
    slow = ns.to_float(net.loss(X, Y, params=stack))
    assert np.max(np.abs(fast - slow)) <= AGREEMENT_ULPS * ns.unit_roundoff * np.max(np.abs(slow))
    assert evaluator.evaluations == net.n_params
    assert ns.to_float(evaluator.at_point()) == ns.to_float(net.loss(X, Y))
