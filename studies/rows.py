"""Helpers on tidy result rows shared by the studies (rows as they come from the cell log)."""

from __future__ import annotations

import math

__all__ = ["finite", "rows_u"]


def finite(value: object) -> bool:
    """Whether `value` is a finite number (not None, NaN, ±inf, a string or a bool)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) \
        and math.isfinite(value)


def rows_u(rows: list[dict], numbers: str) -> float:
    """The unit roundoff ``u`` recorded in the rows of number system `numbers`.

    Raises
    ------
    KeyError
        When no row has ``numbers == numbers`` (the message names the systems present).
    """
    for row in rows:
        if row["numbers"] == numbers:
            return row["u"]
    present = sorted({row["numbers"] for row in rows})
    raise KeyError(f"no row of number system {numbers!r}; the rows hold {present}.")
