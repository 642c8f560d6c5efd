"""Comparisons of balls that prove their answer or raise naming the entry."""

from __future__ import annotations

from typing import Any

import numpy as np

from precision_nn.numbers.arb_context import flint_module
from precision_nn.numbers.arb_series import BallSeries, decide

__all__ = ["OrderedBalls"]


_COMPARISONS = {np.greater: ">", np.greater_equal: ">=", np.less: "<", np.less_equal: "<="}


class OrderedBalls(np.ndarray):
    """An object array of balls whose comparisons are proven per entry or raise.

    ``arr > 0`` is True where every point of the ball is above 0, False where none is, and
    raises `ValueError` naming the entry where the ball straddles 0. ``np.max``/
    ``np.maximum`` give a ball enclosing the maximum (series: the proven larger branch).
    Every other operation returns a plain object array.
    """

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        plain = [np.asarray(v).view(np.ndarray) if isinstance(v, np.ndarray) else v
                 for v in inputs]
        if ufunc in _COMPARISONS and method == "__call__":
            return _compare(_COMPARISONS[ufunc], *plain)
        if ufunc in (np.maximum, np.minimum):
            extreme = np.frompyfunc(_max2 if ufunc is np.maximum else _min2, 2, 1)
            return getattr(extreme, method)(*plain, **kwargs)
        return getattr(ufunc, method)(*plain, **kwargs)


# op -> (the comparison, its negation): ball comparisons are True only when proven
_UFUNCS = {">": (np.greater, np.less_equal), ">=": (np.greater_equal, np.less),
           "<": (np.less, np.greater_equal), "<=": (np.less_equal, np.greater)}


def _compare(op: str, left: Any, right: Any) -> np.ndarray:
    fast = _compare_balls(op, left, right)
    if fast is not None:
        return fast
    left, right = np.broadcast_arrays(np.asarray(left, dtype=object),
                                      np.asarray(right, dtype=object))
    out = np.empty(left.shape, dtype=bool)
    for idx in np.ndindex(*left.shape):
        try:
            out[idx] = _proven(left[idx], right[idx], op)
        except ValueError as exc:
            raise ValueError(f"comparison at entry {idx}: {exc}") from None
    return out


def _compare_balls(op: str, left: Any, right: Any) -> np.ndarray | None:
    """`_compare` of real balls (a real number on the right, such as ReLU's 0, taken as
    the exact ball it is) in C loops: flint's ``a > b`` is True only when proven,
    and so is its negation ``a <= b``. Where neither holds the ball straddles the
    threshold; None then, and whenever an element is not a real ball, so the
    entry-by-entry path decides (series) or raises naming the entry. The negation is
    asked only where the comparison did not hold."""
    flint = flint_module()
    if isinstance(right, (int, float, np.integer, np.floating)) and \
            not isinstance(right, (bool, np.bool_)):
        right = flint.arb(int(right) if isinstance(right, (int, np.integer)) else
                          float(right))
    left, right = np.asarray(left, dtype=object), np.asarray(right, dtype=object)
    is_arb = flint.arb.__instancecheck__
    if not (all(map(is_arb, left.flat)) and all(map(is_arb, right.flat))):
        return None
    holds, fails = _UFUNCS[op]
    yes = np.asarray(holds(left, right), dtype=bool)
    rest = ~yes  # only these can straddle: the negation is asked of them alone
    if rest.any():
        if left.shape != yes.shape or right.shape not in ((), yes.shape):
            left, right = np.broadcast_arrays(left, right)  # (~15 µs: only when needed)
        undecided = fails(left[rest], right if right.ndim == 0 else right[rest])
        if not np.asarray(undecided, dtype=bool).all():
            return None
    return yes


def _proven(a: Any, b: Any, op: str) -> bool:
    return decide(a, b, op)


def _max2(a: Any, b: Any) -> Any:
    return _extreme(a, b, larger=True)


def _min2(a: Any, b: Any) -> Any:
    return _extreme(a, b, larger=False)


def _extreme(a: Any, b: Any, *, larger: bool) -> Any:
    if isinstance(a, BallSeries) or isinstance(b, BallSeries):
        # a branch is differentiable only where it is proven strictly larger
        first = _proven(a, b, ">") if larger else _proven(a, b, "<")
        return a if first else b
    flint = flint_module()
    a, b = flint.arb(a), flint.arb(b)
    return a.max(b) if larger else a.min(b)
