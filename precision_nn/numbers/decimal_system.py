"""Python's `decimal.Decimal` at N significant digits, in numpy object arrays.

``exp``, ``log`` and ``sqrt`` are Decimal's own correctly rounded operations. ``tanh``,
``erf``, ``log1p``, ``sin``, ``cos`` and π have no Decimal implementation; they take a detour through
mpmath at ``N + 10`` digits plus guard bits and are rounded once back to N digits — never
through a Python float (the bug of seed 000, whose sigmoid went through ``float``).
"""

from __future__ import annotations

import contextlib
import decimal
import math
import threading
from typing import Any

import mpmath
import numpy as np

from precision_nn.numbers.base import NumberSystem, fast_real_system, optional_system
from precision_nn.numbers.composite import rowwise_sum
from precision_nn.numbers.literals import exact_mpmath, exact_parts

__all__ = ["DecimalSystem", "recognise"]

GUARD_DIGITS = 10  # extra digits of the mpmath detour before the final rounding
FAST_GUARD_DIGITS = 10  # extra digits of the binary system a reference may run in

# condition numbers c(x) = |x·f'(x)/f(x)| of the detour functions that can be large: the
# detour re-evaluates with log10 c more digits where c > 1 (tanh and erf have c <= 1)
_CONDITION = {
    "sin": lambda mp, x, y: abs(x * mp.cos(x) / y),
    "cos": lambda mp, x, y: abs(x * mp.sin(x) / y),
    # log1p: c = |x / ((1 + x)·log1p x)|, large only as x -> -1
    "log1p": lambda mp, x, y: abs(x / ((1 + x) * y)),
}


def recognise(array: np.ndarray) -> str | None:
    """``decimal:N`` if `array` holds Decimals. Decimals carry no precision: N is the larger
    of the thread's context precision and the most significant digits of any element
    (30-digit values -> decimal:30)."""
    if array.dtype != object or not isinstance(array.flat[0], decimal.Decimal):
        return None
    digits = max((len(v.as_tuple().digits) for v in array.flat
                  if isinstance(v, decimal.Decimal) and v.is_finite()), default=0)
    return f"decimal:{max(decimal.getcontext().prec, digits)}"


def _half_ulp(digits: int) -> float | np.longdouble:
    """0.5·10**(1-N): a float while it is a normal float, a long double beyond."""
    if digits < 300:
        return 0.5 * 10.0 ** (1 - digits)
    return np.longdouble(5) * np.longdouble(10) ** np.longdouble(-digits)


# digits beyond the system's with which `DecimalSystem.accurate_sum` adds its terms
SUM_GUARD_DIGITS = 12


class DecimalSystem(NumberSystem):
    """Decimal floating point with `digits` significant digits."""

    is_complex = False
    radix = 10

    def __init__(self, digits: int):
        self.digits = digits
        self.name = f"decimal:{digits}"
        # round-half-even to N digits: |rel. error| <= 0.5 * 10**(1-N) (Higham 2002, §2.1)
        self.unit_roundoff = _half_ulp(digits)
        self._ctx = decimal.Context(
            prec=digits, rounding=decimal.ROUND_HALF_EVEN,
            traps=[decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow],
        )
        self._unary: dict[str, Any] = {}
        self._local = threading.local()

    # -- counterparts -----------------------------------------------------------------
    def complex(self) -> NumberSystem:
        raise ValueError(
            f"{self.name!r} has no complex counterpart (Decimal is real only); for a "
            f"complex step at this precision use 'mpc:{self.digits}'."
        )

    def real(self) -> NumberSystem:
        return self

    def wider(self) -> NumberSystem | None:
        from precision_nn.numbers import number_system

        return number_system(f"decimal:{2 * self.digits}")

    def fast_reference_system(self, *, digits: int | None = None) -> NumberSystem | None:
        """``mpfr:(N + 10)`` when gmpy2 is installed. A decimal fraction has no finite
        binary expansion, so each number rounds once on the way in, by at most 2^-p
        relative at the p bits of N + 10 digits: ~10^-10 of this system's unit roundoff,
        far below every rounding the check models here (the caller adds it to its error
        bars all the same). More digits would only make Richardson's tableau longer.
        With `digits`: `fast_real_system` at ``max(N + 10, digits)`` digits."""
        own = self.digits + FAST_GUARD_DIGITS
        if digits is None:
            return optional_system(f"mpfr:{own}")
        return fast_real_system(self._fast_digits(own, digits))

    @property
    def log2_unit_roundoff(self) -> float:
        return math.log2(0.5) + (1 - self.digits) * math.log2(10)

    def _wide_real(self, v: Any) -> np.longdouble:
        return np.longdouble(str(v))  # numpy parses decimal text to 64 bits

    def radix_powers(self, exponents: np.ndarray) -> np.ndarray:
        exponents = np.asarray(exponents, dtype=np.int64)
        return self.asarray([f"1E{int(e)}" for e in exponents.ravel()]).reshape(exponents.shape)

    # -- conversion -------------------------------------------------------------------
    def asarray(self, values: Any) -> np.ndarray:
        arr = np.asarray(values, dtype=object) if not isinstance(values, np.ndarray) \
            else values
        out = np.empty(arr.shape, dtype=object)
        for idx, v in np.ndenumerate(arr):
            out[idx] = self._convert(v)
        return out

    def _convert(self, v: Any) -> decimal.Decimal:
        """`v` rounded once, from its exact value, to N digits (round half even)."""
        ctx = self._ctx
        try:
            if isinstance(v, decimal.Decimal):
                return ctx.plus(v)
            if isinstance(v, (bool, np.bool_, int, np.integer)):
                return ctx.create_decimal(int(v))
            if isinstance(v, float):
                return ctx.create_decimal_from_float(v)  # exact binary value, one rounding
            if isinstance(v, str):
                with contextlib.suppress(decimal.InvalidOperation):
                    return ctx.create_decimal(v.strip())  # exact decimal value, one rounding
            re, im = exact_parts(v, self.name)  # everything else, and "1/3" or "1+2j"
            if im != 0:
                raise ValueError(
                    f"complex value {v!r} cannot be represented in {self.name!r} (Decimal "
                    f"is real only); use 'mpc:{self.digits}'."
                )
            if isinstance(re, float):  # inf or nan
                return decimal.Decimal(re)
            # both integers are exact Decimals; the division rounds once (IEEE 854 §4.1)
            return ctx.divide(decimal.Decimal(re.numerator), decimal.Decimal(re.denominator))
        except decimal.Overflow as exc:
            raise ValueError(
                f"value {v!r} cannot be represented in {self.name!r}: its exponent exceeds "
                f"Emax = {ctx.Emax}; scale the value or use 'mpf:{self.digits}'."
            ) from exc

    def to_float(self, array: Any) -> np.ndarray:
        return np.asarray(array, dtype=object).astype(np.float64)

    def zeros(self, shape: int | tuple[int, ...]) -> np.ndarray:
        out = np.empty(shape, dtype=object)
        out.fill(decimal.Decimal(0))
        return out

    def scalar(self, value: Any) -> Any:
        return self._convert(value)

    def foreign_type(self, array: np.ndarray) -> str | None:
        for v in np.asarray(array, dtype=object).ravel():
            if not isinstance(v, decimal.Decimal):
                return type(v).__name__
        return None

    def accurate_sum(self, values: Any, axis: tuple[int, ...] = (-2, -1)) -> Any:
        """Σ over the trailing `axis`: the terms added with ``SUM_GUARD_DIGITS`` more
        digits than the system's and the total rounded once to them, so the sum errs by
        one rounding plus ``N·10^-guard`` of ``u·Σ|v|`` (`CompositeFunctions.accurate_sum`)."""
        wide = self._ctx.copy()
        wide.prec = self.digits + SUM_GUARD_DIGITS

        def row_sum(row: np.ndarray) -> Any:
            total = decimal.Decimal(0)
            for v in row:
                total = wide.add(total, v)
            return self._ctx.plus(total)

        return rowwise_sum(values, axis, row_sum)

    def isfinite(self, x: Any) -> np.ndarray:
        return np.vectorize(lambda v: v.is_finite(), otypes=[bool])(np.asarray(x, dtype=object))

    # -- precision scope --------------------------------------------------------------
    def context(self) -> contextlib.AbstractContextManager:
        """The thread's decimal context at this precision; restored on exit (thread-local)."""
        ctx = self._ctx.copy()
        ctx.clear_flags()
        return decimal.localcontext(ctx)

    # -- elementwise ------------------------------------------------------------------
    def _map(self, name: str, fn) -> Any:
        if name not in self._unary:
            self._unary[name] = np.frompyfunc(self._guarded(name, fn), 1, 1)
        return self._unary[name]

    def _guarded(self, name: str, fn):
        """`fn` on an exactly converted operand, with Decimal's signals as ValueError."""

        def apply(v: Any) -> decimal.Decimal:
            if not isinstance(v, decimal.Decimal):
                v = self._convert(v)
            try:
                return fn(v)
            except (decimal.InvalidOperation, decimal.DivisionByZero) as exc:
                raise ValueError(
                    f"{name}({v}) is not a real number in {self.name!r}; check the "
                    f"argument's sign and range (use 'mpc:{self.digits}' for complex results)."
                ) from exc
            except decimal.Overflow as exc:
                raise ValueError(
                    f"{name}({v}) overflows {self.name!r} (largest exponent Emax = "
                    f"{self._ctx.Emax}); use 'mpf:{self.digits}', whose exponent is unbounded."
                ) from exc

        return apply

    def exp(self, x: Any) -> Any:
        return self._map("exp", lambda v: v.exp(self._ctx))(x)

    def log(self, x: Any) -> Any:
        return self._map("log", lambda v: v.ln(self._ctx))(x)

    def log1p(self, x: Any) -> Any:
        return self._map("log1p", lambda v: self._detour("log1p", v))(x)

    def sqrt(self, x: Any) -> Any:
        return self._map("sqrt", lambda v: v.sqrt(self._ctx))(x)

    def tanh(self, x: Any) -> Any:
        return self._map("tanh", lambda v: self._detour("tanh", v))(x)

    def erf(self, x: Any) -> Any:
        return self._map("erf", lambda v: self._detour("erf", v))(x)

    def sin(self, x: Any) -> Any:
        return self._map("sin", lambda v: self._detour("sin", v))(x)

    def cos(self, x: Any) -> Any:
        return self._map("cos", lambda v: self._detour("cos", v))(x)

    @property
    def pi(self) -> Any:
        return self._round(+self._detour_context().pi)

    def real_part(self, x: Any) -> np.ndarray:
        return np.asarray(x, dtype=object)

    def imag(self, x: Any) -> np.ndarray:
        return self.zeros(np.shape(x))

    def _detour_context(self, extra_digits: int = 0) -> Any:
        """This thread's mpmath context at N + GUARD_DIGITS (+ `extra_digits`) digits plus
        16 guard bits.

        One per thread: mpmath raises a context's precision while it works, so a context
        shared between threads would let one thread's working precision leak into another's
        results.
        """
        mp = getattr(self._local, "mp", None)
        if mp is None:
            mp = self._local.mp = mpmath.MPContext()
        mp.prec = math.ceil((self.digits + GUARD_DIGITS + extra_digits) * math.log2(10)) + 16
        return mp

    def _detour(self, fname: str, v: decimal.Decimal) -> decimal.Decimal:
        # mpmath's elementary and erf functions are accurate to about 1 ulp of the working
        # precision P, and the operand enters rounded to P bits (relative 2**-P), which f
        # amplifies by its condition number c(x) = |x·f'(x)/f(x)|. The detour's relative
        # error is thus about (1 + c)·2**-P; with P = N + GUARD_DIGITS (+ log10 c) digits it
        # stays below 10**-GUARD_DIGITS ulp of the N-digit result, and the final rounding
        # makes the total <= 0.5 ulp + that. tanh and erf have c <= 1 (tending to 0 as |x|
        # grows); sin and cos have c = |x·cot x| or |x·tan x|, large for large |x| and near
        # their zeros, and log1p has c = |x/((1+x)·log1p x)|, large as x -> -1, so these
        # are re-evaluated with log10 c more digits when c is large (Ziv's strategy: the
        # first result tells how many digits the second needs).
        if not v.is_finite():
            mp = self._detour_context()
            return self._round(getattr(mp, fname)(mp.mpf(float(v))))
        extra = 0
        while True:
            mp = self._detour_context(extra)
            x = exact_mpmath(mp, v, self.name)
            y = getattr(mp, fname)(x)
            if hasattr(y, "_mpc_"):  # log1p(x) for x < -1
                raise decimal.InvalidOperation
            needed = _extra_digits(mp, fname, x, y)
            if needed <= extra:
                return self._round(y)
            extra = needed + 2

    def _round(self, value: Any) -> decimal.Decimal:
        return self._ctx.create_decimal(_mpf_exact_string(value))


def _extra_digits(mp: Any, fname: str, x: Any, y: Any) -> int:
    """Digits by which the condition number of `fname` at `x` exceeds 1 (0 if it does not)."""
    if fname not in _CONDITION or not y:
        return 0
    condition = _CONDITION[fname](mp, x, y)
    return max(0, int(mp.ceil(mp.log10(condition)))) if condition > 1 else 0


def _mpf_exact_string(v: Any) -> str:
    """The exact decimal expansion of a finite mpf (a binary fraction always has one)."""
    sign, man, exp, _ = v._mpf_ if hasattr(v, "_mpf_") else mpmath.mpf(v)._mpf_
    if not man and exp:  # inf / nan encodings
        return str(v)
    digits = man * (5 ** -exp) if exp < 0 else man * (2 ** exp)
    text = f"{digits}E{exp}" if exp < 0 else str(digits)
    return ("-" if sign else "") + text
