"""Python's `decimal.Decimal` at N significant digits, in numpy object arrays.

``exp``, ``log`` and ``sqrt`` are Decimal's own correctly rounded operations. ``tanh``,
``erf``, ``sin``, ``cos`` and π have no Decimal implementation; they take a detour through
mpmath at ``N + 10`` digits plus guard bits and are rounded once back to N digits — never
through a Python float (the bug of seed 000, whose sigmoid went through ``float``).
"""

from __future__ import annotations

import contextlib
import decimal
import math
from typing import Any

import mpmath
import numpy as np

from precision_nn.numbers.base import NumberSystem, exact_mpmath

__all__ = ["DecimalSystem"]

GUARD_DIGITS = 10  # extra digits of the mpmath detour before the final rounding


class DecimalSystem(NumberSystem):
    """Decimal floating point with `digits` significant digits."""

    is_complex = False

    def __init__(self, digits: int):
        self.digits = digits
        self.name = f"decimal:{digits}"
        # round-half-even to N digits: |rel. error| <= 0.5 * 10**(1-N) (Higham 2002, §2.1)
        self.unit_roundoff = 0.5 * 10.0 ** (1 - digits)
        self._ctx = decimal.Context(
            prec=digits, rounding=decimal.ROUND_HALF_EVEN,
            traps=[decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow],
        )
        self._unary = {}

    # -- counterparts -----------------------------------------------------------------
    def complex(self) -> NumberSystem:
        raise ValueError(
            f"{self.name!r} has no complex counterpart (Decimal is real only); for a "
            f"complex step at this precision use 'mpc:{self.digits}'."
        )

    def real(self) -> NumberSystem:
        return self

    # -- conversion -------------------------------------------------------------------
    def asarray(self, values: Any) -> np.ndarray:
        arr = np.asarray(values, dtype=object) if not isinstance(values, np.ndarray) \
            else values
        out = np.empty(arr.shape, dtype=object)
        for idx, v in np.ndenumerate(arr):
            out[idx] = self._convert(v)
        return out

    def _convert(self, v: Any) -> decimal.Decimal:
        ctx = self._ctx
        if isinstance(v, decimal.Decimal):
            return ctx.plus(v)
        if isinstance(v, (bool, np.bool_, int, np.integer)):
            return ctx.create_decimal(int(v))
        if isinstance(v, (float, np.float16, np.float32, np.float64)):
            return ctx.create_decimal_from_float(float(v))  # exact binary value, one rounding
        if isinstance(v, str):
            try:
                return ctx.create_decimal(v.strip())
            except decimal.InvalidOperation as exc:
                raise ValueError(f"cannot parse {v!r} as a number of {self.name!r}.") from exc
        if isinstance(v, (complex, np.complexfloating, mpmath.mpc)) or \
                type(v).__name__ == "mpc":
            raise ValueError(
                f"complex value {v!r} cannot be represented in {self.name!r} (Decimal is "
                f"real only); use 'mpc:{self.digits}'."
            )
        # mpmath values and longdouble: exact through a wide enough mpmath context
        mp = mpmath.MPContext()
        mp.prec = 4 * self.digits + 64
        return ctx.create_decimal(_mpf_exact_string(exact_mpmath(mp, v, self.name)))

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

    def isfinite(self, x: Any) -> np.ndarray:
        return np.vectorize(lambda v: v.is_finite(), otypes=[bool])(np.asarray(x, dtype=object))

    # -- precision scope --------------------------------------------------------------
    def context(self) -> contextlib.AbstractContextManager:
        """The thread's decimal context at this precision; restored on exit (thread-local)."""
        return decimal.localcontext(self._ctx)

    # -- elementwise ------------------------------------------------------------------
    def _map(self, name: str, fn) -> Any:
        if name not in self._unary:
            self._unary[name] = np.frompyfunc(fn, 1, 1)
        return self._unary[name]

    def exp(self, x: Any) -> Any:
        return self._map("exp", lambda v: v.exp(self._ctx))(x)

    def log(self, x: Any) -> Any:
        return self._map("log", lambda v: v.ln(self._ctx))(x)

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
        return self._ctx.create_decimal(_mpf_exact_string(+self._detour_context().pi))

    def real_part(self, x: Any) -> np.ndarray:
        return np.asarray(x, dtype=object)

    def imag(self, x: Any) -> np.ndarray:
        return self.zeros(np.shape(x))

    def _detour_context(self):
        mp = mpmath.MPContext()
        mp.prec = math.ceil((self.digits + GUARD_DIGITS) * math.log2(10)) + 16
        return mp

    def _detour(self, fname: str, v: decimal.Decimal) -> decimal.Decimal:
        mp = self._detour_context()
        result = getattr(mp, fname)(mp.mpf(str(v)))  # str(Decimal) is exact
        return self._ctx.create_decimal(_mpf_exact_string(result))


def _mpf_exact_string(v: Any) -> str:
    """The exact decimal expansion of a finite mpf (a binary fraction always has one)."""
    sign, man, exp, _ = v._mpf_ if hasattr(v, "_mpf_") else mpmath.mpf(v)._mpf_
    if not man and exp:  # inf / nan encodings
        return str(v)
    digits = man * (5 ** -exp) if exp < 0 else man * (2 ** exp)
    text = f"{digits}E{exp}" if exp < 0 else str(digits)
    return ("-" if sign else "") + text
