"""The offsets a step really realises, and the exact weights of a rule on them.

A step ``h`` is realised as ``h_r = (x + h) − x`` (exact by Sterbenz's lemma, `realize`);
the points are ``x + k·h_r``, and when one of them is not exactly ``x + k·h_r`` (a binade
boundary between them) the weights of the rule, and of the witness difference that
measures its truncation, are recomputed exactly for the signed offsets it really has
(Fornberg on rationals, `real_weights`). Split from `finite_difference`, which uses them.
"""

from __future__ import annotations

import functools
import math
from fractions import Fraction
from typing import Any

import numpy as np

from precision_nn.derivatives.constants import exact_constant
from precision_nn.derivatives.stencils import Stencil, fornberg_weights
from precision_nn.numbers import NumberSystem
from precision_nn.numbers.literals import exact_parts

__all__ = ["integer_weights", "offset_column", "real_weights", "realize", "to_fraction",
           "witness_difference", "witness_offsets"]


def realize(ns: NumberSystem, x: np.ndarray, h: np.ndarray) -> np.ndarray:
    """``(x + h) − x`` in `ns`: the step the arithmetic really takes."""
    with ns.context():
        h_r = (x + h) - x
    if not np.all(ns.magnitude(h_r) > 0):
        raise ValueError(
            "`h` is below the spacing of the floating-point numbers at `x`, so x + h == x "
            f"in {ns.name!r}; use a larger `h` (or h=None to choose it)."
        )
    return h_r


def offset_column(ns: NumberSystem, ks: tuple[int, ...]) -> np.ndarray:
    """The offsets `ks` as a column of `ns` (exact small integers, `exact_constant`)."""
    column = ns.zeros((len(ks), 1))
    for r, k in enumerate(ks):
        column[r, 0] = exact_constant(ns, k)
    return column


@functools.cache
def integer_weights(rule: Stencil) -> tuple[tuple[int, ...], int, np.ndarray]:
    """The rule's weights as integers over one common denominator (each product n_j·f_j
    then rounds once), that denominator, and the |weights| as floats."""
    denominator = math.lcm(*(w.denominator for w in rule.weights))
    numerators = tuple(int(w * denominator) for w in rule.weights)
    sizes = np.array([float(abs(w)) for w in rule.weights])
    sizes.setflags(write=False)
    return numerators, denominator, sizes


def real_weights(ns: NumberSystem, nodes: list[int], offsets: list[Any], step: Any,
                 derivative: int) -> tuple[Fraction, ...]:
    """Exact weights of the `derivative`-th derivative, in units of `step`, for points
    whose realised offsets from x are `offsets` (nominally ``k·step`` for k in `nodes`):
    Fornberg (1988) on the rationals ``offset/step``, signs included.

    Raises
    ------
    ValueError
        When two of the points coincide: the step is at the spacing of the numbers at x,
        where no difference quotient exists.
    """
    unit = to_fraction(step)
    real = [to_fraction(r) / unit for r in offsets]
    if len(set(real)) < len(real):
        raise ValueError(
            f"`h` is too close to the spacing of the numbers of {ns.name!r} at `x`: the "
            f"points x + k·h for k in {nodes} round to only {len(set(real))} distinct "
            "numbers (a power of the radix lies between them), so no difference quotient "
            "exists; use a larger `h` (or h=None to choose it)."
        )
    return fornberg_weights(real, derivative)


def witness_offsets(rule: Stencil) -> tuple[int, ...]:
    """``p + 2`` consecutive offsets that contain the rule's ``p + 1``-wide span: their
    (p+1)-th difference measures ``h^(p+1) f^(p+1)`` at the cost of one more point (plus
    f(x), shared). Backward rules extend to the left, so no point lies beyond x."""
    low, high = min(rule.offsets), max(rule.offsets)
    if high == 0:
        return tuple(range(low - 1, high + 1))
    return tuple(range(low, high + 2))


def witness_difference(ns: NumberSystem, witness: tuple[int, ...], h: np.ndarray,
                        values: dict[int, np.ndarray], offsets: dict[int, np.ndarray],
                        exact: dict[int, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """``Δ^(p+1) f ≈ h^(p+1) f^(p+1)`` over the witness points and the |weights| used: the
    binomial ones, or where the offsets are irregular the exact (p+1)-th derivative weights
    of the real offsets (on regular offsets those are the binomial ones)."""
    p1 = len(witness) - 1
    binomial = [(-1) ** (p1 - j) * math.comb(p1, j) for j in range(p1 + 1)]
    with ns.context():
        difference = sum(values[k] * exact_constant(ns, b) for b, k in zip(binomial, witness))
    weights = np.repeat(np.abs(np.array(binomial, dtype=float))[:, None], len(h), axis=1)
    regular = np.logical_and.reduce([exact[k] for k in witness])
    for i in np.flatnonzero(~regular):
        real = real_weights(ns, list(witness), [offsets[k][i] for k in witness], h[i], p1)
        with ns.context():
            difference[i] = sum(ns.scalar(w) * values[k][i] for k, w in zip(witness, real))
        weights[:, i] = [float(abs(w)) for w in real]
    return difference, weights


def to_fraction(v: Any) -> Fraction:
    """The exact rational value of a finite number of any system (real part of a complex
    one), sign included."""
    real, _ = exact_parts(v, "Fraction")
    return Fraction(real)
