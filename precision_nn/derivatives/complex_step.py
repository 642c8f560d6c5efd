"""The complex-step derivative ``Im f(x + ih) / h``, in the complex counterpart system.

For ``f`` real-analytic near ``x``, ``f(x + ih) = f(x) + ih f'(x) − h² f''(x)/2 −
ih³ f'''(x)/6 + …``, so ``Im f(x + ih)/h = f'(x) − h² f'''(x)/6 + …``: no difference is
taken, nothing cancels, and ``h`` can be as small as the exponent range allows (Squire &
Trapp 1998; Martins, Sturdza & Alonso 2003). The error is truncation ``h²|f'''|/6``, which
``h = u·max(|x|, 1)`` makes negligible, plus the rounding of evaluating ``f`` in complex
arithmetic, a few ``u`` relative to ``f'``.

The estimate evaluates at ``h`` and ``2h``: ``D(2h) − D(h) = −3h² f'''/6 + O(h⁴)`` measures
the truncation at ``h`` as ``|D(2h) − D(h)| / 3``; rounding is bounded by
``COMPLEX_STEP_ROUNDINGS · u · |D|``.

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

__all__ = ["COMPLEX_STEP_ROUNDINGS", "complex_counterpart", "complex_step"]

# Im f(x+ih) is formed by a handful of complex operations, each with relative error at most
# √5·u for a product (Brent, Percival & Zimmermann 2007) and a few u for exp/log/division:
# allow 4 roundings of √5·u, i.e. about 8u relative to f'.
COMPLEX_STEP_ROUNDINGS = 8


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
        x_float = np.abs(cs.to_float(xc))
        h = radix_steps(scales(x_float) * 2.0 ** log2_unit_roundoff(ns), ns)
    with cs.context():
        step = cs.scalar(1j) * cs.asarray(h)
        points = np.concatenate([xc + step, xc + step * cs.scalar(2)])
    values = ev.at_shifts(np.tile(np.arange(n), 2), points)
    with ns.context():
        first = ns.asarray(cs.imag(values[:n])) / h
        second = ns.asarray(cs.imag(values[n:])) / (h * ns.scalar(2))
        difference = np.abs(ns.to_float(second - first))
    rounding = COMPLEX_STEP_ROUNDINGS * ns.unit_roundoff * np.abs(ns.to_float(first))
    steps = np.abs(ns.to_float(h))
    with np.errstate(divide="ignore", invalid="ignore"):  # h² underflows for h < 1e-162
        coefficient = difference / (3 * steps**2)
    return FDResult(value=first, error=difference / 3 + rounding, h=steps,
                    coefficient=coefficient, magnitude=np.full(n, np.nan), noise=rounding,
                    resolution=np.full(n, np.nan))
