"""`Estimate`: a numerical derivative together with its own error estimate."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Estimate"]


@dataclass(frozen=True)
class Estimate:
    """A derivative estimate that carries its error.

    Attributes
    ----------
    value : scalar or ndarray
        The derivative (or gradient), in the number system it was computed in.
    error : float or ndarray of float
        An estimate of the absolute error of `value`, same shape as `value`. ``inf``
        where no derivative was found (a kink, pole or jump closer than any usable step,
        or an `f` with no digits left at the scale of the spacing of x); `note` then
        says which entries and why. Never NaN: `derivative` raises a ValueError instead.
    h : float or ndarray
        The step actually used ((x + h) - x, not the requested one); for Richardson the
        last step of the sequence.
    evaluations : int
        Calls of the function (one point counts once, also inside a batch).
    method : str
        The method that produced the estimate; differs from the one asked for after a
        fallback (a complex step that overflows or disagrees with f's real arithmetic
        falls back to ``"richardson"``), and `note` says why.
    note : str
        How the error estimate was formed, then anything found on the way: a fallback,
        entries without a derivative, an `f` noisier than its number system (the bars
        then count the measured noise).
    certified : bool
        Whether `error` is a proven bound, ``|value − f'(x)| ≤ error`` (``method="taylor"``
        in a ball system), rather than an estimate.
    """

    value: Any
    error: Any
    h: Any
    evaluations: int
    method: str = ""
    note: str = ""
    numbers: Any = field(default=None, compare=False, repr=False)
    certified: bool = False

    def __post_init__(self) -> None:
        if np.shape(self.error) != np.shape(self.value):
            raise ValueError(
                f"`error` must have the shape of `value` {np.shape(self.value)}; "
                f"got {np.shape(self.error)}."
            )
