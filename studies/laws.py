"""Error laws of difference quotients: the model, its optimum, and fits to measured errors.

The model
---------
A difference quotient of accuracy order p with step h has two error terms (Higham,
*Accuracy and Stability of Numerical Algorithms*, 2nd ed., §1.14; Nocedal & Wright,
*Numerical Optimization*, §8.1):

* truncation, from the first neglected Taylor term: ``T(h) = C·h^p`` with
  ``C = |c_p·f^(p+1)(x)|``: forward/backward ``c_1 = 1/2``; central order 2 ``1/6``;
  central order 4 ``1/30`` (the stencil ``[1, −8, 0, 8, −1]/12h``); complex step ``1/6``;
* rounding: each value f(x + kh) carries a relative error of about u, and the quotient
  divides their weighted sum by h: ``R(h) = S·u·|f(x)|/h`` with ``S = Σ|w_k|`` the sum of
  the stencil's weight magnitudes (forward 2, central-2 1, central-4 18/12). The complex
  step has no difference and so no cancellation: its rounding is ``u·|f'(x)|``, flat in h
  (Squire & Trapp, SIAM Rev. 40 (1998) 110).

Minimising ``C·h^p + S·u·|f|/h`` gives ``h* = (S·u·|f| / (p·C))^(1/(p+1))`` and
``E* = (p+1)·C·h*^p ∝ u^(p/(p+1))``: the exponents the precision sweep measures.

Everything is in log10
----------------------
At 1000 digits u ≈ 10^-1000, h* ≈ 10^-333 and E* ≈ 10^-667: all 0 as floats (which end
near 10^-308). The model and the fits therefore take and return log10 values (floats that
never underflow, `studies.decades`): ``log10 T = log10 C + p·log10 h``,
``log10 R = log10(S·|f|/|f'|) + log10 u − log10 h``, sums through `log10_sum`. −inf is an
exact zero (e.g. the complex step's R), NaN "not measured".

The fits
--------
Slopes are least-squares lines through (log10 h, log10 error) restricted to the regime
where the term in question dominates the other by at least `DOMINANCE` (30×, so the other
term bends the log-log line by under log10(1 + 1/30) ≈ 0.014 decades). Where the
constants are known (scalar functions) the regime is read off the model; where they are
not (the network gradient) it is read off the measured optimum: truncation for
h ≥ 10·h*_measured, rounding for h ≤ h*_measured/10. Truncation points are also limited
to h ≤ `ASYMPTOTIC_H` (the next Taylor term is then below a few per cent) and rounding
points to relative errors ≤ 0.1 (above, the quotient has lost every digit and the error
saturates) and to steps of at least 100 units in the last place of x (below, x + h rounds
to a handful of representable steps).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

__all__ = [
    "ASYMPTOTIC_H",
    "DOMINANCE",
    "METHODS",
    "Fit",
    "Law",
    "fit_slope",
    "fitted_optimum",
    "law",
    "log10_sum",
    "minimum",
    "optimum_log10",
    "regime_masks",
]

DOMINANCE = 30.0
ASYMPTOTIC_H = 0.1
MIN_POINTS = 4  # fewer points, or under one decade of h, give no fit
SATURATED = 0.1
LOG10_DOMINANCE = math.log10(DOMINANCE)


@dataclass(frozen=True)
class MethodSpec:
    """A method variant: how to call `derivative` and what its error model needs."""

    method: str  # the `method=` of precision_nn.derivatives.derivative
    order: int  # the `order=` passed with it
    p: int  # truncation order p (0 for Richardson: set by its adaptive stopping)
    taylor: Fraction  # c_p, truncation constant per |f^(p+1)|
    weight_sum: Fraction  # S = Σ|w_k|; 0 for the complex step (no cancellation)


# label -> variant: the methods the studies compare. Constants from the Taylor expansions
# of the stencils, e.g. central-2: (f(x+h) - f(x-h))/2h = f' + h²·f'''/6 + O(h^4).
METHODS: dict[str, MethodSpec] = {
    "forward": MethodSpec("forward", 1, 1, Fraction(1, 2), Fraction(2)),
    "backward": MethodSpec("backward", 1, 1, Fraction(1, 2), Fraction(2)),
    "central2": MethodSpec("central", 2, 2, Fraction(1, 6), Fraction(1)),
    "central4": MethodSpec("central", 4, 4, Fraction(1, 30), Fraction(18, 12)),
    # Richardson: no single h^p (its stopping adapts), but it differences: rounding ∝ u/h
    "richardson": MethodSpec("richardson", 2, 0, Fraction(0), Fraction(1)),
    "complex_step": MethodSpec("complex_step", 2, 2, Fraction(1, 6), Fraction(0)),
}


def log10_sum(*terms):
    """log10(10^a + 10^b + …) of log10 values, elementwise, without leaving the float range
    (the largest term is factored out); −inf terms are zeros, NaN propagates.

    Examples
    --------
    >>> float(log10_sum(-1000.0, -1000.0)), float(log10_sum(-5.0, -math.inf))
    (-999.698970004336, -5.0)
    """
    stacked = np.broadcast_arrays(*[np.asarray(t, dtype=float) for t in terms])
    top = np.max(stacked, axis=0)
    safe = np.where(np.isfinite(top), top, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        total = sum(10.0 ** (s - safe) for s in stacked)
        return np.where(np.isfinite(top), safe + np.log10(total), top)


@dataclass(frozen=True)
class Law:
    """The model error ``C·h^p + S·u·|f|/h (+ u)`` relative to |f'|, as log10 values.

    Every method takes and returns log10 values (``x = log10 h``), so the law holds for a
    unit roundoff of 10^-1000 as for 2^-24.
    """

    p: int
    log10_C: float  # relative truncation constant, log10 |c_p f^(p+1)| / |f'|
    log10_R: float  # relative rounding constant, log10 S·u·|f| / |f'| (−inf: none)
    log10_floor: float  # error floor without cancellation: log10 u (complex step) or −inf

    @property
    def cancels(self) -> bool:
        """Whether the stencil differences (has a rounding term ∝ u/h)."""
        return self.log10_R > -math.inf

    def truncation(self, x):
        """log10 C·h^p at log10 h = `x`."""
        return self.log10_C + self.p * np.asarray(x, dtype=float)

    def rounding(self, x, *, floor: bool = True):
        """log10 (R/h + floor) at log10 h = `x` (without the floor when `floor` is False)."""
        quotient = self.log10_R - np.asarray(x, dtype=float)
        return log10_sum(quotient, self.log10_floor) if floor else quotient

    def total(self, x):
        """log10 of the whole model at log10 h = `x`."""
        return log10_sum(self.truncation(x), self.rounding(x))

    @property
    def log10_h_opt(self) -> float:
        """log10 of the minimiser of C·h^p + R/h: ``(log10 R − log10(p·C)) / (p+1)``
        (setting p·C·h^(p−1) = R/h²); NaN when there is no trade-off."""
        if not self.cancels:
            return math.nan
        return (self.log10_R - math.log10(self.p) - self.log10_C) / (self.p + 1)

    @property
    def log10_e_opt(self) -> float:
        """log10 of the model's minimum error, (p+1)·C·h*^p (floor added)."""
        if not self.cancels:
            return self.log10_floor
        # at h*, R/h* = p·C·h*^p (the derivative vanishes), so E* = (p+1)·C·h*^p
        at_opt = math.log10(self.p + 1) + self.log10_C + self.p * self.log10_h_opt
        return float(log10_sum(at_opt, self.log10_floor))


def law(label: str, derivatives: Sequence[float], log10_u: float) -> Law | None:
    """The error law of method `label` for a function with |f^(k)(x)| = derivatives[k], in
    a system whose unit roundoff is 10^`log10_u`.

    None for Richardson, whose error depends on its adaptive stopping, not on one h^p.

    Examples
    --------
    >>> model = law("central2", [1.0, 1.0, 1.0, 1.0], -1000.0)
    >>> round(model.log10_h_opt, 3), round(model.log10_e_opt, 3)  # h* = (3u)^(1/3)
    (-333.174, -666.649)
    """
    spec = METHODS[label]
    if spec.p == 0:
        return None
    f, df = derivatives[0], derivatives[1]
    log_c = math.log10(float(spec.taylor) * derivatives[spec.p + 1] / df)
    if spec.weight_sum == 0:
        return Law(p=spec.p, log10_C=log_c, log10_R=-math.inf, log10_floor=log10_u)
    log_r = math.log10(float(spec.weight_sum) * f / df) + log10_u
    return Law(p=spec.p, log10_C=log_c, log10_R=log_r, log10_floor=-math.inf)


def optimum_log10(label: str, derivatives: Sequence[float],
                  log10_u: float) -> tuple[float, float] | None:
    """(log10 h*, log10 E*) of `law`'s optimum; the complex step (S = 0) has no optimal
    step (NaN) and E* = u. None for Richardson, as for `law`.

    Examples
    --------
    >>> h, e = optimum_log10("central2", [1.0, 1.0, 1.0, 1.0], -1000.0)
    >>> round(h, 3), round(e, 3)  # h* = (3u)^(1/3), E* = 3·(1/6)·h*²
    (-333.174, -666.649)
    """
    model = law(label, derivatives, log10_u)
    if model is None:
        return None
    return model.log10_h_opt, model.log10_e_opt


@dataclass(frozen=True)
class Fit:
    """A least-squares line log10(err) = slope·log10(h) + intercept over `points` points,
    whose steps span 10^`log10_h_min` … 10^`log10_h_max`."""

    slope: float
    intercept: float
    points: int
    log10_h_min: float
    log10_h_max: float


NO_FIT = Fit(math.nan, math.nan, 0, math.nan, math.nan)


def fit_slope(x: np.ndarray, y: np.ndarray, mask: np.ndarray) -> Fit:
    """Fit the slope of `y` = log10 err against `x` = log10 h where `mask` holds
    (non-finite points dropped); no fit under `MIN_POINTS` points or one decade of h."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = np.asarray(mask, dtype=bool) & np.isfinite(x) & np.isfinite(y)
    if keep.sum() < MIN_POINTS or np.ptp(x[keep]) < 1:
        return NO_FIT
    slope, intercept = np.polyfit(x[keep], y[keep], 1)
    return Fit(float(slope), float(intercept), int(keep.sum()), float(x[keep].min()),
               float(x[keep].max()))


def minimum(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(x, y) at the smallest finite `y` (log10 h and log10 error of the best step)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    finite = np.isfinite(y)
    if not finite.any():
        return math.nan, math.nan
    k = np.flatnonzero(finite)[np.argmin(y[finite])]
    return float(x[k]), float(y[k])


def regime_masks(x: np.ndarray, y: np.ndarray, *, model: Law | None, log10_u: float,
                 x_scale: float, cancellation: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks of the truncation- and rounding-dominated steps (see module notes),
    from `x` = log10 h and `y` = log10 error.

    Without a model, a method without cancellation (the complex step) has a truncation
    regime where the error exceeds `DOMINANCE` times its flat floor (its smallest error),
    and no rounding regime.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    valid = np.isfinite(y) & np.isfinite(x)
    none = np.zeros_like(valid)
    if model is not None:
        trunc, rnd = model.truncation(x), model.rounding(x, floor=False)
        truncation = trunc >= LOG10_DOMINANCE + log10_sum(rnd, model.log10_floor)
        rounding = rnd >= LOG10_DOMINANCE + trunc if model.cancels else none
    elif not cancellation:
        _, floor = minimum(x, y)
        truncation, rounding = y >= LOG10_DOMINANCE + floor, none
    else:
        x_star, _ = minimum(x, y)
        truncation, rounding = x >= x_star + 1, x <= x_star - 1
    truncation = valid & truncation & (x <= math.log10(ASYMPTOTIC_H))
    # rounding: not saturated, and h at least 100 spacings 2u·max(|x|, 1) of x
    smallest = math.log10(100 * 2 * max(x_scale, 1.0)) + log10_u
    rounding = valid & rounding & (y <= math.log10(SATURATED)) & (x >= smallest)
    return truncation, rounding


def fitted_optimum(truncation: Fit, rounding: Fit) -> tuple[float, float]:
    """(log10 h*, log10 E*) minimising the sum of the two fitted power laws A·h^s + B·h^r.

    Setting the derivative s·A·h^(s−1) + r·B·h^(r−1) to zero gives
    h* = (−r·B / (s·A))^(1/(s−r)), i.e. log10 h* = (log10(−r/s) + log10 B − log10 A)/(s − r)
    with the intercepts log10 A and log10 B. This is the measured optimum that noise does
    not move, unlike the smallest single measurement, which picks a lucky cancellation.
    """
    s, r = truncation.slope, rounding.slope
    if not (math.isfinite(s) and math.isfinite(r)) or s <= 0 or r >= 0:
        return math.nan, math.nan
    a, b = truncation.intercept, rounding.intercept
    x = (math.log10(-r / s) + b - a) / (s - r)
    return x, float(log10_sum(a + s * x, b + r * x))
