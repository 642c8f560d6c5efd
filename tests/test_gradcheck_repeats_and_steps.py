"""Evidence the check takes from grad and the user's options before any reference (red-team
review 2026-12-02, items 1, 9, 11): a gradient that differs between two calls at the same
x, an f that does, a step no difference can use, a gradient array of a narrower float."""

import warnings

import numpy as np
import pytest

from precision_nn.derivatives import derivative
from precision_nn.gradcheck import check_gradient
from precision_nn.numbers import number_system

RNG = np.random.default_rng(20261203)
_M = RNG.normal(size=(6, 6))
A = _M @ _M.T
X0 = RNG.normal(size=6)


def _quadratic(x):
    return 0.5 * x @ A @ x


# -- item 1: call-to-call scatter of grad is no rounding noise -----------------------------
@pytest.mark.parametrize("rel", [1e-2, 1e-5, 1e-8])
def test_a_gradient_with_random_error_is_never_passed(rel):
    """grad = A·x·(1 + rel·N(0, 1)) drawn afresh per call (a dropout mask resampled in
    backward). The old noise probe read its scatter over a few ulps of x as rounding
    and allowed 8 times it: it passed for rel up to 1e-2."""
    draws = np.random.default_rng(7)

    def grad(x):
        return (A @ x) * (1 + rel * draws.standard_normal(6))

    report = check_gradient(_quadratic, grad, X0)
    assert not report.passed, report
    assert report.kinds[0] == "nondeterministic", report
    finding = report.findings[0]
    assert finding.evidence["source"] == "grad"
    # the two calls differ by ~rel of the entries: the share is measured, not guessed
    assert rel / 100 < finding.evidence["share"] < 10 * rel
    assert "measured noise of the analytic gradient" not in report.tolerance_source


def test_a_fixed_bug_under_random_noise_is_not_passed():
    """A deterministic 1e-3 error in one entry under 3e-4 random noise passed before."""
    draws = np.random.default_rng(7)

    def grad(x):
        g = A @ x
        g[2] *= 1 + 1e-3
        return g * (1 + 3e-4 * draws.standard_normal(6))

    report = check_gradient(_quadratic, grad, X0)
    assert not report.passed and "nondeterministic" in report.kinds, report


def test_reordered_sums_between_calls_are_not_nondeterminism():
    """A gradient whose two calls sum in different orders (threaded reductions) differs
    by a few ulps: that is rounding, and a correct gradient of that kind passes."""
    calls = {"n": 0}

    def grad(x):
        calls["n"] += 1
        if calls["n"] % 2:
            return A @ x
        return np.array([np.sum((A[i] * x)[::-1]) for i in range(6)])

    first, second = grad(X0), grad(X0)
    assert np.any(first != second)  # the two orders really differ (in the last bits)
    report = check_gradient(_quadratic, grad, X0)
    assert report.passed and report.kinds == ("match",), report


def test_a_random_f_is_not_called_a_lower_precision():
    """f = Σ cosh x + 3e-11·N(0, 1): its noise is randomness, which repeats at x do not
    show, so it is not "something inside f computes at a lower precision" (the old
    message); the bug 10⁷ times the noise is still named at its coordinate."""
    x = RNG.normal(size=5)
    jitter = np.random.default_rng(23)

    def f(x):
        return np.sum(np.cosh(x)) + 3e-11 * jitter.normal()

    def grad(x):
        g = np.sinh(x)
        g[2] += 2e-3
        return g

    for g, bug in ((np.sinh, False), (grad, True)):
        report = check_gradient(f, g, x)
        assert not report.passed
        assert not any("lower precision (e.g." in fi.message for fi in report.findings)
        random = [fi for fi in report.findings if fi.evidence.get("nondeterministic")]
        assert random and random[0].kind == "precision_loss", report
        assert "differ by" in random[0].message
        named = [fi for fi in report.findings if fi.kind in ("mismatch", "localized")]
        assert bool(named) == bug and (not bug or 2 in named[0].evidence["coordinates"])


# -- item 9: a step no difference can use is refused at the entry -------------------------
_X9 = np.array([0.3, -1.2, 2.0])


def _f9(x):
    return np.sum(np.sin(x) * x)


def _g9(x):
    return np.cos(x) * x + np.sin(x)


@pytest.mark.parametrize("h", [0.0, -1e-3, np.nan, np.inf, 1e10, 1e-300])
@pytest.mark.parametrize("method", ["central", "forward"])
def test_an_unusable_step_is_refused_with_the_derivatives_message(h, method):
    """Before, these steps read as "f returns inf or NaN at or near x" (precision_loss)."""
    with pytest.raises(ValueError) as from_derivative:
        derivative(lambda t: np.sin(t) * t, _X9[0], method=method, h=h)
    with pytest.raises(ValueError) as from_check:
        check_gradient(_f9, _g9, _X9, method=method, h=h)
    assert str(from_check.value) == str(from_derivative.value)


def test_an_unusable_step_is_refused_for_directions_too():
    with pytest.raises(ValueError, match="positive and finite"):
        check_gradient(_f9, _g9, _X9, method="central", h=0.0, directions=2)


@pytest.mark.parametrize("h,kind", [(1e-12, "step_too_small"), (0.5, "step_too_large")])
def test_small_and_large_usable_steps_still_run(h, kind):
    report = check_gradient(_f9, _g9, _X9, method="central", h=h)
    assert report.kinds == (kind,), report


# -- item 11: the dtype of grad's array proves its rounding -------------------------------
DEC = number_system("decimal:30")


def _decimal_f(x):
    with DEC.context():
        return sum(v.exp() * v for v in x)


def _float_grad(x):  # right formula, returned as a float64 array
    with DEC.context():
        return np.array([float(v.exp() * (v + 1)) for v in x])


@pytest.mark.parametrize("n", [1, 2, 3, 4, 6])
def test_a_float64_gradient_array_in_a_decimal_check_is_named(n):
    """Below five entries the gaps were "mismatch ... analytic 3.42338 vs reference
    3.42338" (too few for the statistics of random-sign roundings); the dtype alone
    proves them."""
    warnings.simplefilter("ignore")
    x = DEC.asarray([f"{v:.6f}" for v in np.linspace(-1.5, 1.5, n)])
    report = check_gradient(_decimal_f, _float_grad, x, numbers=DEC)
    assert report.kinds == ("precision_loss",), report
    finding = report.findings[0]
    assert finding.evidence["dtype"] == "float64" and "float64" in finding.message
    assert finding.evidence["ulps"] <= 1.0  # a correct value rounded once: ≤ ½ ulp each


def test_a_bug_beyond_float64_in_a_float64_gradient_array_is_still_named():
    warnings.simplefilter("ignore")
    x = DEC.asarray(["0.3", "-1.2", "0.7"])

    def grad(x):
        g = _float_grad(x)
        g[1] *= 1 + 1e-9
        return g

    report = check_gradient(_decimal_f, grad, x, numbers=DEC)
    assert not report.passed
    rounding = [fi for fi in report.findings if fi.evidence.get("dtype") == "float64"]
    assert rounding and 1 not in rounding[0].evidence["coordinates"], report
    named = [fi for fi in report.findings if fi.kind in ("mismatch", "localized")]
    assert named and 1 in named[0].evidence["coordinates"], report


# -- item 14: a reference value without an error bar is not called "no finite value" -------
def test_a_value_whose_error_bar_overflows_is_not_called_no_value():
    """Σ exp(x) at x = (709, 1): the complex step's values are right (8.2e307, e) but its
    error estimate overflows near the float maximum; the name said "gave no finite value"."""
    warnings.simplefilter("ignore")
    x = np.array([709.0, 1.0])
    report = check_gradient(lambda v: np.sum(np.exp(v)), np.exp, x)
    assert "infinite error bar" in report.reference_name, report.reference_name
    assert "no finite value at" not in report.reference_name
    assert not report.passed  # coordinate 0 has no error bar: never passed
