"""Reading Arb balls: their radii as float upper bounds, and the precision an array of
balls carries (the recogniser of the ``arb``/``acb`` family)."""

from __future__ import annotations

from typing import Any

import numpy as np

from precision_nn.numbers.arb_context import flint_module
from precision_nn.numbers.arb_series import BallSeries

__all__ = ["radius", "radius_ball", "recognise"]


def radius(array: Any) -> np.ndarray:
    """The radius of each ball as a float64 array of upper bounds.

    For ``arb`` the ball is ``[m ± r]`` and the entry is ``r`` rounded up to a float;
    for ``acb`` (a rectangle) it is ``r_re + r_im``, which bounds ``|z − m|``. First-order
    series give the radius of their slope (the derivative). A radius below the float range
    becomes the smallest subnormal (still an upper bound), one above it ``inf``.

    Examples
    --------
    >>> from precision_nn.numbers import number_system
    >>> ns = number_system("arb:30")
    >>> r = radius(ns.asarray(["0.1", "0.5"]))
    >>> bool(0 < r[0] < 1e-30), float(r[1])  # 0.1 is rounded; 0.5 is exact
    (True, 0.0)
    """
    arr = np.asarray(array, dtype=object)
    out = np.empty(arr.shape, dtype=np.float64)
    for idx, v in np.ndenumerate(arr):
        out[idx] = _radius_upper(v)
    return out


def radius_ball(v: Any) -> Any:
    """The exact radius of one element (an exact ``arb``); see `radius`."""
    if isinstance(v, BallSeries):
        v = v.slope
    if hasattr(v, "imag") and type(v).__name__ == "acb":
        return v.real.rad() + v.imag.rad()
    return v.rad()


def _radius_upper(v: Any) -> float:
    flint = flint_module()
    r = radius_ball(v)
    if not r.is_finite():
        return float("inf")
    value = float(r.mid())
    if flint.arb(value) < r.upper() or (value == 0.0 and not r.is_zero()):
        value = float(np.nextafter(value, np.inf))  # float() rounded to nearest, below r
    return value


def recognise(array: np.ndarray) -> str | None:
    """The ``arb:N``/``acb:N`` spec of an object array of balls (or first-order series), or
    None when its first element is not one.

    Balls carry no precision, so, as for Decimal, N is the larger of the digits of
    ``flint.ctx.prec`` (inside ``ns.context()``: the system's) and the most digits any
    midpoint holds (``floor(bits·log10 2)``).
    """
    flint = flint_module()
    arr = np.asarray(array, dtype=object)
    first = arr.flat[0] if arr.size else None
    first = first.value if isinstance(first, BallSeries) else first
    if not isinstance(first, (flint.arb, flint.acb)):
        return None
    bits = flint.ctx.prec
    for v in arr.flat:
        v = v.value if isinstance(v, BallSeries) else v
        for part in ((v.real, v.imag) if isinstance(v, flint.acb) else (v,)):
            if part.is_finite() and not part.mid().is_zero():
                bits = max(bits, int(part.mid().man_exp()[0]).bit_length())
    digits = max(1, int(bits * 0.30102999566398120))  # log10(2)
    return f"{'acb' if isinstance(first, flint.acb) else 'arb'}:{digits}"
