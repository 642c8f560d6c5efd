"""The cost of a gradient check of an MLP against torch gradcheck and naive loops, one run.

    python benchmarks/check.py                   # the issue-11 sizes (a few minutes)
    python benchmarks/check.py --quick           # small nets, seconds
    python benchmarks/check.py --skip-multiprecision   # the float and large-input rows only

Every time is the best of ``--repeat`` runs (default 3; torch's slow mode, 5-7 s, best of
2 after a warm-up call on a small net), CPU, single thread, so a loaded shared machine
distorts the ratios less. Rows:

- torch.autograd.gradcheck slow and fast mode on the [64, 128, 10] × 32 float64 net,
  built in float64 from the same weights: the baseline of the float rows;
- ``MLP.check_gradient`` end to end (its reference is the structure-aware
  `MLP.numerical_gradient`, complex step for ``method="auto"``) in float64 and float32;
- the structure-aware full gradient alone: complex step, central, Richardson;
- on [20, 30, 10] × 8 in mpf:50 and decimal:28: ``MLP.check_gradient`` end to end (its
  reference in the system's fast_reference_system) against a naive central loop of
  ``2n`` calls of `MLP.loss` in the same system, and the arb:50 gradients against the
  naive mpf:50 loop (`multiprecision_rows`);
- a cheap function of 10^5 variables: 100 evaluations of f against the default
  ``check_gradient`` (it times f, plans a directional check and says so in the report).

The last table lists the ratios issue 11 asks for, each against its goal.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from naive import naive_central  # benchmarks/naive.py, beside this script

from precision_nn.gradcheck import check_gradient
from precision_nn.gradcheck.network_check import (
    CENTRAL_SAFETY,
    _fast_reference,
    _in_fast_system,
    central_digits,
)
from precision_nn.network import MLP
from precision_nn.numbers import number_system
from precision_nn.numbers.base import optional_system

SEED = 0
TORCH_STEP = 2.0**-17


def problem(sizes: list[int], batch: int, spec: str) -> tuple[MLP, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(SEED)
    net = MLP(sizes, seed=SEED).to(spec)
    X = net.numbers.asarray(rng.normal(size=(batch, sizes[0])))
    Y = net.numbers.asarray(np.eye(sizes[-1])[rng.integers(0, sizes[-1], size=batch)])
    return net, X, Y


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def check_equivalent(net: MLP, X: Any, Y: Any, method: str, h: Any = None) -> tuple[str, int]:
    """Reference (structure-aware) + analytic gradient + comparison with the error bars,
    all in the network's system; returns the verdict and the evaluations spent."""
    ns = net.numbers
    est = net.numerical_gradient(X, Y, method=method, h=h)
    analytic = net.gradient(X, Y)
    with ns.context():
        gap = np.abs(ns.to_float(est.value - analytic))
    scale = np.abs(ns.to_float(analytic)) + np.max(np.abs(ns.to_float(analytic)))
    passed = bool(np.all(gap <= est.error + 8 * ns.unit_roundoff * scale))
    return ("match" if passed else "MISMATCH"), est.evaluations


def best_of(fn: Callable[[], Any], repeat: int) -> tuple[Any, float]:
    """The result and the fastest of `repeat` timed calls."""
    runs = [timed(fn) for _ in range(repeat)]
    return runs[0][0], min(seconds for _, seconds in runs)


def torch_seconds(net: MLP, X: np.ndarray, Y: np.ndarray) -> dict[str, float]:
    import torch

    torch.set_num_threads(1)

    def gradcheck_of(net: MLP, X: Any, Y: Any, fast: bool) -> float:
        Xt, Yt = torch.tensor(np.asarray(X, dtype=np.float64)), torch.tensor(
            np.asarray(Y, dtype=np.float64))
        theta = torch.tensor(np.asarray(net.params, dtype=np.float64), requires_grad=True)

        def loss(flat):
            a, start = Xt, 0
            for fan_out, fan_in1 in net.shapes:
                W = flat[start:start + fan_out * fan_in1].reshape(fan_out, fan_in1)
                start += fan_out * fan_in1
                a = torch.sigmoid(W[:, 0] + a @ W[:, 1:].T)
            return -(Yt * torch.log(a) + (1 - Yt) * torch.log(1 - a)).sum() / Xt.shape[0]

        _, seconds = timed(lambda: torch.autograd.gradcheck(
            loss, (theta,), eps=TORCH_STEP, atol=1e-5, fast_mode=fast))
        return seconds

    small, Xs, Ys = problem([4, 5, 3], 4, "float64")
    gradcheck_of(small, Xs, Ys, fast=False)  # warm-up: torch's first call pays its setup
    return {"slow": min(gradcheck_of(net, X, Y, fast=False) for _ in range(2)),
            "fast": min(gradcheck_of(net, X, Y, fast=True) for _ in range(3))}


def float_rows(sizes: list[int], batch: int, repeat: int) -> list[tuple]:
    net, X, Y = problem(sizes, batch, "float64")
    torch_s = torch_seconds(net, X, Y)
    rows = [("torch gradcheck slow mode", "float64", torch_s["slow"], "", "-"),
            ("torch gradcheck fast mode (1 direction)", "float64", torch_s["fast"], "", "-")]
    for spec in ("float64", "float32"):
        target = net if spec == "float64" else net.to(spec)
        Xs, Ys = target.numbers.asarray(X), target.numbers.asarray(Y)
        report, s = best_of(lambda t=target, a=Xs, b=Ys: t.check_gradient(a, b), repeat)
        rows.append(("MLP.check_gradient end to end", spec, s, report.evaluations,
                     ",".join(report.kinds)))
        for method in ("complex_step", "central", "richardson"):
            est, s = best_of(lambda t=target, a=Xs, b=Ys, m=method:
                             t.numerical_gradient(a, b, method=m), repeat)
            rows.append((f"structure-aware gradient alone, {est.method}", spec, s,
                         est.evaluations, "-"))
    return rows


def multiprecision_rows(sizes: list[int], batch: int) -> list[tuple]:
    """Issue 11's arbitrary-precision ratios, each against the naive loop of its half
    (both halves have the same number of rows):

    - mpf:50 and decimal:28 each: the naive loop; ``MLP.check_gradient`` end to end; its
      automatic reference alone as the check computes it (central differences at
      `central_digits` in the fastest real system, `_fast_reference`); the same in mpfr
      (the route without python-flint); the previous reference, the method the
      network's own system picks (complex step for mpf, Richardson for decimal) in
      ``fast_reference_system()``;
    - then the arb:50 structure-aware central gradient (against the naive mpf:50 loop, as
      issue 11 asks) and the decimal:28 backprop gradient.
    """
    return [*_system_rows(sizes, batch, "mpf:50", "1e-17", "complex_step", arb_row=True),
            *_system_rows(sizes, batch, "decimal:28", "1e-9", "richardson",
                         arb_row=False)]


def _system_rows(sizes: list[int], batch: int, spec: str, h: str, previous: str, *,
                 arb_row: bool) -> list[tuple]:
    """One half of `multiprecision_rows`."""
    net, X, Y = problem(sizes, batch, spec)
    _, naive_s = timed(lambda: naive_central(net, X, Y, h))
    rows = [(f"naive central loop of MLP.loss, h={h}", spec, naive_s, 2 * net.n_params,
             "-")]
    report, s = timed(lambda: net.check_gradient(X, Y))
    how = report.reference_name.partition(" (")[0]
    rows.append((f"MLP.check_gradient end to end (reference: {how})", spec, s,
                 report.evaluations, ",".join(report.kinds)))
    rows.extend(_reference_rows(net, X, Y, previous))
    if arb_row:  # issue 11: the arb:50 gradient against the mpf:50 loop
        ball, Xb, Yb = net.to("arb:50"), *(number_system("arb:50").asarray(v)
                                           for v in (X, Y))
        est, s = timed(lambda: ball.numerical_gradient(Xb, Yb, method="central"))
        rows.append(("structure-aware central gradient (MLP.numerical_gradient)",
                     "arb:50", s, est.evaluations, "-"))
    else:
        _, s = timed(lambda: net.gradient(X, Y))
        rows.append(("backprop gradient (MLP.gradient)", spec, s, 1, "-"))
    return rows


def _reference_rows(net: MLP, X: Any, Y: Any, previous: str) -> list[tuple]:
    """The check's automatic reference alone: as chosen, in mpfr, and the previous one."""
    ns = net.numbers
    digits = central_digits(ns)
    est, s = timed(lambda: _fast_reference(net, X, Y, previous))
    where = est.note.partition(" cost less")[0] if est is not None else "none"
    rows = [(f"the check's reference alone: {where}", ns.name, s,
             0 if est is None else est.evaluations, "-")]
    routes = ((f"central differences in mpfr:{digits}", optional_system(f"mpfr:{digits}"),
               "central", CENTRAL_SAFETY),
              (f"previous reference: {previous.replace('_', ' ')} in default",
               ns.fast_reference_system(), previous, 1.0))
    for what, system, method, safety in routes:
        est, s = (None, float("nan")) if system is None else timed(
            lambda m=method, f=system, k=safety: _in_fast_system(net, X, Y, m, f,
                                                                 safety=k))
        name = what if system is None else what.replace(" default", f" {system.name}")
        rows.append((name, ns.name, s, 0 if est is None else est.evaluations, "-"))
    return rows


def large_function_rows(n: int, repeat: int) -> tuple[list[tuple], str]:
    """A cheap separable f of n variables: 100 evaluations against the default check."""
    rng = np.random.default_rng(SEED)
    weights = rng.uniform(0.5, 1.5, n)
    x = rng.normal(size=n) / 4

    def f(v):
        return np.sum(weights * np.exp(v), axis=-1)

    def grad(v):
        return weights * np.exp(v)

    _, hundred = best_of(lambda: [f(x) for _ in range(100)], repeat)
    report, total = best_of(lambda: check_gradient(f, grad, x), repeat)
    return [("100 evaluations of f", f"n={n:,}", hundred, 100, "-"),
            ("check_gradient(f, grad, x), default (times f, plans, checks)", f"n={n:,}",
             total, report.evaluations, ",".join(report.kinds))], \
        report.plan or "the plan is the full check"


def table(title: str, rows: list[tuple], baselines: list[tuple]) -> str:
    heads = " | ".join(f"× vs {b[0]} ({b[1]})" for b in baselines)
    lines = [f"## {title}", "", (f"| what | numbers | seconds | evaluations | verdict | "
             f"{heads} |"), "|---|---|---:|---:|---|" + "---:|" * len(baselines)]
    for what, spec, seconds, evals, verdict in rows:
        ratios = " | ".join("" if not np.isfinite(seconds) else f"{b[2] / seconds:.1f}"
                            for b in baselines)
        shown = "" if not np.isfinite(seconds) else f"{seconds:.3f}"
        lines.append(f"| {what} | {spec} | {shown} | {evals} | {verdict} | {ratios} |")
    return "\n".join(lines)


def goals(float_rows: list[tuple], large: list[tuple], mp: list[tuple]) -> str:
    """The ratios issue 11 asks for, each measured in this run, against its goal (the
    multiprecision ones when `mp` holds their rows)."""
    seconds = {(r[0], r[1]): r[2] for r in float_rows + large}
    torch_slow = seconds[("torch gradcheck slow mode", "float64")]
    cs = "structure-aware gradient alone, complex_step"
    wanted = [
        ("MLP.check_gradient float64 vs torch gradcheck slow (float64)",
         torch_slow / seconds[("MLP.check_gradient end to end", "float64")], 20),
        ("MLP.check_gradient float32 vs torch gradcheck slow (float64)",
         torch_slow / seconds[("MLP.check_gradient end to end", "float32")], 20),
        ("structure-aware complex-step gradient float64 vs torch gradcheck slow",
         torch_slow / seconds[(cs, "float64")], 30),
    ]
    if mp:
        naive = {r[1]: r[2] for r in mp if r[0].startswith("naive")}
        check = {r[1]: r[2] for r in mp if r[0].startswith("MLP.check_gradient")}
        arb = next(r[2] for r in mp if r[1] == "arb:50")
        wanted += [
            ("mpf:50 check_gradient vs the naive mpf:50 central loop",
             naive["mpf:50"] / check["mpf:50"], 20),
            ("decimal:28 check_gradient vs the naive decimal:28 central loop",
             naive["decimal:28"] / check["decimal:28"], 10),
            ("arb:50 structure-aware gradient vs the naive mpf:50 central loop",
             naive["mpf:50"] / arb, 100),
        ]
    lines = ["## issue 11 goals (ratios from this run)", "",
             "| ratio | measured | goal | met |", "|---|---:|---:|---|"]
    lines += [f"| {what} | {ratio:.1f}× | ≥ {goal}× | {'yes' if ratio >= goal else 'no'} |"
              for what, ratio, goal in wanted]
    default, hundred = large[1][2], large[0][2]
    lines.append(f"| default check of {large[0][1]} / 100 evaluations of f | "
                 f"{default / hundred:.2f}× | < 5× | {'yes' if default < 5 * hundred else 'no'} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small nets, seconds")
    parser.add_argument("--repeat", type=int, default=3,
                        help="best of this many runs per row (default 3)")
    parser.add_argument("--skip-multiprecision", action="store_true",
                        help="skip the mpf:50 and decimal:28 rows (several minutes)")
    args = parser.parse_args(argv)
    sizes, batch = ([16, 32, 10], 8) if args.quick else ([64, 128, 10], 32)
    mp_sizes, mp_batch = ([6, 8, 4], 4) if args.quick else ([20, 30, 10], 8)
    n_large = 10_000 if args.quick else 100_000
    rows = float_rows(sizes, batch, args.repeat)
    print(table(f"float {sizes} × {batch}", rows, [rows[0]]), "\n")
    if not args.skip_multiprecision:
        mp = multiprecision_rows(mp_sizes, mp_batch)
        naive = [r for r in mp if r[0].startswith("naive")]
        for half, loop in ((mp[:len(mp) // 2], naive[0]), (mp[len(mp) // 2:], naive[1])):
            print(table(f"multiprecision {mp_sizes} × {mp_batch}, {loop[1]} (ratios against "
                        f"the naive loop in {loop[1]})", half, [loop]), "\n")
    else:
        mp = []
    large, sentence = large_function_rows(n_large, args.repeat)
    print(table(f"a function of {n_large:,} variables", large, [large[0]]))
    print(f"\nThe report's sentence: {sentence}\n")
    print(goals(rows, large, mp))
    if args.quick:
        print("\n(--quick measures small sizes: the goals are set for the full run.)")


if __name__ == "__main__":
    main()
