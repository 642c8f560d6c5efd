"""Beyond the float range: 1000-digit error bars that bound their true errors.

References are mpmath at more than twice the digits (exp and its derivative are exp); a
bound holds when the reported error is at least the true one, compared in mpmath so that
neither side is rounded to a float on the way.
"""

from __future__ import annotations

import mpmath
import numpy as np
import pytest

import precision_nn as pnn

# (spec, method, the goal for |D - exp(0.5)|): central u^(2/3) ~ 1e-667, Richardson
# beyond 1e-900, complex step at rounding (h = u·scale: truncation h²/6 ~ 1e-2000)
GOALS = [
    ("mpf:1000", "central", "1e-660"),
    ("mpf:1000", "richardson", "1e-900"),
    ("mpf:1000", "complex_step", "1e-990"),
    ("decimal:1000", "central", "1e-660"),
    ("mpfr:1000", "central", "1e-660"),
    ("mpfr:1000", "complex_step", "1e-990"),
    ("arb:1000", "central", "1e-660"),
    ("arb:1000", "richardson", "1e-900"),
    ("decimal:1000", "richardson", "1e-900"),
]


def _exact_exp_half(digits: int) -> mpmath.mpf:
    with mpmath.workdps(2 * digits + 20):
        return mpmath.exp(mpmath.mpf(1) / 2)


def _as_mpf(value) -> mpmath.mpf:
    """An mpf with every digit of `value` (str() of an mpf would round it to dps digits;
    an Arb ball is taken at its midpoint)."""
    if hasattr(value, "_mpc_"):
        value = value.real
    if hasattr(value, "mid") and hasattr(value, "man_exp"):
        man, exp = value.mid().man_exp()
        return mpmath.ldexp(mpmath.mpf(int(man)), int(exp))
    return mpmath.mpf(value) if hasattr(value, "_mpf_") else mpmath.mpf(str(value))


@pytest.mark.parametrize(("spec", "method", "goal"), GOALS, ids=lambda v: str(v))
def test_derivative_of_exp_at_1000_digits_is_bounded_and_meets_the_goal(spec, method, goal):
    ns = pnn.number_system(spec)
    system = ns.complex() if method == "complex_step" else ns
    est = pnn.derivative(system.exp, ns.scalar("0.5"), method=method, numbers=ns)
    with mpmath.workdps(2 * ns.digits + 20):
        true_error = abs(_as_mpf(est.value) - _exact_exp_half(ns.digits))
        bar = mpmath.mpf(str(est.error))
        assert bar > 0, "an error bar of 0 is an underflow, not a bound"
        assert true_error <= bar, (true_error, bar)
        assert true_error <= mpmath.mpf(goal)


@pytest.mark.parametrize("spec", ["mpf:1000", "decimal:1000", "mpc:400", "mpfr:1000", "mpfrc:400", "arb:1000"])
def test_unit_roundoff_beyond_the_float_range_is_representable(spec):
    ns = pnn.number_system(spec)
    assert ns.unit_roundoff > 0
    assert ns.error_dtype == np.longdouble
    assert np.log2(ns.unit_roundoff) == pytest.approx(ns.log2_unit_roundoff, abs=1e-9)


def test_magnitudes_do_not_underflow():
    ns = pnn.number_system("mpf:1000")
    tiny = ns.asarray(["-3e-800", "2.5e-1200"])
    assert np.all(ns.magnitude(tiny) > 0)
    signed = ns.to_error_float(tiny)
    assert signed[0] < 0 < signed[1]
    assert float(signed[1] / np.longdouble("2.5e-1200")) == pytest.approx(1, rel=1e-15)


def _quadratic_problem(ns):
    """f = Σexp(x)/3 + xᵀAx/2 with its exact gradient exp(x)/3 + Ax."""
    A = ns.asarray([["2", "0.5", "0"], ["0.5", "1", "0.25"], ["0", "0.25", "3"]])

    def f(v):
        v = np.asarray(v)
        if v.ndim == 2:
            return np.array([f(row) for row in v], dtype=object)
        return ns.exp(v).sum() / 3 + (v @ (A @ v)) / 2

    def grad(v):
        return ns.exp(v) / 3 + A @ v

    return f, grad, ns.asarray(["0.3", "-0.7", "1.1"])


def test_taylor_test_passes_a_correct_gradient_at_310_digits():
    ns = pnn.number_system("mpf:310")
    f, grad, x = _quadratic_problem(ns)
    report = pnn.taylor_test(f, grad, x)
    assert report.passed and report.decided
    assert report.observed_order == pytest.approx(2, abs=0.1)


def test_taylor_test_fails_a_gradient_wrong_by_1e_minus_100_at_310_digits():
    # the remainder e·h·vᵀg outgrows h² below h ~ e and the floor u·|f| above h ~ u/e, so
    # the test resolves relative errors e > √u ≈ 1e-155
    ns = pnn.number_system("mpf:310")
    f, grad, x = _quadratic_problem(ns)
    report = pnn.taylor_test(f, lambda v: grad(v) * (ns.one + ns.scalar("1e-100")), x)
    assert not report.passed


def test_check_gradient_at_400_digits_catches_an_error_of_1e_minus_50():
    ns = pnn.number_system("mpf:400")
    f, grad, x = _quadratic_problem(ns)
    assert pnn.check_gradient(f, grad, x).passed
    wrong = pnn.check_gradient(f, lambda v: grad(v) * (ns.one + ns.scalar("1e-50")), x)
    assert not wrong.passed
