"""The precision sweep's figure: E_min, E_min/E_model and h* against digits, 10 to 1000.

Values are drawn as their log10 on linear axes labelled 10^k (`studies.decades`): a
matplotlib log axis holds floats, and 10^-1000 is 0 as a float. Digits run on a linear
axis in the E_min and h* panels, where the model (a power of u = ½·10^(1−d)) is then a
straight line, and on a log axis in the ratio panel, so that its deviations at 10 … 100
digits are not crowded into a corner by 100 … 1000.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from matplotlib.lines import Line2D
from matplotlib.ticker import FixedLocator, NullLocator, ScalarFormatter

from studies import output
from studies.decades import decade_axis
from studies.laws import METHODS, optimum_log10
from studies.problems import problem, problem_derivatives

__all__ = ["ARITHMETIC_MARKERS", "plot_minima", "ratio_limits"]

# marker and fill per kind of arithmetic (`studies.rows.arithmetic`); others get a diamond
ARITHMETIC_MARKERS = {"binary": ("o", True), "binary balls": ("^", True),
                      "decimal": ("s", False)}
DIGIT_TICKS = (10, 20, 50, 100, 200, 500, 1000)


def plot_minima(name: str, minima: list[dict], out: Path) -> str:
    """Draw the three panels for problem `name` from its `minimum_table` rows."""
    fig, (ax_e, ax_r, ax_h) = output.figure(3, width=5.4, height=4.8)
    derivatives = problem_derivatives(problem(name))
    low, high = min(m["digits"] for m in minima), max(m["digits"] for m in minima)
    digits_grid = np.linspace(low, high, 200)
    kinds = list(dict.fromkeys(m["arithmetic"] for m in minima))
    for label in dict.fromkeys(m["method"] for m in minima):
        color = output.METHOD_COLORS[label]
        for kind in kinds:
            mine = sorted((m for m in minima if m["method"] == label
                           and m["arithmetic"] == kind), key=lambda m: m["digits"])
            if mine:
                _series(ax_e, ax_r, ax_h, label, mine, color, kind)
        _model_lines(ax_e, ax_h, label, derivatives, digits_grid, color)
    _dress(ax_e, ax_r, ax_h, minima, kinds)
    fig.suptitle(f"{problem(name).formula}, {low} to {high} digits: markers measured, "
                 "dashed the model", fontsize=11)
    return output.save_figure(fig, out, f"min_error_vs_digits_{name}")


def _series(ax_e, ax_r, ax_h, label: str, mine: list[dict], color: str, kind: str) -> None:
    marker, filled = ARITHMETIC_MARKERS.get(kind, ("D", True))
    style = {"color": color, "mfc": color if filled else "none", "ms": 5}
    d = [m["digits"] for m in mine]
    ax_e.plot(d, [m["log10_e_min"] for m in mine], marker, ls="none", **style)
    ratio = [(m["digits"], m["log10_e_min"] - m["log10_e_model"]) for m in mine
             if math.isfinite(m["log10_e_min"] - m["log10_e_model"])]
    if ratio:
        ax_r.plot(*zip(*ratio), marker + "-", lw=0.8, **style)
    if METHODS[label].weight_sum and METHODS[label].p:
        ax_h.plot(d, [m["log10_h_opt"] for m in mine], marker, ls="none", **style)


def _model_lines(ax_e, ax_h, label, derivatives, digits_grid, color) -> None:
    """The model's E* and h* against digits (u = ½·10^(1−d), the decimal convention;
    a binary system of d digits has u within a factor 5 of it)."""
    models = [optimum_log10(label, derivatives, math.log10(0.5) + 1 - d) for d in digits_grid]
    if models[0] is None:
        return
    ax_e.plot(digits_grid, [m[1] for m in models], "--", color=color, lw=0.8)
    if math.isfinite(models[0][0]):
        ax_h.plot(digits_grid, [m[0] for m in models], "--", color=color, lw=0.8)


def _dress(ax_e, ax_r, ax_h, minima: list[dict], kinds: list[str]) -> None:
    xlabel = "significant decimal digits of the number system"
    ax_e.set(xlabel=xlabel, ylabel="minimum relative error over h (dimensionless)",
             title="Minimum reachable error E_min")
    ax_r.axhline(0.0, color="k", lw=0.8, ls="--")
    ax_r.set(xlabel=xlabel + " (log scale)", ylabel="E_min / E_model (measured over theory)",
             title="E_min over the model's E* (1: the model exactly)")
    ax_r.set_ylim(*ratio_limits(ax_r.get_ylim()))
    ax_h.set(xlabel=xlabel, ylabel="step h* of the minimum (units of x)",
             title="Optimal step h*")
    order = list(output.METHOD_COLORS)  # forward, …, central4, …, richardson, complex_step
    methods = sorted(dict.fromkeys(m["method"] for m in minima), key=order.index)
    unmodelled = [m for m in methods if METHODS[m].p == 0]
    if unmodelled:  # Richardson: its order adapts, so it has no E* to divide by
        ax_r.text(0.98, 0.02, f"no {', '.join(unmodelled)}: its order adapts (no model)",
                  transform=ax_r.transAxes, ha="right", va="bottom", fontsize=7)
    ax_e.legend(handles=[Line2D([], [], color=output.METHOD_COLORS[m], marker="o", ls="none",
                                label=m) for m in methods], fontsize=7, title="method",
                title_fontsize=7, loc="lower left")
    ax_r.legend(handles=[_kind_handle(kind, minima) for kind in kinds], fontsize=7,
                title="arithmetic (systems)", title_fontsize=7, loc="upper left")
    ax_h.legend(handles=[Line2D([], [], color="k", ls="--", lw=0.8,
                                label="model E* ∝ u^(p/(p+1)), h* ∝ u^(1/(p+1))")],
                fontsize=7, loc="lower left")
    ax_r.set_xscale("log")
    ax_r.xaxis.set_major_locator(FixedLocator(DIGIT_TICKS))
    ax_r.xaxis.set_major_formatter(ScalarFormatter())
    ax_r.xaxis.set_minor_locator(NullLocator())
    for ax in (ax_e, ax_r, ax_h):
        ax.grid(True, alpha=0.3)
        decade_axis(ax, "y", most=6 if ax is ax_r else 8)


def _kind_handle(kind: str, minima: list[dict]) -> Line2D:
    marker, filled = ARITHMETIC_MARKERS.get(kind, ("D", True))
    families = "+".join(dict.fromkeys(m["family"] for m in sorted(minima, key=lambda m: m["digits"])
                                      if m["arithmetic"] == kind))
    return Line2D([], [], color="k", marker=marker, mfc="k" if filled else "none", ls="none",
                  label=f"{kind} ({families})")


def ratio_limits(limits: tuple[float, float]) -> tuple[float, float]:
    """A y-range for log10(E_min/E_model) symmetric about 0, at least −1 … 1 decades."""
    span = max(1.0, *(abs(v) for v in limits))
    return -span, span
