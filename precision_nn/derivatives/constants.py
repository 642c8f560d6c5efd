"""Exact small constants of a number system, converted once.

The stencils multiply by small integers (weights over a common denominator, offsets
``k``, binomial coefficients) and the complex step by ``i``. Converting such a constant
goes through the system's checked parsing (`NumberSystem.scalar`, tens of microseconds
in float64: a quarter of the fixed cost of a 100-variable gradient before this cache).
An integer or ``i`` converts to the same number of a system every time (exactly for
the small integers of the stencils; Richardson's ``4^j − 1`` rounds in float64 beyond
2^53 as it always did), so one conversion per system serves every call.

Multiply an array by a constant as ``array * constant``, never ``constant * array``: an
mpmath scalar on the left tries to convert the whole array first, and mpmath's
conversion of a numpy value formats it with ``repr()`` before giving up (588 us against
53 us for 100 mpf:30 values, about a quarter of a 30-digit gradient's fixed cost).
"""

from __future__ import annotations

import functools
from typing import Any

from precision_nn.numbers import NumberSystem

__all__ = ["exact_constant"]


@functools.lru_cache(maxsize=4096, typed=True)
def exact_constant(ns: NumberSystem, value: complex) -> Any:
    """``ns.scalar(value)`` for an integer, or ``1j`` in a complex system, cached per
    system (the conversion is deterministic).

    Examples
    --------
    >>> from precision_nn.numbers import number_system
    >>> ns = number_system("mpf:30")
    >>> exact_constant(ns, -3) == ns.scalar(-3), exact_constant(ns, 2) is exact_constant(ns, 2)
    (True, True)
    """
    if isinstance(value, bool) or not (isinstance(value, int) or value == 1j):
        raise ValueError(f"`value` must be an integer or 1j; got {value!r}. Convert other "
                         "constants with ns.scalar.")
    return ns.scalar(value)
