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
from fractions import Fraction
from typing import Any

import numpy as np

from precision_nn.numbers.composite import CompositeFunctions

__all__ = ["FunctionsByName", "NumberSystem", "error_dtype_for", "fast_real_system",
           "optional_system", "wide_from_parts", "wide_power_of_two"]


class NumberSystem(CompositeFunctions, ABC):
    """A number type together with its precision and its elementwise functions.

    Attributes
    ----------
    name : str
        The canonical spec, e.g. ``"float32"`` or ``"mpf:50"``; ``number_system(ns.name)``
        gives back an equal system.
    digits : int
        Significant decimal digits (for binary formats: ``floor(p·log10 2)``).
    unit_roundoff : float or numpy.longdouble
        Half the distance from 1 to the next larger number: 2**-24 for float32,
        2**-53 for float64, 0.5·10**(1-N) for ``decimal:N``. A Python float where error
        bars fit float64 (see `error_dtype`), a ``numpy.longdouble`` beyond.
    is_complex : bool
        Whether elements are complex.
    radix : int
        The base of the significand: 2 for IEEE and mpmath, 10 for Decimal. Steps are
        chosen as powers of it, so that ``x + h`` is exact where it can be.
    object_elements : bool
        Whether elements are Python objects in numpy ``object`` arrays (Decimal, mpmath)
        rather than a numpy dtype.
    is_ball : bool
        Whether every element carries a rigorous error radius (ball arithmetic).
    log2_unit_roundoff : float
        ``log2(unit_roundoff)``, exact where ``unit_roundoff`` itself would underflow a
        float (beyond ~300 digits).
    """

    name: str
    digits: int
    unit_roundoff: float
    is_complex: bool
    radix: int = 2
    object_elements: bool = True
    is_ball: bool = False

    @property
    def log2_unit_roundoff(self) -> float:
        """``log2(u)``; overridden by systems whose ``u`` underflows a float."""
        return float(np.log2(self.unit_roundoff))

    @functools.cached_property
    def error_dtype(self) -> np.dtype:
        """The float type of this system's error bars, steps and tolerances.

        ``float64`` while ``u**3`` is a normal float64 (``u >= 2**-340``, about 100
        digits): error models multiply up to three powers of ``u`` (a complex step's
        truncation term is ``h**2`` times a third derivative, with ``h`` proportional to
        ``u``). Beyond, ``numpy.longdouble`` where its exponent reaches ``u**3``
        (x86-64: 15 exponent bits, systems to about 1,600 digits); elsewhere a
        `ValueError` says so rather than letting error bars underflow to 0.
        """
        return error_dtype_for(self.log2_unit_roundoff, self.name)

    def magnitude(self, x: Any) -> np.ndarray:
        """``|x|`` elementwise as an array of `error_dtype` (no underflow to 0)."""
        if self.error_dtype == np.float64:
            return np.abs(self.to_float(x))
        return _widened(x, self._wide_abs)

    def to_error_float(self, x: Any) -> np.ndarray:
        """Real parts of `x`, signed, as an array of `error_dtype` (``to_float`` where
        float64 suffices): for remainders and differences far below the float range."""
        if self.error_dtype == np.float64:
            return np.real(self.to_float(x))
        return _widened(x, self._wide_real)

    def _wide_real(self, v: Any) -> np.longdouble:
        """One element's real part as a long double (systems wider than float64 say how)."""
        raise NotImplementedError(f"{self.name!r} gives no error bars beyond float64")

    def _wide_abs(self, v: Any) -> np.longdouble:
        """One element's modulus as a long double (real systems: |real part|)."""
        return abs(self._wide_real(v))

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

    def wider(self) -> NumberSystem | None:
        """The next wider system of the same family that a numpy function can run in
        (``float32`` → ``float64``, ``mpf:N`` → ``mpf:2N``), or None when there is none."""
        return None

    # -- conversion -----------------------------------------------------------------
    @abstractmethod
    def asarray(self, values: Any) -> np.ndarray:
        """Convert `values` into an array of this system.

        Strings and integers convert exactly before a single rounding to this system's
        precision; floats (longdouble included), Decimal and mpmath values of any precision
        convert from their exact value. Raises `ValueError` for a string that is not a
        number or a value the system cannot represent (beyond its range, or complex in a
        real system), `TypeError` for an object that is not a number.
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
    def log1p(self, x: Any) -> Any:
        """``log(1 + x)``, accurate relative to the result also for tiny ``|x|`` (where
        ``log(1 + x)`` would lose ``x`` in the rounding of ``1 + x``); complex results are
        accurate in each part. The stable losses need it (``softplus``, log-sum-exp)."""

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

    def radix_powers(self, exponents: np.ndarray) -> np.ndarray:
        """``radix ** e`` for each integer exponent, exactly, as an array of this system."""
        exponents = np.asarray(exponents, dtype=np.int64)
        out = np.empty(exponents.shape, dtype=object)
        for idx, e in np.ndenumerate(exponents):
            out[idx] = self.scalar(Fraction(self.radix) ** int(e))
        return out

    def fast_reference_system(self, *, digits: int | None = None) -> NumberSystem | None:
        """A faster system, at least as precise, in which a numerical reference for a
        computation of this system may be evaluated (the network check's automatic
        reference), or None when there is none (the default). With `digits` it is a real
        system of at least that many significant decimal digits for a real reference
        whose method loses a known share of them (central differences lose a third): the
        faster of the installed ones for that (`fast_real_system`).

        Its numbers hold this system's exactly when it has the same `radix` and at least
        the precision (`holds_exactly`); otherwise converting each input rounds it once,
        by at most the fast system's unit roundoff relative, and the caller accounts for
        that in its error bars.

        Examples
        --------
        >>> from precision_nn.numbers import number_system
        >>> number_system("float64").fast_reference_system() is None
        True
        """
        return None

    def _fast_digits(self, own: int, digits: int | None) -> int:
        """`own` digits, or `digits` where that is more (validated: a positive int)."""
        if digits is None:
            return own
        if isinstance(digits, bool) or not isinstance(digits, (int, np.integer)) or digits < 1:
            raise ValueError(f"`digits` must be a positive integer (decimal digits of the "
                             f"fast system); got {digits!r}.")
        return max(own, int(digits))

    def holds_exactly(self, other: NumberSystem) -> bool:
        """Whether every finite number of `other` is a number of this system (same radix,
        at least as many digits of it).

        Examples
        --------
        >>> from precision_nn.numbers import number_system
        >>> number_system("mpf:40").holds_exactly(number_system("mpf:30"))
        True
        >>> number_system("mpf:40").holds_exactly(number_system("decimal:20"))  # 0.1
        False
        """
        return self.radix == other.radix and \
            self.log2_unit_roundoff <= other.log2_unit_roundoff

    def matmul(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """The matrix product the network uses (``a @ b``; systems with a faster product
        override it)."""
        return a @ b

    def isfinite(self, x: Any) -> np.ndarray:
        """Elementwise finiteness (False for NaN and ±inf)."""
        return np.isfinite(self.to_float(x))

    # -- precision scope --------------------------------------------------------------
    def context(self) -> contextlib.AbstractContextManager:
        """Activate this system's precision for code that needs it; restored on exit."""
        return _null_context()


def fast_real_system(digits: int) -> NumberSystem | None:
    """The fastest installed real system of `digits` decimal digits for a real reference
    computed on a network's loss: ``arb:digits`` (python-flint) ahead of ``mpfr:digits``
    (gmpy2), None without either.

    Arb's balls enclose the rounding of every value they hold (the caller adds their
    radii to its error bars), and its midpoint arithmetic with flint's matrix products
    evaluated the structure-aware central differences of a [20, 30, 10] × 8 network at
    83 digits in 2.5 s against MPFR's 5.2 s (one run, same machine).

    Examples
    --------
    >>> system = fast_real_system(60)
    >>> system is None or (system.name in ("arb:60", "mpfr:60") and not system.is_complex)
    True
    """
    return optional_system(f"arb:{digits}") or optional_system(f"mpfr:{digits}")


def optional_system(spec: str) -> NumberSystem | None:
    """`number_system(spec)`, or None when its optional package is not installed (for
    `NumberSystem.fast_reference_system`)."""
    from precision_nn.numbers import number_system

    try:
        return number_system(spec)
    except ValueError:
        return None


class FunctionsByName:
    """The elementwise functions of a system that evaluates each one by name,
    ``self._apply(name, x)`` (mpfr, arb): one place instead of eight forwarding methods
    per family. Listed before `NumberSystem` among the bases."""

    def exp(self, x: Any) -> Any:
        return self._apply("exp", x)

    def log(self, x: Any) -> Any:
        return self._apply("log", x)

    def log1p(self, x: Any) -> Any:
        return self._apply("log1p", x)

    def sqrt(self, x: Any) -> Any:
        return self._apply("sqrt", x)

    def tanh(self, x: Any) -> Any:
        return self._apply("tanh", x)

    def erf(self, x: Any) -> Any:
        return self._apply("erf", x)

    def sin(self, x: Any) -> Any:
        return self._apply("sin", x)

    def cos(self, x: Any) -> Any:
        return self._apply("cos", x)

    def _apply(self, name: str, x: Any) -> Any:
        raise NotImplementedError


# error models use up to u**3 (see NumberSystem.error_dtype)
ERROR_POWERS = 3


def error_dtype_for(log2_u: float, name: str) -> np.dtype:
    """float64 when ``u**ERROR_POWERS`` is a normal float64, else a wide enough longdouble."""
    needed = ERROR_POWERS * log2_u
    if needed > np.finfo(np.float64).minexp:
        return np.dtype(np.float64)
    if needed > np.finfo(np.longdouble).minexp:
        return np.dtype(np.longdouble)
    raise ValueError(
        f"{name!r} is too precise for this platform's error bars: they need powers of its "
        f"unit roundoff down to 2**{needed:.0f}, below the smallest long double "
        f"(2**{np.finfo(np.longdouble).minexp}); use fewer digits."
    )


def wide_power_of_two(log2_value: float) -> float | np.longdouble:
    """``2**log2_value`` as a Python float when it is a normal float, else a longdouble."""
    if log2_value > np.finfo(np.float64).minexp:
        return float(2.0 ** log2_value)
    return np.exp2(np.longdouble(log2_value))


# significand bits kept when a number is widened to a long double (its 64-bit significand),
# and the exponents of 2**e·man (man < 2**64) that ldexp can take inside its range
_WIDE_BITS = 64
_WIDE_EXPONENTS = (np.finfo(np.longdouble).minexp - 2 * _WIDE_BITS,
                   np.finfo(np.longdouble).maxexp)


def _widened(x: Any, element: Any) -> np.ndarray:
    """`element` (one number -> long double) over an object array, as a long double array."""
    arr = np.asarray(x, dtype=object)
    return np.asarray(np.frompyfunc(element, 1, 1)(arr), dtype=np.longdouble).reshape(arr.shape)


def wide_from_parts(man: int, exp: int) -> np.longdouble:
    """``man·2**exp`` (a signed integer significand) as a long double, truncated to 64
    significand bits; 0 below the long double range and ±inf above it."""
    sign = -1 if man < 0 else 1
    man = abs(int(man))
    shift = max(man.bit_length() - _WIDE_BITS, 0)
    exponent = int(exp) + shift
    if exponent < _WIDE_EXPONENTS[0] or not man:
        return np.longdouble(0)
    if exponent > _WIDE_EXPONENTS[1]:
        return np.longdouble(sign * np.inf)
    return np.longdouble(sign) * np.ldexp(np.longdouble(man >> shift), exponent)


@contextlib.contextmanager
def _null_context() -> Iterator[None]:
    yield
