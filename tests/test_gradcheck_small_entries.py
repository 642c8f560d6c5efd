"""Small entries that pass only if they cancel larger terms (`decisions.cancellation_only`).

The rounding allowance ``128·u·(|a_i| + max|a|)`` lets a small entry err by u times the
largest entry, as a sum that cancels terms of that size does. Without a test of that
hypothesis a relative bug of ``u·max|a|/|a_i|`` in a small entry passes: the check must
say it cannot decide, unless the gradient is seen to cancel (its noise near x) or a
wider reference closes the gap.
"""

import numpy as np

from precision_nn.gradcheck import check_gradient

# gradient entries from 1.3 to 1e10: the norm-wise allowance 128·u·1e10 ≈ 1.4e-4 covers a
# 1e-5 relative bug in the entry of size 1.3, which the entry's own 128·u·1.3 (2e-14) and
# the reference's error bar (~1e-7 there) do not
X = np.geomspace(1e-10, 0.77, 12)


def _sum_log(v):
    with np.errstate(invalid="ignore"):  # Richardson's widest steps leave x > 0
        return np.sum(np.log(v))


def test_a_small_entry_bug_hidden_by_the_largest_entry_is_undecided_not_passed():
    def grad(v):
        g = 1 / v
        g[-1] *= 1 + 1e-5
        return g

    report = check_gradient(_sum_log, grad, X)
    assert not report.passed and report.undecided, report
    finding = next(f for f in report.findings if f.evidence.get("cancellation"))
    assert finding.evidence["coordinates"] == [11]
    assert "cancelling" in finding.message and "more digits" in finding.message


def test_the_same_entries_pass_when_correct():
    assert check_gradient(_sum_log, lambda v: 1 / v, X).passed


def test_an_entry_that_really_cancels_large_terms_is_not_accused():
    # each entry formed as (1/x_i + S) - S with S = Σ 1/x ≈ 1.1e10: it errs by up to
    # u·S ≈ 1e-6 (the entry of size 1.3 by 1e-6 relative); a correct gradient that
    # rounds so is never called wrong
    def grad(v):
        s = np.sum(1 / v)
        return (1 / v + s) - s

    assert abs(grad(X)[-1] - 1 / X[-1]) > 1e-8  # the cancellation is real at this point
    report = check_gradient(_sum_log, grad, X)
    assert report.passed, report


# 1/(x - c) summed, with x_0 at 1e-5 from the pole: entries -1e10 and -2.04. The complex
# step's bar allows its own norm-wise rounding, κ·u·4·1e10 ≈ 4e-5, at every entry
POLE = 1.0 + 1e-5
X_POLE = np.array([1.0, 0.3])


def _pole(v):
    return np.sum(1 / (v - POLE))


def _pole_grad(v):
    return -1 / (v - POLE) ** 2


def test_a_1e6_bug_beside_a_pole_is_not_passed_through_the_complex_steps_bar():
    report = check_gradient(_pole, lambda v: _pole_grad(v) * np.array([1, 1 + 1e-6]), X_POLE)
    assert not report.passed, report
    assert report.reference_name.startswith("complex step")  # not called off
    assert next(f for f in report.findings
                if f.evidence.get("cancellation")).evidence["coordinates"] == [1]


def test_the_pole_gradient_passes_when_correct():
    assert check_gradient(_pole, _pole_grad, X_POLE).passed


def test_a_pass_states_the_largest_relative_error_it_would_have_let_through():
    report = check_gradient(_sum_log, lambda v: 1 / v, X)
    assert report.passed
    scale = np.maximum(np.abs(report.analytic), np.abs(report.reference))
    loosest = float(np.max(report.tolerance / scale))
    # the smallest entry (1.3, beside 1e10) has the loosest tolerance, ~1e-4 relative
    assert 1e-5 < loosest < 1e-3
    assert f"(loosest: {loosest:.2g} relative, at [11])" in report.verdict()


# Σ exp(x) at [50, 1, 0.5]: separable, each entry exp(x_i) (closed form) rounds at its own
# size, but f's noise (u·5e21 per evaluation) widens the complex step's bars norm-wise
X_RANGE = np.array([50.0, 1.0, 0.5])


def test_a_sign_slip_beside_an_entry_1e21_larger_is_undecided_not_passed():
    # the widening for f's noise assumes cancellation as the shared rounding does: it
    # stays out of the entry part, so the slip needs the hypothesis and is not passed
    def grad(v):
        return np.exp(v) * np.array([1.0, -1.0, 1.0])

    report = check_gradient(lambda v: np.sum(np.exp(v)), grad, X_RANGE)
    assert not report.passed and report.undecided, report
    finding = next(f for f in report.findings if f.evidence.get("cancellation"))
    assert finding.evidence["coordinates"] == [1]


def test_the_same_wide_range_passes_when_correct():
    assert check_gradient(lambda v: np.sum(np.exp(v)), np.exp, X_RANGE).passed
