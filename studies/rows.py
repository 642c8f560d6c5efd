"""Helpers shared by the studies: tests on row values (as they come from the cell log), and
what a number system supports, asked of the system itself."""

from __future__ import annotations

import math

from precision_nn.numbers import number_system

__all__ = ["arithmetic", "finite", "has_complex", "rows_log10_u"]


def finite(value: object) -> bool:
    """Whether `value` is a finite number (not None, NaN, ±inf, a string or a bool)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) \
        and math.isfinite(value)


def rows_log10_u(rows: list[dict], numbers: str) -> float:
    """log10 of the unit roundoff (``log10_u``) recorded in the rows of system `numbers`.

    Raises
    ------
    KeyError
        When no row has ``numbers == numbers`` (the message names the systems present).
    """
    for row in rows:
        if row["numbers"] == numbers:
            return row["log10_u"]
    present = sorted({row["numbers"] for row in rows})
    raise KeyError(f"no row of number system {numbers!r}; the rows hold {present}.")


def has_complex(numbers: str) -> bool:
    """Whether number system `numbers` has a complex counterpart (the complex step needs
    one; float16 and Decimal have none), as the system itself says."""
    try:
        number_system(numbers).complex()
    except (TypeError, ValueError, NotImplementedError):
        return False
    return True


RADIX_NAMES = {2: "binary", 10: "decimal"}


def arithmetic(numbers: str) -> str:
    """The kind of arithmetic of number system `numbers`, asked of the system: its radix
    and whether it is ball arithmetic, e.g. ``"binary"`` (mpf:N and mpfr:N, which round
    to the same 2^-p), ``"binary balls"`` (arb:N) or ``"decimal"``. Systems of one kind
    and digits have the same unit roundoff, so their errors follow one law in u."""
    ns = number_system(numbers)
    kind = RADIX_NAMES.get(ns.radix, f"radix {ns.radix}")
    return f"{kind} balls" if ns.is_ball else kind
