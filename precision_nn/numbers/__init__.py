"""Number systems: one interface over IEEE floats, Decimal and mpmath at any precision.

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

import contextlib
import decimal
import functools
import re
from typing import Any

import numpy as np

from precision_nn.numbers.base import NumberSystem
from precision_nn.numbers.decimal_system import DecimalSystem
from precision_nn.numbers.ieee import IEEE_COMPLEX, IEEE_REAL, IEEESystem
from precision_nn.numbers.mpmath_system import MPMathSystem

__all__ = ["SPECS", "NumberSystem", "infer_number_system", "number_system"]

DEFAULT_DIGITS = {"decimal": 28, "mpf": 15, "mpc": 15}
SPECS = sorted([*IEEE_REAL, *IEEE_COMPLEX, "decimal[:N]", "mpf[:N]", "mpc[:N]"])
_SPEC = re.compile(r"^(decimal|mpf|mpc)(?::(-?\d+))?$")


def number_system(spec: str | NumberSystem) -> NumberSystem:
    """The number system named by `spec` (a `NumberSystem` is returned as it is).

    Parameters
    ----------
    spec : str or NumberSystem
        ``float16``, ``bfloat16``, ``float32``, ``float64``, ``longdouble``, ``complex64``,
        ``complex128``, ``clongdouble``, ``decimal[:N]``, ``mpf[:N]`` or ``mpc[:N]``; N is
        the number of significant decimal digits.

    Raises
    ------
    ValueError
        For an unknown or malformed spec, or a precision below 1.
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
    if spec in IEEE_REAL or spec in IEEE_COMPLEX:
        return IEEESystem(spec)
    match = _SPEC.match(spec)
    family = spec.partition(":")[0]
    if match is None and family in DEFAULT_DIGITS:
        raise ValueError(
            f"malformed number system {spec!r}: the precision after {family + ':'!r} must be "
            f"a whole number of significant decimal digits, e.g. '{family}:50'."
        )
    if match is None:
        raise ValueError(
            f"unknown number system {spec!r}; expected one of {SPECS} "
            "(N = significant decimal digits, e.g. 'mpf:50')."
        )
    digits = match.group(2)
    n = DEFAULT_DIGITS[family] if digits is None else int(digits)
    if n < 1:
        raise ValueError(
            f"precision of {spec!r} must be at least 1 significant digit; got {n}. "
            f"Use e.g. '{family}:{DEFAULT_DIGITS[family]}'."
        )
    return _system(family, n)


@functools.cache
def _system(family: str, digits: int) -> NumberSystem:
    """One instance per canonical system, however it was spelled ('mpf', 'mpf:15', 'mpf:015')."""
    if family == "decimal":
        return DecimalSystem(digits)
    return MPMathSystem(digits, is_complex=family == "mpc")


def infer_number_system(array: Any) -> NumberSystem:
    """The number system an array (or scalar) belongs to, from its dtype or elements.

    Integer and bool arrays and Python floats belong to ``float64``. mpmath elements carry
    their precision; Decimal elements do not, so the thread's decimal context decides
    (inside ``ns.context()`` of a ``decimal:N`` system, that is N).

    Raises
    ------
    TypeError
        For a dtype or element type that is no number system's.

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
    if arr.dtype != object:
        if arr.dtype.kind in "iub":
            return number_system("float64")
        for spec in (*IEEE_REAL, *IEEE_COMPLEX):  # float64 before longdouble
            with contextlib.suppress(ValueError):  # bfloat16 without ml_dtypes
                if number_system(spec).dtype == arr.dtype:
                    return number_system(spec)
        raise TypeError(
            f"arrays of dtype {arr.dtype} belong to no number system; convert them with "
            f"ns.asarray for one of {SPECS}."
        )
    first = arr.ravel()[0] if arr.size else None
    if isinstance(first, decimal.Decimal):
        # Decimals carry no precision: take the larger of the thread's context precision
        # and the most significant digits of any element (30-digit values -> decimal:30)
        digits = max((len(v.as_tuple().digits) for v in arr.ravel()
                      if isinstance(v, decimal.Decimal) and v.is_finite()), default=0)
        return number_system(f"decimal:{max(decimal.getcontext().prec, digits)}")
    if hasattr(first, "context") and hasattr(first.context, "dps"):
        kind = "mpc" if hasattr(first, "_mpc_") else "mpf"
        return number_system(f"{kind}:{first.context.dps}")
    if isinstance(first, (int, float)):
        return number_system("float64")
    raise TypeError(
        f"cannot infer a number system from elements of type {type(first).__name__}; "
        f"convert them with ns.asarray for one of {SPECS}."
    )
