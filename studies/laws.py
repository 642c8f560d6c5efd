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
    "law",
    "minimum",
    "optimum_log10",
    "regime_masks",
]

DOMINANCE = 30.0
ASYMPTOTIC_H = 0.1
MIN_POINTS = 4  # fewer points, or under one decade of h, give no fit
SATURATED = 0.1


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


@dataclass(frozen=True)
class Law:
    """The model error ``C·h^p + S·u·|f|/h (+ u·|f'|)`` relative to |f'|."""

    p: int
    C: float  # relative truncation constant, |c_p f^(p+1)| / |f'|
    R: float  # relative rounding constant, S·u·|f| / |f'| (0: no cancellation)
    floor: float  # error floor without cancellation: u (complex step) or 0

    def truncation(self, h: np.ndarray) -> np.ndarray:
        return self.C * np.asarray(h, dtype=float) ** self.p

    def rounding(self, h: np.ndarray) -> np.ndarray:
        return self.R / np.asarray(h, dtype=float) + self.floor

    def total(self, h: np.ndarray) -> np.ndarray:
        return self.truncation(h) + self.rounding(h)

    @property
    def h_opt(self) -> float:
        """Minimiser of C·h^p + R/h (NaN when there is no trade-off)."""
        if self.R == 0 or self.C == 0:
            return math.nan
        return (self.R / (self.p * self.C)) ** (1 / (self.p + 1))

    @property
    def e_opt(self) -> float:
        """The model's minimum error, (p+1)·C·h*^p (floor added)."""
        if math.isnan(self.h_opt):
            return self.floor if self.R == 0 else math.nan
        # at h*, R/h* = p·C·h*^p (the derivative vanishes), so E* = (p+1)·C·h*^p
        return (self.p + 1) * self.C * self.h_opt ** self.p + self.floor


def law(label: str, derivatives: Sequence[float], u: float) -> Law | None:
    """The error law of method `label` for a function with |f^(k)(x)| = derivatives[k].

    None for Richardson, whose error depends on its adaptive stopping, not on one h^p.
    """
    spec = METHODS[label]
    if spec.p == 0:
        return None
    f, df = derivatives[0], derivatives[1]
    C = float(spec.taylor) * derivatives[spec.p + 1] / df
    R = float(spec.weight_sum) * u * f / df
    return Law(p=spec.p, C=C, R=R, floor=u if spec.weight_sum == 0 else 0.0)


def optimum_log10(label: str, derivatives: Sequence[float],
                  log10_u: float) -> tuple[float, float] | None:
    """(log10 h*, log10 E*) of `law`'s optimum, from log10 u: the same model, for unit
    roundoffs far below the float range (u = 10^-1000 is 0 as a float, its log10 is not).

    With ``C`` and ``R = S·u·|f|/|f'|`` as in `Law`: ``log10 h* = (log10 R − log10(p·C))
    / (p+1)`` and ``log10 E* = log10((p+1)·C) + p·log10 h*``; the complex step (S = 0) has
    no optimal step (NaN) and E* = u. None for Richardson, as for `law`.

    Examples
    --------
    >>> h, e = optimum_log10("central2", [1.0, 1.0, 1.0, 1.0], -1000.0)
    >>> round(h, 3), round(e, 3)  # h* = (3u)^(1/3), E* = 3·(1/6)·h*²
    (-333.174, -666.649)
    """
    spec = METHODS[label]
    if spec.p == 0:
        return None
    f, df = derivatives[0], derivatives[1]
    log_c = math.log10(float(spec.taylor) * derivatives[spec.p + 1] / df)
    if spec.weight_sum == 0:
        return math.nan, log10_u
    log_r = math.log10(float(spec.weight_sum) * f / df) + log10_u
    log_h = (log_r - math.log10(spec.p) - log_c) / (spec.p + 1)
    return log_h, math.log10(spec.p + 1) + log_c + spec.p * log_h


@dataclass(frozen=True)
class Fit:
    """A least-squares line log10(err) = slope·log10(h) + intercept over `points` points."""

    slope: float
    intercept: float
    points: int
    h_min: float
    h_max: float


NO_FIT = Fit(math.nan, math.nan, 0, math.nan, math.nan)


def fit_slope(h: np.ndarray, err: np.ndarray, mask: np.ndarray) -> Fit:
    """Fit the slope of log10 err against log10 h where `mask` holds (NaN/zero dropped)."""
    h, err = np.asarray(h, dtype=float), np.asarray(err, dtype=float)
    keep = np.asarray(mask) & np.isfinite(err) & (err > 0) & (h > 0)
    if keep.sum() < MIN_POINTS or np.log10(h[keep].max() / h[keep].min()) < 1:
        return NO_FIT
    x, y = np.log10(h[keep]), np.log10(err[keep])
    slope, intercept = np.polyfit(x, y, 1)
    return Fit(float(slope), float(intercept), int(keep.sum()), float(h[keep].min()),
               float(h[keep].max()))


def minimum(h: np.ndarray, err: np.ndarray) -> tuple[float, float]:
    """(h, error) at the smallest finite error."""
    h, err = np.asarray(h, dtype=float), np.asarray(err, dtype=float)
    finite = np.isfinite(err)
    if not finite.any():
        return math.nan, math.nan
    k = np.flatnonzero(finite)[np.argmin(err[finite])]
    return float(h[k]), float(err[k])


def regime_masks(h: np.ndarray, err: np.ndarray, *, model: Law | None, u: float,
                 x_scale: float, cancellation: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks of the truncation- and rounding-dominated steps (see module notes).

    Without a model, a method without cancellation (the complex step) has a truncation
    regime where the error exceeds `DOMINANCE` times its flat floor (its smallest error),
    and no rounding regime.
    """
    h, err = np.asarray(h, dtype=float), np.asarray(err, dtype=float)
    valid = np.isfinite(err) & (err > 0)
    none = np.zeros_like(valid)
    if model is not None:
        trunc, rnd = model.truncation(h), model.rounding(h) - model.floor
        truncation = trunc >= DOMINANCE * (rnd + model.floor)
        rounding = rnd >= DOMINANCE * trunc if model.R > 0 else none
    elif not cancellation:
        _, floor = minimum(h, err)
        truncation, rounding = err >= DOMINANCE * floor, none
    else:
        h_star, _ = minimum(h, err)
        truncation, rounding = h >= 10 * h_star, h <= h_star / 10
    truncation = valid & truncation & (h <= ASYMPTOTIC_H)
    rounding = valid & rounding & (err <= SATURATED) & (h >= 100 * 2 * u * max(x_scale, 1.0))
    return truncation, rounding


def fitted_optimum(truncation: Fit, rounding: Fit) -> tuple[float, float]:
    """(h*, E*) minimising the sum of the two fitted power laws A·h^s + B·h^r.

    Setting the derivative s·A·h^(s−1) + r·B·h^(r−1) to zero gives
    h* = (−r·B / (s·A))^(1/(s−r)). This is the measured optimum that noise does not move,
    unlike the smallest single measurement, which picks a lucky cancellation.
    """
    s, r = truncation.slope, rounding.slope
    if not (math.isfinite(s) and math.isfinite(r)) or s <= 0 or r >= 0:
        return math.nan, math.nan
    A, B = 10.0**truncation.intercept, 10.0**rounding.intercept
    h = (-r * B / (s * A)) ** (1 / (s - r))
    return h, A * h**s + B * h**r
