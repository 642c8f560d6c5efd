"""GNU MPFR numbers (gmpy2 ``mpfr``) at N decimal digits, and their complex counterpart
(gmpy2 ``mpc``, GNU MPC), in numpy object arrays: ``mpfr:N`` and ``mpfrc:N``.

Needs the optional package gmpy2 (``pip install gmpy2``, extra ``mpfr``); importing
precision_nn does not import this module. ``mpfr:N`` has the precision of ``mpf:N``
(``dps_to_prec(N)`` bits, so the two have the same unit roundoff 2^-p), but MPFR rounds
every operation *and every function* correctly (to nearest, ties to even; Fousse et al.,
"MPFR: a multiple-precision binary floating-point library with correct rounding", ACM TOMS
33, 2007), and its C arithmetic is ~15x faster than mpmath's in object arrays.

Precision, like Decimal's, is a property of the thread's context: gmpy2 rounds the result
of ``a * b`` to the *current* context's precision, not to the operands'. ``ns.context()``
sets a fresh gmpy2 context at this system's precision (round to nearest, the default
exponent range) for the thread and restores the previous one on exit, also on error; every
function and conversion here runs inside one, and the library's algorithms do their
arithmetic inside ``ns.context()``. Arithmetic on elements outside it rounds to whatever
precision the thread's context has (53 bits by default). gmpy2 contexts are thread-local,
so threads at different precisions do not disturb each other.

Complex ``erf`` and ``log1p`` have no MPC implementation. ``log1p`` is formed from MPFR's
real functions, ``log1p(w) = ½·log1p(a(2 + a) + b²) + i·atan2(b, 1 + a)`` for
``w = a + ib``, at guard precisions raised until two evaluations agree in each part
(Ziv's strategy, as for ``mpc:N``), then rounded once; ``erf`` (and non-finite ``log1p``
arguments) take an mpmath detour refined the same way.
"""

from __future__ import annotations

import contextlib
import threading
from fractions import Fraction
from typing import Any

import gmpy2
import mpmath
import numpy as np
from mpmath.libmp import dps_to_prec, from_man_exp, prec_to_dps

from precision_nn.numbers.base import (
    FunctionsByName,
    NumberSystem,
    wide_from_parts,
    wide_power_of_two,
)
from precision_nn.numbers.composite import rowwise_sum
from precision_nn.numbers.literals import exact_parts
from precision_nn.numbers.mpmath_system import _componentwise

__all__ = ["MPFRSystem", "recognise"]

_REAL = gmpy2.mpfr
_COMPLEX = type(gmpy2.mpc(0))
_DETOUR = {"erf", "log1p"}  # complex functions GNU MPC lacks


def recognise(array: np.ndarray) -> str | None:
    """``mpfr:N`` or ``mpfrc:N`` if `array` holds gmpy2 numbers whose precision is that of
    N digits (an element of another precision belongs to no system)."""
    first = array.flat[0]
    if type(first) is _REAL:
        bits, family = first.precision, "mpfr"
    elif type(first) is _COMPLEX:
        bits, family = first.precision[0], "mpfrc"
    else:
        return None
    digits = prec_to_dps(bits)
    return f"{family}:{digits}" if dps_to_prec(digits) == bits else None


def _wide_part(v: Any) -> np.longdouble:
    """A real mpfr as a long double (64 significand bits; beyond the float range too)."""
    if not gmpy2.is_finite(v):
        return np.longdouble(float(v))
    man, exp = v.as_mantissa_exp()
    return wide_from_parts(int(man), int(exp))


class MPFRSystem(FunctionsByName, NumberSystem):
    """gmpy2 ``mpfr`` (or ``mpc`` when `is_complex`) numbers with `digits` decimal digits."""

    def __init__(self, digits: int, is_complex: bool):
        self.digits = digits
        self.is_complex = is_complex
        self.name = f"{'mpfrc' if is_complex else 'mpfr'}:{digits}"
        self.bits = dps_to_prec(digits)
        # correct rounding to nearest at p bits: |relative error| <= 2**-p
        self.unit_roundoff = wide_power_of_two(-self.bits)
        self._element = _COMPLEX if is_complex else _REAL
        self._precision = (self.bits, self.bits) if is_complex else self.bits
        self._unary: dict[str, Any] = {}
        self._local = threading.local()

    # -- counterparts -----------------------------------------------------------------
    def complex(self) -> NumberSystem:
        from precision_nn.numbers import number_system

        return number_system(f"mpfrc:{self.digits}")

    def real(self) -> NumberSystem:
        from precision_nn.numbers import number_system

        return number_system(f"mpfr:{self.digits}")

    def wider(self) -> NumberSystem | None:
        from precision_nn.numbers import number_system

        return number_system(f"{self.name.partition(':')[0]}:{2 * self.digits}")

    @property
    def log2_unit_roundoff(self) -> float:
        return float(-self.bits)

    # -- precision scope --------------------------------------------------------------
    def context(self) -> contextlib.AbstractContextManager:
        """A fresh gmpy2 context at this precision for the thread; restored on exit."""
        return gmpy2.context(precision=self.bits)

    # -- conversion -------------------------------------------------------------------
    def asarray(self, values: Any) -> np.ndarray:
        arr = values if isinstance(values, np.ndarray) else np.asarray(values, dtype=object)
        out = np.empty(arr.shape, dtype=object)
        with self.context():
            for idx, v in np.ndenumerate(arr):
                out[idx] = self._convert(v)
        return out

    def scalar(self, value: Any) -> Any:
        with self.context():
            return self._convert(value)

    def _convert(self, v: Any) -> Any:
        """`v` rounded once, from its exact value, to this precision (inside a context)."""
        if type(v) is self._element and v.precision == self._precision:
            return v
        if isinstance(v, float):  # exact binary value, one rounding
            return gmpy2.mpc(v) if self.is_complex else _REAL(v)
        re, im = exact_parts(v, self.name)
        if im != 0 and not self.is_complex:
            raise ValueError(
                f"complex value {v!r} cannot be represented in the real system {self.name!r}; "
                f"use 'mpfrc:{self.digits}'."
            )
        real = _round(re)
        return gmpy2.mpc(real, _round(im)) if self.is_complex else real

    def to_float(self, array: Any) -> np.ndarray:
        kind = complex if self.is_complex else float
        out = np.frompyfunc(kind, 1, 1)(np.asarray(array, dtype=object))
        return np.asarray(out).astype(np.complex128 if self.is_complex else np.float64)

    def _wide_real(self, v: Any) -> np.longdouble:
        return _wide_part(v.real if self.is_complex else v)

    def _wide_abs(self, v: Any) -> np.longdouble:
        if not self.is_complex:
            return abs(_wide_part(v))
        return np.hypot(_wide_part(v.real), _wide_part(v.imag))

    def zeros(self, shape: int | tuple[int, ...]) -> np.ndarray:
        out = np.empty(shape, dtype=object)
        out.fill(self.zero)
        return out

    def foreign_type(self, array: np.ndarray) -> str | None:
        for v in np.asarray(array, dtype=object).ravel():
            if type(v) is not self._element:
                return type(v).__name__
            if v.precision != self._precision:
                return f"{type(v).__name__} of another precision"
        return None

    def accurate_sum(self, values: Any, axis: tuple[int, ...] = (-2, -1)) -> Any:
        """Σ over the trailing `axis` by gmpy2's ``fsum`` (correctly rounded), each part
        of a complex sum on its own (`CompositeFunctions.accurate_sum`)."""
        def row_sum(row: np.ndarray) -> Any:
            if not self.is_complex:
                return gmpy2.fsum(row)
            return gmpy2.mpc(gmpy2.fsum(v.real for v in row), gmpy2.fsum(v.imag for v in row))

        with self.context():
            return rowwise_sum(values, axis, row_sum)

    def isfinite(self, x: Any) -> np.ndarray:
        return np.vectorize(gmpy2.is_finite, otypes=[bool])(np.asarray(x, dtype=object))

    # -- elementwise ------------------------------------------------------------------
    def _apply(self, name: str, x: Any) -> Any:
        if self.is_complex and name == "log1p":
            return self._complex_log1p(x)
        if name not in self._unary:
            self._unary[name] = np.frompyfunc(self._checked(name), 1, 1)
        with self.context():
            return self._unary[name](x)

    def _checked(self, name: str):
        """The MPFR/MPC function, on an exactly converted operand, with NaN from a finite
        real operand (log of a negative) as a clear error."""
        fn = getattr(gmpy2, name)
        detour = self.is_complex and name in _DETOUR

        def apply(v: Any) -> Any:
            if type(v) is not self._element or v.precision != self._precision:
                v = self._convert(v)
            if detour:
                return self._by_mpmath(name, v)
            result = fn(v)
            if not self.is_complex and gmpy2.is_nan(result) and not gmpy2.is_nan(v):
                raise ValueError(
                    f"{name}({v}) is not a real number in {self.name!r}; check the "
                    f"argument's sign, or use 'mpfrc:{self.digits}' for complex results."
                )
            return result

        return apply

    def _complex_log1p(self, x: Any) -> Any:
        """log1p of complex elements, each part correct to this precision (Ziv's strategy
        on MPFR's real log1p and atan2; see the module docstring). The complex step needs
        the parts separately accurate: Im log1p(x + i·h) ≈ h/(1 + x) is far below |log1p|.
        """
        arr = np.asarray(x, dtype=object)
        flat = [v if type(v) is self._element and v.precision == self._precision else
                self.scalar(v) for v in arr.flat]
        out: list[Any] = [None] * len(flat)
        finite = [i for i, w in enumerate(flat) if gmpy2.is_finite(w)]
        for i in set(range(len(flat))) - set(finite):
            with self.context():
                out[i] = self._by_mpmath("log1p", flat[i])
        # Re w >= 0 (the losses' e^{-|z|}): t = a(2 + a) + b² adds terms >= 0 (relative
        # error <= 3·2^-P at P bits), log1p has relative condition t/((1+t)·log1p t) <= 1
        # for t >= 0, and atan2(b, 1 + a) with 1 + a >= 1 has condition <= 1 in 1 + a: each
        # part within 4·2^-P of itself, so at P = p + 16 one evaluation rounds to within
        # 0.5 + 2^-14 ulp of p bits. Elsewhere |1 + w| = 1 may cancel: Ziv's loop.
        guard = 16
        easy = [i for i in finite if flat[i].real >= 0]
        for i, parts in zip(easy, _log1p_parts([flat[i] for i in easy], self.bits + guard)):
            out[i] = parts
        pending = [i for i in finite if out[i] is None]
        previous = _log1p_parts([flat[i] for i in pending], self.bits + guard)
        while pending:
            guard *= 2
            current = _log1p_parts([flat[i] for i in pending], self.bits + guard)
            done = guard > 64 * self.bits + 4096  # else give up: normwise accurate
            left, kept = [], []
            with gmpy2.context(precision=self.bits + guard):
                for i, new, old in zip(pending, current, previous):
                    if done or (_agree(new[0], old[0], self.bits + 2)
                                and _agree(new[1], old[1], self.bits + 2)):
                        out[i] = new
                    else:
                        left.append(i)
                        kept.append(new)
            pending, previous = left, kept
        with self.context():  # each part rounded once to this precision
            result = [v if type(v) is self._element else gmpy2.mpc(*v) for v in out]
        packed = np.empty(len(result), dtype=object)
        packed[:] = result
        return packed.reshape(arr.shape) if arr.ndim else packed[0]

    def _by_mpmath(self, name: str, v: Any) -> Any:
        """A complex function GNU MPC lacks: mpmath at this precision, each part refined."""
        worker = getattr(self._local, "mp", None)
        if worker is None:
            worker = self._local.mp = mpmath.MPContext()
        worker.prec = self.bits
        z = worker.mpc(_to_mpmath(worker, v.real), _to_mpmath(worker, v.imag))
        result = _componentwise(worker, name, z, self.bits)
        return gmpy2.mpc(_from_mpmath(result.real), _from_mpmath(result.imag))

    @property
    def pi(self) -> Any:
        with self.context():
            return self._convert(gmpy2.const_pi())

    def real_part(self, x: Any) -> np.ndarray:
        if not self.is_complex:
            return np.asarray(x, dtype=object)
        return np.frompyfunc(lambda v: v.real, 1, 1)(np.asarray(x, dtype=object))

    def imag(self, x: Any) -> np.ndarray:
        if not self.is_complex:
            return self.real().zeros(np.shape(x))
        return np.frompyfunc(lambda v: v.imag, 1, 1)(np.asarray(x, dtype=object))

    def radix_powers(self, exponents: np.ndarray) -> np.ndarray:
        """2**e exactly (a power of two needs one bit, whatever the precision)."""
        exponents = np.asarray(exponents, dtype=np.int64)
        out = np.empty(exponents.shape, dtype=object)
        with self.context():
            one = self.one
            for idx, e in np.ndenumerate(exponents):
                out[idx] = gmpy2.mul_2exp(one, int(e))
        return out

    def matmul(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """``a @ b`` with every product and sum rounded at this precision."""
        with self.context():
            return np.matmul(a, b)


def _log1p_parts(values: list, prec: int) -> list[tuple[Any, Any]]:
    """(Re, Im) of log1p(w) = log|1 + w| + i·arg(1 + w) at `prec` bits: |1 + w|² − 1 =
    a(2 + a) + b² (no 1 + … rounding before log1p) and arg = atan2(b, 1 + a)."""
    with gmpy2.context(precision=prec):
        return [(gmpy2.log1p(w.real * (2 + w.real) + w.imag * w.imag) / 2,
                 gmpy2.atan2(w.imag, 1 + w.real)) for w in values]


def _agree(a: Any, b: Any, bits: int) -> bool:
    """Whether two evaluations agree to `bits` bits relative (in the current context)."""
    return a == b or abs(a - b) <= gmpy2.mul_2exp(abs(a), -bits)


def _round(part: Fraction | float) -> Any:
    """An exact part rounded once to the current context's precision (MPFR's mpq
    conversion rounds correctly)."""
    if isinstance(part, float):  # inf or nan
        return _REAL(part)
    return _REAL(gmpy2.mpq(part.numerator, part.denominator))


def _to_mpmath(ctx: Any, v: Any) -> Any:
    """An mpfr exactly as an mpf of `ctx` (mantissa and exponent carried over)."""
    if not gmpy2.is_finite(v):
        return ctx.mpf(float(v))
    man, exp = v.as_mantissa_exp()
    return ctx.make_mpf(from_man_exp(int(man), int(exp)))


def _from_mpmath(v: Any) -> Any:
    """A finite mpf rounded once to the current context's precision."""
    sign, man, exp, _ = v._mpf_
    if not man:
        return _REAL(float(v)) if exp else _REAL(0)
    value = gmpy2.mul_2exp(_REAL(gmpy2.mpz(int(man))), int(exp))
    return -value if sign else value
