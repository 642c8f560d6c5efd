"""Accuracy of `derivative` with ``h=None``: worst relative error per method and system.

    python benchmarks/derivative_accuracy.py

Over exp, sin, log, 1/(1+x²), x⁵+3x³+x and three functions with large higher derivatives
(exp(16x), sin(32x), 1/(1+16x²)), each at five points, against closed forms evaluated by
mpmath at twice the system's bits. Errors are relative to ``max(|f'(x)|, s)``, where ``s``
is the amplitude of f' for the oscillating functions (1 and 32), 0 otherwise. The
polynomial has positive coefficients on purpose: an ill-conditioned f (one that cancels
inside) is noisier than its number system, and no step can undo that.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import mpmath
import numpy as np

from precision_nn.derivatives import derivative
from precision_nn.numbers import NumberSystem, number_system

SYSTEMS = ["float32", "float64", "mpf:30", "mpf:50", "mpf:100"]
METHODS = [("forward", 1), ("central", 2), ("central", 4), ("central", 8),
           ("richardson", 2), ("complex_step", 2)]
POINTS = 5

# name: (f against a system, f' in mpmath, domain, amplitude of f')
FAMILY: dict[str, tuple[Callable, Callable, tuple[float, float], float]] = {
    "exp": (lambda S: S.exp, lambda m, x: m.exp(x), (0.5, 1.5), 0.0),
    "sin": (lambda S: S.sin, lambda m, x: m.cos(x), (0.5, 1.5), 1.0),
    "log": (lambda S: S.log, lambda m, x: 1 / x, (0.2, 3.0), 0.0),
    "rational": (lambda S: (lambda x: 1 / (1 + x * x)),
                 lambda m, x: -2 * x / (1 + x * x) ** 2, (0.5, 1.5), 0.0),
    "polynomial": (lambda S: (lambda x: ((x * x + 3) * x * x + 1) * x),
                   lambda m, x: 5 * x**4 + 9 * x**2 + 1, (0.5, 1.5), 0.0),
    "exp16x": (lambda S: (lambda x: S.exp(16 * x)), lambda m, x: 16 * m.exp(16 * x),
               (0.5, 1.5), 0.0),
    "sin32x": (lambda S: (lambda x: S.sin(32 * x)), lambda m, x: 32 * m.cos(32 * x),
               (0.5, 1.5), 32.0),
    "runge16": (lambda S: (lambda x: 1 / (1 + 16 * x * x)),
                lambda m, x: -32 * x / (1 + 16 * x * x) ** 2, (0.5, 1.5), 0.0),
}


def _reference(ns: NumberSystem) -> mpmath.MPContext:
    ctx = mpmath.MPContext()
    ctx.prec = 2 * round(-math.log2(ns.unit_roundoff)) + 20
    return ctx


def _exact(ctx: mpmath.MPContext, v: Any) -> Any:
    if isinstance(v, (np.floating, float)):
        return ctx.mpf(float(v))
    return ctx.mpf(v) if hasattr(v, "man_exp") else ctx.mpf(str(v))


def worst_error(spec: str, method: str, order: int) -> float:
    ns = number_system(spec)
    ctx = _reference(ns)
    worst = 0.0
    for make, df, (lo, hi), amplitude in FAMILY.values():
        f = make(ns.complex() if method == "complex_step" else ns)
        for k in range(1, POINTS + 1):
            x = ns.scalar(lo + (hi - lo) * ((k * (math.sqrt(5) - 1) / 2) % 1))
            est = derivative(f, x, method=method, order=order)
            true = df(ctx, _exact(ctx, x))
            error = abs(_exact(ctx, est.value) - true) / max(abs(true), amplitude)
            worst = max(worst, float(error))
    return worst


def main() -> None:
    header = "| method | " + " | ".join(SYSTEMS) + " |"
    print(header)
    print("|---|" + "---:|" * len(SYSTEMS))
    for method, order in METHODS:
        cells = [f"{worst_error(spec, method, order):.1e}" for spec in SYSTEMS]
        label = f"{method} {order}" if method in ("forward", "central") else method
        print(f"| {label} | " + " | ".join(cells) + " |")
    print("\nunit roundoff: " + ", ".join(f"{s} {number_system(s).unit_roundoff:.1e}"
                                          for s in SYSTEMS))


if __name__ == "__main__":
    main()
