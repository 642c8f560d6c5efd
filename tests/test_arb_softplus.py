"""arb's ``log1p_exp`` hook: its Taylor form about nearby centres against mpmath at twice
the digits (enclosure, midpoint accuracy, radius), the proven remainder's constant, and
the numerical gradient that uses it against backprop at twice the digits."""

from __future__ import annotations

import math
from fractions import Fraction

import mpmath
import numpy as np
import pytest

from precision_nn.network import MLP
from precision_nn.numbers import number_system

flint = pytest.importorskip("flint")

from precision_nn.numbers import arb_softplus
from precision_nn.numbers.arb_context import flint_precision


def _stack(ns, rows: int, spread: float, seed: int = 0, low: float = -12.0
           ) -> np.ndarray:
    """`rows` copies of a (3, 4) array of w <= 0, each moved by ~`spread` (an int: by
    ~2^spread, formed in the system, below the float range too); exact binary values, so
    the reference sees the same numbers."""
    rng = np.random.default_rng(seed)
    centre = rng.uniform(low, 0.0, size=(3, 4))
    moves = rng.normal(size=(rows, 3, 4))
    moves[0] = 0.0
    with ns.context():
        c = ns.asarray(centre)
        if isinstance(spread, int):
            scale = ns.radix_powers(np.array([spread]))[0]
            return c[None] + ns.asarray(moves) * scale
        return c[None] + ns.asarray(moves * spread)


def _reference(v, digits: int):
    """log(1 + e^w) at the ball's midpoint, by mpmath at `digits`."""
    with mpmath.workdps(digits):
        man, exp = v.mid().man_exp()
        w = mpmath.ldexp(mpmath.mpf(int(man)), int(exp))
        return mpmath.log1p(mpmath.exp(w))


def _as_ball(value, digits: int):
    with flint_precision(int(digits * 3.33) + 20):
        return flint.arb(mpmath.nstr(value, digits + 5))


@pytest.mark.parametrize("digits", [30, 50, 200, 1000])  # 1000: steps below the float range
@pytest.mark.parametrize("power", [2 / 3, 1 / 3, 1 / 5])
def test_taylor_form_encloses_mpmath_at_twice_the_digits(digits, power):
    """Rows moved by ~u^power (the steps of central differences are ~u^(1/3), of
    Richardson's longer ones ~u^(1/5)): every ball contains the 2×-digit reference; the
    midpoint is within 4 u (relative) of it, the radius within 64 u: about the direct
    form's (an exp, a log1p, a few roundings), as the degree rule intends."""
    ns = number_system(f"arb:{digits}")
    w = _stack(ns, 16, round(ns.log2_unit_roundoff * power))
    with ns.context():
        taylor = arb_softplus.by_taylor(flint, w, ns.log2_unit_roundoff)
    assert taylor is not None  # the Taylor form is what is tested here
    out = ns.log1p_exp(w)
    u = mpmath.ldexp(1, int(ns.log2_unit_roundoff))  # below the float range at 1000
    for ball, direct_ball, v in zip(taylor.flat, out.flat, w.flat):
        ref = _reference(v, 2 * digits)
        assert ball.contains(_as_ball(ref, 2 * digits)), (v, ball, ref)
        assert direct_ball.contains(_as_ball(ref, 2 * digits))
        with mpmath.workdps(2 * digits):
            man, exp = ball.mid().man_exp()
            mid = mpmath.ldexp(mpmath.mpf(int(man)), int(exp))
            assert abs(mid - ref) <= 4 * u * ref
            man, exp = ball.rad().mid().man_exp()
            assert mpmath.ldexp(mpmath.mpf(int(man)), int(exp)) <= 64 * u * ref


def test_taylor_form_encloses_whole_input_balls():
    """Balls of a real radius (1e-25 at 50 digits): the result contains log(1 + e^w) at
    both ends of every input ball, not only at its midpoint."""
    ns = number_system("arb:50")
    w = _stack(ns, 12, 1e-17, seed=3)
    with ns.context():
        w = w + flint.arb(0, 1e-25)
        taylor = arb_softplus.by_taylor(flint, w, ns.log2_unit_roundoff)
    assert taylor is not None
    for ball, v in zip(taylor.flat, w.flat):
        with flint_precision(2 * ns.prec):  # the ends exactly (lower() rounds at prec)
            ends = (v.lower(), v.upper())
        for end in ends:
            assert ball.contains(_as_ball(_reference(end, 100), 100))


def test_rows_far_apart_take_the_direct_form_and_still_enclose():
    ns = number_system("arb:50")
    w = _stack(ns, 16, 0.5, seed=1)
    with ns.context():
        assert arb_softplus.by_taylor(flint, w, ns.log2_unit_roundoff) is None
    for ball, v in zip(ns.log1p_exp(w).flat, w.flat):
        assert ball.contains(_as_ball(_reference(v, 100), 100))


def test_tiny_terms_take_a_higher_degree_or_the_direct_form():
    """At w ~ -300 the values are ~1e-130: the remainder must stay below u of them, so the
    degree rises (or the direct form is used); either way the value is accurate."""
    ns = number_system("arb:50")
    w = _stack(ns, 16, 1e-17, seed=2, low=-300.0)
    out = ns.log1p_exp(w)
    u = float(ns.unit_roundoff)
    for ball, v in zip(out.flat, w.flat):
        ref = _reference(v, 100)
        assert ball.contains(_as_ball(ref, 100))
        assert float(ball.rad()) <= 64 * u * float(ref)


def test_remainder_constant_bounds_every_derivative():
    """``|f^(n)(t)|/n! <= (2/π)^(n-1)/n`` (Cauchy, module notes) on a grid of t, by
    mpmath's derivatives of log(1 + e^t); and `remainder_bound(k)` is not below the exact
    ``(2/π)^k/(k+1)``."""
    with mpmath.workdps(40):
        f = lambda t: mpmath.log1p(mpmath.exp(t))
        for n in range(1, 8):
            bound = (2 / mpmath.pi) ** (n - 1) / n
            for t in np.linspace(-12, 12, 49):
                assert abs(mpmath.diff(f, mpmath.mpf(t), n)) / mpmath.factorial(n) <= bound
        for k in range(1, arb_softplus.MAX_DEGREE + 1):
            exact = (2 / mpmath.pi) ** k / (k + 1)
            assert mpmath.mpf(arb_softplus.remainder_bound(k)) >= exact
    assert arb_softplus.TWO_OVER_PI_UP > Fraction(2) / Fraction(math.pi)  # 2/π < 0.6367


@pytest.mark.parametrize("n", range(1, 7))
def test_sigma_polynomials_give_the_derivatives(n):
    """``f^(n)(t) = P_n(σ(t))`` against mpmath's n-th derivative at t = -1.7."""
    with mpmath.workdps(40):
        t = mpmath.mpf("-1.7")
        s = 1 / (1 + mpmath.exp(-t))
        value = sum(mpmath.mpf(c.numerator) / c.denominator * s**i
                    for i, c in enumerate(arb_softplus._sigma_poly(n)))
        exact = mpmath.diff(lambda x: mpmath.log1p(mpmath.exp(x)), t, n)
        assert abs(value - exact) <= mpmath.mpf(10) ** -30 * max(1, abs(exact))


def test_arb_numerical_gradient_through_the_taylor_form_is_bounded(monkeypatch):
    """The arb:40 central-difference gradient of a [4, 6, 3] sigmoid network (stacks of
    perturbed losses: the Taylor form) against backprop in mpf:80: every error bar bounds
    the true error, and the Taylor form was used."""
    used = []
    original = arb_softplus.by_taylor

    def counting(*args):
        out = original(*args)
        used.append(out is not None)
        return out

    monkeypatch.setattr(arb_softplus, "by_taylor", counting)
    net = MLP([4, 6, 3], seed=5)
    rng = np.random.default_rng(5)
    X = rng.normal(size=(5, 4))
    Y = np.eye(3)[rng.integers(0, 3, size=5)]
    ball = net.to("arb:40")
    est = ball.numerical_gradient(X, Y, method="central")
    exact = net.to("mpf:80").gradient(X, Y)
    assert any(used)
    with mpmath.workdps(80):
        for value, error, ref in zip(est.value, np.asarray(est.error), exact):
            man, exp = value.mid().man_exp()
            mid = mpmath.ldexp(mpmath.mpf(int(man)), int(exp))
            assert abs(mid - ref) <= mpmath.mpf(float(error))


@pytest.mark.parametrize("accuracy", [2.0**60, 2.0**90])
def test_enclosure_does_not_depend_on_the_degree(monkeypatch, accuracy):
    """With the accuracy rule relaxed (degree 3 or 2 at rows 1e-9 apart, whose dropped
    terms, ~1e-38 and ~1e-29, are far above u = 1e-51) the remainder ball alone keeps
    every result an enclosure; without it these balls would miss the reference."""
    monkeypatch.setattr(arb_softplus, "ACCURACY", accuracy)
    ns = number_system("arb:50")
    w = _stack(ns, 16, 1e-9, seed=4)
    with ns.context():
        taylor = arb_softplus.by_taylor(flint, w, ns.log2_unit_roundoff)
    assert taylor is not None
    missed = 0
    for ball, v in zip(taylor.flat, w.flat):
        ref = _as_ball(_reference(v, 100), 100)
        assert ball.contains(ref)
        with flint_precision(400):  # the same midpoint with the direct form's radius
            missed += not flint.arb(ball.mid(), 1e-48).contains(ref)
    assert missed > 0  # the dropped terms are far above the rounding: the test can fail
