"""Does `f` compute at the precision of its points? A probe on f's real arithmetic.

Every error bar of `derivative` assumes that one evaluation of ``f`` is accurate to
``κ u |f|`` (`steps.NOISE_ROUNDINGS`). An ``f`` that computes below the precision of ``x``
breaks that silently: ``mpmath.sin`` applied to a Decimal rounds its argument to 53 bits,
a 28-digit Decimal context inside an mpf:50 call rounds every result to 28 digits, a
``float()`` detour to 16. Where the points ``x + k·h`` of a stencil are all rounded the
same way the stencil cannot see it: rounding ``x + k·h`` onto a coarser grid is nearly
*linear* in ``k`` (the step is off by a constant factor), so the witness difference of
`finite_difference` cancels it exactly while the quotient is wrong in its 4th digit.

The probe takes the coordinate with the largest estimate ``D_i`` and evaluates the method's
own rule (central, forward or backward) there at a step ``δ ≤ h_i/4`` of the radix,
``δ ≈ u^(2/3)·max(|x_i|, 1)``, tiny compared with the method's step:

    excess = |D_probe − D_i| − 2·error_i − 2·c·δ^p,   bound = κ u Σ|w_j||f_j| / δ,

(``c`` the truncation coefficient the method measured, when it did). The ``|f_j|`` of
the bound are at least the scale of f's terms: where f cancels to ~0 (Σ sin(x_i) at
symmetric points) one evaluation still rounds by ~u times its terms, and every term that
depends on x_i changes by about ``|D_i|·|x_i|`` when x_i moves by its own scale (to first
order: not a bound at a minimum, where f'' dominates). The finite-difference methods use
the same floor as their rounding terms, ``max_i |D_i|·|x_i|``
(`finite_difference.term_scale`); the complex step's cross-check
(`complex_step.cross_check`) the wider ``T = max_i |D_i|·max(|x_i|, 1)`` (`term_size`);
Richardson none (`core._probed`): its tableau error has no floor either, and on a
cancelling f it is this probe's firing that widens its bars (honest, not tight).
Without a floor the bound would be ``κu·|f'|·δ/δ`` ~ 0: honest rounding would call the
complex step off, and would widen a finite difference's bars by the ratio of f's terms to
``|f|`` (``t² − 2`` at √2: a bar of 8e5 before the floor, against a true error of 6e-5).
The probe's own error, which decides whether the probed entry's bar must grow to cover
its value (`reconciled`), counts the same floor.

A rule's truncation shrinks with its step, so at ``δ ≤ h_i`` the probe's truncation is
covered by ``error_i`` (the method's honest bar, which contains the same rule's
truncation at ``h_i``; Richardson's and the complex step's truncation at δ is
``O(δ²) = O(u^(4/3))``, far below ``bound``). What is left is rounding: an ``f`` accurate
to ``κu|f|`` keeps ``excess ≤ bound``. ``excess > PROBE_THRESHOLD · bound`` means `f` is
noisier than its number system by at least that factor.

Then the noise ``ε`` of one evaluation is measured on a ladder of steps ``δ·16^j`` up to
``h_i``, as ``max_j excess_j · δ_j / Σ|w|``: below the grid of a coarse `f` the probe
sees no change at all (excess = ``|D_i|``, so ``excess·δ`` grows with δ), at the grid
spacing it sees the full rounding ``ε/δ``; the maximum is ``ε`` within a factor of about
2. Every coordinate's rounding term is rescaled from ``κu|f|`` to ``NOISE_SAFETY · ε`` —
the same ``f`` is evaluated at every coordinate, so its noise is the same everywhere —
and the note says what was found. This is one probe at one coordinate (2 evaluations, plus
the ladder only when the probe fires): an ``f`` that loses precision in only some
coordinates' paths can escape it.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from precision_nn.derivatives.evaluation import Evaluator
from precision_nn.derivatives.finite_difference import (
    TRUNCATION_SAFETY,
    FDResult,
    realize,
    stencil_levels,
    term_scale,
)
from precision_nn.derivatives.noise import EVALUATIONS as NOISE_EVALUATIONS
from precision_nn.derivatives.noise import noise_sigma
from precision_nn.derivatives.stencils import Stencil, stencil
from precision_nn.derivatives.steps import NOISE_ROUNDINGS, radix_steps, scales
from precision_nn.numbers import NumberSystem

__all__ = ["NOISE_REACH", "NOISE_SAFETY", "PROBE_THRESHOLD", "Resolution", "probe_resolution",
           "reconciled", "term_size", "widened"]

# excess beyond this many times the rounding bound cannot be the system's rounding: the
# bound is a sum of worst cases (κ = 2 roundings per value), so honest functions stay far
# below 1 × bound, and 16 leaves room for an f accurate to a few more u than assumed
PROBE_THRESHOLD = 16.0
# a gap counts only beyond this many times the method's own error estimate
BAR_SAFETY = 2.0
# the ladder measures ε within about 2× (one sample per rung): count it 4 times; the
# measured σ of `noise` is counted as often
NOISE_SAFETY = 4.0
# noise of standard deviation σ reaches 2σ in about one evaluation in 20 (near-Gaussian
# sums of roundings): a σ with 2σ beyond the model's bound κu·max(|f|, T) disproves it.
# Rounding to nearest of the value alone has σ <= 0.58 u|f| (uniform on half a spacing),
# so 2σ stays below the model's 2u|f| for an f that rounds as its value suggests
NOISE_REACH = 2.0
# rungs of the ladder are this factor apart (one power of 2^4 or 10^1.2)
LADDER_FACTOR = 16.0
MAX_RUNGS = 8
# noise of this fraction of |f| leaves no digits to difference: no derivative is found
NO_DIGITS = 2.0**-4
# the probe's step is this fraction of the method's step at most
PROBE_FRACTION = 0.25
# and never closer than this many spacings of the numbers at x
MIN_SPACINGS = 4


@dataclass(frozen=True)
class Resolution:
    """What the probe found: `noise` is ε relative to |f| (0 when `f` was at the system's
    precision), `ratio` how many times the rounding bound the excess was."""

    noise: float
    ratio: float
    coordinate: int
    note: str
    evaluations: int
    # the smallest bar at `coordinate` consistent with the probe: |D_probe − D_i| plus the
    # probe's own rounding and truncation, both counted twice (for a noisy f: of the
    # probe's largest step, the least noisy)
    consistent: float = 0.0
    # σ of one evaluation as `noise.noise_sigma` measured it, when it disproved the model
    # (absolute; 0 otherwise), and the floor T of |f| the method's rounding terms used
    sigma: float = 0.0
    terms: float = 0.0


def probe_resolution(ev: Evaluator, result: FDResult, rule_name: str, *, order: int = 2,
                     reach: np.ndarray | None = None,
                     terms: float | None = None) -> Resolution | None:
    """Probe `f`'s real arithmetic at one coordinate of `result` (module notes); None when
    no probe step fits between the spacing of x and `reach` (default: the method's steps;
    the complex step passes a longer one, since its own step is ~u). The ``|f_j|`` of the
    bound are floored at `terms` (default: `finite_difference.term_scale` of `result`, as
    the method's own rounding terms; the complex step's cross-check passes the wider
    `term_size`): rounding of a cancelling f is no evidence of a lower precision, nor
    against the complex arithmetic (module notes). Where the probe does not fire, 27 more
    values measure σ of one evaluation (`noise`), which widens the bars where it
    disproves the model."""
    ns = ev.ns
    wide = ns.error_dtype.type  # scalars as wide as the system's error bars
    value = ns.magnitude(result.value)
    i = int(np.argmax(value))
    x_i = wide(ns.magnitude(ev.x_flat[i : i + 1])[0])
    limit = wide((result.h if reach is None else reach)[i])
    start = _probe_step(ns, x_i, limit)
    if start is None:
        return None
    rule = stencil(rule_name, order)
    before = ev.evaluations
    if terms is None:
        terms = term_scale(ns, result.value, ev.x_flat)
    ((excess, bound, magnitude, _, consistent),) = _excess(ev, i, start, rule, result,
                                                           terms=terms)
    ratio = excess / bound if bound > 0 else (math.inf if excess > 0 else 0.0)
    if not ratio > PROBE_THRESHOLD:
        # σ of one evaluation from 27 values (`noise`): what the model's κu·max(|f|, T)
        # stands for, measured; relative to the scale the rounding terms use
        sigma = noise_sigma(ev, i, rule_name, limit)
        scale = max(magnitude, wide(terms))
        if not (scale > 0 and NOISE_REACH * sigma > NOISE_ROUNDINGS * ns.unit_roundoff
                * scale):
            return Resolution(0.0, ratio, i, "", ev.evaluations - before, consistent)
        return Resolution(sigma / scale, ratio, i, _cancelling_note(ns, i, sigma, scale),
                          ev.evaluations - before, consistent, sigma=sigma, terms=terms)
    noise, consistent = _ladder(ev, i, start, limit, rule, result, terms)
    # relative to |f| as the probe saw it (not to `terms`): `widened` scales rounding
    # terms κu·|f| by it, and a smaller figure would narrow bars the probe just disproved
    relative = noise / magnitude if magnitude > 0 else math.inf
    if relative >= NO_DIGITS:
        return Resolution(relative, ratio, i, (
            f"no derivative found: at coordinate {i} f changes by {relative:.1e} of its "
            f"size between points {start:.1e} apart, against the estimate's slope (f has "
            "no smooth part at the scale of the spacing of x, e.g. sin at 1e308, or "
            "computes with almost no digits), so error = inf"), ev.evaluations - before,
            consistent)
    note = (f"f is noisier than rounding in {ns.name} explains: at coordinate {i} a probe "
            f"at step {start:.1e} disagrees with the estimate by {ratio:.1e} times the "
            f"rounding allowed, and the noise of one evaluation measures {relative:.1e} of "
            f"|f| (u = {ns.unit_roundoff:.1e}); the error "
            f"bars count that noise {NOISE_SAFETY:g}× (f computes below the precision of x, "
            "through float(), a Decimal context of fewer digits or an mpmath function "
            "applied to a Decimal; or f cancels internally, its value much smaller than "
            "terms larger than its gradient shows: undecidable which from these values)")
    return Resolution(relative, ratio, i, note, ev.evaluations - before, consistent)


def _cancelling_note(ns: NumberSystem, i: int, sigma: float, scale: float) -> str:
    """What the noise measurement found when it, not the probe, widened the bars."""
    return (f"f rounds more than its values explain: {NOISE_EVALUATIONS} evaluations at "
            f"coordinate {i} measure a noise of σ = {sigma:.1e} per evaluation, "
            f"{sigma / (ns.unit_roundoff * scale):.1f}× the u·{scale:.1e} the error model "
            "assumes (u times f's value or the size of its terms): f computes "
            "intermediates larger than both, as cosh(x) - 1 near 0 computes cosh(x) ~ 1, "
            f"so the error bars count {NOISE_SAFETY:g}σ per evaluation")


def term_size(ns: NumberSystem, result: FDResult, x_flat: np.ndarray) -> float:
    """``max_i |D_i|·max(|x_i|, 1)``: a size f's terms reach (every term that depends on
    x_i changes by about that when x_i moves by its own scale), so rounding of one
    evaluation up to ``κ u`` times it is the system's, even where f cancels to ~0
    (Σ sin(x_i) at symmetric points: f = 0, rounding ~1e-16). NaN entries are skipped.
    Wider than `finite_difference.term_scale` near x = 0: a false alarm here calls the
    complex step off, so the cross-check gives f's terms the benefit of the doubt."""
    wide = ns.error_dtype.type
    size = ns.magnitude(result.value) * scales(ns.magnitude(x_flat))
    size = size[np.isfinite(size)]
    return wide(np.max(size)) if size.size else wide(0.0)


def _probe_step(ns: NumberSystem, x_i: float, h_i: float) -> float | None:
    if not h_i > 0:  # no step below the method's (it found none at this coordinate)
        return None
    wide = ns.error_dtype.type  # scalars as wide as the system's error bars
    target = min(scales(np.array([x_i]))[0] * np.exp2(wide(2 * ns.log2_unit_roundoff / 3)),
                 PROBE_FRACTION * h_i)
    step = wide(ns.magnitude(radix_steps(np.array([target]), ns))[0])
    if step > PROBE_FRACTION * h_i:
        step /= ns.radix
    if not step > MIN_SPACINGS * ns.unit_roundoff * x_i:  # the method's steps are tiny:
        step = h_i / ns.radix  # probe just below them
    if not step > MIN_SPACINGS * ns.unit_roundoff * x_i:
        return None
    return step


def _excess(ev: Evaluator, i: int, step: float, rule, result: FDResult,
            multipliers: tuple[int, ...] = (1,), *, terms: float = 0.0
            ) -> list[tuple[float, float, float, float]]:
    """For each probe step ``m·δ``: ``|D_probe − D_i| − error_i − truncation``, the
    probe's rounding bound (``κ u Σ|w| max(|f_j|, terms) / δ``), max |f| it saw, and the
    step (one batched call of f)."""
    ns = ev.ns
    wide = ns.error_dtype.type  # scalars as wide as the system's error bars
    weight = wide(_weight_sum(rule))
    h = realize(ns, ev.x_flat[i : i + 1], radix_steps(np.array([step]), ns))
    levels = stencil_levels(ev, np.array([i]), h, rule, multipliers)
    coefficient = TRUNCATION_SAFETY * wide(np.nan_to_num(result.coefficient[i]))
    out = []
    for m, level in zip(multipliers, levels):
        with ns.context():
            gap = wide(ns.magnitude(level.value - result.value[i : i + 1])[0])
        # the probe's own truncation c·δ^p, c measured by the method (counted twice, as
        # the methods count theirs); NaN (not measured) counts as 0
        delta = wide(ns.magnitude(h)[0]) * m
        truncation = coefficient
        with np.errstate(over="ignore"):
            for _ in range(rule.order):  # c·δ^p: 0 stays 0 where δ^p alone would overflow
                truncation = wide(truncation) * delta
        # level.noise is κu·Σ|w||f|/δ
        # the method's bar is an estimate, not a bound: only a gap beyond twice it counts
        bound = max(wide(level.noise[0]),
                    NOISE_ROUNDINGS * ns.unit_roundoff * weight * wide(terms) / delta)
        with np.errstate(invalid="ignore"):  # inf − inf: an infinite bar already covers
            excess = gap - BAR_SAFETY * wide(result.error[i]) - truncation
        out.append((0.0 if np.isnan(excess) else max(excess, 0.0),
                    bound, wide(level.magnitude[0]), delta,
                    _consistent(gap, wide(result.error[i]), BAR_SAFETY * (bound + truncation))))
    return out


@functools.cache
def _weight_sum(rule: Stencil) -> float:
    """``Σ|w_j|`` of a rule, as a float (summed exactly as Fractions, once per rule)."""
    return float(sum(abs(w) for w in rule.weights))


def _consistent(gap: float, error: float, probe_error: float) -> float:
    """The bar the probe demands: ``gap + probe_error`` when the probe's value lies outside
    the method's bar by more than the probe's own (doubled) error, else 0 (no demand)."""
    return gap + probe_error if gap > error + probe_error else 0.0


def _ladder(ev: Evaluator, i: int, start: float, h_i: float, rule, result: FDResult,
            terms: float = 0.0) -> tuple[float, float]:
    """ε ≈ max over rungs δ_j of ``excess_j · δ_j / Σ|w|`` (module notes)."""
    weight = _weight_sum(rule)
    top = PROBE_FRACTION * h_i
    # at most MAX_RUNGS rungs a power of the radix apart (so that m·δ is exact),
    # however many decades lie between u^(2/3) and h (mpf:1000)
    base = ev.ns.radix
    spread = max(math.log(top / start, base), 0.0)
    per_rung = max(math.ceil(spread / MAX_RUNGS), math.ceil(math.log(LADDER_FACTOR, base)))
    count = int(spread // per_rung) + 1
    multipliers = tuple(base ** (per_rung * j) for j in range(count))
    rungs = _excess(ev, i, start, rule, result, multipliers, terms=terms)
    # ... and the top rung's consistent bar: the least noisy of the probe's values
    return max(excess * delta / weight for excess, _, _, delta, _ in rungs), rungs[-1][4]


def reconciled(result: FDResult, resolution: Resolution) -> FDResult:
    """`result` with the probed entry's bar raised to cover the probe's value: when `f`
    is as precise as its system, the probe at a much smaller step is the better witness
    (a user step across a kink: the step's own witness cannot see it)."""
    i = resolution.coordinate
    if not resolution.consistent > result.error[i]:
        return result
    error = result.error.copy()
    error[i] = resolution.consistent
    return FDResult(value=result.value, error=error, h=result.h,
                    coefficient=result.coefficient, magnitude=result.magnitude,
                    noise=result.noise, resolution=result.resolution, failed=result.failed,
                    bias=result.bias)


def widened(result: FDResult, resolution: Resolution, unit_roundoff: float) -> FDResult:
    """`result` with its rounding term rescaled from κu|f| to NOISE_SAFETY·ε; error inf
    everywhere when ε reaches `NO_DIGITS` of |f| (f has no smooth part at that scale)."""
    factor = NOISE_SAFETY * resolution.noise / (NOISE_ROUNDINGS * unit_roundoff)
    if resolution.noise >= NO_DIGITS and not resolution.sigma > 0:  # the ladder's finding
        factor = math.inf
    rounding = result.noise
    if resolution.sigma > 0 and math.isfinite(factor):
        factor = _per_coordinate(result, resolution, unit_roundoff, factor)
        if result.bias is not None:  # the rounding of x itself is no noise of f
            rounding = np.maximum(result.noise - result.bias, 0)
    with np.errstate(invalid="ignore", over="ignore"):
        extra = np.where(rounding > 0, rounding * factor, 0.0) \
            if np.all(np.isfinite(factor)) else np.full(len(result.error), np.inf)
    return FDResult(value=result.value, error=result.error + extra, h=result.h,
                    coefficient=result.coefficient, magnitude=result.magnitude,
                    noise=result.noise + extra, resolution=result.resolution,
                    failed=result.failed, bias=result.bias)


def _per_coordinate(result: FDResult, resolution: Resolution, unit_roundoff: float,
                    factor: float) -> np.ndarray:
    """The rescaling of each coordinate's rounding term for a measured σ: the term is
    ``κu·Σ|w_j|·max(|f_j|, T)/h``, so ``NOISE_SAFETY·σ/(κu·max(|f|_i, T))`` turns it into
    ``NOISE_SAFETY·σ·Σ|w_j|/h``, whatever |f| is at that coordinate's points (at a
    multiple zero |f_j| ~ h³ while the measured σ is that of f's intermediates). Where
    the method keeps no |f| (Richardson) the probe's scale stands (`factor`)."""
    magnitude = np.asarray(result.magnitude)  # the error dtype: beyond float range too
    floor = np.maximum(np.nan_to_num(magnitude, nan=0.0), resolution.terms)
    with np.errstate(divide="ignore", invalid="ignore"):
        scaled = NOISE_SAFETY * resolution.sigma / (NOISE_ROUNDINGS * unit_roundoff * floor)
    return np.where(np.isfinite(magnitude) & (floor > 0), scaled, factor)
