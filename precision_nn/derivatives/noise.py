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
backward ``−8..0``), at ``δ = h_i/8`` (``h_i`` the method's step there, capped at the
central step ``u^(1/3)·max(|x_i|, 1)``). Not at the probe's tiny ``u^(2/3)``: over so
short a span f is linear to far below its spacing, and the roundings of a linear
function at equally spaced points repeat (cosh(x) − 1 at 0.3 gives ``Δ³f = 0`` exactly
there). At ``h_i/8`` the curvature ``f''·δ²`` spans many spacings of f, so the roundings
behave as independent, and the k-th differences ``Δ^k f`` hold a smooth part
``f^(k)·δ^k``: for k = 3 about ``8^-3`` of the truncation ``f^(3)·h_i³`` that the step
balanced against rounding. A step chosen short near a pole or kink shortens δ with it (at
a fixed √u spacing the smooth part of ``√x`` at 1e-6 reads as noise 1e10 times too
large). For
independent noise of standard deviation σ, ``E[(Δ^k f)²] = C(2k, k)·σ²``, which gives
the estimate ``σ_k² = mean((Δ^k f)²)/C(2k, k)`` (J. J. Moré and S. M. Wild, "Estimating
computational noise", SIAM J. Sci. Comput. 33 (2011) 1292-1314, whose ``γ_k = (k!)²/(2k)!``
is ``1/C(2k, k)``). The smooth part shows otherwise than noise: its differences keep their sign
over so short a span, and its ``σ_k`` change by large factors from one k to the next,
while noise gives differences of both signs and the same σ at every k. So, as Moré and
Wild test, σ is taken only from three consecutive orders among 3..6 whose differences
change sign and whose estimates agree within 4×, the largest of the three; otherwise
there is no evidence (σ = 0), and the bars stay as the model makes them. (At a double
root, ``(x − 3)⁴`` at 3, f is exact and its Δ⁴ is the constant ``24δ⁴``: rejected.)

Nine values give a rough figure (the estimates at different k share their samples).
`resolution.probe_resolution` takes it as evidence against the model only where ``2σ``
exceeds ``κu·max(|f|, T)`` (`resolution.NOISE_REACH`), and then widens every rounding
term by ``4σ`` per evaluation (`resolution.NOISE_SAFETY`), with a note. An f that rounds
as its value suggests (σ <= 0.58 u|f| for rounding to nearest) keeps the bars it had.
Measured on 12 functions × 7 points × 5 methods (cosh(x) − 1, exp(x) − 1,
sqrt(1 + x) − 1 among them): bars shorter than the true error went from 6 of 420 to 0,
and the median bar from 7.1e-11 to 8.6e-11 relative.
"""

from __future__ import annotations

import math

import numpy as np

from precision_nn.derivatives.evaluation import Evaluator
from precision_nn.derivatives.real_offsets import offset_column, realize
from precision_nn.derivatives.steps import radix_steps, scales

__all__ = ["NOISE_POINTS", "ORDERS", "noise_offsets", "noise_sigma"]

# values of f per measurement, and the difference orders whose estimates are compared
NOISE_POINTS = 9
ORDERS = (3, 4, 5, 6)
# the spacing is this fraction of the method's step (module notes)
SPACING_DIVISOR = 8
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
    at the spacing ``δ = min(step, u^(1/3)·max(|x_i|, 1))/8`` (module notes; `step` the
    method's step there), in the system's error dtype; one call of `Evaluator.at_shifts`
    (batched when f takes stacks)."""
    ns = ev.ns
    wide = ns.error_dtype.type
    js = noise_offsets(rule_name)
    x_i = ns.magnitude(ev.x_flat[i : i + 1])
    longest = scales(x_i) * np.exp2(wide(ns.log2_unit_roundoff / 3))
    target = np.minimum(longest, wide(step)) / SPACING_DIVISOR
    h = realize(ns, ev.x_flat[i : i + 1], radix_steps(target, ns))
    with ns.context():  # arrays on the left: an mpf scalar there formats the array
        points = offset_column(ns, js)[:, 0] * h + ev.x_flat[i : i + 1]
    values = ev.at_shifts(np.full(len(js), i), points)
    estimates = []
    for k in ORDERS:
        with ns.context():
            differences = ns.to_error_float(np.diff(values, k))
        squares = differences**2
        sigma = np.sqrt(np.sum(squares) / wide(len(squares) * math.comb(2 * k, k)))
        estimates.append((wide(sigma), bool(differences.max() > 0 > differences.min())))
    return _agreed(estimates)


def _agreed(estimates: list[tuple[float, bool]]) -> float:
    """The largest σ_k of the first `AGREEING` consecutive orders that agree within
    `AGREEMENT` and each change sign (noise; module notes); 0 when none do."""
    for start in range(len(estimates) - AGREEING + 1):
        run = estimates[start:start + AGREEING]
        sigmas = [sigma for sigma, _ in run]
        if all(changes for _, changes in run) and min(sigmas) > 0 and \
                max(sigmas) <= AGREEMENT * min(sigmas):
            return max(sigmas)
    return estimates[0][0] * 0
