"""The `NumberSystem` interface that every algorithm in precision_nn is written against.

An algorithm never calls ``np.exp`` or ``math.*`` directly: it receives a number system
``ns`` and calls ``ns.exp``, ``ns.one`` and friends, so one code path serves IEEE floats,
Decimal and mpmath at any precision (the idea of mpmath's context objects).
"""

from __future__ import annotations

import contextlib
import functools
from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Any

import numpy as np

__all__ = ["NumberSystem"]


class NumberSystem(ABC):
    """A number type together with its precision and its elementwise functions.

    Attributes
    ----------
    name : str
        The canonical spec, e.g. ``"float32"`` or ``"mpf:50"``; ``number_system(ns.name)``
        gives back an equal system.
    digits : int
        Significant decimal digits (for binary formats: ``floor(p·log10 2)``).
    unit_roundoff : float
        Half the distance from 1 to the next larger number: 2**-24 for float32,
        2**-53 for float64, 0.5·10**(1-N) for ``decimal:N``.
    is_complex : bool
        Whether elements are complex.
    """

    name: str
    digits: int
    unit_roundoff: float
    is_complex: bool

    # -- identity -------------------------------------------------------------------
    def __repr__(self) -> str:
        return f"number_system({self.name!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NumberSystem) and other.name == self.name

    def __hash__(self) -> int:
        return hash(self.name)

    def __reduce__(self):
        from precision_nn.numbers import number_system

        return (number_system, (self.name,))

    # -- counterparts ---------------------------------------------------------------
    @abstractmethod
    def complex(self) -> NumberSystem:
        """The complex counterpart (float64 -> complex128, mpf:N -> mpc:N)."""

    @abstractmethod
    def real(self) -> NumberSystem:
        """The real counterpart (complex128 -> float64, mpc:N -> mpf:N)."""

    # -- conversion -----------------------------------------------------------------
    @abstractmethod
    def asarray(self, values: Any) -> np.ndarray:
        """Convert `values` into an array of this system.

        Strings and integers convert exactly before a single rounding to this system's
        precision; floats convert from their exact binary value. Raises `ValueError` for a
        value the system cannot represent and `TypeError` for an array of another
        number system.
        """

    @abstractmethod
    def to_float(self, array: Any) -> np.ndarray:
        """Round an array of this system to float64 (complex128 when complex)."""

    def scalar(self, value: Any) -> Any:
        """One number of this system (e.g. ``ns.scalar("0.1")``)."""
        return self.asarray(value)[()]

    @functools.cached_property
    def zero(self) -> Any:
        """The additive identity of the system."""
        return self.scalar(0)

    @functools.cached_property
    def one(self) -> Any:
        """The multiplicative identity of the system."""
        return self.scalar(1)

    @abstractmethod
    def zeros(self, shape: int | tuple[int, ...]) -> np.ndarray:
        """An array of zeros of this system."""

    def owns(self, array: np.ndarray) -> bool:
        """Whether every element of `array` already belongs to this system."""
        return self.foreign_type(array) is None

    @abstractmethod
    def foreign_type(self, array: np.ndarray) -> str | None:
        """The name of the first element type of `array` that is not this system's."""

    # -- elementwise functions ------------------------------------------------------
    @abstractmethod
    def exp(self, x: Any) -> Any: ...

    @abstractmethod
    def log(self, x: Any) -> Any: ...

    @abstractmethod
    def sqrt(self, x: Any) -> Any: ...

    @abstractmethod
    def tanh(self, x: Any) -> Any: ...

    @abstractmethod
    def erf(self, x: Any) -> Any: ...

    @abstractmethod
    def sin(self, x: Any) -> Any: ...

    @abstractmethod
    def cos(self, x: Any) -> Any: ...

    @property
    @abstractmethod
    def pi(self) -> Any:
        """π rounded to this system."""

    @abstractmethod
    def real_part(self, x: Any) -> np.ndarray:
        """Real parts as an array of the real counterpart system (for ReLU and max)."""

    @abstractmethod
    def imag(self, x: Any) -> np.ndarray:
        """Imaginary parts as an array of the real counterpart system."""

    def isfinite(self, x: Any) -> np.ndarray:
        """Elementwise finiteness (False for NaN and ±inf)."""
        return np.isfinite(self.to_float(x))

    # -- precision scope --------------------------------------------------------------
    def context(self) -> contextlib.AbstractContextManager:
        """Activate this system's precision for code that needs it; restored on exit."""
        return _null_context()


def exact_mpmath(ctx: Any, value: Any, target: str) -> Any:
    """`value` (number, string, Decimal, mpf/mpc of any context) rounded once to ``ctx.prec``.

    Decimal and mpmath values convert from their exact value, floats from their exact
    binary value, strings from their exact decimal value.
    """
    import decimal
    from fractions import Fraction

    try:
        if isinstance(value, decimal.Decimal):
            return ctx.mpf(str(value))  # mpmath parses decimal strings with one rounding
        if isinstance(value, (np.floating, np.integer)):
            value = value.item() if np.dtype(type(value)).itemsize <= 8 else str(value)
        if isinstance(value, np.complexfloating):
            return ctx.mpc(exact_mpmath(ctx, value.real, target),
                           exact_mpmath(ctx, value.imag, target))
        if isinstance(value, Fraction):
            return ctx.mpf(value.numerator) / value.denominator
        if isinstance(value, (bool, np.bool_)):
            return ctx.mpf(int(value))
        if isinstance(value, str):
            return ctx.mpmathify(value.strip().replace(" ", ""))
        return ctx.convert(value)
    except (ValueError, TypeError) as exc:
        raise ValueError(
            f"cannot convert {value!r} ({type(value).__name__}) to a number of {target!r}."
        ) from exc


@contextlib.contextmanager
def _null_context() -> Iterator[None]:
    yield
