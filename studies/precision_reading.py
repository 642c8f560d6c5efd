"""The precision sweep's reading: one paragraph from its exponents and minima (log10 rows)."""

from __future__ import annotations

import math

import numpy as np

from studies import output
from studies.decades import fmt_log10
from studies.problems import REFERENCE_DPS

__all__ = ["reading"]

SPLIT = 200  # digits: the sweep before the 1000-digit extension, against beyond
# decades between the medians of E_min/E_model below and above SPLIT that count as a
# drift: the minima scatter over ~2 decades (the luck of the step grid), their medians
# over dozens of cells by a few tenths
DRIFT = 0.5


def reading(exponents: list[dict], minima: list[dict], theory: dict[str, float]) -> str:
    """The **Reading.** paragraph (every figure quoted is computed from the rows)."""
    if not minima:
        return "**Reading.** No cell finished: nothing to read."
    low, high = min(m["digits"] for m in minima), max(m["digits"] for m in minima)
    u_low = max(m["log10_u"] for m in minima)
    u_high = min(m["log10_u"] for m in minima)
    fits = "; ".join(_quote(exponents, label, theory[label]) for label in theory)
    errors = [e["error_exponent_se"] for e in exponents
              if math.isfinite(e["error_exponent_se"]) and e["method"] in theory]
    return " ".join(part for part in (
        (f"**Reading.** From {low} to {high} digits (u from {fmt_log10(u_low)} down to "
         f"{fmt_log10(u_high)}, {u_low - u_high:.0f} decades), each digit of precision buys "
         "a fixed fraction of a digit of derivative accuracy, and that fraction is the "
         "method's p/(p+1). The exponents a of E_min ∝ u^a, fitted by least squares over "
         "all the digits of each function and kind of arithmetic, are: "
         f"{fits}{_largest_error(errors)}. Forward differences thus keep half the digits of "
         "the arithmetic, central differences two thirds, and the complex step all of "
         f"them, at {high} digits as at {low}; the optimal step shrinks as u^(1/(p+1)), the "
         "dashed model lines, in binary, ball and decimal arithmetic alike (binary runs in "
         "mpf:N, and beyond 200 digits in mpfr:N, which rounds alike and is faster)."),
        _ratio_sentence(minima),
        _auto_sentence(minima),
        _richardson_sentence(minima, exponents),
        ("Errors, steps and u are recorded as their log10 (floats underflow below 1e-308), "
        f"and the reference carries {REFERENCE_DPS} digits, twice the largest precision "
        "plus 20, so its own error is invisible.")) if part)


def _quote(exponents: list[dict], label: str, expected: float) -> str:
    fits = [e["error_exponent"] for e in exponents
            if e["method"] == label and math.isfinite(e["error_exponent"])]
    if not fits:
        return f"{label} –"
    span = f"{fits[0]:.3f}" if len(fits) == 1 else f"{min(fits):.3f} to {max(fits):.3f}"
    count = "1 fit" if len(fits) == 1 else f"{len(fits)} fits"
    return f"{label} {span} ({count}; theory {expected:.3f})"


def _largest_error(errors: list[float]) -> str:
    if not errors:
        return ""
    return (f", each with a standard error of at most {max(errors):.1g} (the scatter of "
            "the minima about the fitted line)")


def _ratio_sentence(minima: list[dict]) -> str:
    """How far E_min sits from the model's E*, below and above `SPLIT` digits."""
    def ratios(keep) -> list[float]:
        return [m["log10_e_min"] - m["log10_e_model"] for m in minima
                if keep(m["digits"]) and m["method"] != "complex_step"
                and math.isfinite(m["log10_e_min"] - m["log10_e_model"])]

    below, above = ratios(lambda d: d <= SPLIT), ratios(lambda d: d > SPLIT)
    if not below or not above:
        return ""
    drift = float(np.median(above) - np.median(below))
    verdict = (f"with no drift: the model holds at {max(m['digits'] for m in minima)} digits"
               if abs(drift) <= DRIFT else
               f"a drift of {drift:+.1f} decades in the median: the model's constants do "
               "not carry over to the most digits")
    return (
        "The middle panel shows what the straight lines hide: over the model's E*, the "
        f"measured E_min of the difference quotients lies between {_ten(min(below))} and "
        f"{_ten(max(below))} (median {_ten(float(np.median(below)))}) up to {SPLIT} digits "
        f"and between {_ten(min(above))} and {_ten(max(above))} (median "
        f"{_ten(float(np.median(above)))}) beyond, {verdict}. It sits below 1 because the model's rounding term is an upper estimate "
        "(every value off by a full u, all in the worst direction) and the smallest error "
        "over the band's 17 to 21 steps is a lucky one.")


def _auto_sentence(minima: list[dict]) -> str:
    auto = [m["log10_auto_error"] - m["log10_e_model"] for m in minima
            if math.isfinite(m["log10_auto_error"] - m["log10_e_model"])
            and m["method"] != "complex_step"]
    if not auto:
        return ""
    return ("The library's automatic step (h=None) gives errors between "
            f"{_ten(min(auto))} and {_ten(max(auto))} times the model's optimum E* (median "
            f"{_ten(float(np.median(auto)))}, {len(auto)} cells): it finds the optimum "
            "without knowing f's derivatives.")


def _richardson_sentence(minima: list[dict], exponents: list[dict]) -> str:
    """Richardson's best error in units of u at the fewest and the most digits."""
    rich = [m for m in minima if m["method"] == "richardson"
            and math.isfinite(m["log10_e_min"])]
    fits = [e["error_exponent"] for e in exponents if e["method"] == "richardson"
            and math.isfinite(e["error_exponent"])]
    if not rich or not fits:
        return ""
    low, high = min(m["digits"] for m in rich), max(m["digits"] for m in rich)

    def units(digits: int) -> str:
        return _ten(float(np.median([m["log10_e_min"] - m["log10_u"] for m in rich
                                     if m["digits"] == digits])))

    return ("Richardson extrapolation has no single order, so no model line: Ridders' "
            "stopping ends its tableau once higher columns start to get worse. Its best "
            f"error over first steps 1 … 10⁻⁴ grows from {units(low)}·u at {low} digits to "
            f"{units(high)}·u at {high} (medians over functions and arithmetic; fitted "
            f"exponents {min(fits):.3f} to {max(fits):.3f}): it keeps all but about "
            f"{100 * (1 - float(np.median(fits))):.1f} % of the digits.")


def _ten(log10_value: float) -> str:
    """A ratio given by its log10, as a plain number when moderate (0.03, 4.1, 2e+15)."""
    return output.fmt(10.0 ** log10_value, 2) if abs(log10_value) < 300 \
        else fmt_log10(log10_value)
