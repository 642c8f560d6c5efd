"""Complex exp and log1p of numpy complex arrays, fast where the complex step lives.

The complex step evaluates f at x + ih with |h| between u and √u, so every intermediate
has an imaginary part tiny beside the scales of its real part. There numpy's complex
exp (e^x·(cos y + i sin y)) and log1p (through a complex log of the rounded 1 + w) pay
for cos, sin and atan2 whose results a few terms of their series give to working
precision, and numpy's log1p even loses Re w below u. The functions here work on the
real and imaginary parts as separate float arrays (numpy's complex loops are 3-5× its
real ones) and take, per whole array, one of three paths:

- **tiny** parts (complex128: |y| ≤ 2^-27): the series are their first terms to
  working precision (bounds below);
- **small** parts (complex128: |y| ≤ 2^-13): two terms of each series;
- otherwise (large, negative or non-finite parts): the full complex function.

complex64's exp works in float64 and rounds each part once at the end (numpy's
vectorised float32 exp errs by up to 3u); its log1p works in float32. These are the
complex functions themselves to working precision at every input, never a derivative
formula: the real parts still come from e^x and log1p(x) of the moved real parts, and
every input outside the bounds takes the general formula.

Bounds for complex128, with u_w = 2^-53 (a half ulp of 1 is u_w below 1 and 2u_w above;
complex64's follow with p = 24 bits in place of 53, `_EXP_WORK`):

- exp: cos y = 1 − y²/2 + y⁴/24 − …, sin y = y(1 − y²/6 + y⁴/120 − …). For |y| ≤ 2^-27,
  y²/2 ≤ 2^-55 < u_w/2 so cos y rounds to 1, and y²/6 < u_w/2 so sin y rounds to y:
  numpy's own formula with correctly rounded cos and sin gives e^x and e^x·y (bitwise
  numpy's complex128 exp there). For |y| ≤ 2^-13 the dropped terms are y⁴/24 ≤ 2^-56.5
  and y⁴/120 relative: 1 − y²/2 and y(1 − y²/6) are cos and sin to < u_w/8 beyond their
  own roundings.
- log1p, w = x + iy with x ≥ 0: Re log(1 + w) = log1p(x) + ½·log1p(t²), t = y/(1 + x),
  and Im = atan t (1 + x > 0). Both Re terms are ≥ 0, so nothing cancels and each term's
  relative error bounds the sum's. ½·log1p(t²) = t²/2 − t⁴/4 + t⁶/6 − …: for |t| ≤ 2^-27
  the t⁴ term is ≤ 2^-55 of t²/2, so t²/2 is that term to rounding, and atan t = t(1 −
  t²/3 + …) rounds to t. For |t| ≤ 2^-13, t²(½ − t²/4) and t(1 − t²/3) leave t⁶/6
  (≤ 2^-52/3 of t²/2) and t⁵/5 relative. fl(1 + x) perturbs t by one rounding, as it
  perturbed atan2(y, fl(1 + x)) before. For x < 0, log1p(x) and ½·log1p(t²) may cancel
  (w = −t²/2 + it has |1 + w| = 1 + t⁴/8...), so negative real parts take the full
  formula, which forms ½·log1p(x(2 + x) + y²) without the cancellation for x ≥ 0 and
  |1 + w| ≈ 1 only in the rest (Kahan, "Branch cuts for complex elementary functions",
  1987).
- non-finite parts: a NaN fails every comparison below and takes the full function; an
  e^x that overflows, or a complex64 part beyond its range, takes numpy's exp.
"""

from __future__ import annotations

import numpy as np

__all__ = ["SMALL_PART", "TINY_PART", "complex_exp", "complex_log1p"]

# per complex dtype: the real dtype the parts are worked in, and the bounds of the tiny
# and the small path on |y| (exp) or |t| = |y/(1 + x)| (log1p), from the module notes
# with p the bits the result is rounded to: tiny 2^-(p+1)/2, small (3·2^-(p+2))^(1/4),
# each rounded down to a power of 2. complex64's exp works in float64 (numpy's float32
# exp errs by up to 3u): its parts are then within 0.5u + u/32 of the exact values.
# Its log1p works in float32 (numpy's float32 log1p is within 1 ulp; float64 work on
# converted parts measured 4x slower).
TINY_PART = 2.0**-27
SMALL_PART = 2.0**-13
_F64, _F32 = np.dtype(np.float64), np.dtype(np.float32)
_EXP_WORK = {np.dtype(np.complex128): (_F64, TINY_PART, SMALL_PART),
             np.dtype(np.complex64): (_F64, 2.0**-14, 2.0**-7)}
# the largest finite part of each complex dtype
_RANGE = {np.dtype(np.complex128): float(np.finfo(np.float64).max),
          np.dtype(np.complex64): float(np.finfo(np.float32).max)}
_LOG1P_WORK = {np.dtype(np.complex128): (_F64, TINY_PART, SMALL_PART),
               np.dtype(np.complex64): (_F32, 2.0**-13, 2.0**-7)}


def _parts(z: np.ndarray, work: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """Real and imaginary parts as contiguous arrays of `work`: numpy's real loops on the
    strided views of a complex array are not vectorised (float64 log1p: 17 ns/element
    strided against 8 contiguous, measured), and a copy costs ~0.5 ns/element."""
    return (np.ascontiguousarray(z.real, dtype=work),
            np.ascontiguousarray(z.imag, dtype=work))


def _largest(v: np.ndarray) -> float:
    """max |v| (NaN if v holds one; 0 for an empty array), without an |v| temporary.

    Two of numpy's own reductions (~1 ns/element each). Not ‖v‖₂ through BLAS's dot,
    which is faster alone but multithreaded above ~10^4 elements: on a loaded 2-core
    machine its threads made each call ~50× slower (measured)."""
    flat = v.reshape(-1)
    if flat.size == 0:
        return 0.0
    return float(max(np.maximum.reduce(flat), -np.minimum.reduce(flat)))


def _assembled(z: np.ndarray, re: np.ndarray, im: np.ndarray) -> np.ndarray:
    """A complex array of z's dtype from float64 parts, each rounded once."""
    out = np.empty(z.shape, dtype=z.dtype)
    out.real = re
    out.imag = im
    return out


def complex_exp(z: np.ndarray) -> np.ndarray:
    """exp(z) for a complex array; fast for the complex step's small imaginary parts.

    Examples
    --------
    >>> z = np.array([0.5 + 1e-20j, -3 + 2e-6j])
    >>> out = complex_exp(z)
    >>> bool(np.all(np.abs(out - np.exp(z)) <= 2**-52 * np.abs(np.exp(z))))
    True
    """
    z = np.asarray(z)
    if z.dtype not in _EXP_WORK:
        return np.exp(z)
    work, tiny, small = _EXP_WORK[z.dtype]
    x, y = _parts(z, work)
    with np.errstate(over="ignore", invalid="ignore"):
        largest = _largest(y)
        if not largest <= small:  # also NaN
            return np.exp(z)
        e = np.exp(x)
        # overflow, NaN or (complex64) beyond the result's range: e >= 0 bounds every
        # part, as |cos y|, |sin y| <= 1
        if not (e.size == 0 or np.maximum.reduce(e, axis=None) <= _RANGE[z.dtype]):
            return np.exp(z)
        if largest <= tiny:  # cos y = 1 and sin y = y to working precision
            out = _assembled(z, e, e * y)
        else:
            y2 = y * y
            out = _assembled(z, e * (1 - y2 / 2), e * (y * (1 - y2 / 6)))
    return out


def complex_log1p(w: np.ndarray) -> np.ndarray:
    """log(1 + w) for a complex array with each part accurate; fast for the complex
    step's small imaginary parts on real parts ≥ 0.

    Examples
    --------
    >>> out = complex_log1p(np.array([1e-20 + 1e-30j]))  # numpy's log1p gives Re = 0
    >>> float(out.real[0]), float(out.imag[0])
    (1e-20, 1e-30)
    """
    w = np.asarray(w)
    if w.dtype not in _LOG1P_WORK:
        return _full_log1p(w)
    work, tiny, small = _LOG1P_WORK[w.dtype]
    x, y = _parts(w, work)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        if not (x.size == 0 or np.minimum.reduce(x, axis=None) >= 0):  # x < 0 or NaN
            return _full_log1p(w)
        t = y / (1 + x)
        largest = _largest(t)
        if not largest <= small:  # also NaN and inf
            return _full_log1p(w)
        L = np.log1p(x)
        t2 = t * t
        if largest <= tiny:  # ½·log1p(t²) = t²/2, atan t = t to working precision
            return _assembled(w, L + t2 / 2, t)
        return _assembled(w, L + t2 * (0.5 - t2 / 4), t * (1 - t2 / 3))


def _full_log1p(w: np.ndarray) -> np.ndarray:
    """log(1 + w) at any w: numpy's complex log1p forms log|1 + w| from the rounded
    1 + w and loses Re w below u (Re log1p(1e-20 + 1e-30j) comes out 0).

    With w = x + iy: |1 + w|² = 1 + (x(2 + x) + y²), so Re = ½·log1p(x(2 + x) + y²), a
    real log1p of an argument without cancellation for x >= 0 (for x < 0 the two terms
    cancel only where |1 + w| ≈ 1); Im = atan2(y, 1 + x), where rounding 1 + x perturbs
    the quotient by at most u relative (Kahan 1987, module notes).
    """
    x, y = w.real, w.imag
    out = np.empty_like(w)
    out.real = np.log1p(x * (2 + x) + y * y) / 2
    out.imag = np.arctan2(y, 1 + x)
    return out
