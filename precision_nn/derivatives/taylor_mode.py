"""Certified derivatives: f evaluated on first-order Taylor series with ball coefficients.

For entry k of x, f runs on the point whose k-th entry is the series ``x_k + t`` (the
others stay balls). Every operation of f then computes, in ball arithmetic, the two
coefficients of ``f(x + t·e_k) = f(x) + t·∂f/∂x_k + O(t²)`` (`BallSeries`: each rule is
the chain rule, with ``g(v)`` and ``g'(v)`` enclosed by Arb). The coefficient of t is a
ball that contains ``∂f/∂x_k`` exactly: there is no step, so no truncation error, and
every rounding is inside the radius (Rall 1981; Griewank and Walther, *Evaluating
Derivatives*, SIAM 2008, ch. 3 on forward mode; Johansson 2017 for the balls).

What it assumes about f: that f is the composition of the operations it performs on its
argument (arithmetic, the number system's functions, numpy ufuncs on object arrays), that
every branch it takes (a comparison, ``max``) is proven by the balls, and that no value
leaves the series (``float()``, ``math.*``, a cached float constant computed from x).
Comparisons, ``float()`` and functions the series lacks raise; this module names the
entry being differentiated and the cause. See docs/theory/taylor-mode.md.

Cost: one pass of f per entry of x (n passes for a gradient), batched along a new leading
axis when f accepts a stack; each series operation costs two to four ball operations.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from precision_nn.derivatives.estimate import Estimate
from precision_nn.derivatives.point import convert_point
from precision_nn.numbers import NumberSystem, infer_number_system, number_system
from precision_nn.numbers.arb_series import BallSeries

__all__ = ["BATCH_ELEMENTS", "SeriesError", "enclosures", "taylor"]

# series elements per batched call of f (n entries per point): bounds memory at ~100 MB
BATCH_ELEMENTS = 2**18
NOTE = ("error = radius of the ball enclosing ∂f/∂x (f on first-order series with ball "
        "coefficients): a proven bound")
_CAUSES = (TypeError, ValueError, AttributeError, ArithmeticError)


class SeriesError(ValueError):
    """`f` could not be evaluated on first-order ball series."""


def taylor(f: Callable[[Any], Any], x: Any, *, numbers: Any, scalar: bool, h: Any = None,
           order: Any = 2) -> Estimate:
    """``derivative``/``gradient`` with ``method="taylor"``: a certified enclosure.

    Parameters
    ----------
    f : callable
        Written against the number system (``ns.exp``, arithmetic, numpy ufuncs).
    x : scalar or array_like
        The point; strings convert exactly, then round once into the ball.
    numbers : str or NumberSystem
        A ball system, ``arb:N`` or ``acb:N`` (default: that of `x`, which must be balls).
    scalar : bool
        True for `derivative` (x a scalar), False for `gradient`.
    h, order
        Not used (no step; the series is exact to first order); `h` must be None.

    Returns
    -------
    Estimate
        ``value``: balls of the system enclosing the derivative; ``error``: their radii
        (float64 upper bounds, see `arb_system.radius`); ``certified=True``.

    Examples
    --------
    >>> from precision_nn.derivatives import derivative
    >>> from precision_nn.numbers import number_system
    >>> ns = number_system("arb:50")
    >>> est = derivative(lambda x: ns.exp(x) * ns.tanh(x), "0.5", method="taylor",
    ...                  numbers=ns)
    >>> est.certified, bool(est.error < 1e-49)
    (True, True)
    >>> exact = ns.exp(ns.scalar("0.5")) * (ns.tanh(ns.scalar("0.5")) +
    ...     1 - ns.tanh(ns.scalar("0.5")) ** 2)
    >>> bool(est.value.overlaps(exact))
    True
    """
    ns = _ball_system(x, numbers)
    if h is not None:
        raise ValueError(f"`h` is not used by method='taylor' (it takes no step); got "
                         f"h={h!r}. Drop `h`.")
    x_arr = convert_point(ns, x, scalar)
    flat = x_arr.reshape(-1)
    with ns.context():
        slopes, evaluations = _slopes(f, ns, flat, x_arr.shape)
    error = ns.radius(slopes)
    if scalar:
        return Estimate(value=slopes[0], error=float(error[0]), h=0.0,
                        evaluations=evaluations, method="taylor", note=NOTE, numbers=ns,
                        certified=True)
    return Estimate(value=slopes.reshape(x_arr.shape), error=error.reshape(x_arr.shape),
                    h=np.zeros(x_arr.shape), evaluations=evaluations, method="taylor",
                    note=NOTE, numbers=ns, certified=True)


def _ball_system(x: Any, numbers: Any) -> NumberSystem:
    if numbers is None:
        try:
            ns = infer_number_system(x)
        except (TypeError, ValueError):
            ns = None
    else:
        ns = number_system(numbers)
    if ns is None or not ns.is_ball:
        found = "x's system" if ns is None else repr(ns.name)
        raise ValueError(
            f"method='taylor' needs a ball system (every value carries a proven radius); got "
            f"{found}. Pass numbers='arb:N' (complex f: 'acb:N'; needs python-flint)."
        )
    return ns


# -- the passes ----------------------------------------------------------------------------
def _slopes(f: Callable[[Any], Any], ns: NumberSystem, flat: np.ndarray,
            shape: tuple[int, ...]) -> tuple[np.ndarray, int]:
    """The t-coefficient of f(x + t·e_k) for every k, and the passes made; raises
    `SeriesError` naming the first entry whose pass fails."""
    slopes, failures, passes = enclosures(f, ns, flat, shape, stop_at_failure=True)
    if failures:
        raise next(iter(failures.values()))
    return slopes, passes


def enclosures(f: Callable[[Any], Any], ns: NumberSystem, flat: np.ndarray,
               shape: tuple[int, ...], *, stop_at_failure: bool = False
               ) -> tuple[np.ndarray, dict[int, SeriesError], int]:
    """Balls enclosing ∂f/∂x_k for every flat k (call inside ``ns.context()``).

    Returns the balls (None where the pass failed), the failures by entry (each a
    `SeriesError` naming the entry and the cause) and the passes of f made.
    """
    n, done = flat.size, 0
    out = np.empty(n, dtype=object)
    if n > 1:
        batch = max(2, BATCH_ELEMENTS // n)
        while done < n:
            chunk = _batched(f, ns, flat, shape, np.arange(done, min(done + batch, n)))
            if chunk is None:  # f takes no stacks, or one pass fails: one by one, named
                break
            out[done:done + len(chunk)] = chunk
            done += len(chunk)
        else:
            return out, {}, n
    failures: dict[int, SeriesError] = {}
    for k in range(done, n):
        try:
            out[k] = _slope(ns, _call(f, ns, _seeded(ns, flat, k).reshape(shape), k, shape),
                            k, shape)
        except SeriesError as exc:
            failures[k] = exc
            if stop_at_failure:
                break
    return out, failures, n


def _seeded(ns: NumberSystem, flat: np.ndarray, k: int) -> np.ndarray:
    """x with entry k replaced by the series ``x_k + t``."""
    point = flat.copy()
    point[k] = BallSeries(flat[k], ns.one)
    return point


def _batched(f: Callable[[Any], Any], ns: NumberSystem, flat: np.ndarray,
             shape: tuple[int, ...], ks: np.ndarray) -> np.ndarray | None:
    """f on a stack of seeded points, or None when f does not take stacks (or fails on
    one, which the one-by-one passes then name)."""
    stack = np.stack([_seeded(ns, flat, int(k)).reshape(shape) for k in ks])
    try:
        values = np.asarray(f(stack), dtype=object)
    except _CAUSES:
        return None
    if values.shape != (len(ks),) or not all(isinstance(v, BallSeries) or ns.owns(
            np.asarray([v], dtype=object)) for v in values.flat):
        return None
    if len(ks) >= 2:  # f(stack)[0] must be f(point): else f mixes the stack's rows
        alone = _call(f, ns, stack[0], int(ks[0]), shape)
        first = _slope(ns, values[0], int(ks[0]), shape)
        if not _slope(ns, alone, int(ks[0]), shape).overlaps(first):
            return None
    return np.array([_slope(ns, v, int(k), shape) for v, k in zip(values, ks)], dtype=object)


def _call(f: Callable[[Any], Any], ns: NumberSystem, point: np.ndarray, k: int,
          shape: tuple[int, ...]) -> Any:
    arg = point if shape != () else point[()]
    try:
        value = f(arg)
    except _CAUSES as exc:
        raise SeriesError(
            f"`f` cannot run on first-order ball series while differentiating "
            f"{_entry(k, shape)}: {type(exc).__name__}: {exc} (method='taylor' needs f "
            "written with the number system's functions and arithmetic, no float(), "
            "math.* or undecidable comparisons)."
        ) from exc
    if isinstance(value, np.ndarray) and value.size == 1:
        value = value.reshape(())[()]
    return value


def _slope(ns: NumberSystem, value: Any, k: int, shape: tuple[int, ...]) -> Any:
    """The t-coefficient of f's value. A plain ball of the system is a series whose slope is
    exactly 0: no operation of f involved t (a constant branch, ReLU's 0 side)."""
    if isinstance(value, BallSeries):
        return value.slope
    if ns.owns(np.asarray([value], dtype=object)):
        return ns.zero
    raise SeriesError(
        f"`f` returned a {type(value).__name__} instead of a series while differentiating "
        f"{_entry(k, shape)}: its value left ball arithmetic (converted to a float or "
        "another system, or a non-scalar result), so no derivative is proven. Return a "
        "scalar computed from x with the number system's functions."
    )


def _entry(k: int, shape: tuple[int, ...]) -> str:
    if shape == ():
        return "x"
    return f"entry {tuple(int(i) for i in np.unravel_index(k, shape))} of x"
