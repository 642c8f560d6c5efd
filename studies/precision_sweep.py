"""Precision sweep: the best reachable error of each method, and its step, against digits.

For mpf:10 … mpf:200 and decimal:10 … decimal:100 and each method, the step runs over a
geometric band of four decades centred on the model's optimum h* (see `studies.laws`;
for Richardson, initial steps 1 … 10⁻⁴; for the complex step, from √u down four decades,
where its truncation is below u). The minimum of the measured error over the band is the
*minimum reachable error*; its step the *measured h**. `exponents_table` fits
log10 E_min = a·log10 u + b per method and family; theory (the model's E* ∝ u^(p/(p+1))):
a = 1/2 for forward, 2/3 for central-2, 4/5 for central-4, 1 for the complex step; and
h* ∝ u^(1/(p+1)). The library's automatic step (``h=None``) is measured once per cell
beside the sweep.

Columns of ``results.csv`` (one row per problem, system, method and step):

``problem``
    ``exp`` (at x = 1), ``sin`` (at x = 0.75) or ``sigmoid`` (at x = 0.5).
``numbers``, ``family``, ``digits``, ``u``
    The number system, its family (``mpf`` or ``decimal``), significant digits and unit
    roundoff.
``method``
    ``forward`` (order 1), ``central2``, ``central4``, ``richardson``, ``complex_step``
    (mpf only: Decimal has no complex counterpart).
``choice``
    ``sweep`` (explicit step `h`) or ``auto`` (``h=None``: the library chose).
``h``, ``h_used``
    Requested step (NaN for ``auto``) and the step the library reports.
``error``, ``estimated_error``
    Measured relative error against the 260-digit reference, and the library's estimate.
``evaluations``
    Function evaluations of the call.
``note``
    The error message when the call raised.

Files: ``exponents.csv`` (fitted exponents beside theory), ``minimum.csv`` (per system and
method: E_min, measured h*, model E* and h*, the automatic step's error),
``min_error_vs_digits.png/.svg``.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

import numpy as np
from matplotlib.ticker import FixedLocator, NullLocator

from precision_nn.numbers import number_system
from studies import output
from studies.laws import METHODS, law, minimum
from studies.problems import estimate, exact, problem, problem_derivatives, relative_error
from studies.rows import has_complex

NAME = "precision_sweep"
TITLE = "Precision sweep: minimum reachable error and optimal step against digits"

PROBLEMS = ("exp", "sin", "sigmoid")
MPF_DIGITS = (10, 15, 20, 30, 40, 60, 80, 100, 150, 200)
DECIMAL_DIGITS = (10, 15, 20, 30, 40, 60, 80, 100)
LABELS = ("forward", "central2", "central4", "richardson", "complex_step")
PER_DECADE = 5
BAND = 2  # decades each side of the model's h*
DIGITS = {"mpf": MPF_DIGITS, "decimal": DECIMAL_DIGITS}
QUICK = {"problems": ("exp",), "digits": {"mpf": (10, 20, 40, 80), "decimal": (10, 20, 40, 80)},
         "labels": ("forward", "central2", "central4", "complex_step"), "per_decade": 4}
THEORY = {"forward": 1 / 2, "central2": 2 / 3, "central4": 4 / 5, "complex_step": 1.0}


def grid(quick: bool, *, digits: dict[str, tuple[int, ...]] | None = None) -> list[dict]:
    """One cell per problem, number system and method.

    Parameters
    ----------
    quick : bool
        The small grid of `QUICK`.
    digits : dict of str to tuple of int, optional
        Number-system family (a `number_system` spec prefix: ``"mpf"``, ``"decimal"``, and
        any family the registry knows, e.g. ``"mpfr"`` or ``"arb"``) to the digit counts
        to sweep; default `DIGITS` (or `QUICK`'s). This is where the sweep is extended,
        e.g. ``{**DIGITS, "mpf": (*MPF_DIGITS, 300, 500, 1000)}``; beyond about 250 digits
        the 260-digit references of `studies.problems` (``REFERENCE_DPS``) must be raised
        first, and the library's derivatives must give finite error bars there.
    """
    config = QUICK if quick else {"problems": PROBLEMS, "digits": DIGITS, "labels": LABELS,
                                  "per_decade": PER_DECADE}
    digits = config["digits"] if digits is None else digits
    for family, counts in digits.items():
        if not isinstance(family, str) or not all(isinstance(d, int) and d > 0
                                                  for d in counts):
            raise ValueError(f"`digits` maps a family name to positive digit counts, e.g. "
                             f"{{'mpf': (10, 20)}}; got {family!r}: {counts!r}.")
    systems = [number_system(f"{family}:{d}") for family, counts in digits.items()
               for d in counts]
    return [{"key": f"{name}/{ns.name}/{label}", "problem": name, "numbers": ns.name,
             "method": label, "per_decade": config["per_decade"]}
            for name in config["problems"] for ns in systems for label in config["labels"]
            if not (label == "complex_step" and not has_complex(ns.name))]


def band(label: str, derivatives: list[float], u: float, per_decade: int) -> list[float]:
    """The steps swept for one method and unit roundoff (see the module notes)."""
    model = law(label, derivatives, u)
    if model is None:  # Richardson: initial steps from 1 down four decades
        top = 1.0
    elif not model.R:  # complex step: where C·h² < u, i.e. below √(u/C)
        top = math.sqrt(u / model.C)
    else:
        top = model.h_opt * 10**BAND
    top = min(top, 1.0)
    return [top * 10.0 ** (-k / per_decade) for k in range(2 * BAND * per_decade + 1)]


def run_cell(cell: dict) -> list[dict]:
    """Sweep the band of steps, then one automatic-step call; one row per call."""
    p = problem(cell["problem"])
    reference = exact(p)
    ns = number_system(cell["numbers"])
    common = {"problem": cell["problem"], "numbers": ns.name,
              "family": ns.name.split(":")[0], "digits": ns.digits, "u": ns.unit_roundoff,
              "method": cell["method"]}
    steps = band(cell["method"], problem_derivatives(p), ns.unit_roundoff, cell["per_decade"])
    rows = [_call(p, reference, common, "sweep", h) for h in steps]
    rows.append(_call(p, reference, common, "auto", None))
    return rows


def _call(p, reference, common: dict, choice: str, h: float | None) -> dict:
    row = {**common, "choice": choice, "h": math.nan if h is None else h, "h_used": math.nan,
           "error": math.nan, "estimated_error": math.nan, "evaluations": 0, "note": ""}
    try:
        est = estimate(p, common["numbers"], common["method"], h=h)
    except (ValueError, ArithmeticError) as exc:
        row["note"] = str(exc).splitlines()[0][:200]
        return row
    scale = float(abs(reference))
    row.update(h_used=float(abs(complex(est.h))), error=relative_error(est.value, reference),
               estimated_error=float(est.error) / scale, evaluations=int(est.evaluations))
    return row


# -- analysis -------------------------------------------------------------------------------
def minimum_table(rows: list[dict]) -> list[dict]:
    """Per problem, system and method: measured E_min and h*, the model's, the auto step's."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for row in rows:
        groups[(row["problem"], row["numbers"], row["method"])].append(row)
    table = []
    for (name, numbers, label), group in groups.items():
        sweep = [r for r in group if r["choice"] == "sweep"]
        auto = next((r for r in group if r["choice"] == "auto"), {})
        h_opt, e_min = minimum([r["h_used"] for r in sweep], [r["error"] for r in sweep])
        first = group[0]
        model = law(label, problem_derivatives(problem(name)), first["u"])
        table.append({
            "problem": name, "numbers": numbers, "family": first["family"],
            "digits": first["digits"], "u": first["u"], "method": label,
            "e_min": e_min, "h_opt": h_opt,
            "e_min_model": model.e_opt if model else math.nan,
            "h_opt_model": model.h_opt if model else math.nan,
            "auto_error": auto.get("error", math.nan), "auto_h": auto.get("h_used", math.nan),
            "auto_evaluations": auto.get("evaluations", 0)})
    return table


def exponents_table(minima: list[dict]) -> list[dict]:
    """Least-squares exponents a in E_min ∝ u^a and b in h* ∝ u^b, beside theory."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for row in minima:
        groups[(row["problem"], row["family"], row["method"])].append(row)
    table = []
    for (name, family, label), group in groups.items():
        p = METHODS[label].p
        error_fit = _loglog_fit([r["u"] for r in group], [r["e_min"] for r in group])
        has_h = METHODS[label].weight_sum > 0 and p > 0
        h_fit = _loglog_fit([r["u"] for r in group], [r["h_opt"] for r in group]) \
            if has_h else math.nan
        theory = THEORY.get(label, math.nan)
        table.append({
            "problem": name, "family": family, "method": label, "systems": len(group),
            "error_exponent": error_fit, "error_theory": theory,
            "error_ratio": error_fit / theory if math.isfinite(theory) else math.nan,
            "h_exponent": h_fit, "h_theory": 1 / (p + 1) if has_h else math.nan})
    return table


def _loglog_fit(u: list[float], y: list[float]) -> float:
    u, y = np.asarray(u, float), np.asarray(y, float)
    keep = np.isfinite(y) & (y > 0)
    if keep.sum() < 3:
        return math.nan
    return float(np.polyfit(np.log10(u[keep]), np.log10(y[keep]), 1)[0])


# -- drawing --------------------------------------------------------------------------------
def render(rows: list[dict], out: Path) -> str:
    """The minimum-error figure, the exponent table and its reading."""
    minima = minimum_table(rows)
    exponents = exponents_table(minima)
    output.write_csv(minima, Path(out) / "minimum.csv")
    output.write_csv(exponents, Path(out) / "exponents.csv")
    parts = [_reading(exponents, minima)]
    for name in dict.fromkeys(r["problem"] for r in minima):
        png = _plot(name, [m for m in minima if m["problem"] == name], out)
        parts.append(f"![Minimum reachable error and its step against digits, "
                     f"{problem(name).formula}]({png})")
    columns = [("problem", "problem"), ("family", "family"), ("method", "method"),
               ("systems", "systems"), ("error_exponent", "E_min ∝ u^a: a fitted"),
               ("error_theory", "a theory"), ("error_ratio", "fitted/theory"),
               ("h_exponent", "h* ∝ u^b: b fitted"), ("h_theory", "b theory")]
    parts.append("Fitted exponents (least squares on log10 of the minima against log10 u):"
                 "\n\n" + output.markdown_table(exponents, columns))
    return "\n\n".join(parts)


def _plot(name: str, minima: list[dict], out: Path) -> str:
    fig, (ax_e, ax_r, ax_h) = output.figure(3, width=5.4, height=4.6)
    derivatives = problem_derivatives(problem(name))
    digits_grid = np.linspace(min(m["digits"] for m in minima),
                              max(m["digits"] for m in minima), 100)
    for label in dict.fromkeys(m["method"] for m in minima):
        color = output.METHOD_COLORS[label]
        for family, marker, fill in (("mpf", "o", color), ("decimal", "s", "none")):
            mine = sorted((m for m in minima if m["method"] == label and m["family"] == family),
                          key=lambda m: m["digits"])
            if not mine:
                continue
            d = [m["digits"] for m in mine]
            ax_e.semilogy(d, [m["e_min"] for m in mine], marker, color=color, mfc=fill,
                          label=f"{label} ({family})")
            ratio = [(m["digits"], m["e_min"] / m["e_min_model"]) for m in mine
                     if m["e_min"] > 0 and m["e_min_model"] > 0
                     and math.isfinite(m["e_min"] / m["e_min_model"])]
            if ratio:
                ax_r.semilogy(*zip(*ratio), marker + "-", color=color, mfc=fill, lw=0.8)
            if METHODS[label].weight_sum and METHODS[label].p:
                ax_h.semilogy(d, [m["h_opt"] for m in mine], marker, color=color, mfc=fill)
        _model_lines(ax_e, ax_h, label, derivatives, digits_grid, color)
    ax_e.set(xlabel="significant decimal digits of the number system",
             ylabel="minimum relative error over h (dimensionless)",
             title="Minimum reachable error")
    ax_r.axhline(1.0, color="k", lw=0.8, ls="--")
    ax_r.set(xlabel="significant decimal digits of the number system",
             ylabel="E_min / E_model (measured over theory)",
             title="Minimum error over the model's E*")
    ax_r.set_ylim(*_ratio_limits(ax_r))
    ax_h.set(xlabel="significant decimal digits of the number system",
             ylabel="step h* of the minimum (units of x)", title="Optimal step")
    ax_e.legend(fontsize=7, ncol=2)
    ax_h.plot([], [], "k--", lw=0.8, label="model E* ∝ u^(p/(p+1)), h* ∝ u^(1/(p+1))")
    ax_h.legend(fontsize=8)
    for ax in (ax_e, ax_r, ax_h):
        ax.grid(True, alpha=0.3)
    for ax in (ax_e, ax_h):
        _round_decade_ticks(ax)
    fig.suptitle(f"{problem(name).formula}: filled mpf, open decimal, dashed the model",
                 fontsize=11)
    return output.save_figure(fig, out, f"min_error_vs_digits_{name}")


def _round_decade_ticks(ax, most: int = 8) -> None:
    """Ticks at 10^k for k a multiple of a round stride (1, 2, 5, 10, 20, 25, 50, 100), so
    that a 200-decade axis reads 10⁻²⁰⁰, 10⁻¹⁷⁵, … rather than every 27th decade."""
    low, high = (math.log10(v) for v in ax.get_ylim())
    stride = next((s for s in (1, 2, 5, 10, 20, 25, 50, 100) if (high - low) / s <= most), 200)
    ks = range(math.ceil(low / stride) * stride, math.floor(high) + 1, stride)
    ax.yaxis.set_major_locator(FixedLocator([10.0 ** k for k in ks]))
    ax.yaxis.set_minor_locator(NullLocator())


def _ratio_limits(ax) -> tuple[float, float]:
    """A y-range for E_min/E_model symmetric about 1 in decades, at least 10⁻¹ … 10¹."""
    low, high = ax.get_ylim()
    span = max(1.0, abs(math.log10(low)), abs(math.log10(high)))
    return 10.0 ** -span, 10.0 ** span


def _model_lines(ax_e, ax_h, label, derivatives, digits_grid, color) -> None:
    """The model's E* and h* against digits (u = ½·10^(1−d), the decimal convention)."""
    models = [law(label, derivatives, 0.5 * 10.0 ** (1 - d)) for d in digits_grid]
    if models[0] is None:
        return
    ax_e.semilogy(digits_grid, [m.e_opt for m in models], "--", color=color, lw=0.8)
    if models[0].R:
        ax_h.semilogy(digits_grid, [m.h_opt for m in models], "--", color=color, lw=0.8)


def _reading(exponents: list[dict], minima: list[dict]) -> str:
    def quote(label: str) -> str:
        fits = [e["error_exponent"] for e in exponents if e["method"] == label
                and math.isfinite(e["error_exponent"])]
        if not fits:
            return f"{label}: –"
        return (f"{label} {min(fits):.3f} to {max(fits):.3f} ({len(fits)} fits over "
                f"functions and families; theory {THEORY.get(label, math.nan):.3f})")
    auto = [m["auto_error"] / m["e_min_model"] for m in minima
            if math.isfinite(m["auto_error"]) and math.isfinite(m["e_min_model"])
            and m["method"] != "complex_step"]
    auto_text = (
        "The library's automatic step (h=None) gives errors between "
        f"{output.fmt(min(auto))} and {output.fmt(max(auto))} times the model's optimum E* "
        f"(median {output.fmt(float(np.median(auto)))}, {len(auto)} cells): it finds the "
        "optimum without knowing f's derivatives (the smallest error of the sweep is lower "
        "still, being the luckiest of some twenty steps)." if auto else "")
    return (
        "**Reading.** Each digit of precision buys a fixed fraction of a digit of derivative "
        "accuracy, and that fraction is the method's p/(p+1): the fitted exponents of the "
        f"minimum reachable error against u are {quote('forward')}; {quote('central2')}; "
        f"{quote('central4')}; {quote('complex_step')}. Forward differences thus keep only "
        "half the digits of the arithmetic, central differences two thirds, and the complex "
        "step all of them; the optimal step shrinks as u^(1/(p+1)), the dashed model lines, "
        "whatever the family, because mpf and decimal of the same digits have nearly the same "
        f"u. {auto_text} Richardson extrapolation, not a fixed-order rule, reaches a few units "
        "of u at every precision from a large starting step.")
