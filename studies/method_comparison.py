"""Method comparison: accuracy against cost, per method and number system.

Each cell calls the library once with its automatic step (``h=None``: what a user who
does not tune anything gets) on a scalar function and on the full gradient of a 3-5-2
MLP, and measures the relative error against the 260-digit reference, the number of
function evaluations and the wall time. For the network, backprop (`MLP.gradient`) in the
same number system is the baseline every numerical gradient is measured against.

Wall times are the best of `REPEATS` repetitions (at least `MIN_SECONDS` of work in
total), taken while the other cells run on the other cores: compare them within one run.

Columns of ``results.csv`` (one row per problem, system and method):

``problem``
    ``sigmoid`` (scalar, at x = 0.5) or ``mlp`` (the gradient of a 3-5-2 sigmoid network
    with cross-entropy loss on 8 examples: 32 parameters).
``numbers``, ``u``
    Number system and its unit roundoff.
``method``
    ``forward`` (order 1), ``central2``, ``central4``, ``richardson``, ``complex_step``,
    or ``backprop`` (network only).
``error``, ``estimated_error``
    Measured relative error (2-norm over coordinates) and the library's own estimate
    (NaN for backprop, which does not estimate its error).
``evaluations``
    Function (loss) evaluations; 1 for backprop (one forward and one backward pass).
``seconds``
    Best wall time of one call.
``repeats``
    How many calls the timing took.
``note``
    The error message when the call raised.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
from matplotlib.ticker import NullFormatter

from precision_nn.numbers import number_system
from studies import output
from studies.problems import (
    NetworkProblem,
    estimate,
    exact,
    network_problem,
    problem,
    relative_error,
)
from studies.rows import finite

NAME = "method_comparison"
TITLE = "Method comparison: accuracy against cost"
SEED = 1  # seed of the network problem

NUMBERS = ("float16", "float32", "float64", "mpf:30", "mpf:60", "decimal:30")
LABELS = ("forward", "central2", "central4", "richardson", "complex_step")
NETWORK = {"layer_sizes": (3, 5, 2), "examples": 8}
QUICK = {"numbers": ("float32", "float64", "mpf:30"),
         "labels": ("forward", "central2", "complex_step"),
         "network": {"layer_sizes": (3, 4, 2), "examples": 5}}
REPEATS = 20
MIN_SECONDS = 0.05
WARM_UP_BELOW = 1.0


def grid(quick: bool) -> list[dict]:
    """One cell per problem, number system and method (complex step where supported)."""
    numbers = QUICK["numbers"] if quick else NUMBERS
    labels = QUICK["labels"] if quick else LABELS
    network = QUICK["network"] if quick else NETWORK
    cells = []
    for name in ("sigmoid", "mlp"):
        for spec in numbers:
            for label in labels + (("backprop",) if name == "mlp" else ()):
                if label == "complex_step" and (spec == "float16" or spec.startswith("dec")):
                    continue
                cells.append({"key": f"{name}/{spec}/{label}", "problem": name,
                              "numbers": spec, "method": label, "seed": SEED,
                              "layer_sizes": list(network["layer_sizes"]),
                              "examples": network["examples"],
                              "cost": _cost(name, spec, label)})
    return cells


def _cost(name: str, spec: str, label: str) -> float:
    """Rough seconds of a cell: network gradients in mpmath/Decimal dominate the study."""
    slow = name == "mlp" and spec.startswith(("mp", "dec"))
    return (5.0 if slow else 0.1) * {"richardson": 3.0, "central4": 2.0}.get(label, 1.0)


def _problem(cell: dict):
    if cell["problem"] == "mlp":
        return network_problem(tuple(cell["layer_sizes"]), examples=cell["examples"],
                               seed=cell["seed"])
    return problem(cell["problem"])


def run_cell(cell: dict) -> list[dict]:
    """Time one method on one problem in one system; one row."""
    p = _problem(cell)
    reference = exact(p)
    ns = number_system(cell["numbers"])
    row = {"problem": cell["problem"], "numbers": ns.name, "u": ns.unit_roundoff,
           "method": cell["method"], "error": math.nan, "estimated_error": math.nan,
           "evaluations": 0, "seconds": math.nan, "repeats": 0, "note": ""}
    call = _backprop(p, ns) if cell["method"] == "backprop" else \
        (lambda: estimate(p, ns.name, cell["method"], h=None))
    try:
        result, seconds, repeats = _timed(call)
    except (ValueError, ArithmeticError) as exc:
        row["note"] = str(exc).splitlines()[0][:200]
        return [row]
    row.update(seconds=seconds, repeats=repeats)
    if cell["method"] == "backprop":
        row.update(error=relative_error(result, reference), evaluations=1)
    else:
        scale = float(np.linalg.norm([float(abs(r)) for r in np.ravel(
            np.asarray(reference, dtype=object))]))
        row.update(error=relative_error(result.value, reference),
                   estimated_error=float(np.linalg.norm(np.ravel(
                       np.asarray(result.error, dtype=float)))) / scale,
                   evaluations=int(result.evaluations))
    return [row]


def _backprop(p: NetworkProblem, ns):
    net = p.network(ns)
    X, Y = ns.asarray(p.X), ns.asarray(p.Y)
    return lambda: net.gradient(X, Y)


def _timed(call):
    """(result, best seconds per call, calls): repeat until `MIN_SECONDS` or `REPEATS`.

    A call under `WARM_UP_BELOW` seconds is first made once untimed, so that one-off costs
    (imports, caches) do not count; slower calls are timed once, their one-off costs being
    negligible beside them.
    """
    start = time.perf_counter()
    result = call()
    first = time.perf_counter() - start
    if first >= WARM_UP_BELOW:
        return result, first, 1
    best, total, repeats = math.inf, 0.0, 0
    while repeats < REPEATS and (total < MIN_SECONDS or repeats == 0):
        start = time.perf_counter()
        result = call()
        elapsed = time.perf_counter() - start
        best, total, repeats = min(best, elapsed), total + elapsed, repeats + 1
    return result, best, repeats


# -- drawing --------------------------------------------------------------------------------
MARKERS = {"float16": "v", "float32": "^", "float64": "o", "mpf:30": "s", "mpf:60": "D",
           "decimal:30": "P"}


def render(rows: list[dict], out: Path) -> str:
    """Accuracy-cost figure, one table per problem and the reading."""
    fig, axes = output.figure(2, 2, width=6.0, height=4.6)
    for k, name in enumerate(("sigmoid", "mlp")):
        mine = [r for r in rows if r["problem"] == name and finite(r["error"])]
        for ax, cost, label in ((axes[2 * k], "evaluations", "function evaluations (count)"),
                                (axes[2 * k + 1], "seconds", "wall time per call (s)")):
            _lines(ax, mine, cost)
            ax.set(xlabel=label, ylabel="relative error (dimensionless)",
                   title=f"{_title(name)}: error against {cost}")
        _match_y(axes[2 * k], axes[2 * k + 1])  # the two panels of a problem compare
    fig.legend(*_legend(rows), fontsize=8, loc="outside lower center", ncol=4,
               title="number system (marker); each line joins one method's systems",
               title_fontsize=8)
    png = output.save_figure(fig, out, "accuracy_vs_cost")
    columns = [("numbers", "system"), ("method", "method"), ("error", "relative error"),
               ("estimated_error", "library's estimate"), ("evaluations", "evaluations"),
               ("seconds", "seconds")]
    tables = [f"{_title(name)}, automatic step (h=None):\n\n" + output.markdown_table(
        [r for r in rows if r["problem"] == name], columns) for name in ("sigmoid", "mlp")]
    return "\n\n".join([_reading(rows), f"![Accuracy against cost]({png})", *tables])


def _title(name: str) -> str:
    return "sigmoid at x = 0.5" if name == "sigmoid" else "MLP loss gradient"


def _lines(ax, rows: list[dict], cost: str) -> None:
    """One line per method joining its number systems from the widest u to the narrowest,
    a marker per system, the method's name written at its most precise end, and each
    system's unit roundoff as a labelled floor."""
    for method in dict.fromkeys(r["method"] for r in rows):
        mine = sorted((r for r in rows if r["method"] == method), key=lambda r: -r["u"])
        color = output.METHOD_COLORS[method]
        x = [r[cost] for r in mine]
        y = [max(r["error"], 1e-300) for r in mine]
        ax.loglog(x, y, "-", color=color, lw=1.0, alpha=0.8, zorder=2)
        for r, xi, yi in zip(mine, x, y):
            ax.loglog(xi, yi, MARKERS.get(r["numbers"], "o"), color=color, ms=6, mec="k",
                      mew=0.4, zorder=3)
        ax.annotate(method, (x[-1], y[-1]), xytext=(5, -2), textcoords="offset points",
                    fontsize=7, color=color, fontweight="bold", va="top")
    _u_floors(ax, rows)
    values = sorted({r[cost] for r in rows if r[cost] > 0})
    if values:  # room on the right for the direct labels
        ax.set_xlim(values[0] / 1.6, values[-1] * 4)
    if cost == "evaluations":  # few distinct counts: tick those not crowding the last tick
        gap = math.log10(values[-1] * 4 / (values[0] / 1.6)) / 9  # a ninth of the axis
        ticks = [values[0]]
        for v in values[1:]:
            if math.log10(v / ticks[-1]) >= gap:
                ticks.append(v)
        ax.set_xticks(ticks, [f"{v:g}" for v in ticks], fontsize=7)
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.grid(True, alpha=0.3)


def _u_floors(ax, rows: list[dict]) -> None:
    """A dashed line at each system's u, labelled at the right edge (labels of systems
    within 4 decades of each other share one line of text)."""
    floors = sorted({r["numbers"]: r["u"] for r in rows}.items(), key=lambda item: -item[1])
    groups: list[list[tuple[str, float]]] = []
    for spec, u in floors:
        ax.axhline(u, color="0.6", lw=0.6, ls="--", zorder=1)
        if groups and math.log10(groups[-1][0][1] / u) < 4:
            groups[-1].append((spec, u))
        else:
            groups.append([(spec, u)])
    for group in groups:
        ax.text(1.01, group[0][1], "u: " + ", ".join(spec for spec, _ in group),
                transform=ax.get_yaxis_transform(), fontsize=6, color="0.35", va="center")


def _match_y(*axes) -> None:
    """The same y-range on panels that are read side by side."""
    low = min(ax.get_ylim()[0] for ax in axes)
    high = max(ax.get_ylim()[1] for ax in axes)
    for ax in axes:
        ax.set_ylim(low, high)


def _legend(rows: list[dict]):
    from matplotlib.lines import Line2D

    systems = sorted({r["numbers"]: r["u"] for r in rows}.items(), key=lambda item: -item[1])
    handles = [Line2D([], [], color="0.3", marker=MARKERS.get(s, "o"), ls="")
               for s, _ in systems]
    handles.append(Line2D([], [], color="0.6", ls="--", lw=0.6))
    labels = [f"{s} (u = {output.fmt(u, 2)})" for s, u in systems]
    return handles, labels + ["its unit roundoff u"]


def _reading(rows: list[dict]) -> str:
    def pick(problem_name, numbers, method):
        return next((r for r in rows if (r["problem"], r["numbers"], r["method"])
                     == (problem_name, numbers, method) and finite(r["error"])), None)
    sentences = []
    for spec in ("float64", "mpf:30"):
        parts = []
        for method in ("forward", "central2", "central4", "richardson", "complex_step",
                       "backprop"):
            r = pick("mlp", spec, method)
            if r is not None:
                cost = "one pass" if method == "backprop" else \
                    f"{r['evaluations']} evaluations"
                parts.append(f"{method} {output.fmt(r['error'], 2)} with {cost} in "
                             f"{output.fmt(r['seconds'], 2)} s")
        if parts:
            sentences.append(f"in {spec}, " + "; ".join(parts))
    return (
        "**Reading.** More evaluations buy accuracy only up to the limit that the number "
        "system and the method's order set: with the automatic step, forward differences "
        "stop near √u, central ones near u^(2/3) and u^(4/5), while the complex step and "
        "Richardson reach a few u — the complex step for about the cost of one central "
        "difference (one complex evaluation per coordinate costs a few real ones), "
        "Richardson for several times more evaluations. For the network gradient: "
        + "; ".join(sentences) + ". Backprop is exact to rounding for the price of about "
        "one extra pass, which is why numerical gradients are a check, never the method; "
        "and the check is only as good as its reference, so a higher-order method or a "
        "wider number system pays for itself when a tolerance must be tight.")

