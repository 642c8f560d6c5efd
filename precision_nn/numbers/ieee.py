"""IEEE binary floating point (and its complex pairs) as numpy dtypes.

Every result keeps the system's dtype. Where numpy or SciPy has no loop of that dtype
(``erf`` of float16 or longdouble) the function is evaluated through a strictly more
precise detour and rounded once back, never through a less precise one.
"""

from __future__ import annotations

import math
from typing import Any

import mpmath
import numpy as np
import scipy.special

from precision_nn.numbers.base import NumberSystem, exact_mpmath

__all__ = ["IEEESystem", "IEEE_REAL", "IEEE_COMPLEX"]

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


class IEEESystem(NumberSystem):
    """A numpy floating or complex dtype as a number system."""

    def __init__(self, spec: str):
        self.name = spec
        self.dtype = _dtype_for(spec)
        self.is_complex = spec in IEEE_COMPLEX
        real_dtype = _dtype_for(IEEE_COMPLEX.get(spec, spec))
        finfo = _finfo(real_dtype)
        self.mantissa_bits = finfo.nmant + 1
        self.unit_roundoff = float(2.0 ** -self.mantissa_bits)
        self.digits = int(math.floor(self.mantissa_bits * math.log10(2)))
        self._max = float(finfo.max)

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

    # -- conversion -------------------------------------------------------------------
    def asarray(self, values: Any) -> np.ndarray:
        if isinstance(values, (np.ndarray, np.generic)) and values.dtype == self.dtype:
            # already ours: nothing to convert
            return np.asarray(values)
        arr = np.asarray(values)
        if arr.dtype.kind == "c" and not self.is_complex:
            if np.any(np.imag(arr) != 0):
                raise ValueError(
                    f"complex values cannot be represented in the real system {self.name!r}; "
                    f"use {self.name!r}.complex()."
                )
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
            raise ValueError(
                f"value {bad!r} cannot be represented in {self.name!r} (largest finite "
                f"magnitude {self._max:.6g}); use a wider number system."
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
        return self._keep(np.exp, x)

    def log(self, x: Any) -> Any:
        return self._keep(np.log, x)

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


def _finfo(dtype: np.dtype):
    try:
        return np.finfo(dtype)
    except ValueError:  # ml_dtypes types
        import ml_dtypes

        return ml_dtypes.finfo(dtype)


def _parse_strings(arr: np.ndarray, ns: IEEESystem) -> np.ndarray:
    """Round each string or object once, to the target's significand (never via a float)."""
    ctx = mpmath.MPContext()
    ctx.prec = ns.mantissa_bits
    real_dtype = ns.real().dtype
    out = np.empty(arr.shape, dtype=ns.dtype)
    for idx, s in np.ndenumerate(arr):
        v = exact_mpmath(ctx, s, ns.name)
        if isinstance(v, ctx.mpc):
            if not ns.is_complex and v.imag != 0:
                raise ValueError(f"complex value {s!r} cannot be represented in {ns.name!r}.")
            re = _mpf_to_longdouble(v.real, real_dtype)
            out[idx] = re + 1j * _mpf_to_longdouble(v.imag, real_dtype) if ns.is_complex else re
        else:
            out[idx] = _mpf_to_longdouble(v, real_dtype)
        if not np.isfinite(out[idx]) and ctx.isfinite(v):
            ns._check_finite(np.array(False), out, np.array(s))
    return out


def _mpf_to_longdouble(v, dtype: np.dtype):
    """An mpf of at most 106 significant bits, exactly as hi + lo float64 parts."""
    hi = float(v)
    lo = float(v - hi)
    with np.errstate(over="ignore"):
        return dtype.type(hi) + dtype.type(lo)


def _erf_by_mpmath(x: np.ndarray, ns: IEEESystem) -> Any:
    ctx = mpmath.MPContext()
    ctx.prec = ns.mantissa_bits + 20
    out = np.empty(x.shape, dtype=ns.dtype)
    for idx, v in np.ndenumerate(x):
        if ns.is_complex:
            z = ctx.mpc(_longdouble_to_mpf(ctx, v.real), _longdouble_to_mpf(ctx, v.imag))
            e = ctx.erf(z)
            out[idx] = _mpf_to_longdouble(e.real, ns.real().dtype) + \
                1j * _mpf_to_longdouble(e.imag, ns.real().dtype)
        else:
            out[idx] = _mpf_to_longdouble(ctx.erf(_longdouble_to_mpf(ctx, v)), ns.dtype)
    return out[()]


def _longdouble_to_mpf(ctx, v):
    hi = float(v)
    lo = float(v - np.longdouble(hi))
    return ctx.mpf(hi) + ctx.mpf(lo)
