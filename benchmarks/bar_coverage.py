"""Do `derivative`'s error bars bound the true error? Counts per number system, one run.

    python benchmarks/bar_coverage.py            # float64, float32, mpf:30 (about a minute)

Functions whose intermediates are larger than their value (cosh(x) − 1, exp(x) − 1,
sqrt(1 + x) − 1, log(1 + x) − x) beside ordinary ones (exp, sin, tanh), at points from
0.01 to 2.9 (float64 also at 7.1), with every method and ``h=None``; the reference is the
closed-form derivative in mpmath at 80 digits, at the point as the system represents it.
A *short bar* is a case with ``|value − f'(x)| > error``. Printed: short bars / cases and
the median bar relative to ``|f'(x)|``, and each short case.

Measured 2026-12-02 (one run, about 2 s):

=======  ==============================  ==============================
system   before (15f0048)                after (noise measurement)
=======  ==============================  ==============================
float64  8 / 203, median bar 1.2e-10     0 / 203, median bar 1.9e-10
float32  11 / 174, 7.2e-05               0 / 174, 1.5e-04
mpf:30   3 / 168, 8.6e-21                0 / 168, 1.5e-20
=======  ==============================  ==============================

Before, e.g. float64 cosh(x) − 1 at 0.3, central: bar 1.06e-11, true error 1.72e-11;
float32 sqrt(1 + x) − 1 at 0.01, Richardson: bar 2.6e-4, true error 2.5e-3. The median
bar grew 1.6-2×: the price of counting f's measured noise (`precision_nn.derivatives.noise`).
"""

from __future__ import annotations

import argparse

import mpmath
import numpy as np

from precision_nn.derivatives import derivative
from precision_nn.numbers import NumberSystem, number_system

METHODS = ("central", "forward", "backward", "richardson", "complex_step")
POINTS = ("0.01", "0.1", "0.3", "0.7", "1.3", "2.9")


def functions(ns: NumberSystem) -> dict:
    """name: (f written against `ns`, f' in mpmath)."""
    return {
        "cosh(x) - 1": (lambda x: ns.exp(x) / 2 + ns.exp(-x) / 2 - 1, mpmath.sinh),
        "exp(x) - 1": (lambda x: ns.exp(x) - 1, mpmath.exp),
        "sqrt(1 + x) - 1": (lambda x: ns.sqrt(1 + x) - 1,
                            lambda x: 1 / (2 * mpmath.sqrt(1 + x))),
        "log(1 + x) - x": (lambda x: ns.log(1 + x) - x, lambda x: 1 / (1 + x) - 1),
        "exp": (ns.exp, mpmath.exp),
        "sin": (ns.sin, mpmath.cos),
        "tanh": (ns.tanh, lambda x: 1 / mpmath.cosh(x) ** 2),
    }


def _exact_point(x) -> mpmath.mpf:
    """The point (or a value) as the system holds it, in mpmath."""
    if np.issubdtype(np.asarray(x).dtype, np.floating):
        return mpmath.mpf(float(x))  # exact: a binary float
    return mpmath.mpf(str(x))  # mpmath and Decimal numbers print all their digits


def coverage(spec: str) -> tuple[int, int, float, list[str]]:
    """Short bars, cases, the median relative bar and the short cases of one system. A
    method the system cannot run at a point (the complex step of float16, f leaving its
    domain) is skipped, not counted."""
    ns = number_system(spec)
    points = POINTS + (("7.1",) if spec == "float64" else ())
    short, bars, misses = 0, [], []
    for name, (f, df) in functions(ns).items():
        for text in points:
            x = ns.asarray(text)
            with mpmath.workdps(80):
                exact = df(_exact_point(x))
            for method in METHODS:
                try:
                    est = derivative(f, x, method=method, numbers=ns)
                except (ValueError, TypeError):
                    continue
                with mpmath.workdps(80):
                    true_error = float(abs(_exact_point(est.value) - exact))
                    bars.append(float(est.error) / float(abs(exact)))
                if not true_error <= float(est.error):
                    short += 1
                    misses.append(f"{name} at {text}, {method}: bar {float(est.error):.2e}, "
                                  f"true error {true_error:.2e}")
    return short, len(bars), float(np.median(bars)), misses


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("systems", nargs="*", default=["float64", "float32", "mpf:30"])
    args = parser.parse_args(argv)
    print("| system | short bars / cases | median bar / |f'| |")
    print("|---|---:|---:|")
    details = []
    for spec in args.systems:
        short, cases, median, misses = coverage(spec)
        print(f"| {spec} | {short} / {cases} | {median:.1e} |")
        details += [f"{spec}: {m}" for m in misses]
    for line in details:
        print(f"- {line}")


if __name__ == "__main__":
    main()
