"""The epsilon sweep's text: the fitted-laws table and the reading paragraph.

Both quote `studies.epsilon_laws.laws_table`; steps and errors there are log10 values and
are printed as numbers (``2.2e-667``) by `studies.decades.fmt_log10`.
"""

from __future__ import annotations

import math

import numpy as np

from studies import output
from studies.decades import fmt_log10
from studies.rows import finite

__all__ = ["laws_md", "reading"]

LOG10_COLUMNS = ("log10_u", "log10_h_opt", "log10_h_opt_model", "log10_e_opt",
                 "log10_e_opt_model", "log10_e_best")


def laws_md(laws: list[dict], description: str) -> str:
    """The fitted laws of one problem as a markdown table, with its caption."""
    columns = [("numbers", "system"), ("method", "method"), ("p", "p"),
               ("truncation_slope", "trunc. slope (fit)"), ("p", "theory"),
               ("rounding_slope", "round. slope (fit)"), ("rounding_theory", "theory"),
               ("log10_h_opt", "h* fitted"), ("log10_h_opt_model", "h* model"),
               ("log10_e_opt", "E* fitted"), ("log10_e_opt_model", "E* model"),
               ("log10_e_best", "smallest error"), ("flat_over_u", "flat error / u"),
               ("estimate_bounds", "estimate ≥ error")]
    return (f"Fitted laws for {description}: slopes of log10 error against log10 h "
            "(– where the regime holds under four points or one decade); h* and E* fitted: "
            "the minimum of the sum of the two fitted power laws; model: C·h^p + S·u·|f|/h "
            "with exact constants, whose rounding term is a worst case; smallest error: "
            "the best single step of the sweep (beyond 100 digits the steps lie 20 decades "
            "apart, so it can sit decades above the fitted optimum; steps and errors are "
            "recorded as log10 in "
            "`fitted_laws.csv`, printed here as numbers).\n\n"
            + output.markdown_table(laws, columns,
                                    formatters=dict.fromkeys(LOG10_COLUMNS, fmt_log10)))


def reading(laws: list[dict]) -> str:
    """One paragraph reading the fits (numbers quoted from the table)."""
    def mean(key, **match):
        values = [w[key] for w in laws if all(w[k] == v for k, v in match.items())
                  and finite(w[key])]
        return (float(np.mean(values)), len(values)) if values else (math.nan, 0)
    central, n_c = mean("truncation_slope", method="central2")
    forward, n_f = mean("truncation_slope", method="forward")
    central4, n_4 = mean("truncation_slope", method="central4")
    rounding = [w["rounding_slope"] for w in laws if finite(w["rounding_slope"])]
    close = sum(abs(slope + 1) <= 0.15 for slope in rounding)
    flat = [w["flat_over_u"] for w in laws if finite(w["flat_over_u"]) and w["problem"] != "mlp"]
    flat_net = [w["flat_over_u"] for w in laws
                if finite(w["flat_over_u"]) and w["problem"] == "mlp"]
    ratio = [10.0 ** (w["log10_h_opt"] - w["log10_h_opt_model"]) for w in laws
             if finite(w["log10_h_opt"]) and finite(w["log10_h_opt_model"])]
    return (
        "**Reading.** Every curve is a V on log-log axes: to the right of its optimum the "
        "error is truncation and falls with the method's order — fitted truncation slopes "
        f"average {central:.2f} for central-2 ({n_c} curves, theory 2), {forward:.2f} for "
        f"forward ({n_f}, theory 1) and {central4:.2f} for central-4 ({n_4}, theory 4); to "
        "the left it is rounding, which grows as u/h: the rounding slopes fitted over "
        f"{len(rounding)} curves have median {_median(rounding)} and {close} of them lie "
        f"within ±0.15 of −1 (all: between {_span(rounding)}){_outliers(laws)}. The optimum "
        "therefore moves with the precision: the optimum of the two fitted laws lies "
        f"between {_span(ratio)} times the model's h*, which is slightly larger because "
        "the model adds the rounding errors of the stencil as if they never cancelled. "
        f"{_widest_reading(laws)}"
        "In float16 the two regimes are too narrow to fit (the optimal step is only a "
        "few dozen units of the spacing of x). The complex step has no subtraction, "
        "so below its truncation regime its error stays flat at a few units of u down to "
        "the smallest step (largest error/u over the flat regime: between "
        f"{_span(flat)} for the scalar functions, between {_span(flat_net)} for the "
        "network gradient, whose loss takes many more rounded operations), which is why it "
        "is the reference of choice wherever the function accepts complex input. "
        f"{_estimate_reading(laws)} "
        "Richardson has no truncation branch in the sweep: its error keeps falling as the "
        "starting step grows toward 1, because the extrapolation removes the truncation "
        "terms, and rises as u/h for a start that is too small; it pays with more "
        "evaluations (see method_comparison).")


def _widest_reading(laws: list[dict]) -> str:
    """A sentence on the most precise system's central differences, where the V spans
    a thousand decades (quoted from the table)."""
    widest = min((w for w in laws if w["method"] == "central2" and finite(w["log10_e_opt"])),
                 key=lambda w: w["log10_u"], default=None)
    if widest is None or widest["log10_u"] > -100:
        return ""
    return (f"The law holds as well at the widest precision, {widest['numbers']} (u = "
            f"{fmt_log10(widest['log10_u'])}), where the V spans "
            f"{-widest['log10_u']:.0f} decades and every value is far below the float "
            f"range: for {widest['problem']}, central-2's fitted optimum is E* = "
            f"{fmt_log10(widest['log10_e_opt'])} at h* = {fmt_log10(widest['log10_h_opt'])} "
            f"against the model's {fmt_log10(widest['log10_e_opt_model'])} at "
            f"{fmt_log10(widest['log10_h_opt_model'])} (E* ∝ u^(2/3)). ")


def _outliers(laws: list[dict]) -> str:
    """The curves whose rounding slope is off by more than 0.15, named."""
    off = [w for w in laws if finite(w["rounding_slope"]) and abs(w["rounding_slope"] + 1) > 0.15]
    if not off:
        return ""
    named = ", ".join(f"{w['problem']}/{w['numbers']}/{w['method']} "
                      f"({w['rounding_slope']:.2f} over {w['rounding_points']} steps)"
                      for w in off)
    return ("; off by more: " + named + " — short regimes, where a few rounding errors "
            "that happen to cancel or add tilt the line, and Richardson, whose rounding "
            "also depends on where its adaptive stopping ends")


def _estimate_reading(laws: list[dict]) -> str:
    """A sentence on the library's error estimates, naming the curves where they fail."""
    fractions = [w["estimate_bounds"] for w in laws if finite(w["estimate_bounds"])]
    gross = [w for w in laws if w["estimate_gross_misses"]]
    text = (f"The library's own error estimate bounds the measured error at a median "
            f"{100 * float(np.median(fractions)):.0f} % of the steps of a curve "
            f"(lowest {100 * min(fractions):.0f} %)." if fractions else "")
    if not gross:
        return text + " It never falls short a hundredfold."
    named = ", ".join(f"{w['problem']}/{w['numbers']}/{w['method']} "
                      f"({w['estimate_gross_misses']} of its steps)" for w in gross)
    return (text + " It falls short a hundredfold or more on " + named + ": there the "
            "returned value is wrong while reported as accurate, a defect of the library "
            "that these curves expose (see the spikes in the figures).")


def _median(values: list[float]) -> str:
    return f"{float(np.median(values)):.2f}" if values else "–"


def _span(values: list[float]) -> str:
    values = [v for v in values if finite(v)]
    if not values:
        return "–"
    return f"{output.fmt(min(values))} and {output.fmt(max(values))}"
