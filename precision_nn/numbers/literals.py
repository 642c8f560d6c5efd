"""Exact values of number literals and foreign numbers: the parsing every system shares.

`exact_parts` turns a string, a Python or numpy number, a Decimal, an mpmath or a gmpy2
number into exact real and imaginary parts (Fractions, or float inf/nan), refusing absurd
exponents and overlong strings at once and in time linear in their length;
`exact_mpmath` rounds such a value once into an mpmath context.
"""

from __future__ import annotations

import decimal
import re
from fractions import Fraction
from typing import Any

import mpmath
import numpy as np
from mpmath.libmp import from_float, from_rational

__all__ = ["LITERAL_EXPONENTS", "exact_mpmath", "exact_parts"]


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
