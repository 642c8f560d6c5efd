"""The point a derivative is taken at, converted and validated once at the entry."""

from __future__ import annotations

from typing import Any

import numpy as np

from precision_nn.numbers import NumberSystem

__all__ = ["convert_point"]


def convert_point(ns: NumberSystem, x: Any, scalar: bool) -> np.ndarray:
    """`x` as an array of `ns`: a scalar for `derivative`, a non-empty array for
    `gradient`, finite either way; a `ValueError` names what is wrong and the fix."""
    try:
        arr = ns.asarray(x)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"`x` cannot be represented in {ns.name!r}: {exc}") from exc
    if scalar and arr.ndim != 0:
        raise ValueError(f"`x` must be a scalar for `derivative`; got shape {arr.shape}. "
                         "Use `gradient` for arrays.")
    if not scalar and (arr.ndim == 0 or arr.size == 0):
        raise ValueError(f"`x` must be a non-empty array for `gradient`; got shape "
                         f"{arr.shape}. Use `derivative` for a scalar.")
    if not np.all(ns.isfinite(arr)):
        raise ValueError(f"`x` must be finite; got {x!r}.")
    return arr
