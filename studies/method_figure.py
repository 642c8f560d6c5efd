"""The method comparison's figure and tables: accuracy against cost, float16 to 1000 digits.

The accuracy is drawn as the power a in error = u^a, i.e. log10(error)/log10(u): the
fraction of the system's digits the method gets right (1: all of them, 0: none). The
errors themselves run from 10⁻¹ to 10⁻¹⁰⁰¹, which on one axis would crowd every IEEE and
30-digit system into its top few per cent, while the theory of `studies.laws` says each
method reaches the same power of u at every precision (forward u^(1/2), central-2 u^(2/3),
central-4 u^(4/5), complex step and Richardson u), so that on this axis the methods form
horizontal bands and the systems spread along the cost axis. The tables print the errors
themselves (`studies.decades.fmt_log10`).
"""

from __future__ import annotations

import math
from pathlib import Path

from matplotlib.lines import Line2D
from matplotlib.ticker import NullFormatter

from studies import output
from studies.decades import fmt_log10

__all__ = ["GUIDES", "MARKERS", "accuracy_power", "exponent_guides", "plot_accuracy_cost",
           "table"]

MARKERS = {"float16": "v", "float32": "^", "float64": "o", "mpf:30": "s", "mpf:60": "D",
           "decimal:30": "P", "mpf:1000": "X", "arb:1000": "*", "decimal:1000": "p"}
# the powers of u the methods reach with their optimal step (`studies.laws`)
GUIDES = ((1 / 2, "u^(1/2): forward"), (2 / 3, "u^(2/3): central-2"),
          (4 / 5, "u^(4/5): central-4"), (1.0, "u: every digit"))
EXACT_AT = 1.2  # an exact result (error 0, a = +inf) is drawn at this height


def accuracy_power(row: dict) -> float:
    """a in error = u^a, log10(error)/log10(u), for a row of the study (+inf: exact)."""
    if row["log10_error"] == -math.inf:
        return math.inf
    return row["log10_error"] / row["log10_u"]


def plot_accuracy_cost(rows: list[dict], out: Path) -> str:
    """The 2×2 figure (sigmoid, network) × (evaluations, seconds); returns the PNG name."""
    fig, axes = output.figure(2, 2, width=6.0, height=4.6)
    for k, name in enumerate(("sigmoid", "mlp")):
        mine = [r for r in rows if r["problem"] == name and not math.isnan(r["log10_error"])]
        for ax, cost, label in ((axes[2 * k], "evaluations", "function evaluations (count, log scale)"),
                                (axes[2 * k + 1], "seconds", "wall time per call (s, log scale)")):
            _lines(ax, mine, cost)
            ax.set(xlabel=label, ylabel="accuracy a, error = u^a\n(log10 error / log10 u; "
                   "1 = every digit)", title=f"{_title(name)}: accuracy against {cost}")
        _match_y(axes[2 * k], axes[2 * k + 1])  # the two panels of a problem compare
    fig.legend(*_legend(rows), fontsize=8, loc="outside lower center", ncol=5,
               title="number system (marker); each line joins one method's systems",
               title_fontsize=8)
    return output.save_figure(fig, out, "accuracy_vs_cost")


def table(rows: list[dict], name: str) -> str:
    """The rows of problem `name` as a markdown table, errors printed as numbers."""
    columns = [("numbers", "system"), ("method", "method"), ("log10_error", "relative error"),
               ("a", "a: error = u^a"), ("log10_estimated_error", "library's estimate"),
               ("evaluations", "evaluations"), ("seconds", "seconds")]
    shown = [{**r, "a": _power_text(r)} for r in rows if r["problem"] == name]
    return (f"{_title(name)}, automatic step (h=None):\n\n"
            + output.markdown_table(shown, columns, formatters={
                "log10_error": fmt_log10, "log10_estimated_error": fmt_log10}))


def _power_text(row: dict) -> str:
    if math.isnan(row["log10_error"]):
        return "–"
    a = accuracy_power(row)
    return "exact" if a == math.inf else f"{a:.3f}"


def _title(name: str) -> str:
    return "sigmoid at x = 0.5" if name == "sigmoid" else "MLP loss gradient"


def _lines(ax, rows: list[dict], cost: str) -> None:
    """One line per method joining its number systems from the widest u to the narrowest,
    a marker per system, the method's name written at its most precise end, and the
    powers of u the theory predicts as labelled guides."""
    for method in dict.fromkeys(r["method"] for r in rows):
        mine = sorted((r for r in rows if r["method"] == method), key=lambda r: -r["log10_u"])
        color = output.METHOD_COLORS[method]
        x = [r[cost] for r in mine]
        y = [min(accuracy_power(r), EXACT_AT) for r in mine]
        ax.plot(x, y, "-", color=color, lw=1.0, alpha=0.8, zorder=2)
        for r, xi, yi in zip(mine, x, y):
            ax.plot(xi, yi, MARKERS.get(r["numbers"], "o"), color=color, ms=6, mec="k",
                    mew=0.4, zorder=3)
        ax.annotate(method, (x[-1], y[-1]), xytext=(5, -2), textcoords="offset points",
                    fontsize=7, color=color, fontweight="bold", va="top")
    ax.set_xscale("log")
    exponent_guides(ax)
    values = sorted({r[cost] for r in rows if r[cost] > 0})
    if values:  # room on the right for the direct labels
        ax.set_xlim(values[0] / 1.6, values[-1] * 4)
    if cost == "evaluations" and values:  # few distinct counts: tick those not crowding
        gap = math.log10(values[-1] * 4 / (values[0] / 1.6)) / 9  # a ninth of the axis
        ticks = [values[0]]
        for v in values[1:]:
            if math.log10(v / ticks[-1]) >= gap:
                ticks.append(v)
        ax.set_xticks(ticks, [f"{v:g}" for v in ticks], fontsize=7)
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.grid(True, alpha=0.3)


def exponent_guides(ax) -> None:
    """A dashed line at each power of u of `GUIDES`, labelled at the right edge."""
    for a, label in GUIDES:
        ax.axhline(a, color="0.6", lw=0.6, ls="--", zorder=1)
        ax.text(1.01, a, label, transform=ax.get_yaxis_transform(), fontsize=6,
                color="0.35", va="center")


def _match_y(*axes) -> None:
    """The same y-range on panels that are read side by side, 0 (no digit) to past 1."""
    low = min(min(ax.get_ylim()[0] for ax in axes), 0.0)
    high = max(max(ax.get_ylim()[1] for ax in axes), 1.1)
    for ax in axes:
        ax.set_ylim(low, high)


def _legend(rows: list[dict]):
    systems = sorted({r["numbers"]: r["log10_u"] for r in rows}.items(),
                     key=lambda item: -item[1])
    handles = [Line2D([], [], color="0.3", marker=MARKERS.get(s, "o"), ls="")
               for s, _ in systems]
    labels = [f"{s} (u = {fmt_log10(log10_u)})" for s, log10_u in systems]
    return handles, labels
