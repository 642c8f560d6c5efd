"""The noise of one evaluation of `f`, measured rather than assumed.

Every rounding term of a finite difference assumes one value of f accurate to
``κ u max(|f|, T)`` (`steps.NOISE_ROUNDINGS`; ``T`` the scale of f's terms that move with
x, `finite_difference.term_scale`). An f whose *intermediates* are much larger than both
breaks that without any sign in f's values: ``cosh(x) − 1`` at x = 0.3 computes
``cosh ≈ 1.05`` and rounds by ~u·1, while ``|f| ≈ 0.045`` and ``T = |f'|·|x| ≈ 0.09``, so
the bars are 10× too small and a central difference's true error exceeds its bar. The
resolution probe (`resolution`) sees this only when one sample of the rounding happens to
be 16× the model's bound; a single difference of two roundings is often far smaller.

So the noise is measured from several values: f at ``x + j·δ·e_i`` for nine consecutive
integers j (on the side the method's rule evaluates: central ``−4..4``, forward ``0..8``,
backward ``−8..0``). For independent noise of standard deviation σ the k-th differences
satisfy ``E[(Δ^k f)²] = C(2k, k)·σ²``, which gives the estimate
``σ_k² = mean((Δ^k f)²)/C(2k, k)`` (J. J. Moré and S. M. Wild, "Estimating computational
noise", SIAM J. Sci. Comput. 33 (2011) 1292-1314, whose ``γ_k = (k!)²/(2k)!`` is
``1/C(2k, k)``), plus the smooth part ``f^(k)·δ^k``.

*Which spacing.* Too short, and f is linear over the span to far below its own spacing:
the roundings of a linear function at equally spaced points repeat (cosh(x) − 1 at 0.3
gives ``Δ³f = 0`` exactly at ``u^(2/3)``; sqrt(1 + x) − 1 in float32 at ``h/8`` gives one
non-zero difference in six). Too long, and the smooth part dominates, or the points reach
a pole the method's step kept away from. No one spacing suits every f, so three are
tried and the largest accepted estimate counts: ``h_i/8`` and ``h_i/2`` (``h_i`` the
method's step at the coordinate, capped at the central step ``u^(1/3)·max(|x_i|, 1)``;
for k = 3 the smooth part is then ``8^-3`` and ``2^-3`` of the truncation ``f^(3)·h_i³``
the step balanced against rounding), and ``√u·max(|x_i|, 1)``, where the curvature
``f''·δ²`` spans spacings of f while ``f^(3)·δ³ = O(u^(3/2))``; that last one is skipped
where f is not finite at its points (past a pole or the edge of f's domain).

*Noise or smooth part.* The smooth part keeps its sign over so short a span and its
``σ_k`` change by large factors from one k to the next; noise gives differences of both
signs and about the same σ at every k. So, as Moré and Wild test, a spacing's σ is taken
only from three consecutive orders among 3..6 whose differences change sign and whose
estimates agree within 4×, the largest of the three; otherwise that spacing gives no
evidence (σ = 0). (At a double root, ``(x − 3)⁴`` at 3, f is exact and its Δ⁴ is the
constant ``24δ⁴``: rejected; ``√x`` at 1e-6 at the √u spacing: rejected.)

*What it changes.* Nine values give a rough figure (the orders share their samples).
`resolution.probe_resolution` takes it as evidence against the model only where ``2σ``
exceeds ``κu·max(|f|, T)`` (`resolution.NOISE_REACH`), and then widens every rounding
term by ``4σ`` per evaluation (`resolution.NOISE_SAFETY`), with a note. An f that rounds
as its value suggests (σ <= 0.58 u|f| for rounding to nearest) keeps the bars it had. It
costs `EVALUATIONS` (27) values of f at one coordinate, whatever n.

Measured by ``benchmarks/bar_coverage.py`` (cancelling and ordinary functions, every
method, float64, float32 and mpf:30): bars shorter than the true error went from 8 of
203, 11 of 174 and 3 of 168 to 0 in each, the median bar growing 1.6-2×.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from precision_nn.derivatives.evaluation import Evaluator, NonFiniteValueError
from precision_nn.derivatives.real_offsets import offset_column, realize
from precision_nn.derivatives.steps import radix_steps, scales

__all__ = ["EVALUATIONS", "NOISE_POINTS", "ORDERS", "noise_offsets", "noise_sigma"]

# values of f per measurement, and the difference orders whose estimates are compared
NOISE_POINTS = 9
ORDERS = (3, 4, 5, 6)
# the spacings are these fractions of the method's step, and one more at √u (module notes)
SPACING_DIVISORS = (8, 2)
# values of f one measurement takes when every spacing's points are finite
EVALUATIONS = NOISE_POINTS * (len(SPACING_DIVISORS) + 1)
# noise shows as this many consecutive orders whose σ_k agree within this factor
AGREEING = 3
AGREEMENT = 4.0


def noise_offsets(rule_name: str) -> tuple[int, ...]:
    """The multiples j of δ at which f is evaluated, on the side `rule_name` looks."""
    if rule_name == "forward":
        return tuple(range(NOISE_POINTS))
    if rule_name == "backward":
        return tuple(range(1 - NOISE_POINTS, 1))
    half = NOISE_POINTS // 2
    return tuple(range(-half, NOISE_POINTS - half))


def noise_sigma(ev: Evaluator, i: int, rule_name: str, step: float) -> float:
    """σ of one evaluation of f near x, from `NOISE_POINTS` values along coordinate `i`
    at each of three spacings (module notes): ``δ = min(step, u^(1/3)·max(|x_i|, 1))/d``
    for d in `SPACING_DIVISORS` (`step` the method's step there), and ``√u·max(|x_i|,
    1)``, dropped where f is not finite at its points. The largest estimate a spacing
    accepts, in the system's error dtype; one call of `Evaluator.at_shifts` (batched when
    f takes stacks) for all `EVALUATIONS` values, a second without the √u spacing only
    when f is not finite at one of the points."""
    ns = ev.ns
    wide = ns.error_dtype.type
    x_i = ns.magnitude(ev.x_flat[i : i + 1])
    longest = np.minimum(scales(x_i) * np.exp2(wide(ns.log2_unit_roundoff / 3)), wide(step))
    targets = [longest / d for d in SPACING_DIVISORS]
    targets.append(scales(x_i) * np.exp2(wide(ns.log2_unit_roundoff / 2)))
    for spacings in (targets, targets[:-1]):  # √u reaches past a pole or f's domain
        try:
            return _at_spacings(ev, i, rule_name, spacings)
        except NonFiniteValueError:
            continue
    return wide(0.0)


def _at_spacings(ev: Evaluator, i: int, rule_name: str, targets: list) -> float:
    """The largest σ any of the spacings (radix powers nearest `targets`) accepts, from
    `NOISE_POINTS` values at each in one call of f's evaluator (0: no noise shows)."""
    ns = ev.ns
    wide = ns.error_dtype.type
    js = noise_offsets(rule_name)
    column = offset_column(ns, js)[:, 0]
    base = ev.x_flat[i : i + 1]
    steps = [step for step in (_realized(ns, base, target) for target in targets)
             if step is not None]
    if not steps:
        return wide(0.0)
    with ns.context():  # arrays on the left: an mpf scalar there formats the array
        points = np.concatenate([column * h + base for h in steps])
    values = ev.at_shifts(np.full(len(points), i), points).reshape(len(steps), len(js))
    sigmas, changes = [], []
    for k in ORDERS:
        with ns.context():
            differences = ns.to_error_float(np.diff(values, k, axis=1))
        sigmas.append(np.sqrt(np.sum(differences**2, axis=1)
                              / wide(differences.shape[1] * math.comb(2 * k, k))))
        changes.append((differences.max(axis=1) > 0) & (differences.min(axis=1) < 0))
    return _agreed(np.stack(sigmas, axis=1), np.stack(changes, axis=1))


def _realized(ns, base: np.ndarray, target: Any) -> np.ndarray | None:
    """The spacing nearest `target` as the arithmetic realises it at `base`; None where it
    is below the spacing of the numbers at `base` (x + δ == x: its nine points would
    coincide, so that spacing gives no evidence; a Richardson restarted below a kink at x
    = 9 in float16 asks for spacings of 1e-4 against 2^-7 there)."""
    try:
        return realize(ns, base, radix_steps(target, ns))
    except ValueError:
        return None


def _agreed(sigmas: np.ndarray, changes: np.ndarray) -> float:
    """The largest σ_k of the first `AGREEING` consecutive orders that agree within
    `AGREEMENT` and each change sign (noise; module notes), over the spacings (rows of
    `sigmas`, one column per order of `ORDERS`; `changes` whether those differences
    change sign); 0 when no spacing has such a run."""
    found = sigmas.dtype.type(0.0)
    for row, change in zip(sigmas, changes):
        for start in range(len(row) - AGREEING + 1):
            run = row[start:start + AGREEING]
            low, high = run.min(), run.max()
            if change[start:start + AGREEING].all() and low > 0 and high <= AGREEMENT * low:
                found = max(found, high)
                break
    return found
