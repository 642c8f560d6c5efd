"""The epsilon sweep's analysis: the fitted error laws of each curve beside the model's.

Input: the rows of `studies.epsilon_sweep` (log10 columns, as they come from the cell log).
Output: one dict per problem, system and method (``fitted_laws.csv``), every step and error
as its log10 so that a 1000-digit curve (errors ~10⁻⁶⁶⁷, 0 as floats) is fitted like a
float64 one. The regimes and fits are those of `studies.laws`.
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

from studies.laws import (
    LOG10_DOMINANCE,
    METHODS,
    fit_slope,
    fitted_optimum,
    law,
    minimum,
    regime_masks,
)
from studies.problems import problem, problem_derivatives
from studies.rows import finite

__all__ = ["GROSS_DECADES", "laws_table"]

GROSS_DECADES = 2.0  # an error 100× its estimate is a gross miss: a wrong value called good


def laws_table(rows: list[dict]) -> list[dict]:
    """Fitted slopes and optima beside the model, one dict per problem, system and method.

    Keys: problem, numbers, method, log10_u, p, truncation_slope (fitted),
    truncation_points, rounding_slope, rounding_points, rounding_theory, log10_h_opt and
    log10_e_opt (the optimum of the two fitted laws, `studies.laws.fitted_optimum`),
    log10_h_opt_model and log10_e_opt_model (the model's, exact constants), log10_h_best
    and log10_e_best (the smallest single measurement), flat_over_u (complex step: largest
    error/u where C·h² < u/30), estimate_bounds (the fraction of steps with error below 1
    whose error the library's estimate bounds), estimate_gross_misses (steps whose error
    exceeds the estimate a hundredfold).
    """
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for row in rows:
        groups[(row["problem"], row["numbers"], row["method"])].append(row)
    return [_laws_of(key, group) for key, group in groups.items()]


def _laws_of(key: tuple, group: list[dict]) -> dict:
    name, numbers, label = key
    log10_u = group[0]["log10_u"]
    x = np.array([r["log10_h_used"] if finite(r["log10_h_used"]) else r["log10_h"]
                  for r in group], float)
    y = np.array([r["log10_error"] if finite(r["log10_error"]) else math.nan
                  for r in group], float)
    derivatives = problem_derivatives(problem(name))
    model = law(label, derivatives, log10_u) if derivatives is not None else None
    truncation, rounding = regime_masks(x, y, model=model, log10_u=log10_u, x_scale=1.0,
                                        cancellation=METHODS[label].weight_sum > 0)
    if not METHODS[label].p:
        truncation = np.zeros_like(truncation)  # Richardson: no single truncation order
    trunc_fit, round_fit = fit_slope(x, y, truncation), fit_slope(x, y, rounding)
    bounded, gross = _estimate_check(group)
    h_best, e_best = minimum(x, y)
    h_fit, e_fit = fitted_optimum(trunc_fit, round_fit)
    p = METHODS[label].p
    return {
        "problem": name, "numbers": numbers, "method": label, "log10_u": log10_u,
        "p": p if p else math.nan,
        "truncation_slope": trunc_fit.slope, "truncation_points": trunc_fit.points,
        "rounding_slope": round_fit.slope, "rounding_points": round_fit.points,
        "rounding_theory": -1.0 if METHODS[label].weight_sum else math.nan,
        "log10_h_opt": h_fit, "log10_h_opt_model": model.log10_h_opt if model else math.nan,
        "log10_e_opt": e_fit, "log10_e_opt_model": model.log10_e_opt if model else math.nan,
        "log10_h_best": h_best, "log10_e_best": e_best,
        "flat_over_u": _flat_level(x, y, model, log10_u) if label == "complex_step"
        else math.nan,
        "estimate_bounds": bounded, "estimate_gross_misses": gross,
    }


def _estimate_check(group: list[dict]) -> tuple[float, int]:
    """How well the library's own error estimate covers the measured error.

    Returns the fraction of steps where error <= estimated error, and the number of steps
    where the error exceeds the estimate a hundredfold (a wrong value reported as good).
    Steps whose relative error is 1 or more (every digit lost) are left out.
    """
    both = [(r["log10_error"], r["log10_estimated_error"]) for r in group
            if finite(r["log10_error"]) and finite(r["log10_estimated_error"])]
    gross = sum(1 for error, estimated in both if error > estimated + GROSS_DECADES)
    pairs = [(error, estimated) for error, estimated in both if error < 0]
    if not pairs:
        return math.nan, gross
    return sum(e <= est for e, est in pairs) / len(pairs), gross


def _flat_level(x, y, model, log10_u: float) -> float:
    """Largest error / u over the steps where the model's truncation is below u/30."""
    if model is None:
        flat = x <= np.nanmin(x) + 6  # network: the six smallest decades of the sweep
    else:
        flat = model.truncation(x) <= log10_u - LOG10_DOMINANCE
    values = y[flat & np.isfinite(y)]
    return float(10.0 ** (values.max() - log10_u)) if values.size else math.nan
