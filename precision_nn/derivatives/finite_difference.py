"""Forward, backward and central differences of any accuracy order, with error estimates.

A rule of accuracy ``p`` has ``D(h) = f' + C h^p f^(p+1)(x) + O(h^(p+1))`` with ``C`` exact
(`stencils`). Its points are completed to ``p + 2`` consecutive ones (one more point per
coordinate, plus ``f(x)`` once), whose (p+1)-th difference ``Δ^(p+1) f ≈ h^(p+1) f^(p+1)``
measures the truncation:

    |D(h) − f'| ≈ TRUNCATION_SAFETY · |C| · |Δ^(p+1) f| / h,

while the rounding noise of ``D(h)`` is bounded by ``κ u Σ_j |w_j| |f(x + s_j h)| / h``
(`steps.NOISE_ROUNDINGS`). The reported error is their sum. The model fits an ``f``
computed to a few ``u`` of its value, as are losses that sum non-negative terms
(cross-entropy, squared error, L2: ``Σ|terms| = |f|``); on the float64 losses of 201
random MLPs ([3, 4, 2], 5 examples) 99.96% of the central-difference gradient entries are
bounded, with a median over-estimate of 7.7×. When ``f`` is noisier than that (cancellation
inside ``f``: ``(4 + sin x) − 4`` carries noise ``4u``, not ``u|f|``) the noise enters
``Δ^(p+1) f`` as a single sample, which can cancel (for quantised values it is often
exactly 0), and the estimate is then short: for ``(B + sin x) − B`` with ``h=None`` the
error is bounded at 99% of points for B = 1, 74% for B = 4, 29% for B = 16. Only more
evaluations could measure such noise (Moré & Wild, SIAM J. Sci. Comput. 33 (2011) 1292).
The value returned is ``D(h)`` itself, not an extrapolation: that is `richardson`'s job.

Three more terms and rules keep the bar honest off the textbook path:

- *Data rounded at x.* An ``f`` built from data rounded near ``x`` (``w·a − b`` with ``b``
  the rounded ``3a``) is the exact function of a point moved by ~``u|x|``, whose slope
  differs by ``u|x|·|f''|``; the bar adds ``κu|x||f''|`` with ``f''`` from the witness
  points. At a minimum (least squares at an exact fit) that bias is the whole computed
  derivative; elsewhere it is ~h times the rounding term.
- *Cancelling f.* Where ``f(x) ≈ 0`` through cancellation (a residual at an exact fit,
  ``Σ sin x_i`` at symmetric points, ``t² − 2`` at √2) one evaluation still rounds by ~u
  times f's terms, while ``κu|f_j|`` at ``x ± h`` is ~``κu·h|f'|``: noise ∝ h sent h* down
  round after round to the spacing of x (bars of 3e-2 on an exact-fit residual, or short
  ones: a log-sum-exp difference got 1.5e-16 against a true error of 9e-6). Every
  ``|f_j|`` of the rounding terms is therefore floored at ``T = max_i |D_i|·|x_i|``
  (`term_scale`, the largest over all coordinates and rounds: the final sums of f, whose
  rounding this is, are shared by every coordinate). T is the forward error of a backward
  error of u in each argument, the condition-number term ``u·|x||f'|`` of Higham (2002,
  §1.6): every term that moves with ``x_i`` is about ``|D_i|·|x_i|`` in size (to first
  order; at a stationary point T says nothing, and *Multiple zeros* applies). An f whose
  arguments are exact (``exp(16x)`` with 16x exact) rounds by less, and its steps come out
  up to ``cond^(1/3)`` longer than needed: honest, a little less accurate. Terms that do
  not move with x (``(x + 4) − 4``) stay invisible here; the probe (`resolution`) looks
  for them.
- *Multiple zeros.* With ``f = f' = 0`` at ``x ≠ 0`` the noise ``κu|f|`` vanishes and
  h* with it; automatic steps stay `MIN_STEP_SPACINGS` spacings above the numbers at x
  instead of failing with "h is below the spacing".
- *Flat f.* When every point of a round returns exactly ``f(x)`` the function is
  constant at that scale, or computes on a coarser grid (a ``float()`` detour inside
  mpf); the step grows by `FLAT_GROWTH` per round and never returns below it.

A user step longer than ``max(|x|, 1)`` or whose points overflow is refused at the entry
(`check_steps`).

The quotient uses the steps that were realised (`real_offsets`): ``h_r = (x + h) − x`` is computed in the
number system (exact by Sterbenz's lemma), the points are ``x + k·h_r``, and when one of
them is not exactly ``x + k·h_r`` (a binade boundary between them) that coordinate's
weights, of the rule and of the witness, are recomputed exactly for the signed offsets it
really has (Fornberg on rationals), and its rounding term uses those weights. When h_r is
within a few spacings of the numbers at x, two points can round to the same number; no
quotient exists then, and a `ValueError` says to take a larger step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from precision_nn.derivatives.constants import exact_constant
from precision_nn.derivatives.evaluation import Evaluator, NonFiniteValueError
from precision_nn.derivatives.real_offsets import (
    integer_weights,
    offset_column,
    real_weights,
    realize,
    to_fraction,
    witness_difference,
    witness_offsets,
)
from precision_nn.derivatives.stencils import Stencil, stencil
from precision_nn.derivatives.steps import (
    MAX_STEP_ITERATIONS,
    NOISE_ROUNDINGS,
    SHRINK_ON_DOMAIN_EXIT,
    initial_steps,
    optimal_steps,
    radix_steps,
    scales,
    settled,
)
from precision_nn.numbers import NumberSystem

# realize, real_weights, to_fraction and witness_offsets live in `real_offsets` and are
# re-exported for the modules that import them from here
__all__ = ["FDResult", "Level", "finite_difference", "real_weights", "realize", "stencil_levels",
           "term_scale", "to_fraction", "witness_offsets"]

# The (p+1)-th difference estimates f^(p+1) near x, not at x, and misses the next term
# of the expansion: count its truncation twice.
TRUNCATION_SAFETY = 2.0
# with automatic steps every point (the witness's too) stays within this fraction of
# max(|x|, 1) from x
MAX_RELATIVE_REACH = 0.125
# a coordinate whose points all return exactly f(x) grows its step this much per round,
# for at most this many extra rounds (2^8 per round: 2^64 above u^(1/3) covers a float
# detour inside mpf:1000)
FLAT_GROWTH = 2.0**8
FLAT_ROUNDS = 8
# automatic steps stay at least this many spacings (u·|x|) above the numbers at x
MIN_STEP_SPACINGS = 256


@dataclass(frozen=True)
class Level:
    """One rule at one step, for a set of coordinates."""

    value: np.ndarray  # the difference quotients, in the number system
    noise: np.ndarray  # float: bound on their rounding error
    magnitude: np.ndarray  # float: max |f| over the points used
    terms: float = 0.0  # the floor of every |f_j| in `noise` (`term_scale`), 0 for none


@dataclass(frozen=True)
class FDResult:
    """Values with their error estimates and the measured truncation coefficient."""

    value: np.ndarray
    error: np.ndarray
    h: np.ndarray
    coefficient: np.ndarray  # |c| in the truncation c·h^p (float)
    magnitude: np.ndarray  # |f| near x (float)
    noise: np.ndarray  # the rounding part of `error` (float)
    resolution: np.ndarray  # smallest |c| the measurement can tell from rounding (float)
    # where no derivative was found (error inf), or None when every coordinate has one
    failed: np.ndarray | None = None
    # the part of `noise` due to rounding of the data at x (`_input_rounding`), if known
    bias: np.ndarray | None = None


def stencil_levels(ev: Evaluator, coords: np.ndarray, h: np.ndarray, rule: Stencil,
                   multipliers: tuple[int, ...], *, terms: float | None = None
                   ) -> list[Level]:
    """`rule` at steps ``m·h`` for each ``m`` in `multipliers`, at coordinates `coords`;
    with `terms` (not None) the rounding terms floor every |f_j| at ``max(terms,
    term_scale)`` (module notes, *Cancelling f*; each Level says the floor it used)."""
    ks = sorted({m * s for m in multipliers for s in rule.offsets})
    values, offsets, exact = _evaluate_offsets(ev, coords, h, ks)
    if terms is None:
        return [_level(ev.ns, rule, m, h, values, offsets, exact) for m in multipliers]
    return [_level(ev.ns, rule, m, h, values, offsets, exact, x=ev.x_flat[coords],
                   terms=terms) for m in multipliers]


def _evaluate_offsets(ev: Evaluator, coords: np.ndarray, h: np.ndarray, ks: list[int]
                      ) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray],
                                 dict[int, np.ndarray]]:
    """f at ``x + k·h`` for each k (f(x) once for all coordinates), the realised offsets,
    and whether each offset is exactly ``k·h``: every shifted point in one array
    operation and one call of `Evaluator.at_shifts`."""
    ns = ev.ns
    x = ev.x_flat[coords]
    moved = [k for k in ks if k != 0]
    column = offset_column(ns, tuple(moved))
    with ns.context():
        nominal = column * h[None, :]
        shifted = x[None, :] + nominal
    finite = np.asarray(ns.isfinite(shifted.reshape(-1)), dtype=bool)
    if not finite.all():
        r, i = divmod(int(np.flatnonzero(~finite)[0]), len(coords))
        raise ValueError(
            f"`x` (entry {int(coords[i])}) is at the edge of the range of {ns.name!r}: "
            f"the point x + {moved[r]}·h overflows. Rescale x, or compute in a wider system "
            "(e.g. numbers='mpf:30').")
    with ns.context():
        realised = shifted - x[None, :]  # exact (Sterbenz)
        regular = np.asarray(realised == nominal, dtype=bool)
    rows = ev.at_shifts(np.tile(coords, len(moved)), shifted.reshape(-1))
    values = {k: rows[r * len(coords):(r + 1) * len(coords)] for r, k in enumerate(moved)}
    offsets = {k: realised[r] for r, k in enumerate(moved)}
    exact = {k: regular[r] for r, k in enumerate(moved)}
    if 0 in ks:
        values[0] = ns.zeros(len(coords))
        values[0][:] = ev.at_point()
        offsets[0] = ns.zeros(len(coords))
        exact[0] = np.ones(len(coords), dtype=bool)
    return values, offsets, exact


def _level(ns: NumberSystem, rule: Stencil, m: int, h: np.ndarray,
           values: dict[int, np.ndarray], offsets: dict[int, np.ndarray],
           exact: dict[int, np.ndarray], *, x: np.ndarray | None = None,
           terms: float = 0.0) -> Level:
    """`rule` at step ``m·h``; with `x` (the points' coordinates) the rounding term floors
    every |f_j| at ``max(terms, term_scale)`` (module notes, *Cancelling f*)."""
    nodes = [m * s for s in rule.offsets]
    numerators, denominator, sizes = integer_weights(rule)
    with ns.context():
        # array first: an mpf scalar on the left formats the whole array (mpmath's repr)
        total = sum(values[k] * exact_constant(ns, n) for k, n in zip(nodes, numerators))
        value = total / (h * exact_constant(ns, denominator * m))
    weights = np.repeat(sizes[:, None], len(h), axis=1)
    regular = np.logical_and.reduce([exact[k] for k in nodes])
    for i in np.flatnonzero(~regular):
        with ns.context():
            unit = h[i] * exact_constant(ns, m)
        real = real_weights(ns, nodes, [offsets[k][i] for k in nodes], unit, 1)
        with ns.context():
            value[i] = sum(ns.scalar(w) * values[k][i] for k, w in zip(nodes, real)) / unit
        weights[:, i] = [float(abs(w)) for w in real]
    magnitudes = np.array([ns.magnitude(values[k]) for k in nodes])
    step = ns.magnitude(h) * m
    if x is not None:
        terms = max(terms, term_scale(ns, value, x))
    # the rounding term uses the weights really applied: on irregular offsets they can
    # exceed the rule's
    noise = NOISE_ROUNDINGS * ns.unit_roundoff * \
        np.sum(weights * np.maximum(magnitudes, terms), axis=0) / step
    return Level(value=value, noise=noise, magnitude=magnitudes.max(axis=0), terms=terms)


def term_scale(ns: NumberSystem, value: np.ndarray, x: np.ndarray) -> float:
    """``max_i |D_i|·|x_i|`` over the finite estimates ``D_i``: the forward error, in units
    of u, of rounding every argument by u relative, i.e. the size of the terms of f that
    move with x (module notes, *Cancelling f*)."""
    wide = ns.error_dtype.type
    size = ns.magnitude(value) * ns.magnitude(x)
    size = size[np.isfinite(size)]
    return wide(np.max(size)) if size.size else wide(0.0)


def finite_difference(ev: Evaluator, *, method: str, order: int,
                      h: np.ndarray | None) -> FDResult:
    """`method`'s rule of accuracy `order` at every coordinate; `h` None chooses steps."""
    rule = stencil(method, order)
    if h is not None:
        coords = np.arange(len(ev.x_flat))
        return _at_steps(ev, coords, realize(ev.ns, ev.x_flat, h), rule)[0]
    return _auto_steps(ev, rule)


def _at_steps(ev: Evaluator, coords: np.ndarray, h: np.ndarray, rule: Stencil, *,
              terms: float = 0.0) -> tuple[FDResult, float]:
    """The rule at step h with its error: truncation from the (p+1)-th difference, plus
    rounding noise of values at least ``max(terms, term_scale)`` (module notes); and that
    floor."""
    ns = ev.ns
    witness = witness_offsets(rule)
    values, offsets, exact = _evaluate_offsets(ev, coords, h, sorted(set(witness)
                                                                      | set(rule.offsets)))
    level = _level(ns, rule, 1, h, values, offsets, exact, x=ev.x_flat[coords], terms=terms)
    p = rule.order
    difference, weights = witness_difference(ns, witness, h, values, offsets, exact)
    steps = ns.magnitude(h)
    constant = float(abs(rule.truncation_constant))
    # truncation C·h^p·f^(p+1) with f^(p+1) ≈ Δ^(p+1)f / h^(p+1), i.e. C·|Δ^(p+1)f|/h:
    # formed so, it neither overflows for large h nor underflows for tiny ones
    witnessed = constant * ns.magnitude(difference)
    # Δ^(p+1) f of rounded values is itself uncertain by κu·Σ|weight_j||f_j|
    magnitudes = np.maximum(np.array([ns.magnitude(values[k]) for k in witness]), level.terms)
    floor = NOISE_ROUNDINGS * ns.unit_roundoff * np.sum(weights * magnitudes, axis=0)
    with np.errstate(over="ignore", under="ignore"):
        coefficient = _per_power(witnessed, steps, p + 1)
        resolution = _per_power(constant * floor, steps, p + 1)
    bias = _input_rounding(ns, ev.x_flat[coords], witness, values, steps)
    noise = level.noise + bias
    return FDResult(
        value=level.value,
        error=TRUNCATION_SAFETY * witnessed / steps + noise,
        h=steps,
        coefficient=coefficient,
        magnitude=level.magnitude,
        noise=noise,
        resolution=resolution,
        bias=bias,
    ), level.terms


def _input_rounding(ns: NumberSystem, x: np.ndarray, witness: tuple[int, ...],
                    values: dict[int, np.ndarray], steps: np.ndarray) -> np.ndarray:
    """``κ u |x| |f''|``: f computed from data rounded at x (``w·a − b`` with ``b`` = the
    rounded ``3a``) is the exact f at a point moved by ~u|x|, whose slope differs by
    ``u|x|·f''``. At a minimum this bias is the whole computed derivative (a least-squares
    objective at an exact fit); elsewhere it is ~h times the rounding term."""
    k = next(j for j in range(len(witness) - 2) if witness[j] <= 0 <= witness[j + 2])
    a, b, c = (values[witness[k + j]] for j in range(3))
    with ns.context():  # in the system: in floats the difference would be all rounding
        difference = ns.magnitude(a - b * exact_constant(ns, 2) + c)
    with np.errstate(over="ignore", invalid="ignore"):
        second = difference / steps / steps
    x_float = ns.magnitude(x)
    return np.nan_to_num(NOISE_ROUNDINGS * ns.unit_roundoff * x_float * second, nan=0.0)


def _per_power(a: np.ndarray, h: np.ndarray, power: int) -> np.ndarray:
    """``a / h^power`` without forming ``h^power`` (which overflows for h beyond ~1e77
    at power 4)."""
    out = np.asarray(a, dtype=np.result_type(a, h, np.float64))
    for _ in range(power):
        out = out / h
    return out


def _auto_steps(ev: Evaluator, rule: Stencil) -> FDResult:
    """Measure the truncation coefficient at a step, move to h*, until h* settles.

    A (p+1)-th difference that happens to cancel can send h* far off for one round,
    so each coordinate returns the round whose step is closest (in log scale) to its last
    h*, the best-informed choice. (Choosing the smallest *reported* error instead would
    favour rounds whose estimate came out too small.)
    """
    ns = ev.ns
    x_float = ns.magnitude(ev.x_flat)
    reach = max(abs(s) for s in witness_offsets(rule))  # the farthest point, in steps
    limit = scales(x_float) * MAX_RELATIVE_REACH / reach
    h_float = np.minimum(initial_steps(x_float, ns, rule.order), limit)
    floor = MIN_STEP_SPACINGS * ns.unit_roundoff * x_float
    rounds: list[tuple[np.ndarray, FDResult]] = []
    active = np.arange(len(x_float))
    budget = np.full(len(x_float), MAX_STEP_ITERATIONS)
    terms = 0.0  # the largest term scale seen: f's rounding is shared by all coordinates
    for round_ in range(MAX_STEP_ITERATIONS + FLAT_ROUNDS + 1):
        h = realize(ns, ev.x_flat[active], radix_steps(h_float[active], ns))
        try:
            result, terms = _at_steps(ev, active, h, rule, terms=terms)
        except NonFiniteValueError:
            if round_ == MAX_STEP_ITERATIONS:
                raise
            h_float[active] /= SHRINK_ON_DOMAIN_EXIT  # a point left the domain of f
            continue
        rounds.append((active, result))
        # a coefficient below what the difference can resolve is rounding, not truncation:
        # it must not send the step up
        measurable = np.maximum(result.coefficient, result.resolution)
        h_star = np.minimum(optimal_steps(result.h, measurable, result.noise, rule.order),
                            limit[active])
        # at a multiple zero (f = f' = 0, x ≠ 0) the noise κu|f| vanishes with f and h*
        # with it: keep the step a safe number of spacings above the numbers at x
        h_star = np.maximum(h_star, floor[active])
        # every point gave exactly f(x): f is constant at this scale, or computes on a
        # grid coarser than h (a float() detour in mpf): grow the step past that grid and
        # never come back below it (a constant f grows to the limit and returns 0)
        with ns.context():
            flat = (result.coefficient == 0) & (np.asarray(ns.to_float(result.value)) == 0)
        flat &= result.h < limit[active] / 2
        budget[active[flat]] = np.maximum(budget[active[flat]], round_ + 1)
        floor[active[flat]] = np.minimum(FLAT_GROWTH * result.h[flat], limit[active][flat])
        h_star = np.where(flat, np.minimum(result.h * FLAT_GROWTH, limit[active]), h_star)
        h_float[active] = h_star
        done = settled(result.h, h_star, ns) | (budget[active] <= round_)
        active = active[~done]
        if len(active) == 0:
            break
    return _closest_rounds(ns, rounds, h_float)


_FIELDS = ("value", "error", "h", "coefficient", "magnitude", "noise", "resolution", "bias")


def _closest_rounds(ns: NumberSystem, rounds: list[tuple[np.ndarray, FDResult]],
                    h_star: np.ndarray) -> FDResult:
    n = len(h_star)
    chosen = {name: np.full(n, np.nan, dtype=ns.error_dtype) for name in _FIELDS[1:]}
    chosen["value"] = ns.zeros(n)
    distance = np.full(n, np.inf, dtype=ns.error_dtype)
    for where, result in rounds:
        closer = np.abs(np.log(result.h / h_star[where])) <= distance[where]
        distance[where[closer]] = np.abs(np.log(result.h / h_star[where]))[closer]
        for name in _FIELDS:
            chosen[name][where[closer]] = getattr(result, name)[closer]
    return FDResult(**chosen)
