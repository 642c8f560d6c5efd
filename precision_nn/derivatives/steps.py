"""The error model that chooses steps: truncation ∝ h^p against rounding ∝ ε/h.

A rule of accuracy order ``p`` evaluated with step ``h`` in a system of unit roundoff
``u`` has total error about

    E(h) = |c| h^p + ε Σ|w_j| / h,      ε = κ u |f|,

where ``c = C f^(p+1)(x)`` is the truncation coefficient and ``ε`` the rounding noise of
one evaluation of ``f``. ``dE/dh = 0`` gives the optimal step

    h* = (ε Σ|w_j| / (p |c|))^(1/(p+1)),     E(h*) ∝ ε^(p/(p+1)).

For central differences (p = 2, Σ|w| = 1, C = 1/6) this is the classical
``h* = (3 ε / |f'''|)^(1/3)`` (Sauer, *Numerical Analysis*, §5.1.2; Numerical Recipes
§5.7). ``c`` is not known in advance: it is measured from one more point, as
``c ≈ C Δ^(p+1) f / h^(p+1)`` (`finite_difference`), starting from the scale-only guess
``h = u^(1/(p+1)) · max(|x|, 1)`` and refined until the step settles.

Steps are powers of the system's radix (2 for binary and mpmath, 10 for Decimal), so that
``k·h`` is exact for the small integers ``k`` of a stencil and, for ``h`` a multiple of the
spacing of ``x``, ``x + k·h`` is exact too.
"""

from __future__ import annotations

import math

import numpy as np

from precision_nn.numbers import NumberSystem

__all__ = [
    "MAX_STEP_ITERATIONS",
    "NOISE_ROUNDINGS",
    "check_steps",
    "initial_steps",
    "log2_unit_roundoff",
    "optimal_steps",
    "radix",
    "radix_steps",
    "settled",
]

# κ: one evaluation of a well-conditioned f is assumed accurate to a couple of roundings
# of its value (the last operation plus an inherited one), so ε = 2 u |f| (Higham 2002,
# §1.4 on what "accurate to working precision" can mean for a computed function).
NOISE_ROUNDINGS = 2
# refine h* at most this often; each round costs one pair of stencil evaluations. The
# step is settled when h* rounds to the power of the radix it was measured at (a looser
# rule, say within 4×, costs 4^p in truncation: 256× for order 4).
MAX_STEP_ITERATIONS = 4
# a user's step may be at most this many times max(|x|, 1) (`check_steps`) ...
MAX_STEP_RATIO = 1.0
# ... and the points x ± k·h, k up to this (a witness of order 8 reaches 5), must be finite
MAX_REACH = 8
# when f is not finite at a trial step (it left the domain of f), shrink by this factor
SHRINK_ON_DOMAIN_EXIT = 16.0
# with no measurable truncation (c = 0, e.g. a low-degree polynomial) grow the step
GROWTH_WITHOUT_TRUNCATION = 16.0


def log2_unit_roundoff(ns: NumberSystem) -> float:
    """``log2(u)``, also for precisions whose ``u`` underflows a Python float."""
    return float(ns.log2_unit_roundoff)


def radix(ns: NumberSystem) -> int:
    """The base steps are powers of (``ns.radix``: 10 for Decimal, 2 otherwise)."""
    return int(ns.radix)


def settled(h: np.ndarray, h_star: np.ndarray, ns: NumberSystem) -> np.ndarray:
    """Whether h* rounds (in log scale) to the same power of the radix as `h`."""
    base = math.log(radix(ns))
    return np.rint(np.log(h_star) / base) == np.rint(np.log(h) / base)


def scales(x_float: np.ndarray) -> np.ndarray:
    """The length scale ``max(|x|, 1)`` of each coordinate (absolute near 0)."""
    return np.maximum(np.abs(x_float), 1.0)


def initial_steps(x_float: np.ndarray, ns: NumberSystem, order: int) -> np.ndarray:
    """``u^(1/(p+1)) · max(|x|, 1)``: the optimal step when ``|f| ≈ |f^(p+1)|``."""
    return scales(x_float) * np.exp2(ns.error_dtype.type(log2_unit_roundoff(ns) / (order + 1)))


def optimal_steps(h: np.ndarray, coefficient: np.ndarray, noise: np.ndarray,
                  order: int) -> np.ndarray:
    """h* from the truncation coefficient and the noise measured at steps ``h``.

    Parameters
    ----------
    h : float array
        The steps the measurement was made at.
    coefficient : float array
        ``|c| = |C f^(p+1)|``, measured.
    noise : float array
        Rounding noise of ``D(h)``, i.e. ``ε Σ|w_j| / h``.
    order : int
        Accuracy order ``p``.

    Examples
    --------
    Central differences (p = 2) of a function with third derivative 1 (c = 1/6) and
    noise ``ε Σ|w| = 1e-16``: ``h* = (3e-16)^(1/3)``.

    >>> import numpy as np
    >>> h_star = optimal_steps(np.array([1e-5]), np.array([1 / 6]), np.array([1e-11]), 2)
    >>> print(f"{h_star[0]:.3g}")
    6.69e-06
    """
    amplified = noise * h  # ε Σ|w|
    with np.errstate(divide="ignore", invalid="ignore"):
        h_star = (amplified / (order * coefficient)) ** (1.0 / (order + 1))
    no_truncation = ~np.isfinite(h_star) | (coefficient == 0)
    return np.where(no_truncation, h * GROWTH_WITHOUT_TRUNCATION, h_star)


def radix_steps(h: np.ndarray, ns: NumberSystem) -> np.ndarray:
    """Each float step rounded (in log scale) to a power of the radix, as an array of `ns`."""
    base = radix(ns)
    exponents = np.rint(np.log(np.asarray(h, dtype=ns.error_dtype)) / math.log(base)).astype(int)
    return np.asarray(ns.radix_powers(exponents))


def check_steps(ns: NumberSystem, x: np.ndarray, h: np.ndarray) -> None:
    """Refuse a user's step that no difference quotient can use: longer than the length
    scale ``max(|x|, 1)`` times `MAX_STEP_RATIO`, or one whose points leave the range."""
    x_float = ns.magnitude(x)
    h_float = ns.real().magnitude(h)
    limit = MAX_STEP_RATIO * scales(x_float)
    with np.errstate(over="ignore", invalid="ignore"):
        far = x_float + MAX_REACH * h_float
    if np.any(h_float > limit):
        i = int(np.flatnonzero(h_float > limit)[0])
        raise ValueError(
            f"`h` = {h_float[i]:.3g} is longer than the length scale max(|x|, 1) = "
            f"{scales(x_float)[i]:.3g} of `x` (entry {i}): a difference over such a step "
            "says nothing about f'(x) and its error estimate cannot be trusted. Pass a step "
            "well below the length over which f changes, or h=None to choose it.")
    if not np.all(np.isfinite(far)):
        i = int(np.flatnonzero(~np.isfinite(far))[0])
        raise ValueError(
            f"`x` = {x_float[i]:.3g} (entry {i}) is at the edge of the range of "
            f"{ns.name!r}: the points x ± k·h overflow. Rescale x, or compute in a wider "
            "system (e.g. numbers='mpf:30').")
