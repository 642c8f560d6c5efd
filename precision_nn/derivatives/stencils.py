"""Finite-difference stencils with weights computed exactly, in rational arithmetic.

A stencil of accuracy order ``p`` for the first derivative is a set of integer offsets
``s_j`` and rational weights ``w_j`` with

    Σ_j w_j f(x + s_j h) / h = f'(x) + C h^p f^(p+1)(x) + O(h^(p+1)),

where ``C = Σ_j w_j s_j^(p+1) / (p+1)!`` is the leading truncation constant. Weights come
from Fornberg's recursion on `fractions.Fraction`, so they are exact and can be compared
with the published tables digit for digit.

References
----------
.. [1] B. Fornberg, "Generation of finite difference formulas on arbitrarily spaced
   grids", Math. Comp. 51 (1988) 699-706, Table 1 (central) and Table 3 (one-sided).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

__all__ = ["CENTRAL_ORDERS", "ONE_SIDED_ORDERS", "Stencil", "fornberg_weights", "stencil"]

CENTRAL_ORDERS = (2, 4, 6, 8)
ONE_SIDED_ORDERS = (1, 2, 3, 4, 5, 6, 7, 8)


@dataclass(frozen=True)
class Stencil:
    """Integer offsets, exact weights and the truncation law of a first-derivative rule.

    Attributes
    ----------
    offsets : tuple of int
        The points ``x + s·h`` the rule samples (zero-weight points are dropped).
    weights : tuple of Fraction
        ``f'(x) ≈ Σ weights[j]·f(x + offsets[j]·h) / h``.
    order : int
        Accuracy order ``p``: the truncation error falls as ``h^p``.
    truncation_constant : Fraction
        ``C`` in the leading error term ``C·h^p·f^(p+1)(x)``.
    """

    offsets: tuple[int, ...]
    weights: tuple[Fraction, ...]
    order: int
    truncation_constant: Fraction

    @property
    def weight_sum(self) -> Fraction:
        """``Σ|w_j|``: how much rounding noise in ``f`` the rule amplifies (per 1/h)."""
        return sum((abs(w) for w in self.weights), Fraction(0))


def fornberg_weights(nodes: Sequence[Fraction | int], derivative: int = 1) -> tuple[Fraction, ...]:
    """Exact weights of the `derivative`-th derivative at 0 from values at `nodes`.

    Parameters
    ----------
    nodes : sequence of Fraction or int
        Distinct sample positions, in units of the step.
    derivative : int
        Derivative order (at most ``len(nodes) - 1``).

    Examples
    --------
    >>> [str(w) for w in fornberg_weights([-2, -1, 0, 1, 2])]
    ['1/12', '-2/3', '0', '2/3', '-1/12']
    """
    return _fornberg(tuple(Fraction(z) for z in nodes), derivative)


@functools.lru_cache(maxsize=4096)
def _fornberg(nodes: tuple[Fraction, ...], m: int) -> tuple[Fraction, ...]:
    # Fornberg (1988), the recursion of his Table "algorithm" with z = 0: c[j][k] is the
    # weight of node j for the k-th derivative using the nodes seen so far.
    n = len(nodes)
    if len(set(nodes)) != n or not 0 <= m < n:
        raise ValueError(f"need {m + 1} or more distinct nodes for derivative {m}; "
                         f"got {list(nodes)}.")
    c = [[Fraction(0)] * (m + 1) for _ in range(n)]
    c[0][0] = Fraction(1)
    c1, c4 = Fraction(1), nodes[0]
    for i in range(1, n):
        c2, c5, c4 = Fraction(1), c4, nodes[i]
        for j in range(i):
            c3 = nodes[i] - nodes[j]
            c2 *= c3
            if j == i - 1:
                for k in range(min(i, m), 0, -1):
                    c[i][k] = c1 * (k * c[i - 1][k - 1] - c5 * c[i - 1][k]) / c2
                c[i][0] = -c1 * c5 * c[i - 1][0] / c2
            for k in range(min(i, m), 0, -1):
                c[j][k] = (c4 * c[j][k] - k * c[j][k - 1]) / c3
            c[j][0] = c4 * c[j][0] / c3
        c1 = c2
    return tuple(row[m] for row in c)


def _offsets(method: str, order: int) -> tuple[int, ...]:
    if method == "central":
        return tuple(range(-order // 2, order // 2 + 1))
    if method == "forward":
        return tuple(range(order + 1))
    return tuple(range(-order, 1))


@functools.cache
def stencil(method: str, order: int) -> Stencil:
    """The first-derivative stencil of `method` ("forward", "backward", "central") and
    accuracy `order` (central: 2, 4, 6, 8; one-sided: 1 to 8).

    Examples
    --------
    >>> s = stencil("central", 2)
    >>> s.offsets, [str(w) for w in s.weights], str(s.truncation_constant)
    ((-1, 1), ['-1/2', '1/2'], '1/6')
    >>> [str(w) for w in stencil("forward", 2).weights]
    ['-3/2', '2', '-1/2']
    """
    allowed = CENTRAL_ORDERS if method == "central" else ONE_SIDED_ORDERS
    if method not in ("central", "forward", "backward") or order not in allowed:
        raise ValueError(f"no {method!r} stencil of order {order!r}; orders are {allowed}.")
    nodes = _offsets(method, order)
    weights = fornberg_weights(nodes)
    kept = [(s, w) for s, w in zip(nodes, weights) if w != 0]
    # leading error term: Σ w_j (s_j h)^(p+1) f^(p+1) / ((p+1)! h)
    constant = sum((w * Fraction(s) ** (order + 1) for s, w in kept), Fraction(0))
    return Stencil(
        offsets=tuple(s for s, _ in kept),
        weights=tuple(w for _, w in kept),
        order=order,
        truncation_constant=constant / math.factorial(order + 1),
    )
