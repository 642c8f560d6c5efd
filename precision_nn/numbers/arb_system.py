"""``arb:N`` and ``acb:N``: Arb ball arithmetic (python-flint) at N decimal digits.

Every element is a ball ``[m ± r]`` (``flint.arb``; complex: ``flint.acb``, a rectangle of
two real balls) in a numpy object array. Arb's operations return a ball that contains the
exact result for every choice of points in the argument balls (Johansson, "Arb: efficient
arbitrary-precision midpoint-radius interval arithmetic", IEEE Trans. Comput. 66, 2017), so
a value computed here comes with a *proven* error bound: ``|exact − m| ≤ r``.

- ``to_float`` gives the midpoints; ``radius(array)`` the radii as float64 upper bounds
  (`arb_balls`, with the family's recogniser; both importable from here).
- Matrix products go through ``arb_mat``/``acb_mat`` (C, ~30× faster than object loops);
  each operand is converted once while it is re-used (`arb_matrix.OperandCache`: the
  weights forward and in backprop, the activations, the deltas), and the network's bias
  sums stay in the matrix type (`arb_matrix.BallMatrixProducts`: ``matmul``, ``affine``,
  ``affine_gradient``).
- Comparisons that balls cannot decide raise: ``real_part`` returns an array whose
  ``>``, ``<``, ``>=``, ``<=`` give a proven answer per entry or raise `ValueError` naming
  the entry (a ReLU at its kink); ``np.maximum``/``np.max`` return a ball enclosing the
  maximum (for first-order series, the branch that is proven larger). A bare
  ``flint.arb`` comparison in user code answers False when undecided — not through here.
- Functions also accept `BallSeries` elements (``f(x + t)`` in Taylor mode), and so do
  the ``sigmoid``, ``log1p_exp`` and ``softplus`` (log(1 + e^x) for every real x) hooks;
  ``log1p_exp`` of real balls works on stacks of nearby rows by Taylor polynomials with a
  proven remainder (`arb_softplus`).

Precision. python-flint keeps ONE process-wide working precision, ``flint.ctx.prec``,
read by every arithmetic operation. ``context()`` sets it (restored on exit, also on
error); each function of the system sets it for its own call and restores it. Scopes of
several threads are kept in a registry so the precision is restored once all have closed;
while scopes of different precisions overlap, bare operators in one thread may run at the
other's precision. That never makes a result wrong, only its radius different: a ball is
an enclosure at any working precision.
"""

from __future__ import annotations

import contextlib
from fractions import Fraction
from typing import Any

import numpy as np
from mpmath.libmp import dps_to_prec

from precision_nn.numbers.arb_balls import radius, radius_ball, recognise
from precision_nn.numbers.arb_complex_step import complex_step_guard, near_real_axis
from precision_nn.numbers.arb_context import flint_module, flint_precision
from precision_nn.numbers.arb_matrix import BallMatrixProducts, OperandCache
from precision_nn.numbers.arb_series import BallSeries
from precision_nn.numbers.arb_softplus import log1p_exp
from precision_nn.numbers.ball_order import OrderedBalls
from precision_nn.numbers.base import (
    FunctionsByName,
    NumberSystem,
    wide_from_parts,
    wide_power_of_two,
)
from precision_nn.numbers.composite import rowwise_sum
from precision_nn.numbers.literals import exact_parts

__all__ = ["ArbSystem", "OrderedBalls", "flint_module", "flint_precision", "radius",
           "radius_ball", "recognise"]

_FUNCTIONS = ("exp", "log", "log1p", "sqrt", "tanh", "erf", "sin", "cos")


# bits beyond the system's with which `ArbSystem.accurate_sum` adds its balls
SUM_GUARD_BITS = 64


class ArbSystem(FunctionsByName, BallMatrixProducts, NumberSystem):
    """Arb balls (real ``arb`` or complex ``acb``) with `digits` decimal digits."""

    is_ball = True
    radix = 2
    object_elements = True

    def __init__(self, digits: int, is_complex: bool):
        self.flint = flint_module()
        self.digits = digits
        self.is_complex = is_complex
        self.name = f"{'acb' if is_complex else 'arb'}:{digits}"
        self.prec = int(dps_to_prec(digits))  # as mpf:N, so arb:N and mpf:N compare
        # midpoints are rounded to prec bits; the radius absorbs the error, which is at
        # most 2**-prec relative (a float only while it does not underflow)
        self.unit_roundoff = wide_power_of_two(-self.prec)
        self._element = self.flint.acb if is_complex else self.flint.arb
        self._mapped: dict[str, Any] = {}
        self._direct: dict[str, Any] = {}  # name -> ufunc of the ball method itself
        self._finite_of = np.frompyfunc(self._element.is_finite, 1, 1)
        self._operands = OperandCache(self.flint.acb_mat if is_complex else self.flint.arb_mat)

    # -- counterparts ---------------------------------------------------------------------
    def complex(self) -> NumberSystem:
        from precision_nn.numbers import number_system

        return number_system(f"acb:{self.digits}")

    def real(self) -> NumberSystem:
        from precision_nn.numbers import number_system

        return number_system(f"arb:{self.digits}")

    def wider(self) -> NumberSystem | None:
        from precision_nn.numbers import number_system

        return number_system(f"{self.name.partition(':')[0]}:{2 * self.digits}")

    @property
    def log2_unit_roundoff(self) -> float:
        return float(-self.prec)

    def radix_powers(self, exponents: np.ndarray) -> np.ndarray:
        exponents = np.asarray(exponents, dtype=np.int64)
        out = np.empty(exponents.shape, dtype=object)
        for idx, e in np.ndenumerate(exponents):  # 2**e exactly: a ball of radius 0
            out[idx] = self._element(self.flint.arb(self.flint.arf((1, int(e)))))
        return out

    # -- conversion -----------------------------------------------------------------------
    def asarray(self, values: Any) -> np.ndarray:
        arr = values if isinstance(values, np.ndarray) else np.asarray(values, dtype=object)
        if arr.dtype == object and _all_type(arr, self._element):
            return arr.copy()  # balls of this system pass through (the network's hot path)
        out = np.empty(arr.shape, dtype=object)
        with self.context():
            for idx, v in np.ndenumerate(arr):
                out[idx] = self._convert(v)
        return out

    def scalar(self, value: Any) -> Any:
        with self.context():
            return self._convert(value)

    def _convert(self, v: Any) -> Any:
        """`v` as a ball: balls and series pass through; numbers are taken at their exact
        value (strings and ints exactly, floats by their binary value) and rounded once,
        the rounding error going into the radius."""
        flint = self.flint
        if type(v) is self._element or isinstance(v, BallSeries):
            return v
        if isinstance(v, flint.arb):
            return flint.acb(v)  # real ball into a complex system
        if isinstance(v, flint.acb):
            if not v.imag.is_zero():
                raise ValueError(f"complex ball {v} cannot be represented in the real system "
                                 f"{self.name!r}; use 'acb:{self.digits}'.")
            return v.real
        re, im = exact_parts(v, self.name)
        if im != 0 and not self.is_complex:
            raise ValueError(f"complex value {v!r} cannot be represented in the real system "
                             f"{self.name!r}; use 'acb:{self.digits}'.")
        real = self._ball(re)
        return flint.acb(real, self._ball(im)) if self.is_complex else real

    def _ball(self, part: Fraction | float) -> Any:
        if isinstance(part, float):  # inf or nan
            return self.flint.arb(part)
        # fmpq is exact; arb(fmpq) rounds once at flint.ctx.prec (set by the caller)
        return self.flint.arb(self.flint.fmpq(part.numerator, part.denominator))

    def _wide_real(self, v: Any) -> np.longdouble:
        """The midpoint of the real part as a long double (error bars beyond float64)."""
        part = self.flint.acb(v).real if self.is_complex else self.flint.arb(v)
        if not part.is_finite():
            return np.longdouble(np.nan)
        man, exp = part.mid().man_exp()
        return wide_from_parts(int(man), int(exp))

    def _wide_abs(self, v: Any) -> np.longdouble:
        if not self.is_complex:
            return abs(self._wide_real(v))
        z = self.flint.acb(v)
        return np.hypot(self._wide_real(z.real), self._wide_real(z.imag))

    def to_float(self, array: Any) -> np.ndarray:
        """The midpoints, rounded to float64 (complex128 for ``acb``)."""
        arr = np.asarray(array, dtype=object)
        if not self.is_complex and _all_type(arr, self._element):
            # float(arb) is its midpoint rounded to nearest, as below, in one C loop
            return arr.astype(np.float64)
        out = np.empty(arr.shape, dtype=np.complex128 if self.is_complex else np.float64)
        for idx, v in np.ndenumerate(arr):
            if isinstance(v, BallSeries):
                raise TypeError("to_float of a first-order ball series would drop its "
                                f"derivative (entry {idx}); ball arithmetic cannot prove "
                                "anything through a float.")
            if self.is_complex:
                v = self.flint.acb(v)
                out[idx] = complex(float(v.real.mid()), float(v.imag.mid()))
            else:
                out[idx] = float(self.flint.arb(v).mid())
        return out

    def radius(self, array: Any) -> np.ndarray:
        """Each element's radius as a float64 upper bound (see `radius`)."""
        return radius(array)

    def zeros(self, shape: int | tuple[int, ...]) -> np.ndarray:
        out = np.empty(shape, dtype=object)
        out.fill(self._element(0))
        return out

    def foreign_type(self, array: np.ndarray) -> str | None:
        for v in np.asarray(array, dtype=object).ravel():
            inner = v.value if isinstance(v, BallSeries) else v
            if type(inner) is not self._element:
                return type(inner).__name__
        return None

    def accurate_sum(self, values: Any, axis: tuple[int, ...] = (-2, -1)) -> Any:
        """Σ over the trailing `axis`: the balls added at ``SUM_GUARD_BITS`` more bits and
        the total's midpoint rounded once to the system's precision (its radius takes
        that rounding), so the midpoint errs by about one rounding rather than one per
        term (`CompositeFunctions.accurate_sum`)."""
        def row_sum(row: np.ndarray) -> Any:
            with flint_precision(self.prec + SUM_GUARD_BITS):
                total = sum(row[1:], row[0]) if len(row) else self.zero
            with self.context():
                return +total

        return rowwise_sum(values, axis, row_sum)

    def isfinite(self, x: Any) -> np.ndarray:
        arr = np.asarray(x, dtype=object)
        if _all_type(arr, self._element):  # the ball method itself, no Python wrapper
            return np.asarray(self._finite_of(arr), dtype=bool)
        return np.vectorize(lambda v: bool(v.is_finite()), otypes=[bool])(arr)

    # -- precision scope ---------------------------------------------------------------------
    def context(self) -> contextlib.AbstractContextManager:
        """Set python-flint's process-wide ``flint.ctx.prec`` to this system's precision;
        restored on exit, also on error (threads: see the module docstring)."""
        return flint_precision(self.prec)

    # -- elementwise functions ---------------------------------------------------------------
    def _apply(self, name: str, x: Any) -> Any:
        arr = np.asarray(x, dtype=object)
        if not self.is_complex and _all_type(arr, self._element):
            return self._apply_direct(name, arr)
        if name not in self._mapped:
            self._mapped[name] = np.frompyfunc(self._method(name), 1, 1)
        with self.context():
            out = self._mapped[name](arr)
        _check_domain(name, arr, out)
        return out

    def _apply_direct(self, name: str, arr: np.ndarray) -> Any:
        """`name` on real balls of this system: the flint method as the ufunc's loop (no
        conversion or guard is needed; calling it on anything else would crash flint, so
        the caller has checked every element's type), the domain checked in one loop."""
        if name not in self._direct:
            self._direct[name] = np.frompyfunc(getattr(self._element, name), 1, 1)
        with self.context():
            out = self._direct[name](arr)
        if np.ndim(out) and not self._finite_of(out).all():
            _check_domain(name, arr, out)  # names the entry (rare: off the fast path)
        elif not np.ndim(out) and not out.is_finite():
            _check_domain(name, arr, out)
        return out

    def _method(self, name: str):
        convert, prec, is_complex = self._convert, self.prec, self.is_complex

        def apply(v: Any) -> Any:
            v = convert(v)
            guard = complex_step_guard(v) if is_complex else 0
            if not guard:
                return getattr(v, name)()
            return near_real_axis(name, v, prec, guard)

        return apply

    def sigmoid(self, x: Any) -> Any:
        """``1/(1 + e^{-x})``; no overflow in Arb (its exponents are unbounded)."""
        one = self.one  # a ball: a Python 1 would be converted again at every entry
        with self.context():
            return one / (one + self.exp(-np.asarray(x, dtype=object)))

    def sigmoid_with_complement(self, x: Any) -> tuple[Any, Any]:
        """``(σ(x), σ(−x))`` as ``(E·σ(−x), 1/(1 + E))`` with ``E = e^{x}``: one
        exponential, a quotient and a product, no branch (Arb's exponents are unbounded,
        so ``E`` is finite for every finite x; a product adds a few u relative and
        cancels nothing)."""
        one = self.one
        with self.context():
            e = self.exp(np.asarray(x, dtype=object))  # E = e^{x}: no negation pass
            c = one / (one + e)
            return e * c, c

    def sigmoid_residual(self, x: Any, y: Any) -> Any:
        """``σ(x) − y`` as ``((1−y)·E − y)/(1 + E)`` with ``E = e^{x}``: the default's
        ``(1−y)·σ(x) − y·σ(−x)`` with σ(x) = E/(1+E) and σ(−x) = 1/(1+E) taken over one
        denominator (the same two terms >= 0, so the same accuracy; for y = 1 the
        numerator is −1 exactly), in seven ball operations instead of nine."""
        one = self.one
        with self.context():
            e = self.exp(np.asarray(x, dtype=object))
            return ((one - y) * e - y) / (one + e)

    def softplus(self, x: Any) -> Any:
        """``log(1 + e^x)`` for every real x (and series, in Taylor mode): `log1p_exp`,
        whose ball form holds beyond its ``x <= 0`` contract since ``e^x`` cannot
        overflow in Arb and ``log1p`` of it is ``x`` to relative rounding for x ≫ 0."""
        return self.log1p_exp(x)

    def log1p_exp(self, w: Any) -> Any:
        """``log(1 + e^w)`` of real balls in one pass per function, or, on stacks of nearby
        rows (the perturbed losses of a numerical gradient), by Taylor polynomials about
        the first row with a proven remainder (`arb_softplus`); anything else (series,
        ``acb``) as ``log1p(exp(w))``."""
        arr = np.asarray(w, dtype=object)
        if self.is_complex or not _all_type(arr, self._element):
            return super().log1p_exp(w)
        with self.context():
            out, by_polynomial = log1p_exp(self.flint, arr, self.log2_unit_roundoff)
        if by_polynomial:  # finite wherever w is
            return out
        if not (self._finite_of(out).all() if np.ndim(out) else out.is_finite()):
            _check_domain("log1p_exp", arr, out)  # names the entry
        return out

    @property
    def pi(self) -> Any:
        with self.context():
            return self._element(self.flint.arb.pi())

    def real_part(self, x: Any) -> np.ndarray:
        """Real parts (series: their real value ball) as an array whose comparisons
        prove their answer or raise `ValueError` naming the entry."""
        arr = np.asarray(x, dtype=object)
        if self.is_complex:
            arr = np.frompyfunc(_real_of, 1, 1)(arr)
            arr = np.asarray(arr, dtype=object)
        return arr.view(OrderedBalls)

    def imag(self, x: Any) -> np.ndarray:
        if not self.is_complex:
            return self.real().zeros(np.shape(x))
        return np.asarray(np.frompyfunc(lambda v: self.flint.acb(v).imag, 1, 1)(x),
                          dtype=object)


def _real_of(v: Any) -> Any:
    if isinstance(v, BallSeries):
        return BallSeries(v.value.real, v.slope.real if hasattr(v.slope, "real") else v.slope)
    return v.real


def _all_type(arr: np.ndarray, cls: type) -> bool:
    """Whether every element is a `cls` (python-flint's types have no subclasses here);
    ``map`` of the type check runs in C, ~20 ns an element."""
    return all(map(cls.__instancecheck__, arr.flat))


def _check_domain(name: str, arr: np.ndarray, out: Any) -> None:
    """A finite argument with a non-finite result: the ball reaches outside the domain of
    `name` (log of a ball containing 0, sqrt of a negative one). Say where."""
    results = np.asarray(out, dtype=object)
    for idx, v in np.ndenumerate(results):
        if not _finite(v) and _finite(arr[idx]):
            raise ValueError(
                f"{name}(x) at entry {idx} of the argument has no finite enclosure: "
                f"x = {arr[idx]} reaches outside the domain of {name} (or where it is "
                "unbounded). Ball arithmetic cannot return a bound there; keep the argument "
                "away from the singularity (e.g. a saturated probability: use a stable loss)."
            )


def _finite(v: Any) -> bool:
    test = getattr(v, "is_finite", None)
    return True if test is None else bool(test())
