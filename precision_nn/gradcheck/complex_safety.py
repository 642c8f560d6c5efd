"""Whether `f` is complex-step safe: ``Im f(x + i·t·v)/t`` along a seeded random direction
against itself at two steps, central differences and Richardson extrapolation in real
arithmetic (`complex_probe`), or undecided where f's real arithmetic is too coarse to tell.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from precision_nn.gradcheck.evidence import ComplexProbe
from precision_nn.gradcheck.probe_points import _along, _sub, as_float, call, random_direction
from precision_nn.numbers import NumberSystem

__all__ = ["complex_probe"]

# complex step at t and t/16 with t = u·s: nothing cancels in Im f(x + i·t·v)/t, so a tiny
# t costs no digits, and its truncation t²|f'''|/6 is below rounding for any curvature
# scale down to √u·s (t = √u·s would read the truncation of exp(x) at x = 700, t²/6 relative,
# as a change between the two steps); central differences at u^(1/3)·s are good to
# ~u^(2/3) relative
COMPLEX_AGREE = 1e3
CENTRAL_AGREE = 1e3
FLOAT_EPS = float(np.finfo(np.float64).eps)
# the fine test: Richardson along v from first steps REAL_FIRST·s and 1/8 of it (1/64 of
# the kink scan's 1/8: short enough to step over few kinks, long enough that its tableau
# extrapolates away the truncation), trusted to REAL_AGREE times its error bar
REAL_FIRST = 1 / 64
REAL_AGREE = 8.0
# ... and its rounding alone, ``u·(|D_v| + |f(x)|/s)`` per unit step (the least its bars can
# be, whatever the steps), must leave room to see a lost term of √u (1.5e-8 in float64)
# relative to the directional derivative D_v. Where |f| dwarfs its derivative (a loss of
# 1e12 plus terms of size 1: 3e-5 against 2.3), a dropped ``0.01·Σ|x|`` hides in the real
# arithmetic's rounding and the complex step's own bars (~1e-15 relative) would vouch for
# a value nothing checked. (Richardson's own error estimate is no measure of this: on
# cancelling f it is conservative by orders of magnitude while the rounding is tiny.)
REAL_RESOLVES = 0.5  # the exponent of u
# a disagreement with central differences counts when shrinking their step 8-fold moves
# them by less than this share of it (smooth f); a kink moves them by about all of it
CONFIRM_SHARE = 0.25


def complex_probe(f: Callable[[Any], Any], x: np.ndarray, ns: NumberSystem, *,
                  requested: bool, fine: bool = True) -> ComplexProbe:
    """Whether ``Im f(x + i·t·v)/t`` behaves like the directional derivative.

    It must agree with itself at ``t`` and ``t/16`` and with central differences, and
    (`fine`) with Richardson extrapolation in real arithmetic (`_real_disagreement`:
    about 20 more evaluations of f, 40 when it disagrees, which resolve a lost term 1e-4
    times smaller than central differences do).
    """
    try:
        nc = ns.complex()
    except ValueError as exc:
        return ComplexProbe(False, False, f"{exc}", requested)
    shape, flat = x.shape, x.reshape(-1)
    v = random_direction(flat.size, salt=1)
    s = 1.0 + float(np.max(np.abs(ns.to_float(flat))))
    u = ns.unit_roundoff
    t = u * s
    try:
        xc = nc.asarray(flat)
        imag = [_imag_quotient(f, nc, xc, v, tk, shape) for tk in (t, t / 16)]
    except Exception as exc:  # noqa: BLE001 - any failure means "not usable"
        return ComplexProbe(False, False, f"it does not run on complex input "
                            f"({type(exc).__name__}: {exc}).", requested)
    hc = float(u ** (1 / 3)) * s
    f0 = as_float(ns, call(f, flat.reshape(shape), ns))
    central = _central_along(f, ns, flat, v, hc, shape)
    scale = abs(central) + abs(f0) / s
    # the quotients are compared as float64 numbers: no agreement beyond its resolution
    u_seen = max(u, FLOAT_EPS)
    if abs(imag[0] - imag[1]) > COMPLEX_AGREE * u_seen * (abs(imag[0]) + scale):
        return ComplexProbe(True, False, f"Im f(x + i·t·v)/t changes from {imag[0]:.6g} to "
                            f"{imag[1]:.6g} when t shrinks 16-fold.", requested)
    agree = CENTRAL_AGREE * max(u ** (2 / 3), FLOAT_EPS) * scale
    if abs(imag[0] - central) > agree and _confirmed(f, ns, flat, v, hc, shape, central,
                                                     imag[0], agree):
        return ComplexProbe(True, False, f"along a random direction Im f(x + i·t·v)/t = "
                            f"{imag[0]:.6g} but central differences give {central:.6g}: "
                            "something inside drops or conjugates the imaginary part "
                            "(abs, a real-part cast, conj, a comparison).", requested)
    if fine:
        rounding = u_seen * (abs(imag[0]) + scale)
        gap = _real_disagreement(f, ns, flat, v, shape, imag[0], rounding)
        if gap is None and not REAL_AGREE * rounding <= u_seen ** REAL_RESOLVES * abs(imag[0]):
            return ComplexProbe(True, False, (
                f"along a random direction Im f(x + i·t·v)/t = {imag[0]:.12g}, but f's "
                "real arithmetic resolves that derivative no better than "
                f"±{REAL_AGREE * rounding:.2g} (|f(x)| = {abs(f0):.2g} rounds at about "
                f"{u * abs(f0):.1g} per evaluation), too coarse to see a part of the "
                "derivative its complex arithmetic might drop (abs, a real-part cast, "
                "conj, a comparison)."), requested, verified=False)
        if gap is not None:
            return ComplexProbe(True, False, f"along a random direction Im f(x + i·t·v)/t = "
                                f"{imag[0]:.12g} but Richardson extrapolation in real "
                                f"arithmetic gives {gap[0]:.12g} ± {gap[1]:.2g} (twice, from "
                                "first steps 8-fold apart): f's complex arithmetic drops a "
                                "small part of the derivative (abs, a real-part cast, conj, "
                                "a comparison).", requested)
    return ComplexProbe(True, True, "Im f(x + i·t·v)/t agrees at two steps and with central "
                        "differences" + (" and Richardson extrapolation." if fine else "."),
                        requested)


def _real_disagreement(f, ns: NumberSystem, flat: np.ndarray, v: np.ndarray,
                       shape: tuple[int, ...], imag: float, rounding: float
                       ) -> tuple[float, float] | None:
    """(value, error) of Richardson along `v` where it disagrees with the complex step
    `imag` beyond both error bars, at two first steps 8-fold apart; None when it agrees
    (or cannot tell; the caller then asks whether `rounding` was too coarse to tell).

    Hypothesis tested: f's complex arithmetic carries the whole derivative. A term f
    computes through ``abs`` (an L1 penalty ``λ·Σ|w|``) or a real-part cast is invisible
    to the complex step; central differences resolve only ~u^(2/3) of the scale
    (``CENTRAL_AGREE``), so a term 1e-9 of it passes their test. Richardson's error
    estimate reaches ~1e-13 on smooth f in float64; a kink within its steps moves the
    extrapolation when its first step changes, so only a disagreement both runs agree
    on counts (``REAL_AGREE`` times the bars: its estimate may be off by the factor
    `REFERENCE_SAFETY` covers).
    """
    from precision_nn.derivatives import derivative  # (derivatives imports the probes' kin)

    with ns.context():
        direction = ns.asarray(v)

    def along(t: Any) -> Any:
        with ns.context():
            return call(f, (flat + t * direction).reshape(shape), ns)

    s = 1.0 + float(np.max(np.abs(np.real(ns.to_float(flat)))))
    runs = []
    for first in (REAL_FIRST * s, REAL_FIRST * s / 8):
        try:
            est = derivative(along, ns.zero, method="richardson", h=ns.scalar(first),
                             numbers=ns)
        except (ValueError, ArithmeticError):  # f not finite along the steps: no verdict
            return None
        value, error = as_float(ns, est.value), float(est.error)
        if not (np.isfinite(value) and np.isfinite(error)):
            return None
        if abs(imag - value) <= REAL_AGREE * (error + rounding):
            return None  # agrees (the usual case: the second run is only a confirmation)
        runs.append((value, error))
    (r1, e1), (r2, e2) = runs
    return runs[1] if abs(r1 - r2) <= REAL_AGREE * (e1 + e2 + rounding) else None


def _confirmed(f, ns: NumberSystem, flat: np.ndarray, v: np.ndarray, h: float,
               shape: tuple[int, ...], central: float, imag: float, agree: float) -> bool:
    """Whether central differences at h/8 confirm their disagreement with the complex step.

    For a smooth f they move by less than a quarter of the disagreement and still
    disagree; across a ReLU kink within h they move by about as much as the disagreement
    itself, and the test is inconclusive (f is then taken as complex-step safe: its two
    complex steps agreed).
    """
    finer = _central_along(f, ns, flat, v, h / 8, shape)
    gap = abs(imag - central)
    return abs(finer - central) <= CONFIRM_SHARE * gap and abs(imag - finer) > 8 * agree


def _imag_quotient(f, nc: NumberSystem, xc: np.ndarray, v: np.ndarray, t: float,
                   shape: tuple[int, ...]) -> float:
    with nc.context():
        point = xc + nc.asarray(1j * t * v)
        value = f(point.reshape(shape))
    value = np.asarray(value, dtype=object).reshape(())[()]
    return float(np.imag(complex(value))) / t


def _central_along(f, ns: NumberSystem, flat: np.ndarray, v: np.ndarray, h: float,
                   shape: tuple[int, ...]) -> float:
    plus = call(f, _along(ns, flat, v, h).reshape(shape), ns)
    minus = call(f, _along(ns, flat, v, -h).reshape(shape), ns)
    return _sub(ns, plus, minus) / (2 * h)
