"""`MLP.gradient` of a [20, 30, 10] network on 16 examples at 50 digits, in every system
that has 50 digits (mpf, mpfr, decimal; arb when python-flint's arb system is present),
with float64 for scale, all measured in the same run; plus the raw cost of one multiply-add
in each system (a Python loop ``acc = acc + x·y`` over its elements, and one
``ns.matmul`` of a [128, 65]×[65, 32] product), so the network's overhead over its
arithmetic shows.

Run: ``flock /tmp/heavy.lock python benchmarks/number_systems.py`` (prints a markdown
table; the ratios are against mpf:50 measured in the same run, in wall-clock time and in
process CPU time: on a shared machine the CPU time leaves out the time the process waited
for a core, which wall-clock ratios mix in unevenly). Each system's gradient is timed in
5 rounds interleaved with the others' (the best round counts), so a change of the
machine's load during the run reaches every system alike. Issue 10 called this file
``benchmarks/numbers.py``; under that name it shadowed the standard library's ``numbers``
for every script in this folder.
"""

from __future__ import annotations

import itertools
import time
import timeit

import numpy as np

from precision_nn.network import MLP
from precision_nn.numbers import number_system

SIZES, M, DIGITS = [20, 30, 10], 16, 50
SYSTEMS = ["float64", f"mpf:{DIGITS}", f"mpfr:{DIGITS}", f"decimal:{DIGITS}",
           f"arb:{DIGITS}"]


def gradient_macs(sizes: list[int], m: int) -> int:
    """Multiply-adds of one gradient: the forward products m·Σ n_in·n_out, and backward the
    weight gradients (the same count) and the deltas of every layer but the first."""
    layers = list(itertools.pairwise(sizes))
    forward = m * sum(i * o for i, o in layers)
    return 2 * forward + m * sum(i * o for i, o in layers[1:])


def best_of(fn, repeat: int = 3, *, timer=time.perf_counter) -> float:
    """The fastest of `repeat` runs, each long enough (>= 0.2 s) to be timed reliably."""
    timing = timeit.Timer(fn, timer=timer)
    number, _ = timing.autorange()
    return min(timing.repeat(repeat=repeat, number=number)) / number


def raw_loop_mac(ns, n: int = 4096) -> float:
    """Seconds per multiply-add of a plain Python loop over elements of `ns`."""
    rng = np.random.default_rng(0)
    x, y = ns.asarray(rng.standard_normal(n)), ns.asarray(rng.standard_normal(n))
    xs, ys = list(x), list(y)

    def loop():
        acc = ns.zero
        for a, b in zip(xs, ys):
            acc = acc + a * b
        return acc

    with ns.context():
        return best_of(loop) / n


def matmul_mac(ns, pool: int = 8) -> float:
    """Seconds per multiply-add of ns.matmul on a [128, 65]×[65, 32] product, cycling
    through `pool` pairs of operands made of distinct elements, so a system that keeps
    converted operands (arb's `OperandCache`) pays its conversions here."""
    rng = np.random.default_rng(1)
    pairs = [(ns.asarray(rng.standard_normal((128, 65))),
              ns.asarray(rng.standard_normal((65, 32)))) for _ in range(pool)]
    turn = itertools.cycle(pairs)
    with ns.context():
        return best_of(lambda: ns.matmul(*next(turn))) / (128 * 65 * 32)


def prepare(spec: str) -> dict | None:
    """The network, data and gradient call of one system, with its loop count."""
    try:
        ns = number_system(spec)
    except ValueError as exc:  # no python-flint or gmpy2
        print(f"<!-- {spec} skipped: {exc} -->")
        return None
    net = MLP(SIZES, numbers=ns, seed=0)
    rng = np.random.default_rng(2)
    X = ns.asarray(rng.standard_normal((M, SIZES[0])))
    Y = ns.asarray(np.eye(SIZES[-1])[rng.integers(0, SIZES[-1], M)])
    call = lambda: net.gradient(X, Y)
    number, _ = timeit.Timer(call).autorange()  # >= 0.2 s a round
    return {"spec": spec, "ns": ns, "call": call, "number": number,
            "gradient": float("inf"), "cpu": float("inf")}


def timed_round(case: dict) -> None:
    """One round of `case`'s gradient loop; keeps its best wall and CPU time a call."""
    call, number = case["call"], case["number"]
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(number):
        call()
    case["gradient"] = min(case["gradient"], (time.perf_counter() - wall) / number)
    case["cpu"] = min(case["cpu"], (time.process_time() - cpu) / number)


def main(rounds: int = 5) -> None:
    rows = [case for case in map(prepare, SYSTEMS) if case is not None]
    for _ in range(rounds):  # interleaved, so a change of the machine's load hits all
        for case in rows:
            timed_round(case)
    for case in rows:
        case.update(per_mac=case["gradient"] / gradient_macs(SIZES, M),
                    loop=raw_loop_mac(case["ns"]), matmul=matmul_mac(case["ns"]))
    mpf = next(row for row in rows if row["spec"].startswith("mpf:"))
    print(f"`MLP.gradient` of {SIZES} × {M} examples ({gradient_macs(SIZES, M)} multiply-"
          f"adds), best of {rounds} rounds interleaved across the systems, wall clock and "
          f"process CPU time; per-multiply-add costs in ns (wall)\n")
    print("| system | gradient | speed-up vs mpf | CPU time | CPU speed-up vs mpf | "
          "gradient / MAC | raw loop / MAC | ns.matmul / MAC |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['spec']} | {row['gradient'] * 1e3:.2f} ms | "
              f"{mpf['gradient'] / row['gradient']:.1f}× | {row['cpu'] * 1e3:.2f} ms | "
              f"{mpf['cpu'] / row['cpu']:.1f}× | {row['per_mac'] * 1e9:.0f} | "
              f"{row['loop'] * 1e9:.0f} | {row['matmul'] * 1e9:.0f} |")


if __name__ == "__main__":
    main()
