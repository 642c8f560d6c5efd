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
        An estimate of the absolute error of `value`, same shape as `value`; NaN only
        where no estimate exists, and then `note` says why.
    h : float or ndarray
        The step actually used ((x + h) - x, not the requested one); for Richardson the
        last step of the sequence.
    evaluations : int
        Calls of the function (one point counts once, also inside a batch).
    method : str
        The method that produced the estimate.
    note : str
        Why an error estimate is missing or how it was formed.
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
