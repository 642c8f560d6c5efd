"""Quantities carried as their log10: formatting, least-squares lines and axis ticks.

A 1000-digit system has u ≈ 10^-1000, errors down to there and steps near 10^-500: all 0
as Python floats (the smallest is about 4.9e-324) and beyond even a long double's 19
digits of exponent headroom once squared. Their log10, though, is an ordinary float
(−1000.0) that never underflows, keeps 15 significant digits of the exponent's fraction
(the mantissa to ~1e-13 relative), survives the JSON cell log and the CSV unchanged, and
is what every fit and figure of a power law uses anyway. So the precision sweep records
``log10_u``, ``log10_h``, ``log10_error``, … and this module turns them back into text,
straight lines and tick labels. log10 of an exact zero is −inf; NaN means "not measured".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

__all__ = ["LineFit", "decade_axis", "fmt_log10", "line_fit", "log10_norm", "log10_of",
           "log10_rms"]

STRIDES = (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000)


def fmt_log10(value: float, digits: int = 2) -> str:
    """The number whose log10 is `value`, as scientific text with `digits` digits.

    Examples
    --------
    >>> fmt_log10(-666.6496), fmt_log10(0.0), fmt_log10(-math.inf), fmt_log10(math.nan)
    ('2.2e-667', '1.0e+0', '0', '–')
    """
    if math.isnan(value):
        return "–"
    if value == -math.inf:
        return "0"
    exponent = math.floor(value)
    mantissa = round(10.0 ** (value - exponent), digits - 1)
    if mantissa >= 10:  # 9.96 rounds to 10.0: carry into the exponent
        mantissa, exponent = mantissa / 10, exponent + 1
    return f"{mantissa:.{digits - 1}f}e{exponent:+d}"


def log10_of(value: object) -> float:
    """log10 |value| of a float, long double or complex, without passing through a float64
    (which would underflow below 1e-308); −inf for 0, NaN for NaN or None."""
    if value is None:
        return math.nan
    magnitude = np.abs(np.asarray(value, dtype=np.clongdouble))
    with np.errstate(divide="ignore"):
        return float(np.log10(magnitude))


def log10_norm(values: object) -> float:
    """log10 of the 2-norm of `values` (floats, long doubles or complex), the largest
    magnitude factored out so that no square underflows; −inf for all zeros.

    Examples
    --------
    >>> tiny = np.exp2(np.longdouble(-3000))
    >>> round(log10_norm([3 * tiny, 4 * tiny]) - log10_of(tiny), 12)  # ‖(3, 4)‖ = 5
    0.69897
    """
    magnitude = np.abs(np.ravel(np.asarray(values, dtype=np.clongdouble)))
    if magnitude.size == 0 or not np.all(np.isfinite(magnitude)):
        return math.nan if np.any(np.isnan(magnitude)) or magnitude.size == 0 else math.inf
    top = magnitude.max()
    if top == 0:
        return -math.inf
    return float(np.log10(top) + np.log10(np.sum((magnitude / top) ** 2)) / 2)


def log10_rms(log10_values: Sequence[float]) -> float:
    """log10 of the root mean square of the numbers whose log10 are `log10_values`
    (−inf entries are zeros; NaN if any is NaN), never leaving the float range.

    Examples
    --------
    >>> round(log10_rms([-1000.0, -1000.0 + math.log10(7)]), 12)  # √((1 + 49)/2) = 5
    -999.30103
    """
    values = np.asarray(log10_values, dtype=float)
    if values.size == 0 or np.any(np.isnan(values)):
        return math.nan
    top = float(values.max())
    if not math.isfinite(top):
        return top
    return top + float(np.log10(np.mean(10.0 ** (2 * (values - top))))) / 2


@dataclass(frozen=True)
class LineFit:
    """A least-squares line ``y = slope·x + intercept`` over `points` points.

    ``stderr`` is the slope's standard error from the residuals, ``s/√Σ(x − x̄)²`` with
    ``s² = Σr²/(n − 2)``: it measures how far the points scatter about the line, the
    scatter here being the luck of a discrete step grid (the minimum over ~20 steps
    lands up to a decade below the smooth optimum), not random noise, so read it as a
    size of that scatter rather than a confidence interval. NaN below three points.
    """

    slope: float
    stderr: float
    intercept: float
    points: int


NO_LINE = LineFit(math.nan, math.nan, math.nan, 0)


def line_fit(x: Sequence[float], y: Sequence[float]) -> LineFit:
    """Least-squares line through the points where both `x` and `y` are finite.

    Examples
    --------
    >>> fit = line_fit([-10, -100, -1000], [-5, -50, -500])
    >>> round(fit.slope, 12), round(fit.stderr, 12), fit.points
    (0.5, 0.0, 3)
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if len(x) < 3 or np.ptp(x) == 0:
        return NO_LINE
    slope, intercept = np.polyfit(x, y, 1)
    residuals = y - (slope * x + intercept)
    s2 = float(residuals @ residuals) / (len(x) - 2)
    stderr = math.sqrt(s2 / float(((x - x.mean()) ** 2).sum()))
    return LineFit(float(slope), stderr, float(intercept), len(x))


def decade_axis(ax, axis: str = "y", *, most: int = 8) -> None:
    """Label an axis whose data are log10 values as powers of ten, ticks at a round stride
    (1, 2, 5, 10, 20, 25, 50, … decades), at most `most` of them: ``10⁻¹⁰⁰⁰ … 10⁰``."""
    target = ax.yaxis if axis == "y" else ax.xaxis
    low, high = ax.get_ylim() if axis == "y" else ax.get_xlim()
    low, high = min(low, high), max(low, high)
    stride = next((s for s in STRIDES if (high - low) / s <= most), STRIDES[-1])
    ticks = np.arange(math.ceil(low / stride), math.floor(high / stride) + 1) * stride
    target.set_major_locator(FixedLocator(ticks))
    target.set_minor_locator(NullLocator())
    target.set_major_formatter(FuncFormatter(lambda v, _: f"$10^{{{round(v)}}}$"))
