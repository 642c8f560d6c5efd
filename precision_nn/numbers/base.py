"""The `NumberSystem` interface that every algorithm in precision_nn is written against.

An algorithm never calls ``np.exp`` or ``math.*`` directly: it receives a number system
``ns`` and calls ``ns.exp``, ``ns.one`` and friends, so one code path serves IEEE floats,
Decimal and mpmath at any precision (the idea of mpmath's context objects).
"""

from __future__ import annotations

import contextlib
import decimal
import functools
import re
from abc import ABC, abstractmethod
from collections.abc import Iterator
from fractions import Fraction
from typing import Any

import mpmath
import numpy as np
from mpmath.libmp import from_float, from_rational

__all__ = ["FunctionsByName", "NumberSystem", "error_dtype_for", "exact_mpmath", "exact_parts",
           "fast_real_system",
           "optional_system", "wide_from_parts", "wide_power_of_two"]


class NumberSystem(ABC):
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


# A part of a number held exactly: a Fraction when finite, a float inf/nan otherwise.
Exact = Fraction | float

_NONFINITE = {"inf", "+inf", "-inf", "infinity", "+infinity", "-infinity",
              "nan", "+nan", "-nan"}
# unambiguous (digits, then an optional point and digits), so matching is linear in the
# length: "\d[\d_]*\.?[\d_]*" could split a run of digits in quadratically many ways
_NUM = r"(?:(?:\d[\d_]*(?:\.[\d_]*)?|\.\d[\d_]*)(?:[eE][+-]?\d+)?|(?i:inf(?:inity)?|nan))"
# Python converts at most 4300 digits between int and str by default
# (sys.get_int_max_str_digits); a literal may add a sign, a point and an exponent.
MAX_LITERAL_CHARS = 4400
# The decimal exponent of a literal's leading digit, where a system sets no range of its
# own: mpmath's and MPFR's exponents are practically unbounded, but the exact value of
# "1e1000000" is a million-digit integer; beyond 10^±100000 a literal is refused at once.
LITERAL_EXPONENTS = (-100_000, 100_000)
_DECIMAL = re.compile(r"^[+-]?(?P<int>\d*)(?:\.(?P<frac>\d*))?(?:[eE](?P<exp>[+-]?\d+))?$")
# Python's complex literal grammar on decimal parts: "bj", "a", "a+bj", "a-j", "(a+bj)"
_IMAG_ONLY = re.compile(rf"^(?P<im>[+-]?(?:{_NUM})?)[jJ]$")
_COMPLEX = re.compile(rf"^(?P<re>[+-]?{_NUM})(?:(?P<im>[+-](?:{_NUM})?)[jJ])?$")


def exact_parts(value: Any, target: str, *, exponents: tuple[int, int] = LITERAL_EXPONENTS,
                underflow_to_zero: bool = False) -> tuple[Exact, Exact]:
    """`value` as its exact (real, imaginary) parts, before any rounding to `target`.

    Floats of every width give their exact binary value (``as_integer_ratio``), strings
    their exact decimal value, Decimal and mpmath numbers their exact value; so a system
    that rounds these parts once rounds `value` once, whatever its origin.

    A string longer than `MAX_LITERAL_CHARS`, or whose decimal exponent (of its leading
    digit) lies outside `exponents`, is refused before its exact value is formed, so
    parsing takes time linear in the length; below the range, a format with gradual
    underflow (`underflow_to_zero`) takes the literal as 0, which is its correct rounding.

    Raises
    ------
    ValueError
        For a string that is not a number, is too long, or lies beyond `exponents`.
    TypeError
        For a value that is not a number at all.

    Examples
    --------
    >>> exact_parts("0.1-2e-3j", "mpc:30")
    (Fraction(1, 10), Fraction(-1, 500))
    >>> exact_parts(0.1, "mpf:30")[0] == Fraction(3602879701896397, 2**55)
    True
    """
    if isinstance(value, str):
        return _parse(value, target, exponents, underflow_to_zero)
    if isinstance(value, (bool, np.bool_, int, np.integer, Fraction)):
        return Fraction(int(value) if isinstance(value, np.generic) else value), Fraction(0)
    if isinstance(value, (complex, np.complexfloating)):
        return _exact_real(value.real), _exact_real(value.imag)
    if hasattr(value, "_mpc_"):  # mpmath mpc of any context
        return _exact_mpf(value._mpc_[0]), _exact_mpf(value._mpc_[1])
    if type(value).__module__ == "gmpy2" and hasattr(value, "imag"):  # mpfr, mpc: any prec
        return _exact_gmpy2(value.real), _exact_gmpy2(value.imag)
    real = _exact_real(value)
    if real is None:
        raise TypeError(
            f"cannot convert {value!r} ({type(value).__name__}) to a number of {target!r}; "
            "give numbers, strings of numbers, Decimal, Fraction or mpmath values."
        )
    return real, Fraction(0)


def _exact_real(value: Any) -> Exact | None:
    """The exact value of a real float, Decimal or mpf; None for other types."""
    if isinstance(value, (float, np.floating, decimal.Decimal)) or (
            isinstance(value, np.generic) and hasattr(value, "__float__")):  # ml_dtypes
        if isinstance(value, decimal.Decimal):
            return Fraction(value) if value.is_finite() else float(value)
        if not np.isfinite(value):
            return float(value)
        if hasattr(value, "as_integer_ratio"):  # float and numpy floats, longdouble too
            return Fraction(*value.as_integer_ratio())
        return Fraction(float(value))  # formats narrower than float64: exact in float64
    if hasattr(value, "_mpf_"):
        return _exact_mpf(value._mpf_)
    return None


def _exact_gmpy2(value: Any) -> Exact:
    """The exact value of a gmpy2 mpfr (a binary fraction), or inf/nan as a float."""
    if not value.is_finite():
        return float(value)
    return Fraction(*(int(part) for part in value.as_integer_ratio()))


def _exact_mpf(mpf_tuple: tuple) -> Exact:
    sign, man, exp, _ = mpf_tuple
    if not man:
        return Fraction(0) if not exp else float(mpmath.mpf(mpf_tuple))  # inf / nan
    magnitude = Fraction(int(man) << exp) if exp >= 0 else Fraction(int(man), 1 << -exp)
    return -magnitude if sign else magnitude


def _parse(text: str, target: str, exponents: tuple[int, int],
           underflow_to_zero: bool) -> tuple[Exact, Exact]:
    s = text.strip().replace(" ", "")
    if len(s) > MAX_LITERAL_CHARS:
        raise ValueError(
            f"cannot parse a string of {len(s)} characters as a number of {target!r}: "
            f"literals are limited to {MAX_LITERAL_CHARS} characters (Python's 4300-digit "
            "int conversion limit); round the value first, or pass a Fraction."
        )
    if s.startswith("(") and s.endswith(")"):
        s = s[1:-1]
    if s.lower() in _NONFINITE:
        return float(s), Fraction(0)

    def real(part: str) -> Exact:
        return _real_text(part, text, target, exponents, underflow_to_zero)

    if _DECIMAL.match(s) and any(c.isdigit() for c in s):
        return real(s), Fraction(0)
    try:
        return Fraction(s), Fraction(0)  # "1/3" (and literals with underscores)
    except (ValueError, ZeroDivisionError):
        pass
    imag = _IMAG_ONLY.match(s)
    full = _COMPLEX.match(s) if imag is None else None
    if imag is not None:
        return Fraction(0), _unit_or(imag.group("im"), real)
    if full is not None:
        return real(full.group("re")), _unit_or(full.group("im") or "0", real)
    raise ValueError(
        f"cannot parse {str(text)!r} as a number of {target!r}; write a decimal literal such "
        "as '0.1', '-2.5e-3', '1/3', 'inf' or, for a complex system, '0.5+2j'."
    )


def _unit_or(coefficient: str, real) -> Exact:
    """The coefficient of j: "" or "+" mean 1, "-" means -1."""
    return Fraction(coefficient + "1") if coefficient in ("", "+", "-") else real(coefficient)


def _real_text(part: str, text: str, target: str, exponents: tuple[int, int],
               underflow_to_zero: bool) -> Exact:
    """A signed decimal literal exactly, or inf/nan as a float; its decimal exponent is
    checked against `exponents` first (from the digits alone, before any big integer)."""
    if part.lower().lstrip("+-") in _NONFINITE:
        return float(part)
    literal = _DECIMAL.match(part.replace("_", ""))
    if literal is not None:
        whole, frac = literal.group("int"), literal.group("frac") or ""
        exp = int(literal.group("exp") or 0)
        digits = (whole + frac).lstrip("0")
        if digits:  # the leading digit's decimal exponent
            lead = exp + len(whole.lstrip("0")) - 1 if whole.lstrip("0") else \
                exp - (len(frac) - len(frac.lstrip("0"))) - 1
            low, high = exponents
            if lead > high or (lead < low and not underflow_to_zero):
                raise ValueError(
                    f"value {str(text)!r} cannot be represented in {target!r}: its decimal "
                    f"exponent {lead} lies outside [{low}, {high}], the literals this "
                    "system accepts; scale the value (or pass a Fraction)."
                )
            if lead < low:  # below half the smallest subnormal: rounds to zero
                return Fraction(0)
    return Fraction(part)


def exact_mpmath(ctx: Any, value: Any, target: str) -> Any:
    """`value` (number, string, Decimal, mpf/mpc of any context) rounded once to ``ctx.prec``.

    Returns an ``mpf`` of `ctx` when `value` is real, an ``mpc`` of `ctx` otherwise.

    Examples
    --------
    >>> import mpmath
    >>> ctx = mpmath.MPContext(); ctx.prec = 10
    >>> exact_mpmath(ctx, "1/3", "mpf:3") == ctx.mpf(1) / 3
    True
    """
    if isinstance(value, float):  # float or np.float64, without a Fraction: one rounding
        return ctx.make_mpf(from_float(value, ctx.prec, "n"))
    re, im = exact_parts(value, target)
    if im == 0:
        return _round_mpmath(ctx, re)
    return ctx.mpc(_round_mpmath(ctx, re), _round_mpmath(ctx, im))


def _round_mpmath(ctx: Any, part: Exact) -> Any:
    if isinstance(part, float):  # inf or nan: exact in mpmath
        return ctx.mpf(part)
    # from_rational divides exactly and rounds once to nearest (mpmath libmpf)
    return ctx.make_mpf(from_rational(part.numerator, part.denominator, ctx.prec, "n"))


@contextlib.contextmanager
def _null_context() -> Iterator[None]:
    yield
