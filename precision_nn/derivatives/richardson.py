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

Before any entry is trusted, the first column must follow the expansion it extrapolates:
successive differences ``d_k = D(h_k) − D(h_{k−1})`` shrink by 4 per halving for the h²
term (16 for h⁴, ...), while across a kink between the points ``D ∝ 1/h`` and they grow
(ratio 1/2), and across a pole or a jump they do anything. Wherever a resolved
difference (above `NOISE_MARGIN` times its rounding) is not at least
`MIN_DIFFERENCE_RATIO` = 2 times smaller than the one before, that coordinate's tableau
restarts from the current step: the first step shrinks until ``f`` is smooth over it.
Entries are kept only once a ratio has been checked since the last restart. A
coordinate whose column never settles before the step reaches a few spacings of ``x``
gets ``error = inf`` and ``failed`` (no derivative found; `derivative` says so in the
note) instead of a value extrapolated across the singularity. Without this, ``abs`` at
0.001 gave 0.0187 ± 0.011 (first step 0.0078); now 1 ± 1e-15. A step that leaves the
domain of ``f`` (a NaN at ``sqrt`` of a negative) restarts the tableau at half of it.

The step ratio 2 (numdifftools' default) keeps every ``h_k`` a power of the radix, so the
ratios ``h_{k−1}/h_k`` the tableau assumes are exactly those of the realised steps.

References
----------
.. [1] C. J. F. Ridders, "Accurate computation of F'(x) and F'(x)F''(x)", Adv. Eng.
   Software 4 (1982) 75-76.
.. [2] W. H. Press et al., *Numerical Recipes*, 3rd ed., §5.7.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from precision_nn.derivatives.constants import exact_constant
from precision_nn.derivatives.evaluation import Evaluator, NonFiniteValueError
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
# the first column follows the expansion when each difference d_k = D(h_k) − D(h_{k−1})
# is at least this many times smaller than the one before (4 for the h² term, 16 for h⁴,
# ...; a kink between the points gives about 1/2, D ∝ 1/h)
MIN_DIFFERENCE_RATIO = 2.0
# a column that restarted this often broke on noise rather than on one kink
NOISY_RESTARTS = 2
# stop halving before a step comes within this many spacings of the numbers at x
MIN_SPACINGS = 64
# an automatic first step leaves room for at least this many halvings above that
MIN_FIRST_LEVELS = 10
# and give up on a coordinate whose column never settles (the ~40 levels below its first
# step cover a kink up to 2^-40 of the first step closer)
MAX_LEVELS_SINCE_RESTART = 40
# a difference counts only when it exceeds its rounding bound this many times
NOISE_MARGIN = 4.0
# a value kept against a disagreeing estimate is trusted to this many times the gap
DISAGREEMENT_SAFETY = 2
# the extrapolated value carries its own rounding: error ≥ this many u·|value|
VALUE_ROUNDINGS = 2
# a 0 where f took one value at every step: probe up to this many max(|x_i|, 1) for f's
# grid (`_stuck_bound`), in at most this many steps, each 2× (or more) the one before
STUCK_REACH = 16.0
STUCK_LEVELS = 12
# ... and a move there widens the bar only if f's moves at this many points per side
# are whole multiples of the smallest, to this relative tolerance (`_moves_on_a_grid`)
GRID_POINTS = 8
GRID_TOLERANCE = 1e-3


def richardson(ev: Evaluator, *, h: np.ndarray | None) -> FDResult:
    """Ridders-Richardson derivative at every coordinate of ``ev.x_flat``.

    `h` is the first (largest) step; ``None`` takes it from a pilot central difference
    whose measured third derivative gives the length scale of `f`.
    """
    ns = ev.ns
    x_float = ns.magnitude(ev.x_flat)
    bias = np.zeros(len(x_float))
    if h is None:
        pilot = finite_difference(ev, method="central", order=2, h=None)
        bias = pilot.bias
        # at a multiple zero the pilot sees no length scale (f, f' ≈ 0): start far enough
        # above the spacing at x to leave room for the tableau
        first = radix_steps(np.maximum(_first_steps(ns, pilot, x_float),
                                       2.0**MIN_FIRST_LEVELS * MIN_SPACINGS * ns.unit_roundoff
                                       * x_float), ns)
    else:
        first = h
    first_float = ns.magnitude(first)
    # rounding ~ u/h overtakes before h reaches the central optimum u^(1/3): stop there
    # (for a first step well below max(|x|, 1), e.g. near a pole, count from the first
    # step: the optimum is about u^(1/3) times the length the first step is a quarter of)
    cube_root_u = np.exp2(ns.error_dtype.type(log2_unit_roundoff(ns) / 3))
    smallest = np.minimum(scales(x_float), first_float / FIRST_STEP_FRACTION) * cube_root_u
    levels = int(np.clip(np.max(np.ceil(np.log2(first_float / smallest))) + 2, 3, MAX_LEVELS))
    result = _tableau(ev, first, levels)
    result = _zeros_below_resolution(ev, result)
    # the pilot's u|x|·|f''|: rounding of data at x biases every level alike (see
    # finite_difference._input_rounding), which no tableau distance can see
    return replace(result, error=result.error + bias, noise=result.noise + bias)


def _zeros_below_resolution(ev: Evaluator, result: FDResult) -> FDResult:
    """`result`, with the bar of a 0 taken below the central optimum widened where f is
    not flat there, and that of a 0 ± 0 (f took one value at every step) where f moves
    at a longer step (`_stuck_bound`).

    Hypothesis tested: an extrapolated 0 from steps below ``t = u^(1/3)·max(|x|, 1)``
    means f is flat. It can also mean that those steps were below f's resolution: an f
    that computes on a grid coarser than ``u·|f|`` (float32 ``log(x² + 1)`` near 0 rounds
    ``x² + 1`` to u·1, a thousand times ``u·|f|``) has ``f(x + h) == f(x − h)`` for every
    small h, a pilot that read that noise as curvature picks such steps, and the zeros
    agree with each other: 0 ± 1e-4 against 0.025. Central differences at t and t/2
    tell: for a flat f both are 0; for f' = 0 with curvature (x³ at 0) they are
    truncation, shrinking 4-fold per halving; a resolved slope keeps at least half its
    size. Only then is the bar widened, to twice that slope (the value is 0, off by
    about the slope); two evaluations per such coordinate."""
    ns = ev.ns
    x_float = ns.magnitude(ev.x_flat)
    cube_root_u = np.exp2(ns.error_dtype.type(log2_unit_roundoff(ns) / 3))
    optimum = radix_steps(cube_root_u * scales(x_float), ns)
    is_zero = ns.magnitude(result.value) == 0
    below = np.asarray(result.h) < ns.magnitude(optimum)
    # a 0 ± 0 from steps at or above the optimum: every central difference of the
    # tableau was exactly 0 (`_stuck_bound` probes on from the step it kept)
    above = np.flatnonzero(is_zero & (result.error == 0) & ~below)
    if above.size:
        result = replace(result, error=result.error.copy())
        result.error[above] = _stuck_bound(ev, above, np.asarray(result.h)[above])
    zero = np.flatnonzero(is_zero & np.isfinite(result.error) & below)
    if zero.size == 0:
        return result
    rule = stencil("central", 2)
    with ns.context():
        half = optimum[zero] / exact_constant(ns, 2)
    steps = [realize(ns, ev.x_flat[zero], t) for t in (optimum[zero], half)]
    (at_t,), (at_half,) = (stencil_levels(ev, zero, t, rule, (1,)) for t in steps)
    slope, finer = ns.magnitude(at_t.value), ns.magnitude(at_half.value)
    resolved = (finer > at_half.noise) & (finer >= slope / 2)
    stuck = (slope == 0) & (finer == 0)
    if not (resolved.any() or stuck.any()):
        return result
    error = result.error.copy()
    idx = zero[resolved]
    error[idx] = np.maximum(error[idx], DISAGREEMENT_SAFETY * finer[resolved])
    idx = zero[stuck]
    error[idx] = np.maximum(error[idx], _stuck_bound(ev, idx, optimum[idx]))
    return replace(result, error=error)


def _stuck_bound(ev: Evaluator, coords: np.ndarray, start: np.ndarray) -> np.ndarray:
    """The bar of a 0 where f took one value at every step up to the central optimum.

    Hypothesis tested: f does not depend on ``x_i`` near x. It may instead compute on a
    grid coarser than every step so far, far coarser than ``u·|f|``: ``-log(softmax(z)₀)``
    at z = [40, 0, 0] in float64 rounds ``softmax(z)₀`` to 1, so f is exactly 0 for every
    ``|Δz₁| < 2.5`` while ∂f/∂z₁ = 4e-18, and a 0 ± 0 accused the correct gradient. The
    steps grow by `STUCK_GROWTH` from the optimum up to ``STUCK_REACH·max(|x_i|, 1)``
    until the central difference D(H) is not 0. If it never is, f is constant over that
    reach (a dead unit) and the bar stays. If it is at H, f was constant at ``H/g``
    (``g`` the growth): a slope s with ``s·H/g`` below a grid spacing Q would not show,
    and Q ≤ ``2H·|D(H)|`` (the move at H is at least one), so ``|s| ≤ 2g·|D(H)|``: that
    is the bar, provided f's moves up to H are whole quanta (`_moves_on_a_grid`; a kink
    between ``H/g`` and H, where f' at x is 0, moves f by other amounts and keeps the
    bar). A point where f is not finite, or x + H leaves the number range, ends the probe of its
    coordinate with an unknown bar (inf) or the bar it had."""
    ns = ev.ns
    bound = np.zeros(len(coords), dtype=ns.error_dtype)
    x_float = ns.magnitude(ev.x_flat[coords])
    reach = STUCK_REACH * scales(x_float)
    first = ns.magnitude(start)
    growth = _growth(first, reach)
    rule = stencil("central", 2)
    active = np.arange(len(coords))
    h = start
    with ns.context():
        factor = exact_constant(ns, int(growth))
    while active.size:
        with ns.context():
            h = h * factor
        inside = ns.magnitude(h) <= reach[active] * 1.0001
        active, h = active[inside], h[inside]
        if not active.size:
            break
        moved = _central_at(ev, coords[active], h, rule)
        hit = np.isnan(moved) | (moved > 0)
        for k in np.flatnonzero(hit):
            i = active[k]
            if np.isnan(moved[k]):
                bound[i] = np.inf
            elif _moves_on_a_grid(ev, int(coords[i]), h[k]):
                bound[i] = 2 * growth * moved[k]
        active, h = active[~hit], h[~hit]
    return bound


def _moves_on_a_grid(ev: Evaluator, coord: int, h: Any) -> bool:
    """Whether f's moves from f(x) at ``x ± (j/GRID_POINTS)·h·e_i``, j = 1..GRID_POINTS,
    are whole multiples of their smallest (within ``GRID_TOLERANCE`` of one): a grid.

    A kink at distance d < h (a dead ReLU that revives) moves f by ``s·(j·h/8 − d)``
    beyond it, ratios of no particular kind; f computed on a grid of spacing Q moves by
    whole quanta (``-log(softmax(z)₀)`` at saturation: ``-log(1 − k·u) ≈ k·u``). Only a
    grid widens the bar: a 0 beside a kink at a distance is a true 0 (f' = 0 at x)."""
    ns = ev.ns
    with ns.context():
        eighth = h / exact_constant(ns, GRID_POINTS)
        offsets = [exact_constant(ns, j) * eighth for j in range(1, GRID_POINTS + 1)]
        x = ev.x_flat[coord]
        values = np.array([x + o for o in offsets] + [x - o for o in offsets],
                          dtype=ev.x_flat.dtype)
    try:
        fs = ev.at_shifts(np.full(len(values), coord), values)
    except ValueError:  # not finite there: no grid shown
        return False
    with ns.context():
        moves = ns.to_error_float(fs - ev.at_point())
    moves = np.abs(moves[moves != 0])
    if moves.size < 2:
        return moves.size == 1  # one quantum: nothing contradicts a grid
    ratios = moves / np.min(moves)
    return bool(np.all(np.abs(ratios - np.rint(ratios)) <= GRID_TOLERANCE * ratios))


def _growth(first: np.ndarray, reach: np.ndarray) -> float:
    """The power of 2 by which the probe's steps grow: 2, or more so that at most
    `STUCK_LEVELS` steps span from the optimum to the reach (at 1000 digits the optimum is
    1e-333 of it)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        span = np.log2(reach / first)
    span = float(np.max(span[np.isfinite(span)], initial=1.0))
    return float(2.0 ** max(1, int(np.ceil(span / STUCK_LEVELS))))


def _central_at(ev: Evaluator, coords: np.ndarray, h: Any, rule: Any) -> np.ndarray:
    """``|D(h)|`` at each coordinate, NaN where f is not finite at x ± h or x ± h leaves
    the number range (each coordinate then tried alone, so one such does not end the
    others)."""
    ns = ev.ns
    try:
        (level,) = stencil_levels(ev, coords, h, rule, (1,))
        return ns.magnitude(level.value)
    except ValueError:  # NonFiniteValueError, or x + h overflows
        if len(coords) == 1:
            return np.array([np.nan])
    return np.concatenate([_central_at(ev, coords[i:i + 1], h[i:i + 1], rule)
                           for i in range(len(coords))])


def _first_steps(ns: NumberSystem, pilot: FDResult, x_float: np.ndarray) -> np.ndarray:
    """A quarter of the length scale ``max(sqrt(|f'/c|), (|f|/|c|)^(1/3))``, where ``c ≈
    f'''/6`` is measured by a pilot central difference: over that length the h² term of
    the central difference is as large as ``f'`` (or ``f``) itself."""
    slope = ns.magnitude(pilot.value)
    with np.errstate(divide="ignore", invalid="ignore"):  # c = 0: no length limit
        length = np.fmax(np.sqrt(slope / pilot.coefficient),
                         np.cbrt(pilot.magnitude / pilot.coefficient))
    return np.fmin(FIRST_STEP_FRACTION * length, MAX_RELATIVE_FIRST_STEP * scales(x_float))


def _tableau(ev: Evaluator, first: np.ndarray, levels: int) -> FDResult:
    """The tableau from step `first`, halving; each coordinate restarts from the current
    step whenever its first column stops following the expansion (module notes)."""
    ns = ev.ns
    n = len(ev.x_flat)
    rule = stencil("central", 2)
    best, error = ns.zeros(n), np.full(n, np.inf, dtype=ns.error_dtype)
    last_h = np.zeros(n, dtype=ns.error_dtype)
    kept_noise = np.zeros(n, dtype=ns.error_dtype)
    # max |f| over the points of the level each kept entry's noise comes from (NaN: none)
    kept_magnitude = np.full(n, np.nan, dtype=ns.error_dtype)
    state = _Column(n, ns.error_dtype)
    active, previous = np.arange(n), []
    worsened = np.zeros(n, dtype=bool)  # the previous diagonal was already worse
    x_float = ns.magnitude(ev.x_flat)
    h = first
    for k in range(MAX_LEVELS):
        h_k = realize(ns, ev.x_flat[active], h[active])
        try:
            (level,) = stencil_levels(ev, active, h_k, rule, (1,))
            if not np.all(np.isfinite(ns.magnitude(level.value))):
                # the quotient overflowed although f did not (float16: a large first step)
                raise NonFiniteValueError("the difference quotient overflows")
        except NonFiniteValueError:
            # a point left the domain of f (sqrt, log near 0): restart every active
            # coordinate from the next, halved step (which of them failed is not known)
            if np.any(ns.magnitude(h_k) / 2 < MIN_SPACINGS * ns.unit_roundoff *
                      x_float[active]):
                raise
            state.restart(active)
            error[active], worsened[active], previous = np.inf, False, []
            with ns.context():
                h = h / exact_constant(ns, 2)
            continue
        last_h[active] = ns.magnitude(h_k)
        broken, checked = state.follow(ns, active, level)
        if np.any(broken):  # restart those coordinates from this level: drop their rows
            error[active[broken]] = np.inf
            worsened[active[broken]] = False
            previous = [np.where(broken, level.value, entry) for entry in previous]
        depth = state.level - 1 - state.start[active]  # valid columns of this row: 0 … depth
        row = _extend_row(ns, level, previous, best, error, (kept_noise, kept_magnitude),
                          active, depth, accept=checked & ~broken)
        fresh = depth == 0
        best[active[fresh]] = level.value[fresh]
        jump = _diagonal_jump(ns, row, previous, depth)
        worse = (jump >= SAFE * error[active]) & (depth > 0)
        stop = worse & worsened[active]
        worsened[active] = worse
        # a coordinate also stops when its budget of levels since the last restart is
        # spent, when rounding has taken every digit of D(h) after an accepted entry, or
        # before the next step comes within a few spacings of the numbers at x
        spent = (depth >= levels - 1) & np.isfinite(error[active])
        no_digits = (level.noise >= ns.magnitude(level.value)) & \
            np.isfinite(error[active])
        floor = last_h[active] / 2 < MIN_SPACINGS * ns.unit_roundoff * x_float[active]
        # no later entry can beat the best: each estimate is at least its level's noise
        drowned = level.noise >= error[active]
        # D(h) exactly 0 right after a resolved non-zero D(2h), in a column that had
        # already followed the h² expansion to an accepted entry: f is smooth with f' ≠ 0
        # at larger steps yet f(x + h) == f(x − h), so it computes on a grid coarser than
        # h; no smaller step can be trusted. (Without an accepted entry the larger steps
        # crossed a kink, and a flat f below it, a dead ReLU, is a real derivative of 0.)
        # A column that broke repeatedly before (noise, not one kink) counts as well.
        collapsed = state.collapsed(active) & (np.isfinite(error[active]) |
                                               (state.restarts[active] >= NOISY_RESTARTS))
        unsettled = (depth >= MAX_LEVELS_SINCE_RESTART) & ~np.isfinite(error[active])
        stop |= spent | no_digits | floor | drowned | collapsed | unsettled
        previous = [entry[~stop] for entry in row]
        active = active[~stop]
        with ns.context():
            h = h / exact_constant(ns, 2)
        if len(active) == 0:
            break
    failed = ~np.isfinite(error)
    rounding = VALUE_ROUNDINGS * ns.unit_roundoff * ns.magnitude(best)
    unmeasured = np.full(n, np.nan, dtype=ns.error_dtype)
    return FDResult(value=best, error=error + rounding, h=last_h,
                    coefficient=state.coefficient(last_h), magnitude=kept_magnitude,
                    noise=rounding + kept_noise, resolution=unmeasured.copy(), failed=failed)


def _diagonal_jump(ns: NumberSystem, row: list[np.ndarray], previous: list[np.ndarray],
                   depth: np.ndarray) -> np.ndarray:
    """``|T[k][d] − T[k−1][d−1]|`` for each coordinate's own depth d (inf where d = 0)."""
    jump = np.full(len(depth), np.inf, dtype=ns.error_dtype)
    for d in np.unique(depth[depth > 0]):
        at = depth == d
        with ns.context():
            jump[at] = ns.magnitude(row[d][at] - previous[d - 1][at])
    return jump


class _Column:
    """The first column's successive differences ``d_k = D(h_k) − D(h_{k−1})`` of each
    coordinate, and the level it (re)started at."""

    def __init__(self, n: int, dtype: np.dtype):
        self.start = np.zeros(n, dtype=int)
        self.value: np.ndarray | None = None  # D(h_{k−1}) of every coordinate
        self.noise = np.full(n, np.nan, dtype=dtype)
        self.difference = np.full(n, np.nan, dtype=dtype)  # d_{k−1} (NaN: none yet)
        self.level = 0
        self.stale = np.zeros(n, dtype=bool)
        self.restarts = np.zeros(n, dtype=int)

    def restart(self, active: np.ndarray) -> None:
        """Start the columns of `active` afresh at the next level."""
        self.start[active] = self.level
        self.difference[active] = np.nan
        self.stale[active] = True  # their last D is from before the restart

    def collapsed(self, active: np.ndarray) -> np.ndarray:
        """Whether D(h_k) is exactly 0 while the difference to D(h_{k−1}) was resolved."""
        assert self.value is not None
        d = self.difference[active]
        now = np.array([float(abs(v)) == 0.0 for v in self.value[active]])
        return now & (np.abs(d) > NOISE_MARGIN * self.noise[active])

    def coefficient(self, last_h: np.ndarray) -> np.ndarray:
        """``|c| ≈ |f⁽³⁾|/6`` from the last difference of the first column,
        ``d = D(h) − D(2h) ≈ −3c·h²``; NaN where there is none."""
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return np.abs(self.difference) / (3 * last_h**2)

    def follow(self, ns: NumberSystem, active: np.ndarray, level: Level
               ) -> tuple[np.ndarray, np.ndarray]:
        """Record level k; return, per active coordinate, whether its column broke the
        expansion at this level and whether the ratio could be checked and held."""
        k, self.level = self.level, self.level + 1
        if self.value is None:
            self.value = ns.zeros(len(self.start))
        count = len(active)
        broken, checked = np.zeros(count, dtype=bool), np.zeros(count, dtype=bool)
        if k > 0:
            with ns.context():
                d = ns.to_error_float(level.value - self.value[active])
            d = np.where(self.stale[active], np.nan, d)
            resolved = np.abs(d) > NOISE_MARGIN * (level.noise + self.noise[active])
            previous = self.difference[active]
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = previous / d
            has_previous = np.isfinite(previous)
            broken = resolved & has_previous & ~(ratio >= MIN_DIFFERENCE_RATIO)
            checked = has_previous & ~broken
            self.difference[active] = d
        restart = active[broken]
        self.restarts[restart] += 1
        self.start[restart] = k
        self.difference[restart] = np.nan
        self.value[active] = level.value
        self.noise[active] = level.noise
        self.stale[active] = False
        return broken, checked


def _extend_row(ns: NumberSystem, level: Level, previous: list[np.ndarray],
                best: np.ndarray, error: np.ndarray,
                kept: tuple[np.ndarray, np.ndarray], active: np.ndarray, depth: np.ndarray,
                accept: np.ndarray) -> list[np.ndarray]:
    """The next tableau row; records each entry whose error estimate beats the best.

    The estimate of entry ``T[k][j]`` is Ridders' distance to its parents plus its
    rounding: each column multiplies the noise of the finest level by at most
    ``(4^j + 1)/(4^j − 1)``, a product that stays below 2. Only columns ``j ≤ depth``
    (formed from levels since the coordinate's last restart) of coordinates whose first
    column has been seen to follow the expansion (`accept`) may be kept; `kept` holds
    each kept entry's noise and the max |f| of its level (what `resolution.widened`
    rescales when f's measured noise exceeds the model).
    """
    kept_noise, kept_magnitude = kept
    row = [level.value]
    amplification = 1.0
    for j in range(1, len(previous) + 1):
        factor = 4**j  # (h_{k-1}/h_k)^(2j) for the ratio 2
        amplification *= (factor + 1) / (factor - 1)
        with ns.context():
            try:
                divisor = exact_constant(ns, factor - 1)
            except ValueError:  # beyond the system's range (float16: 4^8 > 65504): the
                divisor = None  # correction is below its resolution, the entry T itself
            # (4^j·T − T')/(4^j − 1) as T + (T − T')/(4^j − 1): the same value, without
            # the product 4^j·T, which overflows float16 from |T| > 4 at j = 7
            entry = row[j - 1] if divisor is None else \
                row[j - 1] + (row[j - 1] - previous[j - 1]) / divisor
            distance = np.maximum(ns.magnitude(entry - row[j - 1]),
                                  ns.magnitude(entry - previous[j - 1]))
        estimate = distance + amplification * level.noise
        better = (estimate <= error[active]) & (j <= depth) & accept
        best[active[better]] = entry[better]
        error[active[better]] = estimate[better]
        kept_noise[active[better]] = amplification * level.noise[better]
        kept_magnitude[active[better]] = level.magnitude[better]
        row.append(entry)
    return row
