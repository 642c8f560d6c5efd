"""The analytic gradient's rounding measured by running grad in the wider system.

Before (15f0048) the rounding allowance was the model ``128·u·(|a_i| + max|a|)``: 6% in
float16, 1.5e-5 in float32, so a gradient 5% too large in float16 (``1.05·3w²`` for
``Σ w³``) PASSED, and in float32 a 3e-6 relative error did too. Now grad also runs on x
converted to the wider system; ``|a − a'|`` is the narrower run's rounding at x (a wrong
formula is wrong in both runs), and it replaces the model where smaller.

References: closed forms (3w², sin w + w cos w), exact at these points to far below
every tolerance asserted.
"""

from __future__ import annotations

import decimal

import numpy as np
import pytest

from precision_nn.derivatives import gradient
from precision_nn.gradcheck import check_gradient
from precision_nn.gradcheck.measurements import wider_rounding
from precision_nn.gradcheck.setup import validate
from precision_nn.numbers import number_system


def _cubes(w):
    return np.sum(w**3, axis=-1)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_a_five_percent_bug_fails_in_float16_as_a_constant_factor():
    x = number_system("float16").asarray([0.5, 1.5, -0.7])
    report = check_gradient(_cubes, lambda w: 3 * w * w * np.float16(1.05), x)
    assert not report.passed and not report.undecided, report
    assert [f.kind for f in report.findings] == ["scale"], report
    assert "measured instead" in report.tolerance_source


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_the_correct_float16_gradient_still_passes():
    x = number_system("float16").asarray([0.5, 1.5, -0.7])
    assert check_gradient(_cubes, lambda w: 3 * w * w, x).passed


def _sin_w(w):
    return np.sum(np.sin(w) * w, axis=-1)


def _sin_w_gradient(w):
    return np.sin(w) + w * np.cos(w)


@pytest.mark.parametrize("relative", [3e-6, 1e-5])
def test_a_few_ulps_bug_fails_in_float32(relative):
    x = number_system("float32").asarray(np.random.default_rng(0).normal(size=6))
    report = check_gradient(_sin_w, lambda w: _sin_w_gradient(w) * (1 + np.float32(relative)),
                            x)
    assert not report.passed and not report.undecided, report


def test_the_correct_float32_gradient_passes_on_random_points():
    rng = np.random.default_rng(1)
    for _ in range(20):
        x = number_system("float32").asarray(rng.normal(size=8) * 2)
        assert check_gradient(_sin_w, _sin_w_gradient, x).passed


def _setup(x):
    return validate(_cubes, _cubes, x, method="auto", h=None, numbers=None, shapes=None,
                    order="C", directions=None, batch_size=None)


def test_a_grad_that_casts_back_to_the_narrow_float_measures_nothing():
    """It returns float32 values in a float64 array: the same numbers as the float32
    run, so the wider run computed nothing more and the model stays (None)."""
    x = number_system("float32").asarray([0.3, -1.2, 0.7])
    setup = _setup(x)

    def narrow(w):
        return (3 * np.asarray(w, dtype=np.float32) ** 2).astype(np.float64)

    analytic = setup.ns.asarray(narrow(x))
    assert wider_rounding(narrow, setup, analytic) is None
    assert check_gradient(_cubes, narrow, x).passed


def test_a_grad_that_returns_the_narrow_dtype_measures_nothing():
    x = number_system("float32").asarray([0.3, -1.2, 0.7])
    setup = _setup(x)

    def narrow(w):
        return (3 * np.asarray(w) ** 2).astype(np.float32)

    assert wider_rounding(narrow, setup, setup.ns.asarray(narrow(x))) is None


def test_decimal_gradients_keep_the_model():
    """An object array of Decimals shows nothing of the precision it was computed at."""
    ns = number_system("decimal:20")
    x = ns.asarray(["0.3", "-1.2", "0.7"])
    setup = _setup(x)
    grad = lambda w: np.array([3 * v * v for v in w], dtype=object)
    with decimal.localcontext() as ctx:
        ctx.prec = 20
        analytic = ns.asarray(grad(x))
    assert wider_rounding(grad, setup, analytic) is None


def test_the_measured_rounding_is_the_narrow_runs_error():
    x = number_system("float16").asarray([0.5, 1.5, -0.7])
    setup = _setup(x)
    grad = lambda w: 3 * w * w
    analytic = setup.ns.asarray(grad(x))
    gap, model = wider_rounding(grad, setup, analytic)
    measured = gap + model
    exact = 3 * x.astype(np.float64) ** 2
    true_error = np.abs(analytic.astype(np.float64) - exact)
    # plus the wider run's own rounding, bounded by the model: 128·u(float32)·(|a'|+max|a'|)
    wider_bound = 128 * 2.0**-24 * (exact + np.max(exact))
    assert np.all(true_error <= measured)
    assert np.all(measured <= true_error + wider_bound * (1 + 1e-6))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_richardson_in_float16_neither_overflows_nor_gives_up():
    """4^j·T overflowed float16 (max 65504) from |T| > 4 at column 7, and a large first
    step's quotient overflowed: the check's reference then failed with 'f is not finite'.
    Now the columns stop where 4^j − 1 leaves the range and such a level restarts."""
    x = number_system("float16").asarray([0.5, 1.5, -0.7])
    est = gradient(_cubes, x, method="richardson")
    exact = 3 * x.astype(np.float64) ** 2
    assert np.all(np.abs(est.value.astype(np.float64) - exact) <= est.error)
