"""Method comparison: accuracy against cost, per method and number system.

Each cell calls the library once with its automatic step (``h=None``: what a user who
does not tune anything gets) on a scalar function and on the full gradient of a 3-5-2
MLP, and measures the relative error against the reference, the number of function
evaluations and the wall time. For the network, backprop (`MLP.gradient`) in the same
number system is the baseline every numerical gradient is measured against.

The systems run from float16 to 1000 digits (``mpf:1000``, ``arb:1000``,
``decimal:1000``), where errors reach 10⁻¹⁰⁰¹, 0 as a float: errors and unit roundoffs are
recorded as their log10 (`studies.decades`). The reference is mpmath at
`studies.problems.REFERENCE_DPS` = 2·1000 + 20 digits (`studies.problems.reference_dps`
of the largest precision studied): the smallest error measured, about u = 10⁻¹⁰⁰¹ (complex
step, backprop), is then 10¹⁰¹⁹ times the reference's own error, which never shows.

Wall times are the best of `REPEATS` repetitions (at least `MIN_SECONDS` of work in
total), taken while the other cells run on the other cores: compare them within one run.

Columns of ``results.csv`` (one row per problem, system and method):

``problem``
    ``sigmoid`` (scalar, at x = 0.5) or ``mlp`` (the gradient of a 3-5-2 sigmoid network
    with cross-entropy loss on 8 examples: 32 parameters).
``numbers``, ``log10_u``
    Number system and log10 of its unit roundoff.
``method``
    ``forward`` (order 1), ``central2``, ``central4``, ``richardson``, ``complex_step``,
    or ``backprop`` (network only).
``log10_error``, ``log10_estimated_error``
    log10 of the measured relative error (2-norm over coordinates; −inf: exact) and of
    the library's own estimate (NaN for backprop, which does not estimate its error).
``evaluations``
    Function (loss) evaluations; 1 for backprop (one forward and one backward pass).
``seconds``
    Best wall time of one call.
``repeats``
    How many calls the timing took.
``note``
    The error message when the call raised.

Files: ``accuracy_vs_cost.png/.svg``.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import mpmath
import numpy as np

from precision_nn.numbers import number_system
from studies import output
from studies.decades import log10_norm
from studies.method_figure import plot_accuracy_cost, table
from studies.problems import (
    NetworkProblem,
    estimate,
    exact,
    log10_relative_error,
    network_problem,
    problem,
)
from studies.rows import finite, has_complex

NAME = "method_comparison"
TITLE = "Method comparison: accuracy against cost"
SEED = 1  # seed of the network problem

NUMBERS = ("float16", "float32", "float64", "mpf:30", "mpf:60", "decimal:30", "mpf:1000",
           "arb:1000", "decimal:1000")
# The network gradient runs in the systems where one call costs seconds, not minutes:
# measured at 1000 digits (one call, a loaded 2-core machine), a difference quotient of the
# 32 coordinates takes 1.5–2.5 s in mpf:1000 and 0.4–1.3 s in arb:1000 but 44–129 s in
# decimal:1000; and Richardson, ~100 evaluations a coordinate, 79 s in mpf:1000 and 42 s
# in arb:1000, so it runs on the network only up to `NETWORK_RICHARDSON_DIGITS`.
NETWORK_NUMBERS = ("float16", "float32", "float64", "mpf:30", "mpf:60", "decimal:30",
                   "mpf:1000", "arb:1000")
NETWORK_RICHARDSON_DIGITS = 100
LABELS = ("forward", "central2", "central4", "richardson", "complex_step")
NETWORK = {"layer_sizes": (3, 5, 2), "examples": 8}
QUICK = {"numbers": ("float32", "float64", "mpf:30"),
         "network_numbers": ("float32", "float64", "mpf:30"),
         "labels": ("forward", "central2", "complex_step"),
         "network": {"layer_sizes": (3, 4, 2), "examples": 5}}
REPEATS = 20
MIN_SECONDS = 0.05
WARM_UP_BELOW = 1.0
LOG10_2 = math.log10(2)


def grid(quick: bool) -> list[dict]:
    """One cell per problem, number system and method (complex step where supported)."""
    numbers = QUICK["numbers"] if quick else NUMBERS
    on_network = QUICK["network_numbers"] if quick else NETWORK_NUMBERS
    labels = QUICK["labels"] if quick else LABELS
    network = QUICK["network"] if quick else NETWORK
    cells = []
    for name in ("sigmoid", "mlp"):
        for spec in numbers if name == "sigmoid" else on_network:
            for label in labels + (("backprop",) if name == "mlp" else ()):
                if not _runs(name, spec, label):
                    continue
                cells.append({"key": f"{name}/{spec}/{label}", "problem": name,
                              "numbers": spec, "method": label, "seed": SEED,
                              "layer_sizes": list(network["layer_sizes"]),
                              "examples": network["examples"],
                              "cost": _cost(name, spec, label)})
    return cells


def _runs(name: str, spec: str, label: str) -> bool:
    """The complex step needs a complex counterpart; Richardson on the network only up to
    `NETWORK_RICHARDSON_DIGITS` (see `NETWORK_NUMBERS`)."""
    if label == "complex_step" and not has_complex(spec):
        return False
    return not (name == "mlp" and label == "richardson"
                and number_system(spec).digits > NETWORK_RICHARDSON_DIGITS)


def _cost(name: str, spec: str, label: str) -> float:
    """Rough seconds of a cell: network gradients in object systems dominate the study,
    and grow with the digits (measured at 1000 digits: ~2 s a call, timed once)."""
    ns = number_system(spec)
    slow = name == "mlp" and ns.object_elements
    return round((5.0 if slow else 0.1) * (1 + ns.digits / 300)
                 * {"richardson": 3.0, "central4": 2.0}.get(label, 1.0), 2)


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
    row = {"problem": cell["problem"], "numbers": ns.name,
           "log10_u": ns.log2_unit_roundoff * LOG10_2, "method": cell["method"],
           "log10_error": math.nan, "log10_estimated_error": math.nan, "evaluations": 0,
           "seconds": math.nan, "repeats": 0, "note": ""}
    call = _backprop(p, ns) if cell["method"] == "backprop" else \
        (lambda: estimate(p, ns.name, cell["method"], h=None))
    try:
        result, seconds, repeats = _timed(call)
    except (ValueError, ArithmeticError) as exc:
        row["note"] = str(exc).splitlines()[0][:200]
        return [row]
    row.update(seconds=seconds, repeats=repeats)
    if cell["method"] == "backprop":
        row.update(log10_error=log10_relative_error(result, reference), evaluations=1)
    else:
        with mpmath.workdps(30):  # the reference's norm, to 30 digits: mpf has no underflow
            log10_scale = float(mpmath.log10(mpmath.norm(list(np.ravel(np.asarray(
                reference, dtype=object))))))
        row.update(log10_error=log10_relative_error(result.value, reference),
                   log10_estimated_error=log10_norm(result.error) - log10_scale,
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


# -- the report -----------------------------------------------------------------------------
def render(rows: list[dict], out: Path) -> str:
    """Accuracy-cost figure, one table per problem and the reading."""
    png = plot_accuracy_cost(rows, out)
    tables = [table(rows, name) for name in ("sigmoid", "mlp")]
    return "\n\n".join([_reading(rows), f"![Accuracy against cost]({png})", *tables])


def _reading(rows: list[dict]) -> str:
    def pick(problem_name, numbers, method):
        return next((r for r in rows if (r["problem"], r["numbers"], r["method"])
                     == (problem_name, numbers, method) and finite(r["log10_error"])), None)
    sentences = []
    for spec in ("float64", "mpf:30", "mpf:1000"):
        parts = []
        for method in ("forward", "central2", "central4", "richardson", "complex_step",
                       "backprop"):
            r = pick("mlp", spec, method)
            if r is not None:
                cost = "one pass" if method == "backprop" else \
                    f"{r['evaluations']} evaluations"
                parts.append(f"{method} u^{r['log10_error'] / r['log10_u']:.2f} with {cost} "
                             f"in {output.fmt(r['seconds'], 2)} s")
        if parts:
            sentences.append(f"in {spec}, " + "; ".join(parts))
    return (
        "**Reading.** More evaluations buy accuracy only up to the limit that the number "
        "system and the method's order set, and that limit is a power of the unit "
        "roundoff u, the same at every precision: with the automatic step, forward "
        "differences stop near u^(1/2), central ones near u^(2/3) and u^(4/5), while the "
        "complex step and Richardson reach a few u — the complex step for about the cost "
        "of one central difference (one complex evaluation per coordinate costs a few real "
        "ones), Richardson for several times more evaluations. The figure therefore draws "
        "each error as that power, log10(error)/log10(u), so that float16 and 1000 digits "
        "read on one axis (the tables give the errors themselves). For the network "
        "gradient, as error = u^a: " + "; ".join(sentences) + ". Backprop is exact to "
        "rounding for the price of about one extra pass, which is why numerical gradients "
        "are a check, never the method; and the check is only as good as its reference, "
        "so a higher-order method or a wider number system pays for itself when a "
        "tolerance must be tight.")
