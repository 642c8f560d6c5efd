"""Measurements of `f` beyond the reference: complex-step safety, noise, kinks, a wider system.

Each probe evaluates `f` at a handful of points in its number system and returns plain
numbers (see `evidence`) for the detectors. They share `call`, which evaluates `f` at one
point inside the system's context and checks that the value belongs to the system.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from precision_nn.gradcheck.evidence import ComplexProbe, KinkProbe, NoiseProbe
from precision_nn.numbers import NumberSystem

__all__ = [
    "PROBE_SEED",
    "as_float",
    "call",
    "complex_probe",
    "gradient_noise",
    "kink_probe",
    "noise_probe",
    "random_direction",
    "runs_in",
]

PROBE_SEED = 20240601  # every random direction of the probes comes from this seed
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
# noise offsets δ = 0.01·u^(1/4)·s: the smooth part of a fourth difference, δ⁴|f''''| ~
# 1e-8·u·|f|, stays far below rounding, while f'·δ is many ulps of a lower precision
NOISE_OFFSETS = 9
NOISE_SCALE = 0.01
# the second measurement uses offsets this many times finer (a kink's share shrinks with them)
NOISE_FINE = 16
# the second noise probe's spacing relative to the first: (√5 − 1)/2, far from any ratio
# of small integers, so the two grids cannot both move a staircase by whole steps
ALIAS_SPACING = 0.6180339887498949
# Var of a fourth difference of independent noise of variance σ²: 1+16+36+16+1 = 70
FOURTH_DIFFERENCE_VARIANCE = 70.0
# kinks: the scan starts at Richardson's largest first step (1/8 of the scale of x) when
# the user gave no step, and goes down to a few central-optimal steps u^(1/3), below which
# rounding swamps the jumps
KINK_FIRST = 0.125
KINK_SMALLEST = 8.0
KINK_PROBES = 8


def call(f: Callable[[Any], Any], point: np.ndarray, ns: NumberSystem, *,
         strict: bool = False) -> Any:
    """``f(point)`` as one number of `ns`.

    Like the derivatives' evaluator: an IEEE value of another width is rounded into an
    IEEE system, while an object system (Decimal, mpmath) refuses anything but its own
    numbers (`TypeError`): a binary float there means precision was lost. `strict`
    refuses other widths too (to tell whether f really computes in `ns`).
    """
    with ns.context():
        value = f(point)
    arr = np.asarray(value)
    if arr.size != 1:
        raise TypeError(f"f must return a scalar; got shape {arr.shape}.")
    arr = arr.reshape(())
    if not strict and getattr(ns, "dtype", None) is not None and arr.dtype != object:
        return ns.asarray(np.real(arr) if not ns.is_complex else arr)[()]
    if not ns.owns(arr):
        raise TypeError(f"f returned a {ns.foreign_type(arr)} for a point of {ns.name}.")
    return arr[()]


def random_direction(n: int, salt: int = 0) -> np.ndarray:
    """A seeded random unit vector (float64) of length `n`."""
    v = np.random.default_rng(PROBE_SEED + salt).standard_normal(n)
    return v / np.linalg.norm(v)


def _along(ns: NumberSystem, x: np.ndarray, v: np.ndarray, t: float) -> np.ndarray:
    """The point ``x + t·v`` of `ns` (``t·v`` rounded once into the system)."""
    with ns.context():
        return x + ns.asarray(t * v)


def as_float(ns: NumberSystem, value: Any) -> float:
    """One number of `ns` as a float (its real part)."""
    return float(np.real(ns.to_float(np.array([value], dtype=object))[0]))


def _sub(ns: NumberSystem, p: Any, q: Any) -> float:
    with ns.context():
        return as_float(ns, p - q)


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
        gap, resolution = _real_disagreement(f, ns, flat, v, shape, imag[0], rounding)
        if gap is None and not REAL_AGREE * rounding <= u_seen ** REAL_RESOLVES * abs(imag[0]):
            return ComplexProbe(True, False, (
                f"along a random direction Im f(x + i·t·v)/t = "
                f"{imag[0]:.12g}, but f's real arithmetic resolves that derivative only "
                f"to ±{max(resolution, REAL_AGREE * rounding):.2g} (|f(x)| = {abs(f0):.2g} "
                f"rounds at about {u * abs(f0):.1g} per evaluation), too coarse to see a part of the derivative "
                "its complex arithmetic might drop (abs, a real-part cast, conj, a "
                "comparison)."), requested, verified=False)
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
                       ) -> tuple[tuple[float, float] | None, float]:
    """``(gap, resolution)``: gap is (value, error) of Richardson along `v` where it
    disagrees with the complex step `imag` beyond both error bars, at two first steps
    8-fold apart, None when it agrees; resolution is the disagreement the first run could
    not have seen (``REAL_AGREE·(error + rounding)``; 0 when f is not finite along the
    steps, whose first step s/64 may cross a domain edge the complex step stays away from:
    no evidence either way, as before), which the caller reports.

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
            return None, 0.0  # (its steps reach a domain edge the complex step's does not)
        value, error = as_float(ns, est.value), float(est.error)
        if not (np.isfinite(value) and np.isfinite(error)):
            return None, 0.0
        allowed = REAL_AGREE * (error + rounding)
        if not runs:
            resolution = allowed
        if abs(imag - value) <= allowed:
            return None, resolution  # agrees (usually: the second run only confirms)
        runs.append((value, error))
    (r1, e1), (r2, e2) = runs
    agree = abs(r1 - r2) <= REAL_AGREE * (e1 + e2 + rounding)
    return (runs[1] if agree else None), resolution


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


def noise_probe(f: Callable[[Any], Any], x: np.ndarray, ns: NumberSystem, *,
                delta: float | None = None) -> NoiseProbe:
    """The noise of `f` near `x` from fourth differences at offsets ``k·delta``.

    `delta` defaults to ``NOISE_SCALE·u^(1/4)·(1 + max|x|)``; a re-measurement in a wider
    system passes the first system's `delta`, so that a lower-precision step inside `f`
    (a staircase of float values) is probed at offsets that can still move it.
    """
    shape, flat = x.shape, x.reshape(-1)
    v = random_direction(flat.size, salt=2)
    s = 1.0 + float(np.max(np.abs(np.real(ns.to_float(flat)))))
    if delta is None:
        delta = NOISE_SCALE * ns.unit_roundoff ** 0.25 * s
    # equally spaced offsets can alias with a staircase: a float32 f whose value moves by
    # the same whole number of its ulps per offset has fourth differences of exactly 0.
    # A second direction at an incommensurate spacing breaks that coincidence.
    grids = ((v, 1.0), (random_direction(flat.size, salt=3), ALIAS_SPACING))
    coarse = [_fourth_difference_noise(f, ns, flat, w, delta * r, shape) for w, r in grids]
    fine = [_fourth_difference_noise(f, ns, flat, w, delta * r / NOISE_FINE, shape)[0]
            for w, r in grids]
    sigma, top = max(c[0] for c in coarse), max(c[1] for c in coarse)
    # rounding is a deterministic function of x: fourth differences read the scatter of
    # a random f (dropout, sampling) as noise just as well, so f is called at x twice
    # (the first grid's centre is x itself) and the gap says which it is
    repeat = _repeat_gap(ns, coarse[0][2], call(f, flat.reshape(shape), ns))
    return NoiseProbe(sigma, ns.unit_roundoff * top, delta, ns.name, sigma_fine=max(fine),
                      repeat=repeat)


def _repeat_gap(ns: NumberSystem, first: Any, second: Any) -> float:
    """``|first − second|`` of two values of f at the same point, formed in `ns` (0 when
    equal, also two equal infinities or two NaNs; inf when only one is finite)."""
    a, b = as_float(ns, first), as_float(ns, second)
    if not (np.isfinite(a) and np.isfinite(b)):
        return 0.0 if a == b or (np.isnan(a) and np.isnan(b)) else float("inf")
    return abs(_sub(ns, first, second))


def _fourth_difference_noise(f, ns: NumberSystem, flat: np.ndarray, v: np.ndarray,
                             delta: float, shape: tuple[int, ...]) -> tuple[float, float, Any]:
    """(σ from the fourth differences of f at offsets k·delta, max |f| seen, f at the
    centre: x itself, since k·w is exactly 0 there)."""
    half = NOISE_OFFSETS // 2
    # the offsets are exact multiples k·w of one step vector w of the system: offsets
    # k·delta·v rounded in float64 would be unequally spaced by ~2^-53·delta, and a fourth
    # difference would read f'·2^-53·delta as noise (far above u·|f| in decimal:30 or mpf:40)
    with ns.context():
        w = ns.scalar(delta) * ns.asarray(v)
        points = [flat + ns.scalar(k) * w for k in range(-half, half + 1)]
    values = [call(f, point.reshape(shape), ns) for point in points]
    arr = np.array(values, dtype=object)
    with ns.context():
        fourth = arr[:-4] - 4 * arr[1:-3] + 6 * arr[2:-2] - 4 * arr[3:-1] + arr[4:]
    fourth = np.real(ns.to_float(fourth))
    # the root mean square of the scaled values: fourth² itself overflows for |f| ~ 1e300
    top = float(np.max(np.abs(fourth))) if fourth.size else 0.0
    rms = top * float(np.sqrt(np.mean((fourth / top) ** 2))) if 0 < top < np.inf else top
    sigma = rms / float(np.sqrt(FOURTH_DIFFERENCE_VARIANCE))
    return sigma, float(np.max(np.abs(np.real(ns.to_float(arr))))), values[half]


# the analytic gradient's noise: grad at x + k·w, k = -3..3, with w a few ulps of x in
# random signs; its smooth change over 6 ulps is far below its rounding, so its fourth
# differences are rounding noise (variance 70·σ²)
GRADIENT_NOISE_POINTS = 7
GRADIENT_NOISE_ULPS = 4.0
# noise above this share of the gradient's size is a jump of grad (a kink at x)
GRADIENT_JUMP_SHARE = 1 / 64


def gradient_noise(grad: Callable[[Any], Any], flat: np.ndarray, shape: tuple[int, ...],
                   order: str, ns: NumberSystem) -> np.ndarray:
    """The noise σ of each entry of ``grad`` near x (flat in `order`, float64)."""
    signs = np.sign(np.random.default_rng(PROBE_SEED + 4).standard_normal(flat.size))
    xf = np.abs(np.real(ns.to_float(flat))).astype(float)
    half = GRADIENT_NOISE_POINTS // 2
    values = []
    with ns.context():
        w = ns.asarray(GRADIENT_NOISE_ULPS * ns.unit_roundoff * (1 + xf) * signs)
        for k in range(-half, half + 1):
            point = np.reshape(flat + ns.scalar(k) * w, shape, order=order)
            g = np.ravel(np.asarray(grad(point)).reshape(shape), order=order)
            values.append(ns.asarray(np.real(g) if g.dtype.kind == "c" else g))
        # the differences are formed in the system: 30-digit values that agree to 28
        # digits would otherwise differ by float64's rounding of each
        v = values
        with np.errstate(invalid="ignore", over="ignore"):  # an inf entry: σ = NaN there
            fourth = [v[k] - 4 * v[k + 1] + 6 * v[k + 2] - 4 * v[k + 3] + v[k + 4]
                      for k in range(len(v) - 4)]
    fourth = np.array([np.real(ns.to_float(d)).astype(float) for d in fourth])
    sigma = np.sqrt(np.mean(fourth ** 2, axis=0) / FOURTH_DIFFERENCE_VARIANCE)
    # a jump is not noise: grad at a kink exactly at x (ReLU's 0) flips between its two
    # sides within these few ulps, by a share of its own size that no rounding reaches
    # (float16's is 2^-11); such an entry gets no noise allowance, fails, and the kink
    # scan names it
    size = np.max(np.abs(np.array([np.real(ns.to_float(g)).astype(float) for g in v])),
                  axis=0)
    jump = sigma > GRADIENT_JUMP_SHARE * (size + float(np.max(size, initial=0.0)))
    return np.where(jump, 0.0, sigma)


def kink_probe(f: Callable[[Any], Any], x: np.ndarray, ns: NumberSystem,
               indices: np.ndarray, h: float | None, *, sigma: float = 0.0) -> KinkProbe:
    """Scan one-sided differences at `indices` from step `h` (default: Richardson's
    largest first step, ``KINK_FIRST·(1 + |x_i|)``) down by factors of 4.

    `sigma` is the measured noise of `f` (0 when not measured): the noise level of each
    jump is the larger of the system's rounding ``8·u·|f|/h`` and ``8·sigma/h``.
    """
    flat = x.reshape(-1)
    xf = np.real(ns.to_float(flat))
    f0 = call(f, x, ns)
    fabs = abs(as_float(ns, f0))
    rows = []
    for i in indices[:KINK_PROBES]:
        scale = 1 + abs(float(xf[i]))
        first = h if h is not None else KINK_FIRST * scale
        smallest = min(first / 16, KINK_SMALLEST * ns.unit_roundoff ** (1 / 3) * scale)
        # down to `smallest` or just below it (a kink between the last two steps is seen)
        count = max(3, int(np.ceil(np.log(first / smallest) / np.log(4))) + 1)
        steps = first * 0.25 ** np.arange(count)
        rows.append((steps, [_one_sided_gap(f, ns, flat, int(i), hk, f0, x.shape)
                             for hk in steps]))
    width = max((len(s) for s, _ in rows), default=0)
    pad = lambda v: np.pad(np.asarray(v, float), (0, width - len(v)),
                           constant_values=np.nan)
    steps = np.array([pad(s) for s, _ in rows]).reshape(len(rows), width)
    jumps = np.array([pad(j) for _, j in rows]).reshape(len(rows), width)
    return KinkProbe(np.asarray(indices[:len(rows)], dtype=int), steps, jumps,
                     8 * max(ns.unit_roundoff * fabs, sigma) / steps)


def _one_sided_gap(f, ns: NumberSystem, flat: np.ndarray, i: int, h: float, f0: Any,
                   shape: tuple[int, ...]) -> float:
    """``D+(h) - D-(h) = (f(x+h e_i) - 2 f(x) + f(x-h e_i)) / h``, formed in `ns`."""
    e = np.zeros(flat.size)
    e[i] = 1.0
    plus = call(f, _along(ns, flat, e, h).reshape(shape), ns)
    minus = call(f, _along(ns, flat, e, -h).reshape(shape), ns)
    with ns.context():
        second = plus - 2 * f0 + minus
    return as_float(ns, second) / h


def runs_in(f: Callable[[Any], Any], x: np.ndarray, ns: NumberSystem) -> np.ndarray | None:
    """`x` converted to `ns` when `f` evaluates there to a value of `ns`, else None."""
    try:
        xw = ns.asarray(x)
        value = call(f, xw, ns, strict=True)
        if not np.isfinite(as_float(ns, value)):
            return None
    except Exception:  # noqa: BLE001 - any failure means "cannot run there"
        return None
    return xw
