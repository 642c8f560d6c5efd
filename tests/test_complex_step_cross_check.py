"""The complex step's real cross-check along a random direction (`complex_step.cross_check`).

An f that drops the imaginary part in one of its terms (``abs``, a real-part cast) has a
complex step that agrees with itself at both of its steps but differentiates only the
other terms: a gradient that forgets the same term then matches it. The cross-check
compares ``Σ d_i·D_i`` with a real central difference along a random ``d`` at a step of
~u^(1/3), good to ~1e-11 of f's scale in float64. References: closed forms.
"""

from __future__ import annotations

import numpy as np
import pytest

from precision_nn.derivatives import derivative, gradient
from precision_nn.gradcheck import check_gradient
from precision_nn.network import MLP

RNG = np.random.default_rng(7)
A, B, W = RNG.normal(size=(30, 20)), RNG.normal(size=30), RNG.normal(size=20)


def _least_squares(w):
    return 0.5 * np.mean((A @ w - B) ** 2, axis=-1) if w.ndim == 1 else \
        0.5 * np.mean((w @ A.T - B) ** 2, axis=-1)


def _least_squares_gradient(w):
    return A.T @ (A @ w - B) / len(B)


@pytest.mark.parametrize("weight", [1e-7, 1e-8, 1e-9])
def test_a_small_term_that_drops_the_imaginary_part_is_caught(weight):
    """`gradient`'s cross-check along one direction sees the lost term down to ~1e-9 of
    the gradient here: at 1e-9 its gap (2.24e-14) is the size of its error allowance
    (2.22e-14 from the rounding model; more once f's measured noise, σ = 1.4u·|f| for this
    mean of 30 squares, is counted), so it cannot decide and the complex step stands; the
    gradient check, which compares per coordinate, still catches the missing term."""
    def f(w):
        return _least_squares(w) + weight * np.sum(np.abs(w), axis=-1)

    est = gradient(f, W, method="complex_step")
    exact = _least_squares_gradient(W) + weight * np.sign(W)
    if weight > 1e-9:
        assert est.method == "richardson" and "random direction" in est.note, est.note
        assert np.all(np.abs(est.value - exact) <= est.error)
    forgot = check_gradient(f, _least_squares_gradient, W)  # the term's gradient missing
    assert not forgot.passed, forgot
    assert check_gradient(f, lambda w: _least_squares_gradient(w) + weight * np.sign(w),
                          W).passed


def test_a_term_lost_in_one_coordinate_is_caught():
    """Every coordinate takes part in the direction, not only the largest entry's."""
    def f(w):
        return _least_squares(w) + 1e-6 * np.abs(w[..., 7])

    est = gradient(f, W, method="complex_step")
    assert est.method == "richardson", est.note
    exact = _least_squares_gradient(W)
    exact[7] += 1e-6 * np.sign(W[7])
    assert np.all(np.abs(est.value - exact) <= est.error)


@pytest.mark.parametrize("spec", ["float64", "float32", "mpf:30"])
def test_sound_functions_keep_the_complex_step(spec):
    """No false alarm: analytic f, including a network loss with a saturated unit."""
    est = gradient(lambda w: _least_squares(w) + np.sum(np.sin(w), axis=-1), W,
                   method="complex_step")
    assert est.method == "complex_step", est.note
    net = MLP([4, 6, 3], seed=3).to(spec)
    rng = np.random.default_rng(1)
    X = net.numbers.asarray(rng.normal(size=(5, 4)) * 3)
    Y = net.numbers.asarray(np.eye(3)[[0, 1, 2, 0, 1]])
    est = net.numerical_gradient(X, Y, method="complex_step")
    assert est.method == "complex_step", est.note


def test_a_pole_near_x_is_truncation_not_lost_digits():
    """1/x at 1e-6: the witness step √u·max(|x|, 1) = 1.5e-8 is 1.5% of x, so D(h₂)
    and D(h) differ by its h² term (2e8 of rounding); moved closer the difference falls
    like h₂², which lost digits would not. The real cross-check's step shrinks the same
    way until its expansion holds. The complex step stands, with bars bounding the error
    (closed form −1/x²) and far below the 1e12 scale of the gradient."""
    x = np.array([1e-6, 1.0, 3.0])
    est = gradient(lambda v: np.sum(1 / v, axis=-1), x, method="complex_step")
    assert est.method == "complex_step", est.note
    exact = -1 / x**2
    assert np.all(np.abs(est.value - exact) <= est.error)
    assert est.error[0] <= 1e-9 * abs(exact[0])


def test_lost_digits_still_call_the_complex_step_off():
    """mpmath's asin near the real axis loses digits in Im f(x + ih): moving the witness
    closer does not shrink that difference like h², so the fallback stands."""
    est = derivative(lambda z: z.context.asin(z), "0.5", method="complex_step",
                     numbers="mpf:30")
    assert est.method == "richardson", est.note


# -- a large |f| blinds the real cross-check: the complex step is then not trusted ------------
_BUG_KINDS = {"sign", "scale", "layout", "regularization", "localized", "mismatch", "kink"}


@pytest.mark.parametrize("offset", [1e12, 1e20])
@pytest.mark.parametrize("lam", [1e-2, 1e-4])
def test_a_dropped_abs_term_is_not_passed_where_f_is_too_large_to_cross_check(offset, lam):
    """``offset + Σx² + λ·Σ|x+5|``: the complex step drops the λ term (abs of a complex
    number is its modulus), and f's real arithmetic rounds at u·offset (1e-4 at 1e12), too
    coarse to see it. A gradient without the term (true: 2x + λ, closed form) must not pass
    on the complex step's 1e-15 bars; the correct one must not be accused."""
    x = np.array([0.3, 1.2, -0.7])

    def f(x):
        return offset + np.sum(x**2) + lam * np.sum(np.abs(x + 5))

    buggy = check_gradient(f, lambda x: 2 * x, x)
    assert not buggy.passed, buggy
    assert "complex step" not in buggy.reference_name
    finding = next(f for f in buggy.findings if f.kind == "not_complex_safe")
    assert "undecidable whether f is complex-step safe" in finding.message
    correct = check_gradient(f, lambda x: 2 * x + lam, x)
    assert not _BUG_KINDS & set(correct.kinds), correct


def test_a_complex_safe_f_of_moderate_size_keeps_the_complex_step():
    # 1e4 + Σx²: u·|f| = 2e-12 per evaluation leaves the cross-check room to see √u
    x = np.array([0.3, 1.2, -0.7])
    report = check_gradient(lambda x: 1e4 + np.sum(x**2), lambda x: 2 * x, x)
    assert report.passed and "complex step" in report.reference_name, report
