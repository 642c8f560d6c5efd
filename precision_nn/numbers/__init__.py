"""Number systems: one interface over IEEE floats, Decimal, mpmath and MPFR at any precision.

Every family of number systems is one module in this package plus one line in `FAMILIES`:
a spec prefix (``"mpf"`` in ``"mpf:50"``), the constructor, the default digits (None for a
format of fixed precision, whose spec takes no ``:N``), the optional package it needs, and
a recogniser that tells, from an array, whether its elements are the family's (so
`infer_number_system` never tests a name).

>>> from precision_nn.numbers import number_system
>>> ns = number_system("mpf:30")
>>> ns.name, ns.digits, ns.is_complex, ns.complex().name
('mpf:30', 30, False, 'mpc:30')
>>> number_system("decimal:50").unit_roundoff
5e-50
>>> number_system("float32").exp(number_system("float32").asarray([0, 1])).dtype
dtype('float32')
"""

from __future__ import annotations

import functools
import importlib
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from precision_nn.numbers import decimal_system, ieee, mpmath_system
from precision_nn.numbers.base import NumberSystem

__all__ = ["FAMILIES", "SPECS", "Extra", "Family", "NumberSystem", "infer_number_system",
           "number_system"]


@dataclass(frozen=True)
class Extra:
    """An optional package a family needs: what to import and how to install it."""

    module: str  # the import name, e.g. "gmpy2"
    package: str  # the pip name, e.g. "gmpy2" or "python-flint"
    extra: str  # the precision_nn extra that installs it, e.g. "mpfr"


@dataclass(frozen=True)
class Family:
    """One family of number systems in the registry.

    Attributes
    ----------
    make : callable
        ``make(digits) -> NumberSystem`` (fixed-precision families ignore `digits`).
    default_digits : int or None
        Digits of the bare spec (``"mpf"`` is ``"mpf:15"``); None: a fixed format whose spec
        takes no ``:N``.
    recognise : callable
        ``recognise(array) -> spec or None``: the spec of the system `array` belongs to, if
        its dtype or first element is this family's; never imports an optional package.
        An optional family's module provides it as a module-level ``recognise(array)``,
        called only once the family's package has been imported.
    extra : Extra or None
        The optional package `make` needs, named in the error when it is missing.
    """

    make: Callable[[int], NumberSystem]
    default_digits: int | None
    recognise: Callable[[np.ndarray], str | None]
    extra: Extra | None = None


def _optional(module: str, factory: str, extra: Extra, **options: Any):
    """A constructor that imports `module` (which imports `extra.module`) only when called."""

    def make(digits: int) -> NumberSystem:
        return getattr(_load(module, extra, factory), factory)(digits, **options)

    return make


def _optional_recogniser(module: str, extra: Extra):
    """The recogniser of an optional family: elements of the family can only exist once its
    package has been imported, so nothing is imported before then."""

    def recognise(array: np.ndarray) -> str | None:
        if extra.module not in sys.modules or array.dtype != object:
            return None
        try:
            found = getattr(importlib.import_module(module), "recognise", None)
        except ImportError:
            return None
        return found(array) if found is not None else None

    return recognise


class _Unavailable(ValueError):
    """A family whose module or optional package cannot be imported (completed with the spec
    by `number_system`)."""


def _load(module: str, extra: Extra, what: str) -> Any:
    """Import a family module whose elements come from an optional package (the package
    first, so that a missing package is named whatever the module does)."""
    try:
        importlib.import_module(extra.module)
    except ImportError as exc:
        raise _Unavailable(
            f"needs the optional package {extra.package}; install it with `pip install "
            f"{extra.package}` (or the precision_nn extra `{extra.extra}`)."
        ) from exc
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name != module:
            raise
        raise _Unavailable(
            f"is not part of this installation ({module}, which provides {what}, is "
            f"missing); use another family or update precision_nn."
        ) from exc


GMPY2 = Extra(module="gmpy2", package="gmpy2", extra="mpfr")
FLINT = Extra(module="flint", package="python-flint", extra="arb")
_MPFR = "precision_nn.numbers.mpfr_system"
_ARB = "precision_nn.numbers.arb_system"


def _ieee(name: str) -> Family:
    return Family(make=lambda _digits: ieee.IEEESystem(name), default_digits=None,
                  recognise=functools.partial(ieee.recognise, name))


# spec prefix -> family. Fixed formats first, float64 before longdouble (on platforms where
# they coincide, a double array is float64); a new system is one module plus one line here.
FAMILIES: dict[str, Family] = {
    **{name: _ieee(name) for name in (*ieee.IEEE_REAL, *ieee.IEEE_COMPLEX)},
    "decimal": Family(decimal_system.DecimalSystem, 28, decimal_system.recognise),
    "mpf": Family(functools.partial(mpmath_system.MPMathSystem, is_complex=False), 15,
                  functools.partial(mpmath_system.recognise, is_complex=False)),
    "mpc": Family(functools.partial(mpmath_system.MPMathSystem, is_complex=True), 15,
                  functools.partial(mpmath_system.recognise, is_complex=True)),
    "mpfr": Family(_optional(_MPFR, "MPFRSystem", GMPY2, is_complex=False), 15,
                   _optional_recogniser(_MPFR, GMPY2), GMPY2),
    "mpfrc": Family(_optional(_MPFR, "MPFRSystem", GMPY2, is_complex=True), 15,
                    _optional_recogniser(_MPFR, GMPY2), GMPY2),
    "arb": Family(_optional(_ARB, "ArbSystem", FLINT, is_complex=False), 15,
                  _optional_recogniser(_ARB, FLINT), FLINT),
    "acb": Family(_optional(_ARB, "ArbSystem", FLINT, is_complex=True), 15,
                  _optional_recogniser(_ARB, FLINT), FLINT),
}

SPECS = sorted(name if family.default_digits is None else f"{name}[:N]"
               for name, family in FAMILIES.items())
_DIGITS = re.compile(r"^-?\d+$")


def number_system(spec: str | NumberSystem) -> NumberSystem:
    """The number system named by `spec` (a `NumberSystem` is returned as it is).

    Parameters
    ----------
    spec : str or NumberSystem
        ``float16``, ``bfloat16``, ``float32``, ``float64``, ``longdouble``, ``complex64``,
        ``complex128``, ``clongdouble``, ``decimal[:N]``, ``mpf[:N]``, ``mpc[:N]``,
        ``mpfr[:N]`` and ``mpfrc[:N]`` (extra ``mpfr``: gmpy2), ``arb[:N]`` and ``acb[:N]``
        (extra ``arb``: python-flint); N is the number of significant decimal digits.

    Raises
    ------
    ValueError
        For an unknown or malformed spec, a precision below 1, or a family whose optional
        package is not installed (the message says which one to install).
    """
    if isinstance(spec, NumberSystem):
        return spec
    if not isinstance(spec, str):
        raise TypeError(
            f"`numbers` must be a spec string such as 'float64' or 'mpf:50', or a "
            f"NumberSystem; got {spec!r} of type {type(spec).__name__}."
        )
    return _cached(spec.strip().lower())


@functools.cache
def _cached(spec: str) -> NumberSystem:
    name, colon, digits = spec.partition(":")
    family = FAMILIES.get(name)
    if family is None:
        raise ValueError(
            f"unknown number system {spec!r}; expected one of {SPECS} "
            "(N = significant decimal digits, e.g. 'mpf:50')."
        )
    if family.default_digits is None:
        if colon:
            raise ValueError(
                f"malformed number system {spec!r}: {name!r} has a fixed precision; write "
                f"{name!r} without ':N'."
            )
        return _system(name, 0)
    if colon and not _DIGITS.match(digits):
        raise ValueError(
            f"malformed number system {spec!r}: the precision after {name + ':'!r} must be "
            f"a whole number of significant decimal digits, e.g. '{name}:50'."
        )
    n = int(digits) if colon else family.default_digits
    if n < 1:
        raise ValueError(
            f"precision of {spec!r} must be at least 1 significant digit; got {n}. "
            f"Use e.g. '{name}:{family.default_digits}'."
        )
    try:
        return _system(name, n)
    except _Unavailable as exc:
        raise ValueError(f"number system {spec!r} {exc}") from exc.__cause__


@functools.cache
def _system(family: str, digits: int) -> NumberSystem:
    """One instance per canonical system, however it was spelled ('mpf', 'mpf:15', 'mpf:015')."""
    return FAMILIES[family].make(digits)


def infer_number_system(array: Any) -> NumberSystem:
    """The number system an array (or scalar) belongs to, from its dtype or elements.

    Integer and bool arrays and Python floats belong to ``float64``. mpmath and MPFR
    elements carry their precision; Decimal elements do not, so the larger of the thread's
    decimal context precision (inside ``ns.context()`` of a ``decimal:N`` system, that is N)
    and the most digits of any element decides. An object array must hold elements of one
    type (Python ints, exact in every system, may join any).

    Raises
    ------
    TypeError
        For a dtype or element type that is no number system's, or an object array that
        mixes element types (e.g. Decimal with float, or mpf with Decimal).

    Examples
    --------
    >>> infer_number_system(number_system("mpc:40").asarray([1])).name
    'mpc:40'
    >>> ns = number_system("decimal:60")
    >>> with ns.context():
    ...     infer_number_system(ns.asarray(["0.1"])).name
    'decimal:60'
    >>> infer_number_system(ns.asarray(["1." + "3" * 59])).name  # outside the context
    'decimal:60'
    """
    arr = np.asarray(array) if not isinstance(array, np.ndarray) else array
    if arr.dtype.kind in "iub":
        return number_system("float64")
    if arr.dtype == object and arr.size == 0:
        raise TypeError("cannot infer a number system from an empty object array; pass "
                        "`numbers=` or convert the values with ns.asarray.")
    for family in FAMILIES.values():
        spec = family.recognise(arr)
        if spec is not None:
            ns = number_system(spec)
            if arr.dtype == object:
                _check_one_type(arr, ns)
            return ns
    if arr.dtype != object:
        raise TypeError(
            f"arrays of dtype {arr.dtype} belong to no number system; convert them with "
            f"ns.asarray for one of {SPECS}."
        )
    raise TypeError(
        f"cannot infer a number system from elements of type {type(arr.flat[0]).__name__}; "
        f"convert them with ns.asarray for one of {SPECS}."
    )


def _check_one_type(arr: np.ndarray, ns: NumberSystem) -> None:
    """Raise when an object array mixes element types (ints excepted: exact everywhere)."""
    first = arr.flat[0]
    # a numpy-dtype system read from Python numbers: any float or int has its exact value
    same = (lambda v: isinstance(v, (float, int, np.integer))) if not ns.object_elements \
        else (lambda v: type(v) is type(first) or isinstance(v, (int, np.integer)))
    for index, v in enumerate(arr.flat):
        if not same(v):
            raise TypeError(
                f"the array mixes {_kind(first)} and {_kind(v)} elements (flat index 0 and "
                f"{index}); mixing number types would change precision silently. Convert "
                f"all values with one system, e.g. number_system({ns.name!r}).asarray(...)."
            )


def _kind(v: Any) -> str:
    """An element's type name, with its precision where it carries one (mpf at 30 digits)."""
    dps = getattr(getattr(v, "context", None), "dps", None)
    return f"{type(v).__name__} ({dps} digits)" if dps is not None else type(v).__name__
