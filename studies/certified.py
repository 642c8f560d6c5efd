"""Certified derivatives: proven enclosures from 15 to 1000 digits, and published
finite-difference tables bracketed by a proof.

Two kinds of cells:

- ``radius``: ``derivative(f, x0, method="taylor", numbers="arb:N")`` for the studies'
  scalar functions and Squire and Trapp's ``eˣ/√(sin³x + cos³x)`` at 1.5, and the
  structure-aware certified gradient of the studies' network problem, for N from 15 to
  1000. Each row says whether the ball contains the exact derivative (closed forms or
  backprop in mpmath at 2N + 20 digits) and how wide it is relative to the value.
- ``fd_table``: Squire and Trapp's table — the float64 forward and central differences
  of their function at h = 10⁻ᵏ — with each value's true error bounded from both sides by
  the arb:50 enclosure of f'(1.5): ``error_lo ≤ |D_h − f'(1.5)| ≤ error_hi``.

Columns of ``results.csv``: ``kind``, ``function``, ``digits``, ``contains`` (bool: the
ball contains the reference), ``log10_relative_radius`` (log10 of radius/|value|, the
median over entries for the network), ``log10_u`` (log10 of the system's unit roundoff),
``method``, ``h``, ``estimate``, ``error_lo``, ``error_hi`` (NaN where not applicable),
``status`` and ``findings`` (``seed`` cells: seeds 002 and 004, the user's and the fixed,
checked with ``method="certified"`` in arb:30; ``error_hi`` is then the largest proven
bound of ``|a − ∂f|``).
"""

from __future__ import annotations

import math
from pathlib import Path

import mpmath
import numpy as np

from precision_nn.certified_network import certified_gradient
from precision_nn.derivatives import derivative
from precision_nn.gradcheck import check_gradient
from precision_nn.numbers import number_system
from precision_nn.numbers.arb_system import flint_precision, radius_ball
from precision_nn.numbers.literals import exact_parts
from studies import output
from studies.problems import FUNCTIONS, network_problem
from studies.seeds import seed000, seed002, seed004

NAME = "certified"
TITLE = "Certified derivatives: proven enclosures from 15 to 1000 digits"

DIGITS = (15, 30, 50, 100, 200, 500, 1000)
QUICK_DIGITS = (15, 50)
SQUIRE_TRAPP_X = "1.5"
FD_STEPS = tuple(range(1, 17))  # h = 10^-k
NAN = float("nan")


def _squire_trapp(ns):
    return lambda x: ns.exp(x) / ns.sqrt(ns.sin(x) ** 3 + ns.cos(x) ** 3)


def _squire_trapp_mp(x):
    return mpmath.exp(x) / mpmath.sqrt(mpmath.sin(x) ** 3 + mpmath.cos(x) ** 3)


def grid(quick: bool) -> list[dict]:
    digits = QUICK_DIGITS if quick else DIGITS
    names = [*FUNCTIONS, "squire_trapp", "network"]
    cells = [{"key": f"radius/{name}/{n}", "kind": "radius", "function": name, "digits": n,
              "cost": n / 50} for n in digits for name in names]
    cells += [{"key": f"fd_table/{method}", "kind": "fd_table", "function": "squire_trapp",
               "method": method, "cost": 1.0} for method in ("forward", "central")]
    cells += [{"key": f"seed/{seed}_{case}", "kind": "seed", "function": f"{seed}_{case}",
               "cost": 2.0} for seed in ("seed002", "seed004") for case in ("user", "fixed")]
    cells += [{"key": "seed/seed000_fixed", "kind": "seed", "function": "seed000_fixed",
               "cost": 2.0}]
    return cells


def run_cell(cell: dict) -> list[dict]:
    if cell["kind"] == "radius":
        return [_radius_row(cell["function"], int(cell["digits"]))]
    if cell["kind"] == "seed":
        return [_seed_row(cell["function"])]
    return _fd_rows(cell["method"])


def _row(**values) -> dict:
    row = {"kind": "", "function": "", "digits": 0, "contains": False,
           "log10_relative_radius": NAN, "log10_u": NAN, "method": "", "h": NAN,
           "estimate": NAN, "error_lo": NAN, "error_hi": NAN, "status": "", "findings": ""}
    row.update(values)
    return row


def _radius_row(name: str, digits: int) -> dict:
    ns = number_system(f"arb:{digits}")
    if name == "network":
        balls, references = _network_balls(ns)
    else:
        balls, references = _scalar_ball(ns, name)
    contains = all(b.contains(_ball_of(r, digits)) for b, r in zip(balls, references))
    relative = float(np.median([_log10_relative(b) for b in balls]))
    return _row(kind="radius", function=name, digits=digits, contains=bool(contains),
                log10_relative_radius=relative, log10_u=ns.log2_unit_roundoff * math.log10(2))


def _scalar_ball(ns, name: str):
    if name == "squire_trapp":
        f, x0 = _squire_trapp(ns), SQUIRE_TRAPP_X
        with mpmath.workdps(2 * ns.digits + 20):
            exact = mpmath.diff(_squire_trapp_mp, mpmath.mpf(x0))
    else:
        problem = FUNCTIONS[name]
        f, x0 = problem.function(ns), problem.x0
        with mpmath.workdps(2 * ns.digits + 20):
            exact = problem.mp_df(mpmath.mpf(x0))
    return [derivative(f, x0, method="taylor", numbers=ns).value], [exact]


def _network_balls(ns):
    problem = network_problem()
    net = problem.network(ns)
    balls, _ = certified_gradient(net, ns.asarray(problem.X), ns.asarray(problem.Y))
    reference = problem.network(f"mpf:{2 * ns.digits + 20}").gradient(problem.X, problem.Y)
    return list(balls), list(reference)


def _ball_of(value, digits: int):
    """An mpmath value as a ball of radius ~10^-(2N+20) (its own precision)."""
    import flint  # optional (extra `arb`), present whenever arb:N ran

    q = exact_parts(value, "reference")[0]
    with flint_precision(int((2 * digits + 40) * 3.33) + 64):
        return flint.arb(flint.fmpq(q.numerator, q.denominator))


def _log10_relative(ball) -> float:
    r = radius_ball(ball)
    if r.is_zero():
        return -math.inf
    with flint_precision(64):
        ratio = r / abs(ball.mid())
        return float((ratio.log() / type(ratio)(10).log()).mid())


def _seed_row(name: str) -> dict:
    """A seed's user gradient and its fix, checked with a proof in arb:30 (the gradients
    run on balls, so nothing is assumed about them).

    seed 002 (the Coursera 3-5-3 network): the user's cost regularises the output biases
    twice. seed 004 (dJ/dW3 of a 4-3-1 ReLU/sigmoid net): σ' taken at z, 1/m missing.
    """
    report = check_gradient(*_seed_problem(name), method="certified", numbers="arb:30")
    return _row(kind="seed", function=name, digits=30, contains=True, status=report.status,
                findings="+".join(report.kinds),
                error_hi=float(np.max(report.bound)), method="certified")


def _seed_problem(name: str) -> tuple:
    seed, case = name.split("_")
    fixed = case == "fixed"
    if seed == "seed000":  # the fixed network: one weight array per node, Decimal sigmoid
        own = seed000.initial_params(shared=False)
        arb = number_system("arb:30")
        # the loss runs on balls; the gradient is the user's, in decimal:28, its rounding
        # assumed within the library's model (the report states it)
        return (lambda p: seed000.loss(p, sigmoid="decimal", numbers=arb),
                lambda p: seed000.gradient(own, sigmoid="decimal"), own)
    if seed == "seed002":
        params, _, _ = seed002.problem_data()
        return (lambda p: seed002.cost(p, buggy=not fixed), seed002.gradient, params)
    W3 = seed004.problem_data()[0]["W3"]
    return (seed004.cost, lambda w: seed004.gradient(w, at="a" if fixed else "z", mean=fixed),
            W3)


def _fd_rows(method: str) -> list[dict]:
    ns = number_system("arb:50")
    proof = derivative(_squire_trapp(ns), SQUIRE_TRAPP_X, method="taylor", numbers=ns).value
    f = _squire_trapp(number_system("float64"))
    x = 1.5
    rows = []
    for k in FD_STEPS:
        h = 10.0 ** -k
        d = (f(x + h) - f(x)) / h if method == "forward" else (f(x + h) - f(x - h)) / (2 * h)
        with ns.context():
            gap = ns.scalar(float(d)) - proof  # exact float value minus the proven ball
        rows.append(_row(kind="fd_table", function="squire_trapp", digits=50, contains=True,
                         method=method, h=h, estimate=float(d),
                         error_lo=float(gap.abs_lower().mid()),
                         error_hi=float(gap.abs_upper().mid())))
    return rows


def render(rows: list[dict], out: Path) -> str:
    radius = [r for r in rows if r["kind"] == "radius"]
    table = [r for r in rows if r["kind"] == "fd_table"]
    seeds = [r for r in rows if r["kind"] == "seed"]
    parts = [_reading(radius, table)]
    if seeds:
        parts.append("Seeds 002 and 004 replayed with a proof (the gradients run on balls, "
                     "nothing assumed about them):\n\n" + output.markdown_table(seeds, [
                         ("function", "case"), ("status", "verdict"), ("findings", "findings"),
                         ("error_hi", "largest proven bound of the gap a − ∂f")]))
    if radius:
        fig, ax = output.figure(1, 1, width=6.0, height=4.0)
        for name in dict.fromkeys(r["function"] for r in radius):
            mine = sorted((r for r in radius if r["function"] == name), key=lambda r: r["digits"])
            ax.plot([r["digits"] for r in mine],
                    [r["log10_relative_radius"] - r["log10_u"] for r in mine], "o-", label=name)
        ax.set(xscale="log", xlabel="digits N of arb:N",
               ylabel="log10(radius / |value| / u)", title="Proven radius in units of u")
        ax.legend(fontsize=7)
        png = output.save_figure(fig, out, "radius_vs_digits")
        parts += [f"![Radius against precision]({png})", output.markdown_table(radius, [
            ("function", "function"), ("digits", "digits"), ("contains", "encloses reference"),
            ("log10_relative_radius", "log10 of radius over value"), ("log10_u", "log10 u")])]
    if table:
        parts.append("Squire and Trapp's table, bracketed (float64 differences of "
                     "eˣ/√(sin³x + cos³x) at x = 1.5):\n\n" + output.markdown_table(table, [
                         ("method", "method"), ("h", "h"), ("estimate", "D_h"),
                         ("error_lo", "true error ≥"), ("error_hi", "true error ≤")]))
    return "\n\n".join(parts)


def _reading(radius: list[dict], table: list[dict]) -> str:
    if not radius:
        return "No radius cells finished."
    held = sum(bool(r["contains"]) for r in radius)
    spread = [r["log10_relative_radius"] - r["log10_u"] for r in radius]
    return (f"{held} of {len(radius)} enclosures contain the reference computed at twice "
            f"the digits; radii stay within 10^{max(spread):.1f} units of roundoff of the "
            f"value from {min(r['digits'] for r in radius)} to "
            f"{max(r['digits'] for r in radius)} digits. "
            + (f"Each of the {len(table)} finite-difference values has its true error "
               "bracketed by the arb:50 enclosure." if table else ""))
