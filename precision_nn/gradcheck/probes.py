"""Measurements of `f` beyond the reference: noise, kinks, the gradient's own noise, a wider
system; and, re-exported, the complex-step safety probe (`complex_safety`).

Each probe evaluates `f` at a handful of points in its number system and returns plain
numbers (see `evidence`) for the detectors. They share `call` (`probe_points`), which
evaluates `f` at one point inside the system's context and checks that the value belongs
to the system.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from precision_nn.gradcheck.complex_safety import complex_probe
from precision_nn.gradcheck.evidence import KinkProbe, NoiseProbe
from precision_nn.gradcheck.probe_points import (
    PROBE_SEED,
    _along,
    _sub,
    as_float,
    call,
    random_direction,
)
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
    as_floats = np.array([np.real(ns.to_float(g)).astype(float) for g in v])
    size = np.max(np.abs(as_floats), axis=0)
    share = GRADIENT_JUMP_SHARE * (size + float(np.max(size, initial=0.0)))
    jump = (sigma > share) | _plateau_step(as_floats, share)
    return np.where(jump, 0.0, sigma)


# a step between two plateaus: its one large change exceeds every other change over the
# ulps probed by this factor
PLATEAU_RATIO = 8.0


def _plateau_step(values: np.ndarray, share: np.ndarray) -> np.ndarray:
    """Entries whose values over the probe's points (rows of `values`) change by more than
    `share` at one step only, and by less than 1/PLATEAU_RATIO of that at every other.

    Hypothesis tested: the entry's change over these few ulps is rounding noise. Noise
    changes the value at every step by comparable amounts; a single step between two
    plateaus is a kink crossed at x (one or more ReLU pre-activations exactly at 0 change
    sign together there). The fourth differences read such a step J as σ ≈ 0.3·J only
    (their variance is 70σ², the step's ≈ 6.3·J²), so a jump of up to ~3 shares of the
    gradient's size passes the σ test and would be allowed as noise: a tolerance of
    several times the jump, wide enough to pass a bug of the jump's size (a ReLU at 0 with
    an entry of 0.038 passed a +0.03 bump).
    """
    if values.shape[0] < 3:
        return np.zeros(values.shape[1:], dtype=bool)
    with np.errstate(invalid="ignore"):  # an inf entry: its changes are NaN, no step
        change = np.sort(np.abs(np.diff(values, axis=0)), axis=0)
        top, second = change[-1], change[-2]
        return (top > share) & (second * PLATEAU_RATIO < top)


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
