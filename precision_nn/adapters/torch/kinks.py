"""A kink scan for coordinates the generic check could not decide or failed.

Near a point where f is not differentiable (a ReLU input at 0, two tied maxima of a
max-pool window) every reference's error bar grows with the jump of the slope, and the
check reports those coordinates as undecidable. One-sided differences in float64 tell
this apart from noise: at a kink the forward and backward slopes
``(f(x+h) - f(x))/h`` and ``(f(x) - f(x-h))/h`` keep a gap of the size of the jump while
h shrinks, where for a smooth f the gap is ``h·|f''|`` and shrinks with h. The scan uses
steps ``KINK_FIRST·(1 + |x_i|)·4^-k``, k = 0..3 (a 64-fold shrinking); float64 rounding
adds ``4u|f|/h`` at most, far below the gaps of interest at these steps.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from precision_nn.gradcheck import Finding

__all__ = ["KINK_FIRST", "KINK_KEEP", "KINK_MAX", "KINK_STEPS", "kink_finding"]

KINK_FIRST = 2.0 ** -10
KINK_STEPS = 4
# the gap keeps at least this share over a 64-fold shrinking (a smooth f keeps 1/64)
KINK_KEEP = 0.5
KINK_MAX = 16  # coordinates scanned at most (the largest gaps first)
# a jump counts beyond this share of the gradient's scale (float64 rounding at the
# smallest step, 4u|f|/h with h ≈ 2^-16, is ~1e-11 relative)
KINK_LEAST = 1e-6


def _gaps(f: Callable, x: np.ndarray, i: int, f0: float) -> np.ndarray:
    steps = KINK_FIRST * (1 + abs(float(x[i]))) * 0.25 ** np.arange(KINK_STEPS)
    gaps = []
    for h in steps:
        up, down = x.copy(), x.copy()
        up[i] += h
        down[i] -= h
        gaps.append((float(f(up)) - f0) / h - (f0 - float(f(down))) / h)
    return np.abs(np.array(gaps))


def kink_finding(f: Callable, x: np.ndarray, indices: Sequence[int], labels: Mapping[int, str],
                 scale: float) -> list[Finding]:
    """`kink` for the coordinates among `indices` where f's one-sided slopes keep a gap.

    `f` takes a float64 flat point; `labels[i]` names coordinate i; `scale` is the
    gradient's size (max |reference|).
    """
    x = np.asarray(x, dtype=np.float64)
    f0 = float(f(x))
    hits, jumps = [], []
    for i in list(indices)[:KINK_MAX]:
        g = _gaps(f, x, int(i), f0)
        if g[-1] > KINK_LEAST * max(scale, 1e-300) and g[-1] >= KINK_KEEP * g[0]:
            hits.append(int(i))
            jumps.append(float(g[-1]))
    if not hits:
        return []
    where = ", ".join(labels[i] for i in hits[:5]) + (" …" if len(hits) > 5 else "")
    return [Finding("kink", f"At {where} the forward and backward slopes of the objective "
                    f"differ by up to {max(jumps):.3g} and the gap stays put while the step "
                    "shrinks 64-fold: the function is not differentiable there (a ReLU "
                    "input at 0, tied maxima in a max-pool window, a clamp at its bound). "
                    "Autograd returns one of the one-sided slopes, numerical differences "
                    "cannot decide; check at a point away from the kink.",
                    {"coordinates": hits, "jump": max(jumps)})]
