"""The epsilon sweep's figure: error against step h, one panel per number system.

Steps and errors are drawn as their log10 on linear axes whose ticks read 10^k
(`studies.decades.decade_axis`): a matplotlib log axis holds floats, and the 1000-digit
panel runs from h = 10⁻¹⁰⁰³ and errors of 10⁻¹⁰⁰¹, which are 0 as floats. The model lines
come from the same log10 law (`studies.laws.Law`) as the fits.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from matplotlib.lines import Line2D

from studies import output
from studies.decades import decade_axis, fmt_log10
from studies.laws import law
from studies.problems import REFERENCE_DPS, problem, problem_derivatives
from studies.rows import finite, has_complex, rows_log10_u

__all__ = ["NO_MODEL_NOTE", "describe", "note_missing", "plot_problem"]

# Why the network panels have no model lines, and which norm their error is (figure note).
NO_MODEL_NOTE = ("No model lines here: the model's truncation constant needs\n"
                 "the loss's higher derivatives along every coordinate, which\n"
                 "the study does not compute for the network. The error is the\n"
                 "2-norm over all coordinates, ‖D − ∇L‖₂/‖∇L‖₂, against a\n"
                 f"{REFERENCE_DPS}-digit reference gradient.")
FLOOR_DECADES = 3  # exact results (log10 error −inf) are drawn at u/1000, below the floor


def describe(name: str) -> str:
    """A problem in words: its formula, or the network's description."""
    p = problem(name)
    return p.formula if hasattr(p, "formula") else "the MLP loss gradient (3-4-2, sigmoid)"


def plot_problem(name: str, rows: list[dict], laws: list[dict], out: Path) -> str:
    """One panel per number system and a legend panel; returns the PNG's name."""
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
        note_missing(ax, numbers, [m for m in methods if m not in {r["method"] for r in mine}])
        ax.set_title(f"{numbers} (u = {fmt_log10(rows_log10_u(rows, numbers))})", fontsize=10)
        ax.set_ylabel("relative error ‖D − ∇L‖₂/‖∇L‖₂ (log scale)" if name == "mlp"
                      else "relative error |D − f′|/|f′| (log scale;\nRMS over 4 points)")
    _legend_panel(axes[len(systems)], axes[:len(systems)], derivatives is not None)
    for ax in axes[len(systems) + 1:]:
        ax.set_visible(False)
    fig.suptitle(f"Error of the derivative against the step h: {describe(name)}", fontsize=12)
    return output.save_figure(fig, out, f"error_vs_h_{name}")


def _legend_panel(ax, panels, with_model: bool) -> None:
    """An empty panel holding the legend and the key to the line styles."""
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


def note_missing(ax, numbers: str, missing: list[str]) -> None:
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
    """Every method's measured curve, its fitted optimum, and the model where known, all
    as log10 values (see the module notes)."""
    log10_u = rows[0]["log10_u"] if rows else math.nan
    lowest = []
    for label in dict.fromkeys(r["method"] for r in rows):
        mine = [r for r in rows if r["method"] == label and not math.isnan(r["log10_error"])]
        if not mine:
            continue
        color = output.METHOD_COLORS[label]
        x = np.array([r["log10_h"] for r in mine])
        y = np.maximum(np.array([r["log10_error"] for r in mine]), log10_u - FLOOR_DECADES)
        lowest.append(y.min())
        if label == "complex_step":  # broad and pale beneath: central2's h² arm shows on top
            ax.plot(x, y, "-", color=color, lw=3.2, alpha=0.45, zorder=1.5, label=label)
        else:
            ax.plot(x, y, "-", color=color, lw=1.2, zorder=2.5, label=label)
        fitted = next(w for w in laws if w["method"] == label)
        if finite(fitted["log10_h_opt"]):  # the optimum of the two fitted laws
            ax.plot(fitted["log10_h_opt"], fitted["log10_e_opt"], "*", color=color, ms=11,
                    mec="k", mew=0.5)
        _model_lines(ax, law(label, derivatives, log10_u) if derivatives else None,
                     x.min(), color)
    if rows:
        ax.axhline(log10_u, color="0.35", ls="-.", lw=0.8, zorder=1,
                   label="unit roundoff u (the floor)")
        ax.set_xlim(min(r["log10_h"] for r in rows), 0)
    # down to below u, so that the floor is always in view: a decade, or 3 % of the
    # axis (30 decades at 1000 digits), under the lowest line
    low = min([*lowest, log10_u]) if rows else -16
    ax.set_ylim(low - max(1.0, 0.03 * (2 - low)), 2)
    ax.set_xlabel("step h (log scale; same units as x, which is O(1))")
    decade_axis(ax, "x", most=7)
    decade_axis(ax, "y", most=7)
    ax.grid(True, which="major", alpha=0.3)


def _model_lines(ax, model, x_min: float, color: str) -> None:
    """The model's truncation and rounding lines (dashed) and its optimum (a diamond)."""
    if model is None:
        return
    grid = np.linspace(x_min, 0, 200)
    ax.plot(grid, model.truncation(grid), "--", color=color, lw=0.8, alpha=0.7)
    ax.plot(grid, model.rounding(grid), "--" if model.cancels else ":", color=color,
            lw=0.8, alpha=0.7)
    if math.isfinite(model.log10_h_opt):
        ax.plot(model.log10_h_opt, model.log10_e_opt, "D", mfc="none", color=color, ms=7)
