"""f(x + i·y) in acb for tiny y (the complex step): tight in each part.

Arb's complex functions are accurate relative to |f(z)|, and its rectangles do not
correlate the parts; both would spoil ``Im f(x + i·h)/h``. These helpers add guard bits
and evaluate at the exact real midpoint with rigorous mean-value widening.
"""

from __future__ import annotations

from typing import Any

from precision_nn.numbers.arb_context import flint_module, flint_precision
from precision_nn.numbers.arb_series import BallSeries

__all__ = ["COMPLEX_STEP_GUARD", "complex_step_guard", "near_real_axis"]


COMPLEX_STEP_GUARD = 16  # bits kept beyond |Im z|/|z| so Im f(z) is accurate in itself


def complex_step_guard(z: Any) -> int:
    """Extra bits for f(z) when Im z is tiny beside Re z (the complex step).

    Arb's complex functions are accurate relative to |f(z)|, not in each part: for
    ``z = x + i·h`` the imaginary part ``≈ h·f'(x)`` would carry a radius ~``2^-prec·|f|``,
    i.e. ``2^-prec·|f|/h`` after the division by h. Working at ``prec + log2(|z|/|Im z|) +
    COMPLEX_STEP_GUARD`` bits brings that radius back to ~``2^-prec`` of the imaginary part.
    """
    if isinstance(z, BallSeries) or z.imag.is_zero() or z.real.is_zero():
        return 0
    gap = z.real.mid().abs_lower().log() - z.imag.mid().abs_upper().log()
    bits = float((gap / type(gap)(2).log()).mid()) if gap.is_finite() else 0.0
    return int(bits) + COMPLEX_STEP_GUARD if bits > 8 else 0


# where each function is real on the real axis (needed by _near_real_axis's bound)
_REAL_ON = {"exp": None, "tanh": None, "erf": None, "sin": None, "cos": None,
            "log": 0, "sqrt": 0, "log1p": -1}


def near_real_axis(name: str, z: Any, prec: int, guard: int) -> Any:
    """f(x + iy) for tiny y, tight in each part even when x is a ball of radius r > 0.

    Rectangles do not correlate the parts: evaluated on the ball itself, r reaches Im f as
    ~r·|f'|, i.e. r·|f'|/y after the complex step's division by y. Instead f runs at the
    exact midpoint m + iy (with guard bits), and the ball is widened by rigorous bounds of
    what ξ ∈ [m ± r] can change (mean value theorem; f real on the real axis, so
    Im f'(ξ) = 0 and |Im f'(ξ + iy)| ≤ |y|·max|f''| on the segment to the axis):

        |Re f(ξ + iy) − Re f(m + iy)| ≤ r·max|f'|,   |Im …| ≤ r·|y|·max|f''|,

    the maxima enclosed over the rectangle [m ± r] × [0, y] by a second-order series.
    """
    flint = flint_module()
    r, lower = z.real.rad(), _REAL_ON[name]
    with flint_precision(prec + guard):
        if r.is_zero() or (lower is not None and not z.real > lower):
            return getattr(z, name)()
        w = getattr(flint.acb(z.real.mid(), z.imag), name)()
    with flint_precision(prec + COMPLEX_STEP_GUARD):
        d1, d2 = _derivative_bounds(name, flint.acb(z.real, z.imag.union(0)))
        widen_re, widen_im = r * d1, r * z.imag.abs_upper() * d2
        return flint.acb(flint.arb(w.real.mid(), w.real.rad() + widen_re),
                         flint.arb(w.imag.mid(), w.imag.rad() + widen_im))


def _derivative_bounds(name: str, rect: Any) -> tuple[Any, Any]:
    """Upper bounds of |f'| and |f''| over a complex ball (acb_series of length 3)."""
    flint = flint_module()
    s = flint.acb_series([rect, 1], prec=3)
    if name == "tanh":
        e = (2 * s).exp()
        series = (e - 1) / (e + 1)
    elif name == "log1p":
        series = (1 + s).log()
    else:
        series = getattr(s, name)()
    coeffs = list(series.coeffs()) + [flint.acb(0)] * 3
    return abs(coeffs[1]).upper(), 2 * abs(coeffs[2]).upper()
