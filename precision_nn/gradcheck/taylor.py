"""`taylor_test`: the gradient is right when the first-order Taylor remainder is O(h²).

For a twice-differentiable ``f`` and the true gradient ``g``,

    r(h) = |f(x + h·v) - f(x) - h·vᵀg| = h²·|vᵀ∇²f v|/2 + O(h³),

so halving ``h`` divides ``r`` by 4: the observed order ``log2(r(h)/r(h/2))`` is 2. A wrong
gradient leaves a term ``h·|vᵀ(g - ĝ)|`` and the order drops to 1. The test needs no
tolerance and no step choice, only a sequence of steps that stays above the rounding floor
of the remainder, ``≈ u·(|f(x)| + |f(x + hv)|)``; orders measured below
``FLOOR_FACTOR`` times that floor are not used. This is the convergence test of the
adjoint/PDE-constrained optimisation literature (e.g. Farrell et al. 2013, dolfin-adjoint's
``taylor_test``).

References
----------
P. E. Farrell, D. A. Ham, S. W. Funke, M. E. Rognes, "Automated derivation of the adjoint
of high-level transient finite element programs", SIAM J. Sci. Comput. 35 (2013).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from precision_nn.gradcheck.probes import as_float, call, random_direction

__all__ = ["TaylorReport", "taylor_test"]

FIRST_STEP = 0.1  # relative to 1 + max|x|: large enough that h² terms dominate rounding
STEP_COUNT = 12  # halvings: 0.1 → 5e-5 relative
FLOOR_FACTOR = 100.0  # remainders within 100× the rounding floor carry no order
PASS_ORDER = 1.8  # an observed order at least this close to 2 passes
MIN_ORDERS = 2  # at least this many usable halvings are needed for a verdict
ASYMPTOTIC = 3  # the observed order is the median of the last this-many usable orders


@dataclass(frozen=True)
class TaylorReport:
    """Remainders and observed orders of a Taylor test.

    Attributes
    ----------
    steps : ndarray
        The steps ``h`` (along the unit direction ``v``).
    remainders : ndarray
        ``|f(x + hv) - f(x) - h·vᵀg|``: must shrink as h².
    zeroth_order : ndarray
        ``|f(x + hv) - f(x)|`` for comparison: shrinks as h.
    orders : ndarray
        ``log(r_k/r_{k+1}) / log(h_k/h_{k+1})``, NaN where rounding dominates.
    observed_order : float
        The median of the last three usable orders (NaN when none is usable).
    passed : bool
        Order ≈ 2 (≥ 1.8) over at least two halvings, or every remainder at the
        rounding floor (a gradient exact to rounding of a near-linear ``f``).
    directional_derivative : float
        ``vᵀg``.
    numbers : str
        The number system.
    """

    steps: np.ndarray
    remainders: np.ndarray
    zeroth_order: np.ndarray
    orders: np.ndarray
    observed_order: float
    passed: bool
    directional_derivative: float
    numbers: str

    def __str__(self) -> str:
        verdict = "PASSED" if self.passed else "FAILED"
        lines = [(f"Taylor test {verdict}: observed order {self.observed_order:.3g} "
                 f"(2 for a correct gradient, 1 for a wrong one), vᵀg = "
                 f"{self.directional_derivative:.6g}, {self.numbers}"),
                 f"  {'h':>10}  {'|f(x+hv)-f(x)|':>16}  {'remainder':>12}  {'order':>6}"]
        for k, h in enumerate(self.steps):
            order = self.orders[k - 1] if k > 0 else np.nan
            text = "" if np.isnan(order) else f"{order:.2f}"
            lines.append(f"  {h:10.3e}  {self.zeroth_order[k]:16.3e}  "
                         f"{self.remainders[k]:12.3e}  {text:>6}")
        return "\n".join(lines)


def taylor_test(f: Callable[[Any], Any], grad: Callable[[Any], Any], x: Any, *,
                direction: Any = None, steps: Sequence[float] | None = None) -> TaylorReport:
    """Check `grad` by the order at which the first-order Taylor remainder shrinks.

    Parameters
    ----------
    f, grad : callable
        The function and its claimed gradient.
    x : array_like
        The point (its number system is inferred).
    direction : array_like, optional
        The direction ``v`` (normalised); default a seeded random unit vector.
    steps : sequence of float, optional
        Decreasing positive steps; default ``0.1·(1 + max|x|)`` halved 11 times.

    Examples
    --------
    >>> import numpy as np
    >>> f = lambda x: np.sum(np.sin(x))
    >>> x = np.array([0.3, -1.2, 2.0])
    >>> taylor_test(f, np.cos, x).passed, taylor_test(f, np.sin, x).passed
    (True, False)
    >>> round(taylor_test(f, np.cos, x).observed_order)
    2
    """
    from precision_nn.gradcheck.check import infer_numbers

    ns = infer_numbers(x)
    xs = ns.asarray(x)
    flat = xs.reshape(-1)
    v = _direction(direction, flat.size)
    hs = _steps(steps, float(np.max(np.abs(ns.to_float(flat)))))
    with ns.context():
        g = ns.asarray(np.asarray(grad(xs)).reshape(-1))
        vg = np.sum(ns.asarray(v) * g)
    f0 = call(f, xs, ns)
    rem, zeroth, floor = [], [], []
    for h in hs:
        with ns.context():
            fh = call(f, (flat + ns.asarray(h * v)).reshape(xs.shape), ns)
            rem.append(abs(as_float(ns, fh - f0 - ns.scalar(h) * vg)))
            zeroth.append(abs(as_float(ns, fh - f0)))
        floor.append(ns.unit_roundoff * (abs(as_float(ns, f0)) + abs(as_float(ns, fh))))
    return _assemble(hs, np.array(rem), np.array(zeroth), np.array(floor),
                     as_float(ns, vg), ns.name)


def _direction(direction: Any, n: int) -> np.ndarray:
    if direction is None:
        return random_direction(n, salt=3)
    v = np.asarray(direction, dtype=float).reshape(-1)
    if v.size != n or not np.all(np.isfinite(v)) or not np.any(v):
        raise ValueError(f"`direction` must be a finite non-zero array with {n} entries "
                         f"(one per entry of x); got shape {np.shape(direction)}.")
    return v / np.linalg.norm(v)


def _steps(steps: Sequence[float] | None, xmax: float) -> np.ndarray:
    if steps is None:
        return FIRST_STEP * (1 + xmax) * 0.5 ** np.arange(STEP_COUNT)
    hs = np.asarray(steps, dtype=float)
    if hs.ndim != 1 or hs.size < 3 or np.any(hs <= 0) or np.any(np.diff(hs) >= 0):
        raise ValueError(f"`steps` must be at least 3 positive, strictly decreasing "
                         f"numbers; got {steps!r}.")
    return hs


def _assemble(hs: np.ndarray, rem: np.ndarray, zeroth: np.ndarray, floor: np.ndarray,
              vg: float, numbers: str) -> TaylorReport:
    usable = rem > FLOOR_FACTOR * floor
    with np.errstate(divide="ignore", invalid="ignore"):
        orders = np.log(rem[:-1] / rem[1:]) / np.log(hs[:-1] / hs[1:])
    orders = np.where(usable[:-1] & usable[1:], orders, np.nan)
    good = orders[~np.isnan(orders)]
    # the asymptotic order is that of the smallest usable steps
    observed = float(np.median(good[-ASYMPTOTIC:])) if good.size else float("nan")
    if good.size >= MIN_ORDERS:
        passed = observed >= PASS_ORDER
    else:
        passed = bool(not usable.any())
    return TaylorReport(hs, rem, zeroth, orders, observed, bool(passed), vg, numbers)
