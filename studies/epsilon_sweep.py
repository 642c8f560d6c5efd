"""Epsilon sweep: the error of each derivative method against its step h, per number system.

For every problem (scalar functions with closed-form derivatives, and the gradient of an
MLP loss), number system and method, the step h runs down a geometric grid from 1 to a
hundredth of the unit roundoff u. Each point is one call of the library's `derivative`
(scalar) or `gradient` (network) with that explicit h, and its error is measured against
a reference at `studies.problems.REFERENCE_DPS` digits. `laws_table` then fits the
truncation slope (expected p) and the rounding slope (expected −1) in the regimes chosen
as described in `studies.laws`, and sets the measured optimum beside the model's.

Columns of ``results.csv`` (one row per problem, number system, method and step):

``problem``
    ``exp``, ``sin``, ``sigmoid`` (scalar, at the point given in `studies.problems`) or
    ``mlp`` (the gradient of a 3-4-2 sigmoid network's cross-entropy loss).
``numbers``
    Number-system spec the derivative is computed in.
``method``
    ``forward`` (order 1), ``central2``, ``central4``, ``richardson``, ``complex_step``.
``u``
    Unit roundoff of the system.
``h``
    The requested step.
``h_used``
    The step the library reports it used (Estimate.h; the median over coordinates for
    the network).
``error``
    Relative error ‖D − f'‖/‖f'‖ (2-norm over coordinates for the network); for a scalar
    function the root mean square of the relative errors at the `POINTS` points
    x0 + k/64 (k = 0…3, all exact in float16), so that one lucky cancellation of rounding
    errors does not make a dip; NaN when the call raised.
``estimated_error``
    The library's own error estimate, relative in the same norm (RMS likewise).
``evaluations``
    Function evaluations of one call (mean over the points).
``note``
    The error message when the call raised (e.g. a step that vanishes next to x).

Files: ``fitted_laws.csv`` (one row per problem, system and method: fitted slopes, optima,
model values), ``error_vs_h_<problem>.png/.svg``.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

import numpy as np
from matplotlib.ticker import LogLocator

from precision_nn.numbers import number_system
from studies import output
from studies.laws import DOMINANCE, METHODS, fit_slope, fitted_optimum, law, minimum, regime_masks
from studies.problems import estimate, exact, problem, problem_derivatives, relative_error
from studies.rows import finite, has_complex, rows_u

NAME = "epsilon_sweep"
TITLE = "Epsilon sweep: error against step size, truncation against rounding"
SEED = 0  # seed of the network problem

PROBLEMS = ("exp", "sin", "sigmoid", "mlp")
NUMBERS = ("float16", "float32", "float64", "mpf:30", "mpf:60")
LABELS = ("forward", "central2", "central4", "richardson", "complex_step")
PER_DECADE = {"scalar": 6, "mlp": 3}
MLP_POINTS = 40  # a network gradient in mpmath costs up to ~1 s a step: cap the steps
QUICK = {"problems": ("exp", "mlp"), "numbers": ("float32", "float64", "mpf:30"),
         "labels": ("forward", "central2", "central4", "complex_step"),
         "per_decade": {"scalar": 6, "mlp": 2}}
BELOW_U = 100  # the sweep ends at u / BELOW_U: "well below u"
POINTS = 4  # scalar problems: errors are RMS over x0 + k/64, k = 0..POINTS-1


def steps(u: float, per_decade: int, max_points: int | None = None) -> list[float]:
    """Geometric steps from 1 down to u/`BELOW_U`: `per_decade` a decade, or fewer, evenly
    spread, when that would exceed `max_points` steps."""
    decades = math.log10(BELOW_U / u)
    count = math.ceil(per_decade * decades)
    if max_points is not None:
        count = min(count, max_points)
    return [10.0 ** (-decades * k / count) for k in range(count + 1)]


def _supported(numbers: str, label: str) -> bool:
    """The complex step needs a complex counterpart (float16 and Decimal have none)."""
    return label != "complex_step" or has_complex(numbers)


def grid(quick: bool) -> list[dict]:
    """One cell per problem, number system and method; each sweeps all steps."""
    config = QUICK if quick else {"problems": PROBLEMS, "numbers": NUMBERS, "labels": LABELS,
                                  "per_decade": PER_DECADE}
    cells = []
    for name in config["problems"]:
        kind = "mlp" if name == "mlp" else "scalar"
        for numbers in config["numbers"]:
            for label in config["labels"]:
                if not _supported(numbers, label) or (quick and kind == "mlp"
                                                      and numbers != "float64"):
                    continue
                cell = {"key": f"{name}/{numbers}/{label}", "problem": name,
                        "numbers": numbers, "method": label, "seed": SEED,
                        "per_decade": config["per_decade"][kind]}
                cells.append({**cell, "cost": _cost(cell)})
    return cells


# Measured seconds per step (2-core laptop-class machine): a network gradient in mpmath
# costs ~0.2 s, in IEEE floats and for scalars a few ms; Richardson about twice central.
_STEP_SECONDS = {("mlp", "mp"): 0.2, ("mlp", "ieee"): 0.002, ("scalar", "mp"): 0.0025,
                 ("scalar", "ieee"): 0.003}
_METHOD_FACTOR = {"richardson": 2.0, "central4": 1.4, "forward": 0.7}


def _cost(cell: dict) -> float:
    """Expected seconds of a cell (for the runner's scheduling and time-left estimate)."""
    kind = "mlp" if cell["problem"] == "mlp" else "scalar"
    family = "mp" if cell["numbers"].startswith(("mp", "dec")) else "ieee"
    u = number_system(cell["numbers"]).unit_roundoff
    n = len(steps(u, cell["per_decade"], MLP_POINTS if kind == "mlp" else None))
    points = 1 if kind == "mlp" else POINTS
    return round(n * points * _STEP_SECONDS[kind, family]
                 * _METHOD_FACTOR.get(cell["method"], 1.0), 3)


def run_cell(cell: dict) -> list[dict]:
    """Sweep h for one problem, system and method; one row per step."""
    p = problem(cell["problem"], seed=cell["seed"])
    points = [p] if cell["problem"] == "mlp" else [p.shifted(k) for k in range(POINTS)]
    references = [exact(q) for q in points]
    u = number_system(cell["numbers"]).unit_roundoff
    rows = []
    cap = MLP_POINTS if cell["problem"] == "mlp" else None
    for h in steps(u, cell["per_decade"], cap):
        row = {"problem": cell["problem"], "numbers": cell["numbers"], "method": cell["method"],
               "u": u, "h": h, "h_used": math.nan, "error": math.nan,
               "estimated_error": math.nan, "evaluations": 0, "note": ""}
        measured = []
        for q, reference in zip(points, references):
            try:
                est = estimate(q, cell["numbers"], cell["method"], h=h)
            except (ValueError, ArithmeticError) as exc:  # e.g. x + h == x: recorded
                row["note"] = str(exc).splitlines()[0][:200]
                break
            measured.append(_measure(est, reference))
        else:
            row.update(_combine(measured))
        rows.append(row)
    return rows


def _measure(est, reference) -> dict:
    """Error, the library's estimate of it (both relative), step and cost of an Estimate."""
    scale = float(np.linalg.norm(np.asarray([float(abs(r)) for r in np.ravel(
        np.asarray(reference, dtype=object))])))
    estimated = np.asarray(est.error, dtype=float)
    return {"h_used": float(np.median(np.abs(np.asarray(est.h, dtype=complex).real))),
            "error": relative_error(est.value, reference),
            "estimated_error": float(np.linalg.norm(np.ravel(estimated))) / scale,
            "evaluations": int(est.evaluations)}


def _combine(measured: list[dict]) -> dict:
    """Root-mean-square errors over the points (rounding errors are a random variable: its
    RMS, not one lucky or unlucky draw, is what the model u/h describes)."""
    def rms(key: str) -> float:
        return float(np.sqrt(np.mean([m[key] ** 2 for m in measured])))
    return {"h_used": float(np.median([m["h_used"] for m in measured])),
            "error": rms("error"), "estimated_error": rms("estimated_error"),
            "evaluations": round(float(np.mean([m["evaluations"] for m in measured])))}


# -- analysis -------------------------------------------------------------------------------
def laws_table(rows: list[dict]) -> list[dict]:
    """Fitted slopes and optima beside the model, one dict per problem, system and method.

    Keys: problem, numbers, method, u, p, truncation_slope (fitted), truncation_points,
    rounding_slope, rounding_points, rounding_theory, h_opt and e_opt (the optimum of the
    two fitted laws, `studies.laws.fitted_optimum`), h_opt_model and e_opt_model (the
    model's, exact constants), h_best and e_best (the smallest single measurement),
    flat_over_u (complex step: largest error/u where C·h² < u/30), estimate_bounds (the
    fraction of steps with error below 1 whose error the library's estimate bounds),
    estimate_gross_misses (steps whose error exceeds the estimate a hundredfold).
    """
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for row in rows:
        groups[(row["problem"], row["numbers"], row["method"])].append(row)
    return [_laws_of(key, group) for key, group in groups.items()]


def _laws_of(key: tuple, group: list[dict]) -> dict:
    name, numbers, label = key
    u = group[0]["u"]
    h = np.array([r["h_used"] if finite(r["h_used"]) else r["h"] for r in group], float)
    err = np.array([r["error"] if finite(r["error"]) else math.nan for r in group], float)
    derivatives = problem_derivatives(problem(name))
    model = law(label, derivatives, u) if derivatives is not None else None
    truncation, rounding = regime_masks(h, err, model=model, u=u, x_scale=1.0,
                                        cancellation=METHODS[label].weight_sum > 0)
    if not METHODS[label].p:
        truncation = np.zeros_like(truncation)  # Richardson: no single truncation order
    trunc_fit, round_fit = fit_slope(h, err, truncation), fit_slope(h, err, rounding)
    bounded, gross = _estimate_check(group)
    h_best, e_best = minimum(h, err)
    h_fit, e_fit = fitted_optimum(trunc_fit, round_fit)
    p = METHODS[label].p
    return {
        "problem": name, "numbers": numbers, "method": label, "u": u,
        "p": p if p else math.nan,
        "truncation_slope": trunc_fit.slope, "truncation_points": trunc_fit.points,
        "rounding_slope": round_fit.slope, "rounding_points": round_fit.points,
        "rounding_theory": -1.0 if METHODS[label].weight_sum else math.nan,
        "h_opt": h_fit, "h_opt_model": model.h_opt if model else math.nan,
        "e_opt": e_fit, "e_opt_model": model.e_opt if model else math.nan,
        "h_best": h_best, "e_best": e_best,
        "flat_over_u": _flat_level(h, err, model, u) if label == "complex_step" else math.nan,
        "estimate_bounds": bounded, "estimate_gross_misses": gross,
    }


def _estimate_check(group: list[dict]) -> tuple[float, int]:
    """How well the library's own error estimate covers the measured error.

    Returns the fraction of steps where error <= estimated error, and the number of steps
    where the error exceeds the estimate a hundredfold (a wrong value reported as good).
    Steps whose relative error is 1 or more (every digit lost) are left out.
    """
    pairs = [(r["error"], r["estimated_error"]) for r in group
             if finite(r["error"]) and finite(r["estimated_error"]) and r["error"] < 1]
    gross = sum(1 for r in group if finite(r["error"]) and finite(r["estimated_error"])
                and r["error"] > 100 * r["estimated_error"])
    if not pairs:
        return math.nan, gross
    return sum(e <= est for e, est in pairs) / len(pairs), gross


def _flat_level(h, err, model, u) -> float:
    """Largest error / u over the steps where the model's truncation is below u/30."""
    if model is None:
        flat = h <= np.nanmin(h) * 1e6  # network: the six smallest decades of the sweep
    else:
        flat = model.truncation(h) <= u / DOMINANCE
    values = err[flat & np.isfinite(err)]
    return float(values.max() / u) if values.size else math.nan



# -- drawing --------------------------------------------------------------------------------
def render(rows: list[dict], out: Path) -> str:
    """Figures per problem, the fitted-laws table and its reading."""
    laws = laws_table(rows)
    output.write_csv(laws, Path(out) / "fitted_laws.csv")
    by_problem: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        by_problem[row["problem"]].append(row)
    parts = [_reading(laws)]
    for name, group in by_problem.items():
        png = _plot_problem(name, group, [law_ for law_ in laws if law_["problem"] == name], out)
        parts.append(f"![Relative error against step h for {_describe(name)}]({png})")
        parts.append(_laws_md([law_ for law_ in laws if law_["problem"] == name], name))
    return "\n\n".join(parts)


def _describe(name: str) -> str:
    p = problem(name)
    return p.formula if hasattr(p, "formula") else "the MLP loss gradient (3-4-2, sigmoid)"


def _plot_problem(name: str, rows: list[dict], laws: list[dict], out: Path) -> str:
    systems = list(dict.fromkeys(r["numbers"] for r in rows))
    ncols = min(3, len(systems) + 1)
    nrows = math.ceil((len(systems) + 1) / ncols)
    fig, axes = output.figure(ncols, nrows, width=4.6, height=3.7)
    axes = np.atleast_1d(axes)
    derivatives = problem_derivatives(problem(name))
    methods = list(dict.fromkeys(r["method"] for r in rows))
    for ax, numbers in zip(axes, systems):
        mine = [r for r in rows if r["numbers"] == numbers]
        _plot_panel(ax, mine, [w for w in laws if w["numbers"] == numbers], derivatives)
        _note_missing(ax, numbers, [m for m in methods if m not in {r["method"] for r in mine}])
        ax.set_title(f"{numbers} (u = {output.fmt(rows_u(rows, numbers), 2)})", fontsize=10)
        ax.set_ylabel("relative error ‖D − ∇L‖₂/‖∇L‖₂" if name == "mlp"
                      else "relative error |D − f′|/|f′| (RMS over 4 points)")
    _legend_panel(axes[len(systems)], axes[:len(systems)], derivatives is not None)
    for ax in axes[len(systems) + 1:]:
        ax.set_visible(False)
    fig.suptitle(f"Error of the derivative against the step h: {_describe(name)}", fontsize=12)
    return output.save_figure(fig, out, f"error_vs_h_{name}")



def _legend_panel(ax, panels, with_model: bool) -> None:
    """An empty panel holding the legend and the key to the line styles."""
    from matplotlib.lines import Line2D

    handles = {}
    for panel in panels:
        for handle, label in zip(*panel.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    extra = [Line2D([], [], color="k", ls="--", lw=0.8),
             Line2D([], [], color="k", marker="*", ls="", ms=10, mec="k"),
             Line2D([], [], color="k", marker="D", mfc="none", ls="", ms=7)]
    texts = ["model: C·h^p and S·u·|f|/h", "optimum of the fitted laws",
             "model optimum h* (exact constants)"]
    if not with_model:
        extra, texts = extra[1:2], texts[1:2]
    ax.legend(list(handles.values()) + extra, list(handles) + texts, loc="upper center",
              fontsize=9, title="measured (solid) per method", frameon=False)
    if not with_model:
        ax.text(0.5, 0.02, NO_MODEL_NOTE, transform=ax.transAxes, ha="center", va="bottom",
                fontsize=7.5, wrap=True, color="0.25")
    ax.axis("off")


# Why the network panels have no model lines, and which norm their error is (figure note).
NO_MODEL_NOTE = ("No model lines here: the model's truncation constant needs\n"
                 "the loss's higher derivatives along every coordinate, which\n"
                 "the study does not compute for the network. The error is the\n"
                 "2-norm over all coordinates, ‖D − ∇L‖₂/‖∇L‖₂, against a\n"
                 "260-digit reference gradient.")


def _note_missing(ax, numbers: str, missing: list[str]) -> None:
    """Say in the panel why a method drawn elsewhere has no line here."""
    notes = []
    for label in missing:
        if label == "complex_step" and not has_complex(numbers):
            notes.append(f"no complex step: {numbers} has no complex\ncounterpart"
                         + (" (numpy has no complex32)" if numbers == "float16" else ""))
        else:
            notes.append(f"no {label}: not run in this system")
    if notes:
        ax.text(0.03, 0.03, "\n".join(notes), transform=ax.transAxes, fontsize=7,
                va="bottom", ha="left", color="0.25",
                bbox={"boxstyle": "round", "fc": "white", "ec": "0.7", "alpha": 0.9})


def _plot_panel(ax, rows: list[dict], laws: list[dict], derivatives) -> None:
    errors = []
    for label in dict.fromkeys(r["method"] for r in rows):
        mine = [r for r in rows if r["method"] == label and finite(r["error"])]
        if not mine:
            continue
        color = output.METHOD_COLORS[label]
        h = np.array([r["h"] for r in mine])
        err = np.maximum(np.array([r["error"] for r in mine]), mine[0]["u"] / 1e3)
        errors.extend(err)
        if label == "complex_step":  # broad and pale beneath: central2's h² arm shows on top
            ax.loglog(h, err, "-", color=color, lw=3.2, alpha=0.45, zorder=1.5, label=label)
        else:
            ax.loglog(h, err, "-", color=color, lw=1.2, zorder=2.5, label=label)
        fitted = next(w for w in laws if w["method"] == label)
        if finite(fitted["h_opt"]):  # the optimum of the two fitted laws
            ax.plot(fitted["h_opt"], fitted["e_opt"], "*", color=color, ms=11, mec="k", mew=0.5)
        model = law(label, derivatives, mine[0]["u"]) if derivatives else None
        if model is not None:
            grid_h = np.logspace(math.log10(h.min()), 0, 200)
            ax.loglog(grid_h, model.truncation(grid_h), "--", color=color, lw=0.8, alpha=0.7)
            ax.loglog(grid_h, model.rounding(grid_h), ":" if not model.R else "--",
                      color=color, lw=0.8, alpha=0.7)
            if math.isfinite(model.h_opt):
                ax.plot(model.h_opt, model.e_opt, "D", mfc="none", color=color, ms=7)
    if rows:
        ax.axhline(rows[0]["u"], color="0.35", ls="-.", lw=0.8, zorder=1,
                   label="unit roundoff u (the floor)")
    ax.set_xlabel("step h (same units as x; x is O(1))")
    ax.xaxis.set_major_locator(LogLocator(numticks=7))
    ax.yaxis.set_major_locator(LogLocator(numticks=7))
    if errors:  # down to below u, so that the floor is always in view
        low = max(min(min(errors), rows[0]["u"]) / 10, 1e-300)
        ax.set_ylim(low, 1e2)
    ax.grid(True, which="major", alpha=0.3)


def _laws_md(laws: list[dict], name: str) -> str:
    columns = [("numbers", "system"), ("method", "method"), ("p", "p"),
               ("truncation_slope", "trunc. slope (fit)"), ("p", "theory"),
               ("rounding_slope", "round. slope (fit)"), ("rounding_theory", "theory"),
               ("h_opt", "h* fitted"), ("h_opt_model", "h* model"),
               ("e_opt", "E* fitted"), ("e_opt_model", "E* model"),
               ("e_best", "smallest error"), ("flat_over_u", "flat error / u"),
               ("estimate_bounds", "estimate ≥ error")]
    return (f"Fitted laws for {_describe(name)}: slopes of log10 error against log10 h "
            "(– where the regime holds under four points or one decade); h* and E* fitted: "
            "the minimum of the sum of the two fitted power laws; model: C·h^p + S·u·|f|/h "
            "with exact constants, whose rounding term is a worst case; smallest error: "
            "the best single step of the sweep.\n\n"
            + output.markdown_table(laws, columns))


def _reading(laws: list[dict]) -> str:
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
    ratio = [w["h_opt"] / w["h_opt_model"] for w in laws
             if finite(w["h_opt"]) and finite(w["h_opt_model"])]
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
