"""The complex-step derivative ``Im f(x + ih) / h``, in the complex counterpart system.

For ``f`` real-analytic near ``x``, ``f(x + ih) = f(x) + ih f'(x) − h² f''(x)/2 −
ih³ f'''(x)/6 + …``, so ``Im f(x + ih)/h = f'(x) − h² f'''(x)/6 + …``: no difference is
taken, nothing cancels, and ``h`` can be as small as the exponent range allows (Squire &
Trapp 1998; Martins, Sturdza & Alonso 2003). The error is truncation ``h²|f'''|/6``, which
``h = u·max(|x|, 1)`` makes negligible, plus the rounding of evaluating ``f`` in complex
arithmetic, a few ``u`` relative to ``f'``.

The estimate evaluates at ``h`` and ``2h``: ``D(2h) − D(h) = −3h² f'''/6 + O(h⁴)`` measures
the truncation at ``h`` as ``|D(2h) − D(h)| / 3``. (For a power-of-two ``h`` so small that
``h²`` is below the rounding of the real parts, doubling ``h`` doubles every imaginary part
exactly: the two rounding errors are equal, and the difference cannot see them.)

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

from precision_nn.derivatives.evaluation import Evaluator
from precision_nn.derivatives.finite_difference import FDResult
from precision_nn.derivatives.steps import log2_unit_roundoff, radix_steps, scales
from precision_nn.numbers import NumberSystem

__all__ = ["COMPLEX_STEP_ROUNDINGS", "SHARED_SUM_CANCELLATION", "complex_counterpart",
           "complex_step"]

# Im f(x+ih) is formed by a handful of complex operations, each with relative error at most
# √5·u for a product (Brent, Percival & Zimmermann 2007) and a few u for exp/log/division:
# allow 4 roundings of √5·u, i.e. about 8u relative to f'.
COMPLEX_STEP_ROUNDINGS = 8
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
    if h is None:
        x_float = cs.magnitude(xc)
        h = radix_steps(scales(x_float) * np.exp2(ns.error_dtype.type(log2_unit_roundoff(ns))), ns)
    with cs.context():
        step = cs.scalar(1j) * cs.asarray(h)
        points = np.concatenate([xc + step, xc + step * cs.scalar(2)])
    values = ev.at_shifts(np.tile(np.arange(n), 2), points)
    with ns.context():
        first = ns.asarray(cs.imag(values[:n])) / h
        second = ns.asarray(cs.imag(values[n:])) / (h * ns.scalar(2))
        difference = ns.magnitude(second - first)
    rounding = COMPLEX_STEP_ROUNDINGS * ns.unit_roundoff * \
        _sum_scales(ns.magnitude(first))
    steps = ns.magnitude(h)
    with np.errstate(divide="ignore", invalid="ignore"):  # h² underflows for h < 1e-162
        coefficient = difference / (3 * steps**2)
    return FDResult(value=first, error=difference / 3 + rounding, h=steps,
                    coefficient=coefficient, magnitude=np.full(n, np.nan, dtype=ns.error_dtype), noise=rounding,
                    resolution=np.full(n, np.nan, dtype=ns.error_dtype))


def _sum_scales(magnitudes: np.ndarray) -> np.ndarray:
    """The size of the terms each entry's last sum adds up: its own size, and for a
    gradient at least `SHARED_SUM_CANCELLATION` times its largest entry (module notes)."""
    if len(magnitudes) < 2:
        return magnitudes
    return np.maximum(magnitudes, SHARED_SUM_CANCELLATION * np.max(magnitudes))
