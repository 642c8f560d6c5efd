"""Richardson extrapolation of central differences, with Ridders' adaptive stopping.

Central differences have an even error expansion, ``D(h) = f' + a₁h² + a₂h⁴ + …``. Over
steps ``h_k = h₀ / 2^k`` Neville's tableau

    T[k][0] = D(h_k),    T[k][j] = (4^j T[k][j−1] − T[k−1][j−1]) / (4^j − 1)

eliminates one more power of ``h²`` per column. As ``h_k`` shrinks, rounding (∝ u/h_k)
grows, so the tableau is stopped adaptively (Ridders 1982; Numerical Recipes §5.7, routine
``dfridr``): each new entry's error is estimated as the larger of its distances to its two
parents, the entry with the smallest such estimate is kept, and the sequence stops once the
newest diagonal differs from the previous one by more than ``SAFE`` times the best error —
higher orders have started to get worse. Unlike ``dfridr`` that must happen on two levels
in a row: when the first step is too large for `f`, the first diagonals are all poor and
one worsening among them says nothing.

The step ratio 2 (numdifftools' default) keeps every ``h_k`` a power of the radix, so the
ratios ``h_{k−1}/h_k`` the tableau assumes are exactly those of the realised steps.

References
----------
.. [1] C. J. F. Ridders, "Accurate computation of F'(x) and F'(x)F''(x)", Adv. Eng.
   Software 4 (1982) 75-76.
.. [2] W. H. Press et al., *Numerical Recipes*, 3rd ed., §5.7.
"""

from __future__ import annotations

import numpy as np

from precision_nn.derivatives.evaluation import Evaluator
from precision_nn.derivatives.finite_difference import (
    FDResult,
    Level,
    finite_difference,
    realize,
    stencil_levels,
)
from precision_nn.derivatives.stencils import stencil
from precision_nn.derivatives.steps import log2_unit_roundoff, radix_steps, scales
from precision_nn.numbers import NumberSystem

__all__ = ["SAFE", "richardson"]

# Numerical Recipes' dfridr: stop when the new diagonal is worse than SAFE × best error
SAFE = 2.0
# the first step is a quarter of the length over which f changes by its own size
FIRST_STEP_FRACTION = 0.25
# ... and at most this fraction of max(|x|, 1)
MAX_RELATIVE_FIRST_STEP = 0.125
MAX_LEVELS = 64
# the extrapolated value carries its own rounding: error ≥ this many u·|value|
VALUE_ROUNDINGS = 2


def richardson(ev: Evaluator, *, h: np.ndarray | None) -> FDResult:
    """Ridders-Richardson derivative at every coordinate of ``ev.x_flat``.

    `h` is the first (largest) step; ``None`` takes it from a pilot central difference
    whose measured third derivative gives the length scale of `f`.
    """
    ns = ev.ns
    x_float = ns.magnitude(ev.x_flat)
    first = radix_steps(_first_steps(ev, x_float), ns) if h is None else h
    first_float = ns.magnitude(first)
    # rounding ~ u/h overtakes before h reaches the central optimum u^(1/3): stop there
    smallest = scales(x_float) * np.exp2(ns.error_dtype.type(log2_unit_roundoff(ns) / 3))
    levels = int(np.clip(np.max(np.ceil(np.log2(first_float / smallest))) + 2, 3, MAX_LEVELS))
    return _tableau(ev, first, levels)


def _first_steps(ev: Evaluator, x_float: np.ndarray) -> np.ndarray:
    """A quarter of the length scale ``max(sqrt(|f'/c|), (|f|/|c|)^(1/3))``, where ``c ≈
    f'''/6`` is measured by a pilot central difference: over that length the h² term of
    the central difference is as large as ``f'`` (or ``f``) itself."""
    pilot = finite_difference(ev, method="central", order=2, h=None)
    slope = ev.ns.magnitude(pilot.value)
    with np.errstate(divide="ignore", invalid="ignore"):  # c = 0: no length limit
        length = np.fmax(np.sqrt(slope / pilot.coefficient),
                         np.cbrt(pilot.magnitude / pilot.coefficient))
    return np.fmin(FIRST_STEP_FRACTION * length, MAX_RELATIVE_FIRST_STEP * scales(x_float))


def _tableau(ev: Evaluator, first: np.ndarray, levels: int) -> FDResult:
    ns = ev.ns
    n = len(ev.x_flat)
    rule = stencil("central", 2)
    best, error = ns.zeros(n), np.full(n, np.inf, dtype=ns.error_dtype)
    last_h = np.zeros(n)
    active, previous = np.arange(n), []
    worsened = np.zeros(n, dtype=bool)  # the previous diagonal was already worse
    h = first
    for k in range(levels):
        h_k = realize(ns, ev.x_flat[active], h[active])
        (level,) = stencil_levels(ev, active, h_k, rule, (1,))
        last_h[active] = ns.magnitude(h_k)
        row = _extend_row(ns, level, previous, best, error, active)
        stop = np.zeros(len(active), dtype=bool)
        if k > 0:
            with ns.context():
                jump = ns.magnitude(row[k] - previous[k - 1])
            worse = jump >= SAFE * error[active]
            stop = worse & worsened[active]
            worsened[active] = worse
        else:
            best[active] = level.value
        previous = [entry[~stop] for entry in row]
        active = active[~stop]
        with ns.context():
            h = h / ns.scalar(2)
        if len(active) == 0:
            break
    rounding = VALUE_ROUNDINGS * ns.unit_roundoff * ns.magnitude(best)
    return FDResult(value=best, error=error + rounding, h=last_h,
                    coefficient=np.full(n, np.nan, dtype=ns.error_dtype), magnitude=np.full(n, np.nan, dtype=ns.error_dtype),
                    noise=rounding, resolution=np.full(n, np.nan, dtype=ns.error_dtype))


def _extend_row(ns: NumberSystem, level: Level, previous: list[np.ndarray],
                best: np.ndarray, error: np.ndarray, active: np.ndarray) -> list[np.ndarray]:
    """The next tableau row; records each entry whose error estimate beats the best.

    The estimate of entry ``T[k][j]`` is Ridders' distance to its parents plus its
    rounding: each column multiplies the noise of the finest level by at most
    ``(4^j + 1)/(4^j − 1)``, a product that stays below 2.
    """
    row = [level.value]
    amplification = 1.0
    for j in range(1, len(previous) + 1):
        factor = 4**j  # (h_{k-1}/h_k)^(2j) for the ratio 2
        amplification *= (factor + 1) / (factor - 1)
        with ns.context():
            entry = (ns.scalar(factor) * row[j - 1] - previous[j - 1]) / ns.scalar(factor - 1)
            distance = np.maximum(ns.magnitude(entry - row[j - 1]),
                                  ns.magnitude(entry - previous[j - 1]))
        estimate = distance + amplification * level.noise
        better = estimate <= error[active]
        best[active[better]] = entry[better]
        error[active[better]] = estimate[better]
        row.append(entry)
    return row

