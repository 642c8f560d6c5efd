"""Epsilon sweep: the error of each derivative method against its step h, per number system.

For every problem (scalar functions with closed-form derivatives, and the gradient of an
MLP loss), number system and method, the step h runs down a geometric grid from 1 to a
hundredth of the unit roundoff u. Each point is one call of the library's `derivative`
(scalar) or `gradient` (network) with that explicit h, and its error is measured against
a reference at `studies.problems.REFERENCE_DPS` digits. `studies.epsilon_laws` then fits
the truncation slope (expected p) and the rounding slope (expected −1) in the regimes
chosen as described in `studies.laws`, and sets the measured optimum beside the model's.

The systems run from float16 to 1000 digits (``mpf:1000``: u ≈ 10⁻¹⁰⁰¹, errors down to
10⁻¹⁰⁰¹ and steps down to 10⁻¹⁰⁰³, all 0 as floats). Every step, error and unit roundoff is
therefore recorded as its log10 (`studies.decades`), a float that never underflows.

The reference. Every error is measured against mpmath at `studies.problems.REFERENCE_DPS`
= 2·1000 + 20 digits (the rule of `studies.problems.reference_dps` for the largest
precision a study may use): the smallest error measured is about the system's u (the
complex step, Richardson), 10⁻¹⁰⁰¹ at 1000 digits, and the reference's own error, ~10⁻²⁰²⁰,
is then 10⁻¹⁰¹⁹ of it, invisible in any log10 of an error; the 20 guard digits absorb the
cancellation of |value − exact|. `grid` refuses systems of more than
`studies.problems.MAX_DIGITS` digits, for which the reference would no longer be enough.

Columns of ``results.csv`` (one row per problem, number system, method and step):

``problem``
    ``exp``, ``sin``, ``sigmoid`` (scalar, at the point given in `studies.problems`) or
    ``mlp`` (the gradient of a 3-4-2 sigmoid network's cross-entropy loss).
``numbers``
    Number-system spec the derivative is computed in.
``method``
    ``forward`` (order 1), ``central2``, ``central4``, ``richardson``, ``complex_step``.
``log10_u``
    log10 of the unit roundoff of the system.
``log10_h``
    log10 of the requested step.
``log10_h_used``
    log10 of the step the library reports it used (Estimate.h; the median of log10 |h|
    over coordinates for the network, and over the points for a scalar).
``log10_error``
    log10 of the relative error ‖D − f'‖/‖f'‖ (2-norm over coordinates for the network);
    for a scalar function the root mean square of the relative errors at the `POINTS`
    points x0 + k/64 (k = 0…3, all exact in float16), so that one lucky cancellation of
    rounding errors does not make a dip; −inf for no error, NaN when the call raised.
``log10_estimated_error``
    log10 of the library's own error estimate, relative in the same norm (RMS likewise).
``evaluations``
    Function evaluations of one call (mean over the points).
``note``
    The error message when the call raised (e.g. a step that vanishes next to x).

Files: ``fitted_laws.csv`` (one row per problem, system and method: fitted slopes, optima
and model values as log10, see `studies.epsilon_laws`), ``error_vs_h_<problem>.png/.svg``.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

import mpmath
import numpy as np

from precision_nn.numbers import number_system
from studies import output
from studies.decades import log10_norm, log10_of, log10_rms
from studies.epsilon_figure import describe, plot_problem
from studies.epsilon_laws import laws_table
from studies.epsilon_reading import laws_md, reading
from studies.problems import (
    MAX_DIGITS,
    estimate,
    exact,
    log10_relative_error,
    problem,
)
from studies.rows import has_complex

NAME = "epsilon_sweep"
TITLE = "Epsilon sweep: error against step size, truncation against rounding"
SEED = 0  # seed of the network problem

PROBLEMS = ("exp", "sin", "sigmoid", "mlp")
NUMBERS = ("float16", "float32", "float64", "mpf:30", "mpf:60", "mpf:1000")
LABELS = ("forward", "central2", "central4", "richardson", "complex_step")
PER_DECADE = {"scalar": 6, "mlp": 3}
MLP_POINTS = 40  # a network gradient in mpmath costs up to ~1 s a step: cap the steps
# Beyond `SPARSE_DIGITS` the sweep spans ~digits decades of h and a call costs more (4
# points × ~10 ms at 1000 digits in mpf, 10× that in Decimal): a step every 20 decades
# (51 steps at 1000 digits) still puts ≥ 15 steps on each arm of the V, whose arms are
# straight lines on log-log axes, so their slopes and crossing are as well determined.
SPARSE_DIGITS = 100
SPARSE_PER_DECADE = 0.05
# Richardson there: a start near 1 extrapolates through ~100 evaluations (0.6 s a call at
# 1000 digits) and its curve is one straight rounding line (no truncation arm): a step
# every 50 decades (21 steps) draws it
SPARSE_RICHARDSON_PER_DECADE = 0.02
# The network gradient is swept up to `NETWORK_DIGITS` (a step costs ~0.2 s at 30 digits
# in mpf and grows with the digits; its V is the scalar functions' V, see the figures).
NETWORK_DIGITS = 100
QUICK = {"problems": ("exp", "mlp"), "numbers": ("float32", "float64", "mpf:30", "mpf:1000"),
         "labels": ("forward", "central2", "central4", "complex_step"),
         "per_decade": {"scalar": 6, "mlp": 2}, "sparse_per_decade": 0.02}
BELOW_U = 100  # the sweep ends at u / BELOW_U: "well below u"
POINTS = 4  # scalar problems: errors are RMS over x0 + k/64, k = 0..POINTS-1
LOG10_2 = math.log10(2)


def steps_log10(log10_u: float, per_decade: float, max_points: int | None = None) -> list[float]:
    """log10 of geometric steps from 1 down to u/`BELOW_U`: `per_decade` a decade, or fewer,
    evenly spread, when that would exceed `max_points` steps.

    Examples
    --------
    >>> steps_log10(-1001.0, 0.05)[:3], steps_log10(-1001.0, 0.05)[-1], len(steps_log10(-16.0, 6))
    ([0.0, -20.06, -40.12], -1003.0, 109)
    """
    decades = math.log10(BELOW_U) - log10_u
    count = math.ceil(per_decade * decades)
    if max_points is not None:
        count = min(count, max_points)
    return [-decades * k / count for k in range(count + 1)]


def _supported(numbers: str, label: str) -> bool:
    """The complex step needs a complex counterpart (float16 and Decimal have none)."""
    return label != "complex_step" or has_complex(numbers)


def grid(quick: bool, *, numbers: tuple[str, ...] | None = None,
         problems: tuple[str, ...] | None = None) -> list[dict]:
    """One cell per problem, number system and method; each sweeps all steps.

    Parameters
    ----------
    quick : bool
        The small grid of `QUICK`.
    numbers : tuple of str, optional
        Number-system specs to sweep (default `NUMBERS`, or `QUICK`'s), each of at most
        `studies.problems.MAX_DIGITS` digits; the network runs only in those of at most
        `NETWORK_DIGITS` (and in float64 alone with `quick`).
    problems : tuple of str, optional
        Problems (default `PROBLEMS`, or `QUICK`'s).
    """
    config = QUICK if quick else {"problems": PROBLEMS, "numbers": NUMBERS, "labels": LABELS,
                                  "per_decade": PER_DECADE,
                                  "sparse_per_decade": SPARSE_PER_DECADE}
    systems = [_system(spec) for spec in (config["numbers"] if numbers is None else numbers)]
    cells = []
    for name in config["problems"] if problems is None else problems:
        kind = "mlp" if name == "mlp" else "scalar"
        for ns in systems:
            if kind == "mlp" and (ns.digits > NETWORK_DIGITS or (quick and ns.name != "float64")):
                continue
            per_decade = config["sparse_per_decade"] if ns.digits > SPARSE_DIGITS \
                else config["per_decade"][kind]
            for label in config["labels"]:
                if not _supported(ns.name, label):
                    continue
                sparse_richardson = label == "richardson" and ns.digits > SPARSE_DIGITS
                cell = {"key": f"{name}/{ns.name}/{label}", "problem": name,
                        "numbers": ns.name, "method": label, "seed": SEED,
                        "per_decade": min(per_decade, SPARSE_RICHARDSON_PER_DECADE)
                        if sparse_richardson else per_decade}
                cells.append({**cell, "cost": _cost(cell)})
    return cells


def _system(spec: str):
    """The number system of `spec`, refused beyond `MAX_DIGITS` (see the module notes)."""
    ns = number_system(spec)
    if ns.digits > MAX_DIGITS:
        raise ValueError(
            f"`numbers` takes systems of at most {MAX_DIGITS} digits (the references carry "
            f"2·{MAX_DIGITS} + 20 digits; raise studies.problems.MAX_DIGITS for more); got "
            f"{spec!r} with {ns.digits} digits.")
    return ns


# Measured seconds per call (2-core laptop-class machine): a network gradient in mpmath
# costs ~0.2 s at 30 digits, in IEEE floats and for scalars a few ms; a scalar call at
# 1000 digits ~10 ms (Decimal ~0.1 s); Richardson about twice central (at 1000 digits, ~15×
# for a start near 1, where it extrapolates through ~100 evaluations).
_STEP_SECONDS = {("mlp", True): 0.2, ("mlp", False): 0.002, ("scalar", True): 0.0025,
                 ("scalar", False): 0.003}
_METHOD_FACTOR = {"richardson": 2.0, "central4": 1.4, "forward": 0.7}


def _cost(cell: dict) -> float:
    """Expected seconds of a cell (for the runner's scheduling and time-left estimate)."""
    kind = "mlp" if cell["problem"] == "mlp" else "scalar"
    ns = number_system(cell["numbers"])
    n = len(_steps_of(cell))
    points = 1 if kind == "mlp" else POINTS
    factor = _METHOD_FACTOR.get(cell["method"], 1.0) * (1 + ns.digits / 1000)
    if cell["method"] == "richardson":
        factor *= 1 + ns.digits / 150
    return round(n * points * _STEP_SECONDS[kind, ns.object_elements] * factor, 3)


def _steps_of(cell: dict) -> list[float]:
    ns = number_system(cell["numbers"])
    cap = MLP_POINTS if cell["problem"] == "mlp" else None
    return steps_log10(ns.log2_unit_roundoff * LOG10_2, cell["per_decade"], cap)


def run_cell(cell: dict) -> list[dict]:
    """Sweep h for one problem, system and method; one row per step."""
    p = problem(cell["problem"], seed=cell["seed"])
    points = [p] if cell["problem"] == "mlp" else [p.shifted(k) for k in range(POINTS)]
    references = [exact(q) for q in points]
    return [measure_step(points, references, cell["numbers"], cell["method"], log10_h,
                         problem_name=cell["problem"]) for log10_h in _steps_of(cell)]


def measure_step(points: list, references: list, numbers: str, label: str, log10_h: float,
                 *, problem_name: str) -> dict:
    """One row: the derivative at each of `points` (problems of `studies.problems`, whose
    `studies.problems.exact` values are `references`) by method `label` in `numbers` with
    step 10^`log10_h`, errors combined by RMS."""
    ns = number_system(numbers)
    row = {"problem": problem_name, "numbers": ns.name, "method": label,
           "log10_u": ns.log2_unit_roundoff * LOG10_2, "log10_h": log10_h,
           "log10_h_used": math.nan, "log10_error": math.nan,
           "log10_estimated_error": math.nan, "evaluations": 0, "note": ""}
    # the step in the system's error type (a long double beyond ~100 digits), where
    # 10^-1003 is representable; the library realises it as (x + h) − x
    h = ns.error_dtype.type(10) ** ns.error_dtype.type(log10_h)
    if ns.error_dtype == np.float64:  # a Python float: mpmath multiplies by a float fast,
        h = float(h)  # by a numpy scalar through its repr (25 % of a 30-digit call)
    measured = []
    for q, reference in zip(points, references, strict=True):
        try:
            est = estimate(q, ns.name, label, h=h)
        except (ValueError, ArithmeticError) as exc:  # e.g. x + h == x: recorded
            row["note"] = str(exc).splitlines()[0][:200]
            return row
        measured.append(_measure(est, reference))
    row.update(_combine(measured))
    return row


def _measure(est, reference) -> dict:
    """log10 of the error, of the library's estimate of it (both relative) and of the step,
    and the cost of an Estimate; nothing passes through a float64 that could underflow."""
    with mpmath.workdps(30):  # the reference's norm, to 30 digits: mpf has no underflow
        log10_scale = float(mpmath.log10(mpmath.norm(list(np.ravel(np.asarray(
            reference, dtype=object))))))
    steps = [log10_of(h) for h in np.ravel(np.asarray(est.h, dtype=object))]
    return {"log10_h_used": float(np.median(steps)),
            "log10_error": log10_relative_error(est.value, reference),
            "log10_estimated_error": log10_norm(est.error) - log10_scale,
            "evaluations": int(est.evaluations)}


def _combine(measured: list[dict]) -> dict:
    """Root-mean-square errors over the points, as log10 (rounding errors are a random
    variable: its RMS, not one lucky or unlucky draw, is what the model u/h describes)."""
    return {"log10_h_used": float(np.median([m["log10_h_used"] for m in measured])),
            "log10_error": log10_rms([m["log10_error"] for m in measured]),
            "log10_estimated_error": log10_rms([m["log10_estimated_error"] for m in measured]),
            "evaluations": round(float(np.mean([m["evaluations"] for m in measured])))}


# -- the report -----------------------------------------------------------------------------
def render(rows: list[dict], out: Path) -> str:
    """Figures per problem, the fitted-laws table and its reading."""
    laws = laws_table(rows)
    output.write_csv(laws, Path(out) / "fitted_laws.csv")
    by_problem: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        by_problem[row["problem"]].append(row)
    parts = [reading(laws)]
    for name, group in by_problem.items():
        mine = [law_ for law_ in laws if law_["problem"] == name]
        png = plot_problem(name, group, mine, out)
        parts.append(f"![Relative error against step h for {describe(name)}]({png})")
        parts.append(laws_md(mine, describe(name)))
    return "\n\n".join(parts)
