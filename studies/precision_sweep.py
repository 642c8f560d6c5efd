"""Precision sweep: the best reachable error of each method, and its step, from 10 to 1000 digits.

For each number system and method, the step runs over a geometric band of four decades
centred on the model's optimum h* (see `studies.laws`; for Richardson, initial steps 1 …
10⁻⁴; for the complex step, from √(u/C) down four decades, where its truncation is below
u). The minimum of the measured error over the band is the *minimum reachable error*
E_min; its step the *measured h**. `exponents_table` fits log10 E_min = a·log10 u + b per
method and kind of arithmetic, with the slope's standard error; theory (the model's
E* ∝ u^(p/(p+1))): a = 1/2 for forward, 2/3 for central-2, 4/5 for central-4, 1 for the
complex step; and h* ∝ u^(1/(p+1)). The library's automatic step (``h=None``) is measured
once per cell beside the sweep.

The systems (`DIGITS`) span 10 to 1000 digits, 990 decades of u:

* binary: ``mpf:N`` (mpmath) to 200 digits and ``mpfr:N`` (gmpy2's MPFR) from 300. Both
  round to the same 2^-p correctly, so they give the same numbers (tested), and one
  exponent is fitted through both (`studies.rows.arithmetic` asks each system its radix
  and whether it is a ball system). MPFR is the faster one there where it matters:
  measured once (sigmoid at 1000 digits, 22 steps, a loaded 2-core machine), a
  Richardson cell took 10 s in mpfr against 20 s in mpf (7 s in arb), while the
  difference-quotient cells cost about 0.2 s in each;
* binary balls: ``arb:N`` (python-flint), whose values are the balls' midpoints;
* decimal: ``decimal:N`` (Python's Decimal), to 1000 digits.

Every quantity that can leave the float range is recorded as its log10 (`studies.decades`):
at 1000 digits u ≈ 10⁻¹⁰⁰⁰ and E_min ≈ 10⁻⁶⁶⁷ are 0 as floats, −1000.0 and −666.7 as
log10. The reference is mpmath at `studies.problems.REFERENCE_DPS` = 2·1000 + 20 digits
(the rule of `studies.problems.reference_dps`), so reference error never shows.

Columns of ``results.csv`` (one row per problem, system, method and step):

``problem``
    ``exp`` (at x = 1), ``sin`` (at x = 0.75) or ``sigmoid`` (at x = 0.5).
``numbers``, ``family``, ``arithmetic``, ``digits``, ``log10_u``
    The number system, its family (the spec's prefix), its kind of arithmetic
    (``binary``, ``binary balls``, ``decimal``), significant digits and log10 of its
    unit roundoff.
``method``
    ``forward`` (order 1), ``central2``, ``central4``, ``richardson``, ``complex_step``
    (not for Decimal, which has no complex counterpart).
``choice``
    ``sweep`` (explicit step `h`) or ``auto`` (``h=None``: the library chose).
``log10_h``, ``log10_h_used``
    log10 of the requested step (NaN for ``auto``) and of the step the library reports.
``log10_error``, ``log10_estimated_error``
    log10 of the measured relative error against the reference (−inf: exact), and of the
    library's estimate of it.
``evaluations``
    Function evaluations of the call.
``note``
    The error message when the call raised.

Files: ``exponents.csv`` (fitted exponents ± standard error beside theory),
``minimum.csv`` (per system and method, as log10: E_min, measured h*, model E* and h*, the
automatic step's error), ``min_error_vs_digits_<problem>.png/.svg``.
"""

from __future__ import annotations

import importlib.util
import logging
import math
from collections import defaultdict
from pathlib import Path

import mpmath

from precision_nn.numbers import FAMILIES, number_system
from studies import output
from studies.decades import fmt_log10, line_fit, log10_of
from studies.laws import METHODS, optimum_log10
from studies.precision_figure import plot_minima
from studies.precision_reading import reading
from studies.problems import (
    MAX_DIGITS,
    REFERENCE_DPS,
    estimate,
    exact,
    log10_relative_error,
    problem,
    problem_derivatives,
)
from studies.rows import arithmetic, has_complex

NAME = "precision_sweep"
TITLE = "Precision sweep: minimum reachable error and optimal step from 10 to 1000 digits"
LOG = logging.getLogger(__name__)

PROBLEMS = ("exp", "sin", "sigmoid")
MPF_DIGITS = (10, 15, 20, 30, 40, 60, 80, 100, 150, 200)
MPFR_DIGITS = (300, 400, 500, 700, 1000)
ARB_DIGITS = (20, 50, 100, 300, 1000)
DECIMAL_DIGITS = (10, 15, 20, 30, 40, 60, 80, 100, 200, 300, 500, 1000)
LABELS = ("forward", "central2", "central4", "richardson", "complex_step")
PER_DECADE = 5
# Richardson's minimum is not fitted, and one call at 1000 digits costs ~1 s (it
# extrapolates through ~100 evaluations): 2 initial steps per decade suffice to show it
RICHARDSON_PER_DECADE = 2
BAND = 2  # decades each side of the model's h*
DIGITS = {"mpf": MPF_DIGITS, "mpfr": MPFR_DIGITS, "arb": ARB_DIGITS,
          "decimal": DECIMAL_DIGITS}
QUICK = {"problems": ("exp",),
         "digits": {"mpf": (10, 20, 40, 80), "mpfr": (300, 1000),
                    "decimal": (10, 20, 40, 80)},
         "labels": ("forward", "central2", "central4", "complex_step"), "per_decade": 4}
THEORY = {"forward": 1 / 2, "central2": 2 / 3, "central4": 4 / 5, "complex_step": 1.0}
LOG10_2 = math.log10(2)


def grid(quick: bool, *, digits: dict[str, tuple[int, ...]] | None = None) -> list[dict]:
    """One cell per problem, number system and method.

    Parameters
    ----------
    quick : bool
        The small grid of `QUICK`.
    digits : dict of str to tuple of int, optional
        Number-system family (a `number_system` spec prefix: ``"mpf"``, ``"mpfr"``,
        ``"arb"``, ``"decimal"``, any family the registry knows) to the digit counts to
        sweep, each at most `studies.problems.MAX_DIGITS` (the references carry
        `studies.problems.reference_dps` of it); default `DIGITS` (or `QUICK`'s). A family
        whose optional package is missing is left out with a warning naming the package.
    """
    config = QUICK if quick else {"problems": PROBLEMS, "digits": DIGITS, "labels": LABELS,
                                  "per_decade": PER_DECADE}
    digits = config["digits"] if digits is None else digits
    for family, counts in digits.items():
        if not isinstance(family, str) or not all(
                isinstance(d, int) and 0 < d <= MAX_DIGITS for d in counts):
            raise ValueError(
                f"`digits` maps a family name to digit counts from 1 to {MAX_DIGITS} (the "
                f"references carry {REFERENCE_DPS} digits; raise studies.problems.MAX_DIGITS"
                f" for more), e.g. {{'mpf': (10, 20)}}; got {family!r}: {counts!r}.")
    systems = [ns for family, counts in digits.items() for ns in _systems(family, counts)]
    return [_cell(name, ns, label, config["per_decade"])
            for name in config["problems"] for ns in systems for label in config["labels"]
            if not (label == "complex_step" and not has_complex(ns.name))]


def _systems(family: str, counts: tuple[int, ...]) -> list:
    """The systems of one family; none, with a warning, when the registry says the
    family's optional package is not installed (an unknown family still raises)."""
    extra = FAMILIES[family].extra if family in FAMILIES else None
    if extra is not None and importlib.util.find_spec(extra.module) is None:
        LOG.warning("precision_sweep leaves out %s: it needs the optional package %s "
                    "(pip install %s, or the precision_nn extra %s)", family, extra.package,
                    extra.package, extra.extra)
        return []
    return [number_system(f"{family}:{d}") for d in counts]


def _cell(name: str, ns, label: str, per_decade: int) -> dict:
    if label == "richardson":
        per_decade = min(per_decade, RICHARDSON_PER_DECADE)
    steps = 2 * BAND * per_decade + 2
    # relative run time, for the progress estimate and the order of submission: calls
    # grow slowly with digits, Richardson's (~100 evaluations at 1000 digits) fast
    weight = 1 + ns.digits / 300
    if label == "richardson":
        weight *= 10 * (1 + ns.digits / 150)
    return {"key": f"{name}/{ns.name}/{label}", "problem": name, "numbers": ns.name,
            "method": label, "per_decade": per_decade, "cost": round(steps * weight, 1)}


def band_log10(label: str, derivatives: list[float], log10_u: float,
               per_decade: int) -> list[float]:
    """log10 of the steps swept for one method and unit roundoff (see the module notes)."""
    if METHODS[label].p == 0:  # Richardson: initial steps from 1 down four decades
        top = 0.0
    elif METHODS[label].weight_sum == 0:  # complex step: where C·h² < u, i.e. below √(u/C)
        spec = METHODS[label]
        log_c = math.log10(float(spec.taylor) * derivatives[spec.p + 1] / derivatives[1])
        top = (log10_u - log_c) / 2
    else:
        top = optimum_log10(label, derivatives, log10_u)[0] + BAND
    top = min(top, 0.0)
    return [top - k / per_decade for k in range(2 * BAND * per_decade + 1)]


def run_cell(cell: dict) -> list[dict]:
    """Sweep the band of steps, then one automatic-step call; one row per call."""
    p = problem(cell["problem"])
    reference = exact(p)
    ns = number_system(cell["numbers"])
    log10_u = ns.log2_unit_roundoff * LOG10_2
    common = {"problem": cell["problem"], "numbers": ns.name,
              "family": ns.name.split(":")[0], "arithmetic": arithmetic(ns.name),
              "digits": ns.digits, "log10_u": log10_u, "method": cell["method"]}
    steps = band_log10(cell["method"], problem_derivatives(p), log10_u, cell["per_decade"])
    rows = [_call(p, reference, common, ns, log10_h) for log10_h in steps]
    rows.append(_call(p, reference, common, ns, None))
    return rows


def _call(p, reference, common: dict, ns, log10_h: float | None) -> dict:
    row = {**common, "choice": "auto" if log10_h is None else "sweep",
           "log10_h": math.nan if log10_h is None else log10_h, "log10_h_used": math.nan,
           "log10_error": math.nan, "log10_estimated_error": math.nan, "evaluations": 0,
           "note": ""}
    # the step in the system's error type (a long double beyond ~100 digits), where
    # 10^-500 is representable; the library realises it as (x + h) − x
    h = None if log10_h is None else ns.error_dtype.type(10) ** ns.error_dtype.type(log10_h)
    try:
        est = estimate(p, common["numbers"], common["method"], h=h)
    except (ValueError, ArithmeticError) as exc:
        row["note"] = str(exc).splitlines()[0][:200]
        return row
    with mpmath.workdps(REFERENCE_DPS):
        log10_scale = float(mpmath.log10(abs(reference)))
    row.update(log10_h_used=log10_of(est.h),
               log10_error=log10_relative_error(est.value, reference),
               log10_estimated_error=log10_of(est.error) - log10_scale,
               evaluations=int(est.evaluations))
    return row


# -- analysis -------------------------------------------------------------------------------
def minimum_table(rows: list[dict]) -> list[dict]:
    """Per problem, system and method: measured E_min and h*, the model's, the auto step's
    (all as log10)."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for row in rows:
        groups[(row["problem"], row["numbers"], row["method"])].append(row)
    table = []
    for (name, numbers, label), group in groups.items():
        sweep = [r for r in group if r["choice"] == "sweep"
                 and math.isfinite(r["log10_error"])]
        best = min(sweep, key=lambda r: r["log10_error"], default={})
        auto = next((r for r in group if r["choice"] == "auto"), {})
        first = group[0]
        model = optimum_log10(label, problem_derivatives(problem(name)), first["log10_u"])
        table.append({
            "problem": name, "numbers": numbers, "family": first["family"],
            "arithmetic": first["arithmetic"], "digits": first["digits"],
            "log10_u": first["log10_u"], "method": label,
            "log10_e_min": best.get("log10_error", math.nan),
            "log10_h_opt": best.get("log10_h_used", math.nan),
            "log10_e_model": model[1] if model else math.nan,
            "log10_h_model": model[0] if model else math.nan,
            "log10_auto_error": auto.get("log10_error", math.nan),
            "log10_auto_h": auto.get("log10_h_used", math.nan),
            "auto_evaluations": auto.get("evaluations", 0)})
    return table


def exponents_table(minima: list[dict]) -> list[dict]:
    """Least-squares exponents a in E_min ∝ u^a and b in h* ∝ u^b, with their standard
    errors, per problem, kind of arithmetic and method, beside theory."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for row in minima:
        groups[(row["problem"], row["arithmetic"], row["method"])].append(row)
    table = []
    for (name, kind, label), group in groups.items():
        p = METHODS[label].p
        log_u = [r["log10_u"] for r in group]
        error_fit = line_fit(log_u, [r["log10_e_min"] for r in group])
        has_h = METHODS[label].weight_sum > 0 and p > 0
        h_fit = line_fit(log_u, [r["log10_h_opt"] for r in group]) if has_h else None
        theory = THEORY.get(label, math.nan)
        digits = sorted(r["digits"] for r in group)
        table.append({
            "problem": name, "arithmetic": kind,
            "families": "+".join(dict.fromkeys(r["family"] for r in sorted(
                group, key=lambda r: r["digits"]))),
            "digits": f"{digits[0]}–{digits[-1]}", "method": label,
            "systems": error_fit.points,
            "error_exponent": error_fit.slope, "error_exponent_se": error_fit.stderr,
            "error_theory": theory, "error_ratio": error_fit.slope / theory,
            "h_exponent": h_fit.slope if h_fit else math.nan,
            "h_exponent_se": h_fit.stderr if h_fit else math.nan,
            "h_theory": 1 / (p + 1) if has_h else math.nan})
    return table


# -- drawing --------------------------------------------------------------------------------
def render(rows: list[dict], out: Path) -> str:
    """The minimum-error figures, the exponent table, the largest systems' minima and
    their reading."""
    minima = minimum_table(rows)
    exponents = exponents_table(minima)
    output.write_csv(minima, Path(out) / "minimum.csv")
    output.write_csv(exponents, Path(out) / "exponents.csv")
    parts = [reading(exponents, minima, THEORY)]
    for name in dict.fromkeys(r["problem"] for r in minima):
        png = plot_minima(name, [m for m in minima if m["problem"] == name], out)
        parts.append(f"![Minimum reachable error, its ratio to the model and its step "
                     f"against digits, {problem(name).formula}]({png})")
    shown = [{**e, "a": _pm(e["error_exponent"], e["error_exponent_se"]),
              "b": _pm(e["h_exponent"], e["h_exponent_se"])} for e in exponents]
    columns = [("problem", "problem"), ("arithmetic", "arithmetic"),
               ("families", "systems"), ("digits", "digits"), ("method", "method"),
               ("a", "E_min ∝ u^a: a ± s.e."), ("error_theory", "a theory"),
               ("error_ratio", "fitted/theory"), ("b", "h* ∝ u^b: b ± s.e."),
               ("h_theory", "b theory")]
    parts.append("Fitted exponents (least squares on log10 of the minima against log10 u; "
                 "± one standard error of the slope, from the scatter about the line):"
                 "\n\n" + output.markdown_table(shown, columns))
    widest = _widest(minima)
    if widest:
        parts.append("For exp(x) at x = 1, the minima of the most precise system of each "
                     "kind of arithmetic (values, not logs; E* and h* are the model's):\n\n" + output.markdown_table(
                         widest, [("problem", "problem"), ("numbers", "system"),
                                  ("method", "method"), ("u", "u"), ("e_min", "E_min"),
                                  ("e_model", "model E*"), ("h_opt", "measured h*"),
                                  ("h_model", "model h*")]))
    return "\n\n".join(parts)


def _pm(value: float, stderr: float) -> str:
    if not math.isfinite(value):
        return "–"
    return f"{value:.3f} ± {stderr:.1g}" if math.isfinite(stderr) else f"{value:.3f}"


def _widest(minima: list[dict]) -> list[dict]:
    """The rows of the most precise system of each kind of arithmetic, formatted."""
    top: dict[str, int] = {}
    for m in minima:
        top[m["arithmetic"]] = max(top.get(m["arithmetic"], 0), m["digits"])
    return [{**m, "u": fmt_log10(m["log10_u"]), "e_min": fmt_log10(m["log10_e_min"]),
             "e_model": fmt_log10(m["log10_e_model"]), "h_opt": fmt_log10(m["log10_h_opt"]),
             "h_model": fmt_log10(m["log10_h_model"])}
            for m in minima if m["digits"] == top[m["arithmetic"]] and m["problem"] == "exp"]
