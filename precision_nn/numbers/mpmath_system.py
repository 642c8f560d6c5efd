"""mpmath ``mpf``/``mpc`` at N decimal digits, in numpy object arrays.

Each precision has a private ``mpmath.MPContext``, shared by mpf:N and mpc:N so that the
parts of an mpc:N element are mpf:N elements: its precision never comes from, nor changes,
the global ``mpmath.mp``, so threads at different precisions cannot disturb each other and
nothing leaks. Arithmetic between elements uses the precision of their context; functions
run in per-thread worker contexts at the same precision.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import mpmath
import numpy as np

from precision_nn.numbers.base import (
    NumberSystem,
    fast_real_system,
    optional_system,
    wide_from_parts,
    wide_power_of_two,
)
from precision_nn.numbers.composite import rowwise_sum
from precision_nn.numbers.literals import exact_mpmath

__all__ = ["MPMathSystem", "recognise"]


_CONTEXTS: dict[int, Any] = {}
_CONTEXTS_LOCK = threading.Lock()


def _shared_context(digits: int) -> Any:
    """The one element context of mpf:N and mpc:N: the real and imaginary parts of an mpc:N
    element are then mpf:N elements, as the complex step needs. Its precision is never
    changed after creation (functions run in per-thread worker contexts)."""
    with _CONTEXTS_LOCK:
        if digits not in _CONTEXTS:
            ctx = mpmath.MPContext()
            ctx.dps = digits
            # pickle would look the element classes up as mpmath's global ones and fail;
            # elements travel (to worker processes) as their exact value and their precision
            ctx.mpf.__reduce__ = lambda v: (_unpickle_mpf, (digits, v._mpf_))
            ctx.mpc.__reduce__ = lambda v: (_unpickle_mpc, (digits, v._mpc_))
            _CONTEXTS[digits] = ctx
        return _CONTEXTS[digits]


def _unpickle_mpf(digits: int, value: tuple) -> Any:
    return _shared_context(digits).make_mpf(value)


def _unpickle_mpc(digits: int, value: tuple) -> Any:
    return _shared_context(digits).make_mpc(value)


def recognise(array: np.ndarray, *, is_complex: bool) -> str | None:
    """``mpf:N`` (``mpc:N`` when `is_complex`) if `array` holds mpmath numbers of that kind;
    N is the precision of their context."""
    if array.dtype != object:
        return None
    first = array.flat[0]
    context = getattr(first, "context", None)
    if not isinstance(context, mpmath.ctx_mp.MPContext):
        return None
    if hasattr(first, "_mpc_" if is_complex else "_mpf_"):
        return f"{'mpc' if is_complex else 'mpf'}:{context.dps}"
    return None


def _wide_mpf(mpf_tuple: tuple) -> np.longdouble:
    """|value| of an mpf tuple as a long double (truncated to 64 significand bits)."""
    _, man, exp, _ = mpf_tuple
    if not man:  # zero, or inf/nan (a zero mantissa with a nonzero exponent code)
        return np.longdouble(0) if not exp else \
            np.abs(np.longdouble(float(mpmath.mpf(mpf_tuple))))
    return wide_from_parts(int(man), int(exp))


def _wide_real(v: Any) -> np.longdouble:
    """The real part of an mpf or mpc as a long double, signed."""
    part = v._mpc_[0] if hasattr(v, "_mpc_") else v._mpf_
    return -_wide_mpf(part) if part[0] else _wide_mpf(part)


def _wide_abs(v: Any) -> np.longdouble:
    """|v| of an mpf or mpc as a long double."""
    if hasattr(v, "_mpc_"):
        return np.hypot(_wide_mpf(v._mpc_[0]), _wide_mpf(v._mpc_[1]))
    return _wide_mpf(v._mpf_)


class MPMathSystem(NumberSystem):
    """mpmath numbers (real ``mpf`` or complex ``mpc``) with `digits` decimal digits."""

    def __init__(self, digits: int, is_complex: bool):
        self.digits = digits
        self.is_complex = is_complex
        self.name = f"{'mpc' if is_complex else 'mpf'}:{digits}"
        self.ctx = _shared_context(digits)
        # mpmath rounds to nearest at ctx.prec bits: |rel. error| <= 2**-prec
        self.unit_roundoff = wide_power_of_two(-self.ctx.prec)
        self._element = self.ctx.mpc if is_complex else self.ctx.mpf
        self._unary: dict[str, Any] = {}
        self._local = threading.local()
        self._fzero = self.ctx.zero._mpf_

    # -- counterparts -----------------------------------------------------------------
    def complex(self) -> NumberSystem:
        from precision_nn.numbers import number_system

        return number_system(f"mpc:{self.digits}")

    def real(self) -> NumberSystem:
        from precision_nn.numbers import number_system

        return number_system(f"mpf:{self.digits}")

    def wider(self) -> NumberSystem | None:
        from precision_nn.numbers import number_system

        return number_system(f"{self.name.partition(':')[0]}:{2 * self.digits}")

    def fast_reference_system(self, *, digits: int | None = None) -> NumberSystem | None:
        """``mpfr:N`` (``mpfrc:N``) when gmpy2 is installed: the same binary precision,
        so numbers convert exactly both ways, and MPFR rounds correctly where mpmath
        rounds to nearest: the same error model at ~10x the speed. With more `digits`, a
        real system has `fast_real_system` at that many (it holds every number of this
        system exactly), a complex one ``mpfrc:digits``."""
        wide = self._fast_digits(self.digits, digits)
        if digits is None or self.is_complex:
            return optional_system(f"{'mpfrc' if self.is_complex else 'mpfr'}:{wide}")
        return fast_real_system(wide)

    @property
    def log2_unit_roundoff(self) -> float:
        return float(-self.ctx.prec)

    def _wide_real(self, v: Any) -> np.longdouble:
        return _wide_real(v)

    def _wide_abs(self, v: Any) -> np.longdouble:
        return _wide_abs(v)

    def radix_powers(self, exponents: np.ndarray) -> np.ndarray:
        exponents = np.asarray(exponents, dtype=np.int64)
        out = np.empty(exponents.shape, dtype=object)
        for idx, e in np.ndenumerate(exponents):
            out[idx] = self.scalar(self.ctx.ldexp(self.ctx.one, int(e)))
        return out

    def asarray(self, values: Any) -> np.ndarray:
        arr = values if isinstance(values, np.ndarray) else np.asarray(values, dtype=object)
        out = np.empty(arr.shape, dtype=object)
        for idx, v in np.ndenumerate(arr):
            out[idx] = self._convert(v)
        return out

    def _convert(self, v: Any) -> Any:
        """`v` rounded once, from its exact value, to this system's precision."""
        if type(v) is self._element and v.context is self.ctx:
            return v  # already an element: nothing to round
        x = exact_mpmath(self.ctx, v, self.name)
        if self.is_complex:
            return self.ctx.mpc(x)
        if isinstance(x, self.ctx.mpc):
            if x.imag != 0:
                raise ValueError(
                    f"complex value {v!r} cannot be represented in the real system "
                    f"{self.name!r}; use 'mpc:{self.digits}'."
                )
            x = x.real
        return self.ctx.mpf(x)

    def to_float(self, array: Any) -> np.ndarray:
        return np.asarray(array, dtype=object).astype(
            np.complex128 if self.is_complex else np.float64)

    def zeros(self, shape: int | tuple[int, ...]) -> np.ndarray:
        out = np.empty(shape, dtype=object)
        out.fill(self._element(0))
        return out

    def scalar(self, value: Any) -> Any:
        return self._convert(value)

    def foreign_type(self, array: np.ndarray) -> str | None:
        for v in np.asarray(array, dtype=object).ravel():
            if type(v) is not self._element or v.context is not self.ctx:
                if type(v) is self._element:
                    return f"{type(v).__name__} of another precision"
                if getattr(v, "context", None) is mpmath.mp:
                    # mpmath.sin and friends compute in the global context, not in the
                    # system's own: the value may carry another precision
                    return (f"{type(v).__name__} of mpmath's global context (mpmath.sin "
                            "and friends return those; compute with the system's own "
                            "functions, e.g. ns.sin, or convert the value with "
                            "ns.asarray)")
                return type(v).__name__
        return None

    def accurate_sum(self, values: Any, axis: tuple[int, ...] = (-2, -1)) -> Any:
        """Σ over the trailing `axis` by mpmath's ``fsum``: the terms added exactly and
        the total rounded once (`CompositeFunctions.accurate_sum`)."""
        return rowwise_sum(values, axis, self.ctx.fsum)

    def isfinite(self, x: Any) -> np.ndarray:
        return np.vectorize(self.ctx.isfinite, otypes=[bool])(np.asarray(x, dtype=object))

    # -- precision scope --------------------------------------------------------------
    def context(self) -> contextlib.AbstractContextManager:
        """Set the *global* ``mpmath.mp`` to this precision for user code that calls
        ``mpmath.exp`` and friends; restored on exit, also on error.

        The library itself never needs it (it uses private contexts). ``mpmath.mp`` is one
        per process: scopes opened by several threads at once never leave it changed once
        all have closed, but while they overlap, global ``mpmath`` calls in any of them see
        the precision of the newest open scope.
        """
        return _global_mp_precision(self.ctx.prec)

    # -- elementwise ------------------------------------------------------------------
    def _map(self, name: str) -> Any:
        if name not in self._unary:
            self._unary[name] = np.frompyfunc(self._worked(name), 1, 1)
        return self._unary[name]

    def _worker(self) -> Any:
        """This thread's working context at the system's precision.

        mpmath functions raise their context's precision while they work (``workprec``),
        and the elements' arithmetic reads the precision of the context they belong to;
        evaluating in ``self.ctx`` from several threads would let one thread's working
        precision round another thread's results. So functions run in a per-thread copy
        and only their results, already rounded to ``ctx.prec``, are re-tagged as elements.
        """
        try:
            return self._local.ctx
        except AttributeError:
            worker = self._local.ctx = mpmath.MPContext()
            worker.prec = self.ctx.prec
            return worker

    def _worked(self, name: str):
        element, make_mpf = self._element, self.ctx.make_mpf  # the class is ctx's own
        refine = name in _NORMWISE_ONLY and self.is_complex

        def apply(v: Any) -> Any:
            if type(v) is not element:
                v = self._convert(v)
            worker = self._worker()
            if refine and v.imag and v.real:
                return self._adopt(name, v, _componentwise(worker, name, v, self.ctx.prec))
            result = getattr(worker, name)(v)
            if not self.is_complex and hasattr(result, "_mpf_"):
                return make_mpf(result._mpf_)  # the common case, first
            return self._adopt(name, v, result)

        return apply

    def _adopt(self, name: str, v: Any, result: Any) -> Any:
        """`result` of the worker context (at ctx.prec) as an element of this system."""
        if hasattr(result, "_mpc_") and self.is_complex:
            return self.ctx.make_mpc(result._mpc_)
        if hasattr(result, "_mpc_"):
            if not self.is_complex:
                if result.imag != 0:
                    raise ValueError(
                        f"{name}({v}) is not a real number in {self.name!r}; check the "
                        f"argument's sign, or use 'mpc:{self.digits}' for complex results."
                    )
                return self.ctx.make_mpf(result._mpc_[0])
            return self.ctx.make_mpc(result._mpc_)
        if self.is_complex:
            return self.ctx.make_mpc((result._mpf_, self._fzero))
        return self.ctx.make_mpf(result._mpf_)

    def exp(self, x: Any) -> Any:
        return self._map("exp")(x)

    def log(self, x: Any) -> Any:
        return self._map("log")(x)

    def log1p(self, x: Any) -> Any:
        return self._map("log1p")(x)

    def sqrt(self, x: Any) -> Any:
        return self._map("sqrt")(x)

    def tanh(self, x: Any) -> Any:
        return self._map("tanh")(x)

    def erf(self, x: Any) -> Any:
        return self._map("erf")(x)

    def sin(self, x: Any) -> Any:
        return self._map("sin")(x)

    def cos(self, x: Any) -> Any:
        return self._map("cos")(x)

    @property
    def pi(self) -> Any:
        return self._adopt("pi", None, +self._worker().pi)

    def real_part(self, x: Any) -> np.ndarray:
        return np.frompyfunc(lambda v: self.ctx.mpf(v.real), 1, 1)(x) if self.is_complex \
            else np.asarray(x, dtype=object)

    def imag(self, x: Any) -> np.ndarray:
        if self.is_complex:
            return np.frompyfunc(lambda v: self.ctx.mpf(v.imag), 1, 1)(x)
        return self.zeros(np.shape(x))


# mpmath functions whose complex result is accurate only relative to |f(z)|, not in each
# part: erf(x + iy) for |x| >~ 1 is formed as 1 - erfc(z), so a tiny Im part (the complex
# step!) carries an error ~ 2**-prec·|erf z|, i.e. ~1e-20 relative at x = 4 and 30 digits.
_NORMWISE_ONLY = {"erf"}


def _componentwise(worker: Any, name: str, z: Any, prec: int) -> Any:
    """`name`(z) with both parts accurate to `prec` bits (Ziv's strategy).

    Evaluates at prec + g and prec + 2g bits, doubling g until the two agree to prec + 2
    bits in each part; agreement of two evaluations whose errors shrink with the working
    precision means each part is correct to that many bits (Ziv 1991; Muller, Handbook of
    Floating-Point Arithmetic, §12.5). The worker's precision is restored afterwards.
    """
    guard = 16
    try:
        worker.prec = prec + guard
        previous = getattr(worker, name)(z)
        while True:
            guard *= 2
            worker.prec = prec + guard
            current = getattr(worker, name)(z)
            agree = _agree(worker, current.real, previous.real, prec + 2) and \
                _agree(worker, current.imag, previous.imag, prec + 2)
            if agree or guard > 64 * prec + 4096:  # else give up: normwise accurate
                break
            previous = current
    finally:
        worker.prec = prec
    return worker.mpc(current.real, current.imag)  # each part rounded once to prec


def _agree(worker: Any, a: Any, b: Any, bits: int) -> bool:
    return a == b or abs(a - b) <= abs(a) * worker.ldexp(1, -bits)


# Scopes that set the process-wide mpmath.mp, across all threads: (token, prec), oldest
# first, and the precision mpmath.mp had before the first of them. A plain save/restore
# per scope leaks when threads interleave (T1 saves 53 and sets 70, T2 saves 70 and sets
# 203, T1 restores 53, T2 restores 70: mpmath.mp is left at 70); this registry restores
# the newest scope still open, and the original precision once none is.
_SCOPES_LOCK = threading.Lock()
_OPEN_SCOPES: list[tuple[object, int]] = []
_PREC_BEFORE_SCOPES: list[int] = []


@contextlib.contextmanager
def _global_mp_precision(prec: int) -> Iterator[None]:
    token = object()
    with _SCOPES_LOCK:
        if not _OPEN_SCOPES:
            _PREC_BEFORE_SCOPES[:] = [mpmath.mp.prec]
        _OPEN_SCOPES.append((token, prec))
        mpmath.mp.prec = prec
    try:
        yield
    finally:
        with _SCOPES_LOCK:
            _OPEN_SCOPES[:] = [scope for scope in _OPEN_SCOPES if scope[0] is not token]
            mpmath.mp.prec = _OPEN_SCOPES[-1][1] if _OPEN_SCOPES else _PREC_BEFORE_SCOPES[0]
