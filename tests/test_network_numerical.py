"""`MLP.numerical_gradient` (structure-aware) against the generic `gradient` of `MLP.loss`
and against exact gradients (backprop in a system with twice the digits)."""

from __future__ import annotations

import numpy as np
import pytest

from precision_nn.derivatives import gradient
from precision_nn.network import MLP

CASES = [("float64", "central"), ("float64", "richardson"), ("float64", "complex_step"),
         ("float32", "central"), ("mpf:30", "central"), ("mpf:30", "richardson"),
         ("decimal:25", "forward"), ("mpf:30", "complex_step")]
REFERENCE = {"float64": "mpf:40", "float32": "mpf:30", "mpf:30": "mpf:60",
             "decimal:25": "decimal:50"}


def _problem(spec):
    net = MLP([3, 4, 2], numbers=spec, hidden="tanh", l2="0.1", seed=4)
    rng = np.random.default_rng(2)
    X = net.numbers.asarray(rng.standard_normal((5, 3)) / 2)
    Y = net.numbers.asarray(np.eye(2)[rng.integers(0, 2, 5)])
    return net, X, Y


@pytest.mark.parametrize("spec, method", CASES, ids=[f"{s}-{m}" for s, m in CASES])
def test_structure_aware_agrees_with_generic_gradient(spec, method):
    """Same rule, same explicit step: the two differ only by the rounding of the rank-one
    update, which the rule amplifies by Σ|w|/h — both estimates' error bars cover it."""
    net, X, Y = _problem(spec)
    h = "1e-20" if method == "complex_step" else "0.001"
    fast = net.numerical_gradient(X, Y, method=method, h=h)
    # complex step hands f points of the complex counterpart: evaluate the converted net
    target = net.to(net.numbers.complex()) if method == "complex_step" else net
    generic = gradient(lambda p: target.loss(X, Y, params=p), net.params, method=method, h=h)
    diff = np.abs(net.numbers.to_float(fast.value - generic.value))
    assert np.all(diff <= fast.error + generic.error)
    assert fast.value.shape == (net.n_params,)


@pytest.mark.parametrize("spec, method", CASES, ids=[f"{s}-{m}" for s, m in CASES])
def test_error_estimate_bounds_the_true_error(spec, method):
    net, X, Y = _problem(spec)
    est = net.numerical_gradient(X, Y, method=method)
    ref = net.to(REFERENCE[spec])
    exact = ref.numbers.to_float(ref.gradient(ref.numbers.asarray(X), ref.numbers.asarray(Y)))
    true_error = np.abs(net.numbers.to_float(est.value) - exact)
    # float64 results cannot be compared more finely than float64 itself rounds
    floor = 2 * np.finfo(float).eps * np.abs(exact)
    covered = true_error <= est.error + floor
    assert np.mean(covered) >= 0.95, (true_error / est.error).max()


def test_bad_method_is_rejected():
    net, X, Y = _problem("float64")
    with pytest.raises(ValueError, match="`method` must be one of"):
        net.numerical_gradient(X, Y, method="secant")


def test_decimal_has_no_complex_step():
    net, X, Y = _problem("decimal:25")
    with pytest.raises(ValueError, match="complex"):
        net.numerical_gradient(X, Y, method="complex_step")
