"""`NumberSystem.accurate_sum` and the loss it serves: one evaluation of a network loss is
accurate to the couple of roundings every finite-difference error bar assumes
(`derivatives.steps.NOISE_ROUNDINGS` = 2).

numpy sums an ``object`` array one term after the other: the 80-term loss of a
[20, 30, 10] × 8 network erred by up to 4.9u in mpf:50 (and the structure-aware central
gradient's bars were short at 2% of its entries, by up to 1.8×; arb:50 2.1×). References:
mpmath at 400 bits, the sum of the exact values of the terms.
"""

from __future__ import annotations

import mpmath
import numpy as np
import pytest

from precision_nn.network import MLP
from precision_nn.numbers import number_system
from tests.test_numbers import exact

OBJECT_SYSTEMS = ["mpf:50", "mpfr:50", "decimal:28", "arb:50"]


@pytest.mark.parametrize("spec", OBJECT_SYSTEMS)
def test_a_sum_of_many_terms_is_rounded_about_once(spec):
    """300 positive terms of spread magnitudes in each of 4 rows: within 1.5u of the
    exact sum of the terms' values (one rounding, 0.5u to 1u by the system, plus the
    guard digits' share); sequential addition errs by several u here."""
    ns = number_system(spec)
    rng = np.random.default_rng(5)
    values = ns.asarray(rng.uniform(0.1, 1.0, (4, 3, 100)) * 10.0 ** rng.integers(-3, 3,
                                                                              (4, 3, 100)))
    with ns.context():
        sums = ns.accurate_sum(values, (-2, -1))
    assert sums.shape == (4,)
    with mpmath.workprec(400):
        for r in range(4):
            want = mpmath.fsum(exact(mpmath.mp, v) for v in values[r].ravel())
            err = abs(exact(mpmath.mp, sums[r]) - want) / want
            assert err <= 1.5 * ns.unit_roundoff, (spec, r, float(err / ns.unit_roundoff))


def test_trailing_axes_only_and_a_scalar_for_a_full_sum():
    ns = number_system("mpf:30")
    values = ns.asarray(np.arange(24.0).reshape(2, 3, 4))
    with ns.context():
        assert ns.accurate_sum(values, (-2, -1)).shape == (2,)
        assert float(ns.accurate_sum(values[0], (-2, -1))) == float(np.arange(12.0).sum())
        with pytest.raises(ValueError, match="trailing"):
            ns.accurate_sum(values, (0,))


@pytest.mark.parametrize("spec", OBJECT_SYSTEMS)
def test_a_network_loss_is_accurate_to_two_roundings(spec):
    """The assumption behind every finite-difference bar, for the library's own loss:
    |J − J_exact| <= 2u·|J| over random [20, 30, 10] × 8 networks (cross-entropy, L2).
    arb's midpoints of exp and log1p are not correctly rounded (the radius holds their
    error): 4u there (measured 2.8u with the accurate sum)."""
    ns = number_system(spec)
    worst = 0.0
    for seed in range(6):
        rng = np.random.default_rng(seed)
        base = MLP([20, 30, 10], seed=seed, l2=0.01)
        X = rng.normal(size=(8, 20))
        Y = np.eye(10)[rng.integers(0, 10, size=8)]
        net, ref = base.to(spec), base.to("mpf:120")
        J = net.loss(ns.asarray(X), ns.asarray(Y))
        with mpmath.workprec(400):
            J_ref = exact(mpmath.mp, ref.loss(ref.numbers.asarray(X), ref.numbers.asarray(Y)))
            worst = max(worst, float(abs(exact(mpmath.mp, J) - J_ref) / J_ref
                                     / ns.unit_roundoff))
    assert worst <= (4.0 if ns.is_ball else 2.0), (spec, worst)


@pytest.mark.parametrize("spec", ["mpf:50", "arb:50"])
def test_structure_aware_central_bars_bound_every_entry(spec):
    """The bars of `MLP.numerical_gradient(method="central")` on the [20, 30, 10] × 8 net
    bound the true error at all 940 entries (reference: backprop in mpf:170 at the same
    parameters, good to ~1e-50 here, far below bars of ~1e-33); with sequential sums 18
    (mpf:50) and 23 (arb:50) entries were short, by up to 1.8× and 2.1×."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(8, 20))
    Y = np.eye(10)[rng.integers(0, 10, size=8)]
    base = MLP([20, 30, 10], seed=0)
    ref = base.to("mpf:170")
    exact_gradient = ref.gradient(ref.numbers.asarray(X), ref.numbers.asarray(Y))
    net = base.to(spec)
    est = net.numerical_gradient(net.numbers.asarray(X), net.numbers.asarray(Y),
                                 method="central")
    with mpmath.workprec(600):
        err = np.array([float(abs(exact(mpmath.mp, a) - b))
                        for a, b in zip(est.value, exact_gradient)])
    bars = np.asarray(est.error, dtype=float)
    assert np.all(err <= bars), (int(np.sum(err > bars)), float(np.max(err / bars)))
