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
(`cross_check`: a central difference at one coordinate, `resolution`); when they disagree
beyond the rounding bound (which counts the rounding of f's terms, not only ``u·|f|``:
an f that cancels to ~0 rounds by ~u times its terms, `resolution.term_size`), or when ``f(x + ih)`` is not finite (an overflow the real
``f`` avoids), `derivative` falls back to Richardson and says so in the note.

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
from precision_nn.derivatives.resolution import probe_resolution, term_size
from precision_nn.derivatives.steps import log2_unit_roundoff, radix_steps, scales
from precision_nn.numbers import NumberSystem

__all__ = ["COMPLEX_STEP_ROUNDINGS", "SHARED_SUM_CANCELLATION", "complex_counterpart",
           "complex_step", "cross_check", "witness_steps"]

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
    rounding = COMPLEX_STEP_ROUNDINGS * ns.unit_roundoff * \
        _sum_scales(ns.magnitude(first))
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


def witness_steps(x_float: np.ndarray, ns: NumberSystem) -> np.ndarray:
    """``√u · max(|x|, 1)``: the second step, decades above the first (~u), where the h²
    term is still ~u relative but every real part differs from the first step's, so the
    two carry different rounding errors (module notes)."""
    return scales(x_float) * np.exp2(ns.error_dtype.type(log2_unit_roundoff(ns) / 2))


def cross_check(real: Evaluator, result: FDResult) -> str | None:
    """Compare the complex step with a central difference of f's *real* arithmetic at one
    coordinate (`resolution.probe_resolution`): a note saying why they disagree, or None
    when they agree (or f cannot be evaluated at real points)."""
    ns = real.ns
    x_float = ns.magnitude(real.x_flat)
    reach = 4 * witness_steps(x_float, ns)  # the probe's step stays a quarter of this
    try:
        found = probe_resolution(real, result, "central", reach=reach,
                                 terms=term_size(ns, result, real.x_flat))
    except (TypeError, ValueError):  # f refuses real points, or leaves its domain there
        return None
    if found is None or found.noise == 0:
        return None
    return (f"complex step disagrees with f's real arithmetic at coordinate "
            f"{found.coordinate} by {found.ratio:.1e} times the rounding allowed (f's "
            "complex arithmetic loses digits, e.g. a library function near the real axis, "
            "or f computes below the system's precision); fell back to Richardson")


def _sum_scales(magnitudes: np.ndarray) -> np.ndarray:
    """The size of the terms each entry's last sum adds up: its own size, and for a
    gradient at least `SHARED_SUM_CANCELLATION` times its largest entry (module notes)."""
    if len(magnitudes) < 2:
        return magnitudes
    return np.maximum(magnitudes, SHARED_SUM_CANCELLATION * np.max(magnitudes))
