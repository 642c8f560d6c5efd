"""derivative/gradient with method="taylor": the ball must contain the exact derivative
(closed forms, or backprop in mpmath at twice the digits) in every one of > 5,000 cases,
with a median radius within 100·u of the value; and f that cannot run on series is named."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest

from precision_nn.derivatives import Estimate, derivative, gradient
from precision_nn.derivatives.taylor_mode import SeriesError
from precision_nn.numbers import number_system
from precision_nn.numbers.arb_system import flint_precision, radius_ball
from precision_nn.numbers.literals import exact_parts
from studies.problems import FUNCTIONS, random_network_problem

flint = pytest.importorskip("flint")

DIGITS = 30
NS = number_system(f"arb:{DIGITS}")
U = NS.unit_roundoff


def _point(value):
    q = exact_parts(value, "reference")[0]
    with flint_precision(4000):
        return flint.arb(flint.fmpq(q.numerator, q.denominator))


def _relative(ball) -> float:
    mid = abs(ball.mid())
    with flint_precision(64):
        return float((radius_ball(ball) / mid).mid()) if not mid.is_zero() else 0.0


# functions with large higher derivatives, each with its closed-form derivative (mpmath)
WILD = {
    "sin(40x)": (lambda ns: lambda x: ns.sin(40 * x),
                 lambda x: 40 * mpmath.cos(40 * x)),
    "runge 1/(1+400x²)": (lambda ns: lambda x: 1 / (1 + 400 * x * x),
                          lambda x: -800 * x / (1 + 400 * x * x) ** 2),
    "tanh(30x)·exp(x)": (lambda ns: lambda x: ns.tanh(30 * x) * ns.exp(x),
                         lambda x: (30 * (1 - mpmath.tanh(30 * x) ** 2)
                                    + mpmath.tanh(30 * x)) * mpmath.exp(x)),
    "erf(10x)·cos(25x)": (lambda ns: lambda x: ns.erf(10 * x) * ns.cos(25 * x),
                          lambda x: 20 / mpmath.sqrt(mpmath.pi) * mpmath.exp(-100 * x * x)
                          * mpmath.cos(25 * x) - 25 * mpmath.erf(10 * x) * mpmath.sin(25 * x)),
    "softplus(50x)/50": (lambda ns: lambda x: ns.softplus(50 * x) / 50,
                         lambda x: 1 / (1 + mpmath.exp(-50 * x))),
    "sqrt(x)·log1p(x)": (lambda ns: lambda x: ns.sqrt(x) * ns.log1p(x),
                         lambda x: mpmath.log1p(x) / (2 * mpmath.sqrt(x))
                         + mpmath.sqrt(x) / (1 + x)),
}


def _scalar_cases():
    """(name, f in NS, exact derivative, x) — 3 study functions x 401 points + 6 wild x 300."""
    for problem in FUNCTIONS.values():
        for k in range(-200, 201):
            shifted = problem.shifted(k, spacing=128)
            yield problem.name, problem.function(NS), shifted.exact_derivative, shifted.x0
    for name, (build, mp_df) in WILD.items():
        for k in range(1, 301):
            x0 = f"{k / 301:.6f}"
            yield name, build(NS), lambda x0=x0, mp_df=mp_df: _mp(mp_df, x0), x0


def _mp(fn, x0):
    with mpmath.workdps(2 * DIGITS + 10):
        return fn(mpmath.mpf(x0))


def test_taylor_encloses_the_exact_derivative_in_every_scalar_case():
    outside, relatives, cases = [], [], 0
    for name, f, exact, x0 in _scalar_cases():
        est = derivative(f, x0, method="taylor", numbers=NS)
        cases += 1
        if not est.value.contains(_point(exact())):
            outside.append((name, x0, str(est.value)))
        relatives.append(_relative(est.value))
        assert est.error >= float(radius_ball(est.value).mid()) * (1 - 1e-15)
    assert cases >= 3000 and not outside, outside[:5]
    # measured median 9.6·u over these 3,003 cases (u = 2^-103); issue 14 asks <= 100·u
    assert np.median(relatives) <= 100 * U, np.median(relatives) / U


def test_taylor_gradient_of_random_network_losses_encloses_backprop_at_twice_the_digits():
    # the studies' random networks: dyadic weights and inputs (exact in every system),
    # sigmoid or tanh, lambda in {0.01, 0.1, 1}; reference: backprop in mpf:260
    # Dyadic data can put a pre-activation exactly at 0, where the stable sigmoid branches
    # on Re z > 0: series arithmetic cannot prove a derivative through a tie (it cannot
    # tell a smooth function's two forms from ReLU's kink), so such a network raises,
    # naming the tie; it is counted, never skipped silently.
    outside, relatives, entries, ties = [], [], 0, 0
    for seed in range(70):
        problem = random_network_problem(seed)
        net = problem.network(NS)
        try:
            est = gradient(problem.loss_function(NS), NS.asarray(problem.params),
                           method="taylor", numbers=NS)
        except SeriesError as exc:
            assert "cannot decide 0 > 0 for a first-order series" in str(exc)
            ties += 1
            continue
        for i, (ball, ref) in enumerate(zip(est.value, problem.reference_gradient())):
            entries += 1
            if not ball.contains(_point(ref)):
                outside.append((seed, i, str(ball), str(ref)))
        relatives += [_relative(b) for b in est.value]
        assert est.certified and est.evaluations == net.n_params
    assert entries >= 2500 and not outside and ties <= 10, (entries, ties, outside[:5])
    # measured median 55·u over these 2,929 entries of 69 networks (1 of 70 has a tie):
    # every ball adds the radii of a whole loss evaluation (sums over examples and units,
    # two layers, the rounded λ). Held to 200·u here
    assert np.median(relatives) <= 200 * U, np.median(relatives) / U


def test_taylor_estimate_says_it_is_certified_and_takes_no_step():
    est = derivative(NS.exp, "1", method="taylor", numbers=NS)
    assert isinstance(est, Estimate) and est.certified and est.method == "taylor"
    assert est.h == 0.0 and est.evaluations == 1 and "proven" in est.note
    assert not derivative(np.exp, 1.0).certified  # an estimate is not a proof
    g = gradient(lambda x: np.sum(NS.sigmoid(x) * x), ["0.1", "-2", "3"], method="taylor",
                 numbers=NS)
    assert g.value.shape == g.error.shape == (3,) and np.all(g.error < 1e-29)


def test_taylor_in_acb_differentiates_holomorphic_f():
    acb = number_system("acb:30")
    est = derivative(lambda z: acb.exp(z) * acb.erf(z), "0.5+0.25j", method="taylor",
                     numbers=acb)
    with mpmath.workdps(70):
        z = mpmath.mpc("0.5", "0.25")
        exact = mpmath.exp(z) * (mpmath.erf(z) + 2 / mpmath.sqrt(mpmath.pi) * mpmath.exp(-z * z))
    assert est.value.contains(flint.acb(_point(exact.real), _point(exact.imag)))
    assert est.error < 1e-28


def test_batched_and_one_by_one_passes_agree():
    x = ["0.3", "-1.2", "2.5"]
    stacked = gradient(lambda v: np.sum(NS.log1p(NS.exp(v)) * v, axis=-1), x,
                       method="taylor", numbers=NS)
    alone = gradient(lambda v: sum(NS.log1p(NS.exp(v)) * v), x, method="taylor", numbers=NS)
    assert all(a.overlaps(b) for a, b in zip(stacked.value, alone.value))
    assert stacked.evaluations == alone.evaluations == 3


@pytest.mark.parametrize(("f", "x", "match"), [
    (lambda v: float(v[0]) + v[1], ["1", "2"],
     r"entry \(0,\) of x: TypeError: float\(\) of a first-order ball series"),
    (lambda v: v[0] if v[0] > 0 else -v[0], ["0", "1"],
     r"entry \(0,\) of x: ValueError: cannot decide 0 > 0 for a first-order series"),
    (lambda v: abs(v[1]) + v[0], ["1", "0"], r"entry \(1,\) of x.*abs of a ball series"),
    (lambda v: np.float64(1.5) * v[0] ** 1.5, ["1", "2"], r"entry \(0,\) of x: TypeError"),
    (lambda v: mpmath.exp(v[0]), ["1", "2"], r"entry \(0,\) of x"),
    (lambda v: NS.to_float(v)[0], ["1", "2"], r"entry \(0,\) of x: TypeError: to_float"),
    (lambda v: 1.5, ["1", "2"], r"returned a float instead of a series"),
])
def test_f_that_cannot_run_on_series_is_named_with_the_entry_and_the_cause(f, x, match):
    with pytest.raises(SeriesError, match=match):
        gradient(f, x, method="taylor", numbers=NS)


def test_taylor_validation_names_the_fix():
    with pytest.raises(ValueError, match=r"needs a ball system.*'mpf:30'.*numbers='arb:N'"):
        derivative(np.exp, "1", method="taylor", numbers="mpf:30")
    with pytest.raises(ValueError, match=r"`h` is not used by method='taylor'"):
        derivative(NS.exp, "1", method="taylor", numbers=NS, h="0.1")
    with pytest.raises(ValueError, match="must be a scalar for `derivative`"):
        derivative(NS.exp, ["1", "2"], method="taylor", numbers=NS)
    with pytest.raises(ValueError, match="must be finite"):
        derivative(NS.exp, "inf", method="taylor", numbers=NS)
