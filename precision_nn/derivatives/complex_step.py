"""The complex-step derivative ``Im f(x + ih) / h``, in the complex counterpart system.

For ``f`` real-analytic near ``x``, ``f(x + ih) = f(x) + ih f'(x) − h² f''(x)/2 −
ih³ f'''(x)/6 + …``, so ``Im f(x + ih)/h = f'(x) − h² f'''(x)/6 + …``: no difference is
taken, nothing cancels, and ``h`` can be as small as the exponent range allows (Squire &
Trapp 1998; Martins, Sturdza & Alonso 2003). The error is truncation ``h²|f'''|/6``, which
``h = u·max(|x|, 1)`` makes negligible, plus the rounding of evaluating ``f`` in complex
arithmetic, a few ``u`` relative to ``f'``.

The estimate evaluates at ``h`` and at a second step ``h₂ = max(2h, √u·max(|x|, 1))``
(a power of the radix). With the automatic ``h ≈ u·max(|x|, 1)`` the two steps are
decades apart: ``D(h₂) − D(h) = −(h₂² − h²) f'''/6 + (e₂ − e₁)`` is at most ``u·|f'''|/6``
in its h² term, so ``|D(h₂) − D(h)|`` is a bar of size ~u for a good ``f``, and it also
shows, in full, rounding that differs between the two steps. That is the point: at
``h ≈ u``, a power of the radix so small that ``h²`` is below the rounding of the real
parts, doubling ``h`` doubles every imaginary part exactly, the two rounding errors are
equal and ``D(2h) − D(h)`` cannot see them; mpmath's ``asin``, ``erf`` and ``erfc`` at
``x + ih`` near the real axis lose digits in the imaginary part (an error of 4e-4 in
mpf:30 with ``D(2h) − D(h)`` ~ 1e-31). At ``h₂ ≈ √u`` the real parts move and the rounding
pattern changes. For a large user ``h`` (``2h ≥ √u``) the steps are ``h, 2h`` and the h²
term at ``h`` is ``|D(2h) − D(h)|/3`` as before.

The complex arithmetic is also cross-checked against f's *real* arithmetic
(`cross_check`: a central difference along a random direction at a step of ~u^(1/3),
against the complex step's ``Σ d_i·D_i``): an f that drops the imaginary part in one of
its terms (``abs``) agrees with itself at both steps but not with its real values. When
they disagree beyond the real difference's truncation and rounding (which counts the
rounding of f's inputs, not only ``u·|f|``) and the complex step's own bar, or when
``f(x + ih)`` is not finite (an overflow the real ``f`` avoids), `derivative` falls back
to Richardson and says so in the note.

Rounding: ``Im f(x + ih)`` is ``h·f'`` assembled from the imaginary parts of `f`'s
intermediates; each operation errs by a few ``u`` relative to its own imaginary part, so
the last sum that forms ``f' = Σ_k t_k`` (for a loss: over examples and outputs) leaves an
error up to ``κ u Σ_k |t_k|``, ``κ = COMPLEX_STEP_ROUNDINGS``. ``Σ|t_k| ≥ |f'|``, with
equality only without cancellation, so ``κ u |D|`` is short for a derivative that is small
*because* its terms cancel (on random networks 12% of gradient entries err by more than
``8u|D_i|``). The terms are invisible from outside `f`, but the entries of a gradient come
through the same final sums (one term per example and output, scaled by the input of each
weight), so the largest entry shows their scale where one entry alone cannot. For a
gradient (more than one entry) the rounding term is therefore norm-wise,

    κ u max(|D_i|, c ‖D‖∞),      c = SHARED_SUM_CANCELLATION,

c allowing the largest entry itself to be c times smaller than its terms. Entries much
smaller than the largest get the largest's rounding level. For one variable nothing shows
the scale of the terms, and the term stays ``κ u |D|``.

References
----------
.. [1] W. Squire, G. Trapp, "Using complex variables to estimate derivatives of real
   functions", SIAM Review 40 (1998) 110-112.
.. [2] J. R. R. A. Martins, P. Sturdza, J. J. Alonso, "The complex-step derivative
   approximation", ACM TOMS 29 (2003) 245-262.
"""

from __future__ import annotations

import numpy as np

from precision_nn.derivatives.constants import exact_constant
from precision_nn.derivatives.evaluation import Evaluator
from precision_nn.derivatives.finite_difference import FDResult
from precision_nn.derivatives.noise import noise_sigma
from precision_nn.derivatives.resolution import NOISE_REACH, NOISE_SAFETY
from precision_nn.derivatives.steps import (
    NOISE_ROUNDINGS,
    log2_unit_roundoff,
    radix_steps,
    scales,
)
from precision_nn.numbers import NumberSystem

__all__ = ["COMPLEX_STEP_ROUNDINGS", "SHARED_SUM_CANCELLATION", "complex_counterpart",
           "complex_step", "cross_check", "shared_rounding", "witness_steps"]

# Im f(x+ih) is formed by a handful of complex operations, each with relative error at most
# √5·u for a product (Brent, Percival & Zimmermann 2007) and a few u for exp/log/division:
# allow 4 roundings of √5·u, i.e. about 8u relative to f'.
COMPLEX_STEP_ROUNDINGS = 8
# the two steps' values may differ by this many times the rounding term before the complex
# arithmetic is called off: the h² term at √u is u·|f⁽³⁾|/6, which exceeds the rounding
# 8u·|f'| by f⁽³⁾/(48 f'): 5× for exp(16x), 21× for sin(32x); 1024 leaves room for
# f⁽³⁾/f' up to ~5e4 (a length scale of ~1/200)
DISAGREEMENT = 1024
# either of the two values may carry the difference: count it twice
DISAGREEMENT_SAFETY = 2
# witness steps move closer (`_shrunk_witnesses`) by radix^4 per rung, at most 4 rungs; a
# truncation falls by radix^8 per rung, so a difference that falls by less than 16 is not
# one (lost digits stay where they are)
WITNESS_RUNG = 4
WITNESS_RUNGS = 4
WITNESS_SHRINK = 16
# the real cross-check's gap must exceed this many times its error allowance (a sum of
# bounds: honest functions stay far below 1x); its seed makes the direction reproducible
CROSS_CHECK_SAFETY = 4
CROSS_CHECK_SEED = 20261202
# its real difference counts only once its s² term is below 1/16 of it (the expansion
# holds there); until then the step shrinks by radix^4, at most 3 times (12 evaluations)
CROSS_CHECK_SETTLED = 16
CROSS_CHECK_RUNG = 4
CROSS_CHECK_RUNGS = 3
# a gradient's largest entry may itself be c times smaller than the terms of its final sum:
# c = 4 bounds all of 5,000 entries of random MLPs (float64 and mpf:40, 2 to 10 examples)
# and the two-example loss of `MLP.numerical_gradient`'s docstring, whose output-bias entry
# cancels to 1/20 of its terms (it needs c ≥ 2.8); c = 1 leaves 0.4% of entries short.
SHARED_SUM_CANCELLATION = 4


def complex_counterpart(ns: NumberSystem) -> NumberSystem:
    """The complex system complex step evaluates in; `ValueError` when there is none."""
    if ns.is_complex:
        raise ValueError(
            f"method='complex_step' differentiates real functions; `x` is in the complex "
            f"system {ns.name!r}. Use method='central' or 'richardson' for complex `x`."
        )
    try:
        return ns.complex()
    except ValueError as exc:
        raise ValueError(f"method='complex_step' needs a complex counterpart: {exc}") from exc


def complex_step(ev: Evaluator, ns: NumberSystem, *, h: np.ndarray | None) -> FDResult:
    """Complex-step derivative at every coordinate.

    Parameters
    ----------
    ev : Evaluator
        Evaluates `f` in ``ns.complex()``; ``ev.x_flat`` is `x` converted to that system.
    ns : NumberSystem
        The real system the derivative is returned in.
    h : array of `ns` or None
        The steps; ``None`` takes ``u·max(|x|, 1)`` rounded to a power of the radix.
    """
    cs = ev.ns
    xc = ev.x_flat
    n = len(xc)
    x_float = cs.magnitude(xc)
    if h is None:
        h = radix_steps(scales(x_float) * np.exp2(ns.error_dtype.type(log2_unit_roundoff(ns))), ns)
    steps = ns.magnitude(h)
    witness = witness_steps(x_float, ns)
    with ns.context():
        far = np.where(2 * steps >= witness, h * exact_constant(ns, 2), radix_steps(witness, ns))
    ratio = ns.magnitude(far) / steps
    with cs.context():
        points = np.concatenate([xc + cs.asarray(h) * exact_constant(cs, 1j),
                                 xc + cs.asarray(far) * exact_constant(cs, 1j)])
    values = ev.at_shifts(np.tile(np.arange(n), 2), points)
    with ns.context():
        first = ns.asarray(cs.imag(values[:n])) / h
        second = ns.asarray(cs.imag(values[n:])) / far
        difference = ns.magnitude(second - first)
    rounding = shared_rounding(ns.magnitude(first), ns.unit_roundoff)
    far, difference = _shrunk_witnesses(ev, ns, h, first, far, difference, rounding)
    ratio = ns.magnitude(far) / steps
    # steps decades apart: their whole difference, twice, is the bar (rounding that
    # differs between them shows in full, and either step may carry it); steps a factor 2
    # apart: the h² term at h is 1/3 of it
    apart = ratio > 2
    truncation = np.where(apart, DISAGREEMENT_SAFETY * difference, difference / 3)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        coefficient = difference / np.abs(ratio**2 - 1) / steps / steps
    # far more than rounding and the ~u·|f⁽³⁾| of the h² term: f's complex arithmetic is
    # off (module notes); `derivative` then falls back
    failed = apart & (difference > DISAGREEMENT * rounding)
    unmeasured = np.full(n, np.nan, dtype=ns.error_dtype)
    return FDResult(value=first, error=truncation + rounding, h=steps,
                    coefficient=coefficient, magnitude=unmeasured, noise=rounding,
                    resolution=unmeasured.copy(), failed=failed)


def _shrunk_witnesses(ev: Evaluator, ns: NumberSystem, h: np.ndarray, first: np.ndarray,
                      far: np.ndarray, difference: np.ndarray, rounding: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Witness steps moved closer where D(h₂) and D(h) disagree beyond rounding.

    Hypothesis tested: the disagreement is the h₂² term, not lost digits. Near a pole or
    a fast feature a length scale far below ``max(|x|, 1)`` makes ``h₂ ≈ √u·max(|x|, 1)``
    long (1/x at 1e-6: h₂ = 1.5e-8 is 1.5% of x): its truncation then shows in full. Each
    rung divides h₂ by ``radix^WITNESS_RUNG``; a truncation shrinks with h₂² (by 2^8 per
    binary rung), lost digits do not. A coordinate whose difference falls below
    ``DISAGREEMENT × rounding`` takes that witness (its bar is still the whole
    difference, twice); one whose difference shrinks less than ``WITNESS_SHRINK`` per rung
    keeps its long witness and so the disagreement (`derivative` falls back); at most
    ``WITNESS_RUNGS`` rungs, one evaluation per rung and coordinate, never closer to h
    than ``radix^WITNESS_RUNG``."""
    cs = ev.ns
    difference = difference.copy()
    pending = np.flatnonzero(difference > DISAGREEMENT * rounding)
    shrink = ns.radix_powers(np.array([-WITNESS_RUNG]))[0]
    for _ in range(WITNESS_RUNGS):
        with ns.context():
            closer = far[pending] * shrink
        keep = ns.magnitude(closer) > ns.magnitude(h[pending]) * float(ns.radix) ** WITNESS_RUNG
        pending, closer = pending[keep], closer[keep]
        if pending.size == 0:
            break
        with cs.context():
            points = ev.x_flat[pending] + cs.asarray(closer) * exact_constant(cs, 1j)
        values = ev.at_shifts(pending, points)
        with ns.context():
            moved = ns.magnitude(ns.asarray(cs.imag(values)) / closer - first[pending])
        shrinking = moved * WITNESS_SHRINK <= difference[pending]
        far, difference = far.copy(), difference.copy()
        far[pending[shrinking]] = closer[shrinking]
        difference[pending[shrinking]] = moved[shrinking]
        pending = pending[shrinking & (moved > DISAGREEMENT * rounding[pending])]
        if pending.size == 0:
            break
    return far, difference


def witness_steps(x_float: np.ndarray, ns: NumberSystem) -> np.ndarray:
    """``√u · max(|x|, 1)``: the second step, decades above the first (~u), where the h²
    term is still ~u relative but every real part differs from the first step's, so the
    two carry different rounding errors (module notes)."""
    return scales(x_float) * np.exp2(ns.error_dtype.type(log2_unit_roundoff(ns) / 2))


def cross_check(real: Evaluator, result: FDResult) -> str | None:
    """Compare the complex step with f's *real* arithmetic along one random direction: a
    note saying why they disagree, or None when they agree (or f cannot be evaluated at
    the real points).

    Hypothesis tested: the complex step differentiates the same function the real
    arithmetic computes. An f that drops the imaginary part somewhere (``abs``, a cast to
    the real part, a comparison-based branch) differentiates only the rest, and its
    complex step agrees with itself at both steps; a detour through fewer digits
    (``complex()`` inside an mpf:50 f) keeps only those. Along ``d`` (``d_i = ±(½..1)·t·
    max(|x_i|, 1)``, ``t ≈ u^(1/3)`` a radix power, seeded signs and sizes: every
    coordinate takes part, so a term lost in any of them shows), the complex step's
    ``Σ d_i D_i`` must match the real central difference ``c₁ = (f(x+d) − f(x−d))/2``
    within ``CROSS_CHECK_SAFETY`` times the sum of

    - c₁'s truncation, bounded by ``|c₂ − c₁|`` with ``c₂ = (f(x+2d) − f(x−2d))/4``
      (with g(s) = f(x + s·d), the s² terms of the two are g‴/6 and 4g‴/6: their
      difference is 3 times the first, so this counts it 3 times);
    - c₁'s rounding, ``2u·(κ·max|f| + Σ_i max(|x_i|, 1)·|D_i|·|d_i|/t)``: κu|f| for each
      evaluation and the rounding of the points ``x ± k·d`` (u·|x_i| per coordinate,
      which moves f by ~u·|x_i|·|D_i|; the ``|d_i|/t`` weight is between ½ and 1);
    - the complex step's own bar along d, ``Σ |d_i|·error_i``.

    At ``t ≈ u^(1/3)`` the real quotient is good to ~u^(2/3) of f's scale (float64:
    ~1e-11), so a lost term of ~1e-9 of the gradient shows; the earlier probe at one
    coordinate with a step of u^(2/3) saw only lost terms beyond ~1e-5. Four evaluations
    of f at real points; where ``|c₂ − c₁|`` exceeds ``Σ|d_i·D_i|/16`` (a pole or a fast
    feature closer than the step: the expansion does not hold) the step shrinks by
    radix^4 and the four are taken again, at most three times, and a difference that
    never settles is no evidence (None). Only when the gap exceeds that bar is f's noise
    measured (`noise.noise_sigma` at the coordinate of the largest ``|D_i|``, 27 more
    values): an f whose intermediates round beyond ``κu·|f|`` (``2σ`` above it, as
    `resolution` requires) gets ``4σ`` per value in the rounding term, so its own rounding
    is not read as a lost imaginary part (cosh(x) − 1 at 0.01 in float64 fell back to
    Richardson, true error 1e-5, where the complex step's is 0).
    """
    ns = real.ns
    x = real.x_flat
    n = len(x)
    wide = ns.error_dtype.type
    x_float = ns.magnitude(x)
    rng = np.random.default_rng(CROSS_CHECK_SEED)
    shape = rng.choice([-1.0, 1.0], n) * rng.uniform(0.5, 1.0, n)
    steps = radix_steps(scales(x_float) * np.exp2(wide(log2_unit_roundoff(ns) / 3)), ns)
    shrink = ns.radix_powers(np.array([-CROSS_CHECK_RUNG]))[0]
    derivative = ns.magnitude(result.value)
    for _ in range(CROSS_CHECK_RUNGS):
        with ns.context():
            d = steps * ns.asarray(shape)
            points = np.stack([x + d * exact_constant(ns, k) for k in (1, -1, 2, -2)])
        try:
            f1, f_1, f2, f_2 = real.at_points(points)
        except (TypeError, ValueError):  # f refuses real points, or leaves its domain
            return None
        with ns.context():
            c1 = (f1 - f_1) / exact_constant(ns, 2)
            c2 = (f2 - f_2) / exact_constant(ns, 4)
            along = np.sum(d * result.value)
            gap, truncation = ns.magnitude(ns.asarray([along - c1, c2 - c1]))
        # the size of the directional derivative's terms Σ|d_i·D_i| (c₁ itself may cancel),
        # or |c₁| where larger: a complex step that lost every digit (Im f = 0 exactly)
        # leaves Σ|d_i·D_i| = 0, which no truncation can settle against, and "never
        # settled" would be no evidence
        size = max(np.sum(ns.magnitude(d) * derivative), float(ns.magnitude(ns.asarray([c1]))[0]))
        if truncation * CROSS_CHECK_SETTLED <= size:  # the s² term is small: asymptotic
            break
        with ns.context():
            steps = steps * shrink  # a length scale below max(|x|, 1): a pole, a kink
    else:
        return None  # the real difference never settled: no evidence either way
    largest = np.max(ns.magnitude(ns.asarray([f1, f_1, f2, f_2])))
    moved = ns.magnitude(d)
    inputs = np.sum(scales(x_float) * derivative * moved / ns.magnitude(steps))
    rounding = 2 * wide(ns.unit_roundoff) * (NOISE_ROUNDINGS * largest + inputs)
    bar = CROSS_CHECK_SAFETY * (truncation + rounding + np.sum(moved * result.error))
    if not gap > bar:  # (also NaN: nothing to go on)
        return None
    # f may round beyond κu·|f| (cosh(x) − 1 near 0 rounds by ~u·1): before calling the
    # complex step off, measure that noise (`noise`), and where it disproves that model
    # (as `resolution` takes it) allow c₁ = (f₁ − f₋₁)/2 its bound 4σ more (a bound with
    # its safety already: not multiplied again)
    i = int(np.argmax(derivative))
    sigma = noise_sigma(real, i, "central", wide(ns.magnitude(steps)[i]))
    if NOISE_REACH * sigma > NOISE_ROUNDINGS * wide(ns.unit_roundoff) * largest and \
            not gap > bar + NOISE_SAFETY * sigma:
        return None
    complex_value, real_value = ns.to_float(ns.asarray([along, c1]))
    return (f"complex step disagrees with f's real arithmetic along a random direction: "
            f"Σ d_i·D_i = {complex_value:.6g} by the complex step, but central differences "
            f"on real points give {real_value:.6g}, {float(gap / bar) * CROSS_CHECK_SAFETY:.1e} "
            "times the error allowed (something inside f drops or conjugates the imaginary "
            "part: abs, a real-part cast, conj, a comparison; or f's complex arithmetic "
            "loses digits, or f computes below the system's precision); fell back to "
            "Richardson")


def shared_rounding(magnitudes: np.ndarray, unit_roundoff: float) -> np.ndarray:
    """The rounding part of the complex step's error bar at entries of these magnitudes:
    ``κ·u·max(|D_i|, c·‖D‖∞)`` (module notes). Its norm-wise part assumes the entries
    cancel terms as large as the largest; `gradcheck` tests that assumption where a
    verdict depends on it (`gradcheck.decisions.cancellation_only`)."""
    return COMPLEX_STEP_ROUNDINGS * unit_roundoff * _sum_scales(magnitudes)


def _sum_scales(magnitudes: np.ndarray) -> np.ndarray:
    """The size of the terms each entry's last sum adds up: its own size, and for a
    gradient at least `SHARED_SUM_CANCELLATION` times its largest entry (module notes)."""
    if len(magnitudes) < 2:
        return magnitudes
    return np.maximum(magnitudes, SHARED_SUM_CANCELLATION * np.max(magnitudes))
