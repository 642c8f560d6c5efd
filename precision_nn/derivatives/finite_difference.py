"""Forward, backward and central differences of any accuracy order, with error estimates.

Every rule is evaluated at two steps, ``h`` and ``2h`` (shared points are evaluated once).
With ``D(h) = f' + c h^p + O(h^(p+1))`` the difference of the two measures the truncation,

    |D(h) − f'| ≈ |D(2h) − D(h)| / (2^p − 1),

and the rounding noise of ``D(h)`` is bounded by ``κ u Σ_j |w_j| |f(x + s_j h)| / h``
(`steps.NOISE_ROUNDINGS`). The reported error is their sum. The value returned is ``D(h)``
itself, not an extrapolation: that is `richardson`'s job.

The quotient uses the steps that were realised: ``h_r = (x + h) − x`` is computed in the
number system (exact by Sterbenz's lemma), the points are ``x + k·h_r``, and when one of
them is not exactly ``x + k·h_r`` (a binade boundary between them) that coordinate's
weights are recomputed exactly for the offsets it really has (Fornberg on rationals).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from precision_nn.derivatives.evaluation import Evaluator, NonFiniteValueError
from precision_nn.derivatives.stencils import Stencil, fornberg_weights, stencil
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

__all__ = ["FDResult", "Level", "finite_difference", "realize", "stencil_levels", "to_fraction"]

# D(2h) − D(h) measures truncation, (2^p − 1)·c·h^p, but also the rounding of both levels,
# about as large as D(h)'s own when f is noisier than the model's 2u|f| (cancellation
# inside f, rounded arguments). Dividing by (2^p − 1) = 15, 63, 255 would hide that noise;
# dividing by at most 3 (the central-difference value) keeps it, and over-estimates a pure
# truncation error by at most (2^p − 1)/3.
NOISE_WITNESS_DIVISOR = 3.0
# the points of a pair of rules chosen automatically stay within this fraction of
# max(|x|, 1) from x
MAX_RELATIVE_REACH = 0.125


@dataclass(frozen=True)
class Level:
    """One rule at one step, for a set of coordinates."""

    value: np.ndarray  # the difference quotients, in the number system
    noise: np.ndarray  # float: bound on their rounding error
    magnitude: np.ndarray  # float: max |f| over the points used


@dataclass(frozen=True)
class FDResult:
    """Values with their error estimates and the measured truncation coefficient."""

    value: np.ndarray
    error: np.ndarray
    h: np.ndarray
    coefficient: np.ndarray  # |c| in the truncation c·h^p (float)
    magnitude: np.ndarray  # |f| near x (float)
    noise: np.ndarray  # the rounding part of `error` (float)


def realize(ns: NumberSystem, x: np.ndarray, h: np.ndarray) -> np.ndarray:
    """``(x + h) − x`` in `ns`: the step the arithmetic really takes."""
    with ns.context():
        h_r = (x + h) - x
    if not np.all(np.abs(ns.to_float(h_r)) > 0):
        raise ValueError(
            "`h` is below the spacing of the floating-point numbers at `x`, so x + h == x "
            f"in {ns.name!r}; use a larger `h` (or h=None to choose it)."
        )
    return h_r


def stencil_levels(ev: Evaluator, coords: np.ndarray, h: np.ndarray, rule: Stencil,
                   multipliers: tuple[int, ...]) -> list[Level]:
    """`rule` at steps ``m·h`` for each ``m`` in `multipliers`, at coordinates `coords`."""
    ns = ev.ns
    x = ev.x_flat[coords]
    ks = sorted({m * s for m in multipliers for s in rule.offsets})
    moved = [k for k in ks if k != 0]
    with ns.context():
        shifted = {k: x + ns.scalar(k) * h for k in moved}
        offsets = {k: shifted[k] - x for k in moved}  # exact (Sterbenz)
        exact = {k: np.asarray(offsets[k] == ns.scalar(k) * h, dtype=bool) for k in moved}
    rows = ev.at_shifts(np.tile(coords, len(moved)), np.concatenate([shifted[k] for k in moved]))
    values = {k: rows[i * len(coords):(i + 1) * len(coords)] for i, k in enumerate(moved)}
    if 0 in ks:
        values[0] = ns.zeros(len(coords))
        values[0][:] = ev.at_point()
        offsets[0] = ns.zeros(len(coords))
        exact[0] = np.ones(len(coords), dtype=bool)
    return [_level(ns, rule, m, h, values, offsets, exact) for m in multipliers]


def _level(ns: NumberSystem, rule: Stencil, m: int, h: np.ndarray,
           values: dict[int, np.ndarray], offsets: dict[int, np.ndarray],
           exact: dict[int, np.ndarray]) -> Level:
    nodes = [m * s for s in rule.offsets]
    # integer weights over one common denominator: each product n_j·f_j rounds once
    denominator = math.lcm(*(w.denominator for w in rule.weights))
    with ns.context():
        total = sum(ns.scalar(int(w * denominator)) * values[k]
                    for k, w in zip(nodes, rule.weights))
        value = total / (ns.scalar(denominator * m) * h)
    regular = np.logical_and.reduce([exact[k] for k in nodes])
    for i in np.flatnonzero(~regular):
        value[i] = _irregular(ns, [offsets[k][i] for k in nodes],
                              [values[k][i] for k in nodes], h[i] * m)
    magnitudes = np.array([np.abs(ns.to_float(values[k])) for k in nodes])
    weights = np.array([float(abs(w)) for w in rule.weights])[:, None]
    step = np.abs(ns.to_float(h)) * m
    noise = NOISE_ROUNDINGS * ns.unit_roundoff * np.sum(weights * magnitudes, axis=0) / step
    return Level(value=value, noise=noise, magnitude=magnitudes.max(axis=0))


def _irregular(ns: NumberSystem, offsets: list[Any], values: list[Any], step: Any) -> Any:
    """The quotient for points that are not exact multiples of the step apart: exact
    weights for the offsets the points really have (Fornberg 1988, arbitrary grids)."""
    unit = to_fraction(step)
    weights = fornberg_weights([to_fraction(r) / unit for r in offsets])
    with ns.context():
        total = sum(ns.scalar(w) * v for v, w in zip(values, weights))
        return total / step


def finite_difference(ev: Evaluator, *, method: str, order: int,
                      h: np.ndarray | None) -> FDResult:
    """`method`'s rule of accuracy `order` at every coordinate; `h` None chooses steps."""
    rule = stencil(method, order)
    if h is not None:
        coords = np.arange(len(ev.x_flat))
        return _at_steps(ev, coords, realize(ev.ns, ev.x_flat, h), rule)
    return _auto_steps(ev, rule)


def _at_steps(ev: Evaluator, coords: np.ndarray, h: np.ndarray, rule: Stencil) -> FDResult:
    first, second = stencil_levels(ev, coords, h, rule, (1, 2))
    ns = ev.ns
    with ns.context():
        difference = np.abs(ns.to_float(second.value - first.value))
    steps = np.abs(ns.to_float(h))
    growth = 2.0**rule.order - 1.0  # D(2h) − D(h) = (2^p − 1) c h^p
    return FDResult(
        value=first.value,
        error=difference / min(growth, NOISE_WITNESS_DIVISOR) + first.noise,
        h=steps,
        coefficient=difference / (growth * steps**rule.order),
        magnitude=first.magnitude,
        noise=first.noise,
    )


def _auto_steps(ev: Evaluator, rule: Stencil) -> FDResult:
    """Measure the truncation coefficient at a step, move to h*, until h* settles.

    A difference D(2h) − D(h) that happens to cancel can send h* far off for one round,
    so each coordinate returns the round whose step is closest (in log scale) to its last
    h*, the best-informed choice. (Choosing the smallest *reported* error instead would
    favour rounds whose estimate came out too small.)
    """
    ns = ev.ns
    x_float = np.abs(ns.to_float(ev.x_flat))
    reach = 2 * max(abs(s) for s in rule.offsets)  # the 2h level's farthest point
    limit = scales(x_float) * MAX_RELATIVE_REACH / reach
    h_float = np.minimum(initial_steps(x_float, ns, rule.order), limit)
    rounds: list[tuple[np.ndarray, FDResult]] = []
    active = np.arange(len(x_float))
    for round_ in range(MAX_STEP_ITERATIONS + 1):
        h = realize(ns, ev.x_flat[active], radix_steps(h_float[active], ns))
        try:
            result = _at_steps(ev, active, h, rule)
        except NonFiniteValueError:
            if round_ == MAX_STEP_ITERATIONS:
                raise
            h_float[active] /= SHRINK_ON_DOMAIN_EXIT  # a point left the domain of f
            continue
        rounds.append((active, result))
        h_star = np.minimum(optimal_steps(result.h, result.coefficient, result.noise,
                                          rule.order), limit[active])
        h_float[active] = h_star
        active = active[~settled(result.h, h_star, ns)]
        if len(active) == 0:
            break
    return _closest_rounds(ns, rounds, h_float)


_FIELDS = ("value", "error", "h", "coefficient", "magnitude", "noise")


def _closest_rounds(ns: NumberSystem, rounds: list[tuple[np.ndarray, FDResult]],
                    h_star: np.ndarray) -> FDResult:
    n = len(h_star)
    chosen = {name: np.full(n, np.nan) for name in _FIELDS[1:]}
    chosen["value"] = ns.zeros(n)
    distance = np.full(n, np.inf)
    for where, result in rounds:
        closer = np.abs(np.log(result.h / h_star[where])) <= distance[where]
        distance[where[closer]] = np.abs(np.log(result.h / h_star[where]))[closer]
        for name in _FIELDS:
            chosen[name][where[closer]] = getattr(result, name)[closer]
    return FDResult(**chosen)


def to_fraction(v: Any) -> Fraction:
    """The exact rational value of a number of any system (real part of a complex one)."""
    if hasattr(v, "man_exp"):  # mpmath mpf
        man, exp = v.man_exp
        return Fraction(man) * Fraction(2) ** exp
    if isinstance(v, (complex, np.complexfloating)) or type(v).__name__ == "mpc":
        return to_fraction(v.real)
    if hasattr(v, "as_integer_ratio"):  # float, numpy floats, Decimal
        return Fraction(*v.as_integer_ratio())
    return Fraction(v)
