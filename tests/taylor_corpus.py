"""Correct gradients for `taylor_test` in every number system: random smooth f written
against a `NumberSystem` and random MLP losses, plus (float64) the false-accusation
families of `tests.correct_functions` and the cancelling functions.

``PYTHONPATH=$PWD python -m tests.taylor_corpus [count] [relative_error]`` prints, per
system, how many reports pass, fail (decided) and are undecided; with a relative error
every gradient is scaled by ``1 + relative_error`` (then failures are detections).
"""

from __future__ import annotations

import collections
import sys
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from precision_nn.gradcheck import TaylorReport, taylor_test
from precision_nn.network import MLP
from precision_nn.numbers import NumberSystem, number_system
from tests.cancelling_functions import CANCELLING
from tests.correct_functions import cases

SYSTEMS = ("float16", "float32", "float64", "mpf:30")

Case = tuple[str, Callable[[Any], Any], Callable[[Any], Any], Any]


def smooth(ns: NumberSystem, rng: np.random.Generator) -> Case:
    """One of three smooth f (sines and a quartic; tanh² and a squared linear form; a
    log-sum-exp with a 1) at a random point, with its closed-form gradient in `ns`."""
    n = int(rng.integers(2, 7))
    c, d, a = (ns.asarray(rng.uniform(lo, hi, n)) for lo, hi in ((-2, 2), (0.5, 2), (-1, 1)))
    x = ns.asarray(rng.uniform(-2, 2, n))
    kind = int(rng.integers(0, 3))
    two, three, twelve = ns.scalar(2), ns.scalar(3), ns.scalar(12)
    if kind == 0:
        return ("sines", lambda p: np.sum(c * ns.sin(d * p) + p ** 4 / twelve),
                lambda p: c * d * ns.cos(d * p) + p ** 3 / three, x)
    if kind == 1:
        def g(p):
            t = ns.tanh(d * p + a)
            return two * t * (ns.one - t * t) * d + two * np.sum(c * p) * c
        return ("tanh", lambda p: np.sum(ns.tanh(d * p + a) ** 2) + np.sum(c * p) ** 2, g, x)
    return ("log-sum-exp", lambda p: ns.log(ns.one + np.sum(ns.exp(d * p))),
            lambda p: d * ns.exp(d * p) / (ns.one + np.sum(ns.exp(d * p))), x)


def network(spec: str, seed: int) -> Case:
    """The loss of a random MLP([3, 4, 2]) (tanh or sigmoid) on 5 random examples."""
    ns = number_system(spec)
    rng = np.random.default_rng(seed)
    X = ns.asarray(rng.standard_normal((5, 3)))
    Y = ns.asarray(np.eye(2)[rng.integers(0, 2, 5)])
    net = MLP([3, 4, 2], hidden=("tanh", "sigmoid")[seed % 2], numbers=spec, seed=seed)
    return ("mlp", lambda p: net.loss(X, Y, params=p), lambda p: net.gradient(X, Y, params=p),
            net.params)


def corpus(spec: str, count: int) -> Iterator[Case]:
    """`count` smooth f and `count` MLP losses in `spec`."""
    ns = number_system(spec)
    for seed in range(count):
        yield smooth(ns, np.random.default_rng([seed, 7]))
        yield network(spec, seed)


def float64_families(count: int) -> Iterator[Case]:
    """`count` cases of the false-accusation families and the cancelling functions."""
    for case in cases(count):
        yield case.family, case.f, case.grad, case.x
    for name, (f, g, x) in CANCELLING.items():
        yield name, f, g, x


def outcome(report: TaylorReport) -> str:
    return "undecided" if not report.decided else "pass" if report.passed else "fail"


def run(spec: str, items: Iterator[Case], error: float = 0.0) -> collections.Counter:
    """Counts of the outcomes on `items`, every gradient scaled by ``1 + error`` in `spec`."""
    ns = number_system(spec)
    counts: collections.Counter = collections.Counter()
    for _, f, g, x in items:
        with ns.context():
            scaled = (lambda p, g=g: g(p) * (ns.one + ns.scalar(error))) if error else g
            counts[outcome(taylor_test(f, scaled, x))] += 1
    return counts


def main(count: int, error: float) -> None:
    warnings.simplefilter("ignore")
    for spec in SYSTEMS:  # mpf:30 evaluates ~50x slower: a quarter of the cases
        n = count if not spec.startswith("mpf") else max(count // 4, 5)
        print(spec, dict(run(spec, corpus(spec, n), error)))
    print("float64 families", dict(run("float64", float64_families(4 * count), error)))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 60,
         float(sys.argv[2]) if len(sys.argv) > 2 else 0.0)
