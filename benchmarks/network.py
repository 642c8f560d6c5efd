"""Forward+backward time of `MLP.gradient` against peers measured in the same run.

Float types: a hand-written numpy backprop of the same sigmoid/cross-entropy network.
Object types (Decimal, mpmath): a plain Python loop doing the same number of
multiply-adds in that number type (the raw cost of the arithmetic itself).

Run: ``python benchmarks/network.py`` (prints a markdown table).
"""

from __future__ import annotations

import itertools
import timeit

import numpy as np

from precision_nn.network import MLP
from precision_nn.numbers import number_system


def numpy_backprop(mats, X, Y):
    """The same network by hand in numpy (sigmoid hidden/output, cross-entropy)."""
    m = X.shape[0]
    a, zs = [X], []
    for W in mats:
        z = a[-1] @ W[:, 1:].T + W[:, 0]
        zs.append(z)
        a.append(1 / (1 + np.exp(-z)))
    delta = (a[-1] - Y) / m
    grads = []
    for k in range(len(mats), 0, -1):
        W = mats[k - 1]
        grads.append(np.concatenate([delta.sum(0)[:, None], delta.T @ a[k - 1]], axis=1))
        if k > 1:
            delta = (delta @ W[:, 1:]) * a[k - 1] * (1 - a[k - 1])
    return grads[::-1]


def multiply_adds(sizes, m):
    """MACs of one forward+backward: forward m·Σ n_in·n_out, backward twice that."""
    forward = m * sum(i * o for i, o in itertools.pairwise(sizes))
    return 3 * forward


def raw_loop(ns, n, n_exp=0):
    """n multiply-adds (and n_exp exponentials) in the number type, nothing else."""
    a, b = ns.scalar("0.7"), ns.scalar("1.3")
    with ns.context():
        acc = ns.zero
        for _ in range(n):
            acc = acc + a * b
        for _ in range(n_exp):
            acc = acc + ns.exp(a)
    return acc


def best(fn, number):
    return min(timeit.repeat(fn, number=number, repeat=5)) / number


def bench_float(spec, sizes=(64, 128, 10), m=32):
    net = MLP(list(sizes), numbers=spec)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((m, sizes[0])).astype(net.numbers.dtype)
    Y = np.eye(sizes[-1], dtype=net.numbers.dtype)[rng.integers(0, sizes[-1], m)]
    mats = net.unflatten()
    ours = best(lambda: net.gradient(X, Y), 200)
    peer = best(lambda: numpy_backprop(mats, X, Y), 200)
    return spec, sizes, m, ours, "hand-written numpy", peer


def bench_object(spec, sizes=(20, 30, 10), m=16):
    net = MLP(list(sizes), numbers=spec)
    rng = np.random.default_rng(0)
    X = net.numbers.asarray(rng.standard_normal((m, sizes[0])))
    Y = net.numbers.asarray(np.eye(sizes[-1])[rng.integers(0, sizes[-1], m)])
    ns = number_system(spec)
    n = multiply_adds(sizes, m)
    n_exp = m * sum(sizes[1:])  # one sigmoid exponential per unit and example
    ours = best(lambda: net.gradient(X, Y), 3)
    peer = best(lambda: raw_loop(ns, n), 3)
    peer_exp = best(lambda: raw_loop(ns, n, n_exp), 3)
    return [(spec, sizes, m, ours, f"raw loop of {n} multiply-adds", peer),
            (spec, sizes, m, ours, f"same loop + {n_exp} exp", peer_exp)]


def main() -> None:
    rows = [bench_float("float64"), bench_float("float32"),
            *bench_object("decimal:28"), *bench_object("mpf:15"), *bench_object("mpf:50")]
    print("| numbers | layers | batch | MLP.gradient | peer | peer time | ratio |")
    print("|---|---|---|---|---|---|---|")
    for spec, sizes, m, ours, peer_name, peer in rows:
        print(f"| {spec} | {list(sizes)} | {m} | {ours * 1e3:.3f} ms | {peer_name} | "
              f"{peer * 1e3:.3f} ms | {ours / peer:.2f}× |")


if __name__ == "__main__":
    main()
