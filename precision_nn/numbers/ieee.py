"""IEEE binary floating point (and its complex pairs) as numpy dtypes.

Every result keeps the system's dtype. Where numpy or SciPy has no loop of that dtype
(``erf`` of float16 or longdouble) the function is evaluated through a strictly more
precise detour and rounded once back, never through a less precise one.
"""

from __future__ import annotations

import math
import sys
from fractions import Fraction
from typing import Any

import mpmath
import numpy as np
import scipy.special

from precision_nn.numbers.base import NumberSystem
from precision_nn.numbers.ieee_complex import complex_exp as _complex_exp
from precision_nn.numbers.ieee_complex import complex_log1p as _complex_log1p
from precision_nn.numbers.ieee_fused import (
    complex_log1p_exp,
    complex_sigmoid,
    complex_sigmoid_cross_entropy,
)
from precision_nn.numbers.ieee_rank_one import complex_sigmoid_cross_entropy_rank_one
from precision_nn.numbers.literals import exact_mpmath, exact_parts

__all__ = ["IEEE_COMPLEX", "IEEE_REAL", "IEEESystem", "recognise"]

# real spec -> complex counterpart spec (None: the real format has no complex pair)
IEEE_REAL: dict[str, str | None] = {
    "float16": None,
    "bfloat16": None,
    "float32": "complex64",
    "float64": "complex128",
    "longdouble": "clongdouble",
}
IEEE_COMPLEX: dict[str, str] = {c: r for r, c in IEEE_REAL.items() if c is not None}

_PI_TEXT = "3.14159265358979323846264338327950288419716939937510582097494459"

# dtypes SciPy's erf has a native loop for; others take a detour
_ERF_NATIVE = {np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.complex64),
               np.dtype(np.complex128)}


def _dtype_for(spec: str) -> np.dtype:
    if spec == "bfloat16":
        try:
            import ml_dtypes
        except ImportError as exc:  # optional dependency
            raise ValueError(
                "number system 'bfloat16' needs the optional package ml_dtypes; "
                "install it with `pip install ml_dtypes`."
            ) from exc
        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(spec)


def recognise(name: str, array: np.ndarray) -> str | None:
    """`name` if `array` has that format's dtype (or, for float64, holds Python floats)."""
    if array.dtype == object:
        plain = name == "float64" and isinstance(array.flat[0], (int, float))
        return name if plain else None
    if name == "bfloat16" and "ml_dtypes" not in sys.modules:
        return None  # no bfloat16 array can exist before ml_dtypes is imported
    return name if array.dtype == _dtype_for(name) else None


# the next wider format a numpy function runs in (float64 and longdouble: none in numpy)
_WIDER = {"float16": "float32", "bfloat16": "float32", "float32": "float64",
          "complex64": "complex128"}


class IEEESystem(NumberSystem):
    """A numpy floating or complex dtype as a number system."""

    object_elements = False

    def __init__(self, spec: str):
        self.name = spec
        self.dtype = _dtype_for(spec)
        self.is_complex = spec in IEEE_COMPLEX
        real_dtype = _dtype_for(IEEE_COMPLEX.get(spec, spec))
        finfo = _finfo(real_dtype)
        self.mantissa_bits = finfo.nmant + 1
        self.unit_roundoff = float(2.0 ** -self.mantissa_bits)
        self.digits = math.floor(self.mantissa_bits * math.log10(2))
        self._max = float(finfo.max)
        self._max_text = f"{self._max:.6g}" if math.isfinite(self._max) else str(finfo.max)

    # -- counterparts -----------------------------------------------------------------
    def complex(self) -> NumberSystem:
        from precision_nn.numbers import number_system

        if self.is_complex:
            return self
        pair = IEEE_REAL[self.name]
        if pair is None:
            raise ValueError(
                f"number system {self.name!r} has no complex counterpart in numpy; "
                "use float32 or float64 (or mpf:N) for complex-step work."
            )
        return number_system(pair)

    def real(self) -> NumberSystem:
        from precision_nn.numbers import number_system

        return number_system(IEEE_COMPLEX[self.name]) if self.is_complex else self

    def wider(self) -> NumberSystem | None:
        from precision_nn.numbers import number_system

        return number_system(_WIDER[self.name]) if self.name in _WIDER else None

    def radix_powers(self, exponents: np.ndarray) -> np.ndarray:
        real = self.real().dtype
        exponents = np.asarray(exponents, dtype=np.int64)
        return np.ldexp(np.ones(exponents.shape, dtype=real), exponents).astype(self.dtype)

    # -- conversion -------------------------------------------------------------------
    def asarray(self, values: Any) -> np.ndarray:
        if isinstance(values, (np.ndarray, np.generic)) and values.dtype == self.dtype:
            # already ours: nothing to convert
            return np.asarray(values)
        arr = np.asarray(values)
        if arr.dtype.kind == "c" and not self.is_complex:
            if np.any(np.imag(arr) != 0):
                raise ValueError(_complex_message(arr[np.imag(arr) != 0].ravel()[0], self))
            arr = np.real(arr)
        if arr.dtype.kind in "USO":
            return _parse_strings(arr, self)
        with np.errstate(over="ignore", invalid="ignore"):
            out = arr.astype(self.dtype)
        with np.errstate(over="ignore", invalid="ignore"):
            finite_in = ~np.isfinite(arr.astype(np.complex128 if arr.dtype.kind == "c"
                                                else np.longdouble))
        self._check_finite(np.isfinite(out) | finite_in, out, arr)
        return out

    def _check_finite(self, ok: np.ndarray, out: np.ndarray, source: Any) -> None:
        """Raise when a finite input became ±inf: it overflowed this format."""
        if not np.all(ok):
            bad = np.asarray(source)[~np.asarray(ok)].ravel()[0]
            bad = bad.item() if isinstance(bad, (np.str_, np.float64, np.float32)) else bad
            raise ValueError(
                f"value {bad!r} cannot be represented in {self.name!r} (largest finite "
                f"magnitude {self._max_text}); use a wider number system."
            )

    def to_float(self, array: Any) -> np.ndarray:
        return np.asarray(array).astype(np.complex128 if self.is_complex else np.float64)

    def zeros(self, shape: int | tuple[int, ...]) -> np.ndarray:
        return np.zeros(shape, dtype=self.dtype)

    def scalar(self, value: Any) -> Any:
        return self.asarray(value)[()]

    def foreign_type(self, array: np.ndarray) -> str | None:
        array = np.asarray(array)
        return None if array.dtype == self.dtype else str(array.dtype)

    # -- elementwise ------------------------------------------------------------------
    def exp(self, x: Any) -> Any:
        if self.is_complex:
            return self._keep(_complex_exp, x)
        return self._keep(np.exp, x)

    def log(self, x: Any) -> Any:
        return self._keep(np.log, x)

    def log1p(self, x: Any) -> Any:
        if self.is_complex:
            return self._keep(_complex_log1p, x)
        return self._keep(np.log1p, x)

    def log1p_exp(self, w: Any) -> Any:
        if self.is_complex:  # fused on the parts (numbers/ieee_fused.py)
            return self._keep(complex_log1p_exp, w)
        return super().log1p_exp(w)

    def sigmoid(self, x: Any) -> Any:
        if self.is_complex:  # fused on the parts where it applies (numbers/ieee_fused.py)
            fused = complex_sigmoid(x)
            if fused is not None:
                return fused
        return super().sigmoid(x)

    def sigmoid_with_complement(self, x: Any) -> tuple[Any, Any]:
        if self.is_complex:  # each fused on the parts where it applies, as `sigmoid`
            return self.sigmoid(x), self.sigmoid(-x)
        return super().sigmoid_with_complement(x)

    def sigmoid_cross_entropy(self, z: Any, y: Any) -> Any:
        if self.is_complex:  # fused on the parts where it applies (numbers/ieee_fused.py)
            fused = complex_sigmoid_cross_entropy(z, y)
            if fused is not None:
                return fused
        return super().sigmoid_cross_entropy(z, y)

    def sigmoid_cross_entropy_sum(self, z: Any, y: Any) -> Any:
        if self.is_complex and np.ndim(z) >= 2:
            fused = complex_sigmoid_cross_entropy(z, y, summed=True)
            if fused is not None:
                return fused
        return super().sigmoid_cross_entropy_sum(z, y)

    def sigmoid_cross_entropy_rank_one_sum(self, z: Any, y: Any, u: Any, v: Any) -> Any:
        if self.is_complex:  # on float parts where it applies (numbers/ieee_rank_one.py)
            fused = complex_sigmoid_cross_entropy_rank_one(z, y, u, v)
            if fused is not None:
                return fused
        return super().sigmoid_cross_entropy_rank_one_sum(z, y, u, v)

    def sqrt(self, x: Any) -> Any:
        return self._keep(np.sqrt, x)

    def tanh(self, x: Any) -> Any:
        return self._keep(np.tanh, x)

    def sin(self, x: Any) -> Any:
        return self._keep(np.sin, x)

    def cos(self, x: Any) -> Any:
        return self._keep(np.cos, x)

    def erf(self, x: Any) -> Any:
        x = np.asarray(x, dtype=self.dtype)
        if x.dtype in _ERF_NATIVE:
            return self._keep(scipy.special.erf, x)
        if x.dtype.itemsize < 4:  # float16/bfloat16: float64 holds them exactly
            return scipy.special.erf(x.astype(np.float64)).astype(self.dtype)[()]
        return _erf_by_mpmath(x, self)

    @property
    def pi(self) -> Any:
        return self.scalar(_PI_TEXT)

    def real_part(self, x: Any) -> np.ndarray:
        return np.real(np.asarray(x, dtype=self.dtype))

    def imag(self, x: Any) -> np.ndarray:
        return np.imag(np.asarray(x, dtype=self.dtype))

    def _keep(self, fn, x: Any) -> Any:
        out = fn(np.asarray(x, dtype=self.dtype))
        return np.asarray(out).astype(self.dtype, copy=False)[()]

    def context(self):
        """Overflow to ±inf and underflow to 0 are IEEE semantics here, not warnings."""
        return np.errstate(over="ignore", under="ignore")


def _complex_message(value: Any, ns: IEEESystem) -> str:
    value = value.item() if isinstance(value, (np.generic,)) else value
    pair = IEEE_REAL.get(ns.name)
    fix = f"use {pair!r}" if pair else "use 'complex64' or 'complex128'"
    return (f"complex value {value!r} cannot be represented in the real system {ns.name!r}; "
            f"{fix}, or pass only the real part.")


def _finfo(dtype: np.dtype):
    try:
        return np.finfo(dtype)
    except ValueError:  # ml_dtypes types
        import ml_dtypes

        return ml_dtypes.finfo(dtype)


def _parse_strings(arr: np.ndarray, ns: IEEESystem) -> np.ndarray:
    """Round each string or object once, from its exact value, to the target format."""
    fmt = _format(ns.real().dtype)
    out = np.empty(arr.shape, dtype=ns.dtype)
    for idx, value in np.ndenumerate(arr):
        re, im = exact_parts(value, ns.name, exponents=fmt.exponents, underflow_to_zero=True)
        if im != 0 and not ns.is_complex:
            raise ValueError(_complex_message(value, ns))
        try:
            _store(out, idx, re, im, fmt)
        except OverflowError:
            ns._check_finite(np.array(False), out, np.array(value, dtype=object))
    return out


class _BinaryFormat:
    """What rounding needs to know of a binary format: precision and exponent range."""

    def __init__(self, dtype: np.dtype):
        finfo = _finfo(dtype)
        self.dtype = dtype
        self.p = finfo.nmant + 1  # significand bits, the hidden bit included
        self.emin = int(finfo.minexp)  # exponent of the smallest normal number
        self.max = Fraction(*np.asarray(finfo.max, dtype=dtype).item().as_integer_ratio()) \
            if self.p > 53 else Fraction(float(finfo.max))
        # decimal exponents of literals: beyond 10^(e+1) > max a literal overflows; below
        # a tenth of the smallest subnormal 2^(emin - p + 1) it rounds to zero
        smallest = self.emin - self.p + 1
        self.exponents = (math.floor(smallest * math.log10(2)) - 1,
                          math.floor(math.log10(float(self.max)) if self.p <= 53 else
                                     (self.max.numerator.bit_length() -
                                      self.max.denominator.bit_length()) * math.log10(2)) + 1)


_FORMATS: dict[np.dtype, _BinaryFormat] = {}


def _format(dtype: np.dtype) -> _BinaryFormat:
    if dtype not in _FORMATS:
        _FORMATS[dtype] = _BinaryFormat(dtype)
    return _FORMATS[dtype]


def _round_binary(q: Fraction | float, fmt: _BinaryFormat) -> Any:
    """`q` rounded once, to nearest with ties to even, into the format (subnormals too).

    A number in [2^e, 2^(e+1)) is a multiple of the quantum 2^(max(e, emin) - p + 1) in
    this format (IEEE 754-2019 §3.3); below 2^emin the quantum stays fixed, which is
    gradual underflow. Raises OverflowError when the rounded value exceeds the largest
    finite number.
    """
    if isinstance(q, float):  # inf or nan: exact in every format
        return fmt.dtype.type(q)
    if q == 0:
        return fmt.dtype.type(0)
    num, den = abs(q.numerator), q.denominator
    e = num.bit_length() - den.bit_length()  # 2^(e-1) < num/den < 2^(e+1)
    if Fraction(num, den) < Fraction(2) ** e:
        e -= 1  # now 2^e <= |q| < 2^(e+1)
    k = max(e, fmt.emin) - fmt.p + 1  # quantum exponent
    scaled = Fraction(num, den) / Fraction(2) ** k
    m = round(scaled)  # Fraction.__round__ rounds half to even
    if Fraction(m) * Fraction(2) ** k > fmt.max:
        raise OverflowError
    return -_exact_binary(m, k, fmt) if q < 0 else _exact_binary(m, k, fmt)


def _exact_binary(m: int, k: int, fmt: _BinaryFormat) -> Any:
    """m·2^k in the format, exactly (m has at most p bits; the value is representable)."""
    if fmt.p <= 53:  # the value is exact in float64, whose range covers these formats
        return fmt.dtype.type(math.ldexp(float(m), k))
    hi, lo = divmod(m, 1 << 32)  # 32-bit halves are exact in any long double
    value = fmt.dtype.type(hi) * fmt.dtype.type(1 << 32) + fmt.dtype.type(lo)
    return np.ldexp(value, k)


def _erf_by_mpmath(x: np.ndarray, ns: IEEESystem) -> Any:
    """erf at p + 20 bits from the exact input, then one rounding to the format."""
    ctx = mpmath.MPContext()
    ctx.prec = ns.mantissa_bits + 20
    fmt = _format(ns.real().dtype)
    out = np.empty(x.shape, dtype=ns.dtype)
    for idx, v in np.ndenumerate(x):
        re, im = exact_parts(ctx.erf(exact_mpmath(ctx, v, ns.name)), ns.name)
        _store(out, idx, re, im, fmt)
    return out[()]


def _store(out: np.ndarray, idx: tuple, re: Any, im: Any, fmt: _BinaryFormat) -> None:
    """Round the exact parts once each into out[idx] (the imaginary part if out is complex).

    Parts are written through the real and imaginary views, never as re + 1j·im, whose
    1j·inf would make a NaN real part."""
    if out.dtype.kind == "c":
        out.real[idx] = _round_binary(re, fmt)
        out.imag[idx] = _round_binary(im, fmt)
    else:
        out[idx] = _round_binary(re, fmt)
