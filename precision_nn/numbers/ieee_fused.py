"""The complex step's softplus and sigmoid cross-entropy on numpy parts, fused.

The sigmoid cross-entropy's entries are ``c·z + f(w)`` with ``f(w) = log(1 + e^w)``,
``w = −|z|`` (the sign chosen on Re z) and ``c = 1 − y`` where Re z > 0, ``−y`` elsewhere
(`precision_nn.losses`). `complex_exp` then `complex_log1p` (``numbers/ieee_complex.py``)
evaluate f in about 30 numpy passes, assembling the complex ``e^w`` only to split it
again; here f is evaluated from the parts of ``w = a + ib`` directly, using what
``Re w = a <= 0`` gives: ``E = e^a <= 1`` never overflows and ``1 + e^w`` never nears 0
(``|e^w| <= 1``, and ``1 + E cos b > 0`` for ``|b| < π/2``), and the loss entry is
assembled from float arrays as well (``c`` is real for real targets).

The exact parts are ``Re f = ½·log(1 + 2E cos b + E²)`` and ``Im f = atan2(E sin b,
1 + E cos b)``. Expanding cos, sin, log1p and atan in ``b`` (equivalently, the series of
the holomorphic f about the real point a), with ``D = E/(1 + E) ∈ [0, ½]``:

    Re f = L − ½·g·b² + O(b⁴),         L = log1p(E) ≥ D,  g = D(1 − D) ≤ ¼,
    Im f = D·b·(1 − k·b² + O(b⁴)),     k = (1 − D)(1 − 2D)/6 ∈ [0, 1/6].

Every coefficient is ≥ 0 and nothing cancels. The O(b⁴) terms, relative to the part
(Re f ≥ L − g·b²/2 ≥ D(1 − b²)): Re's is ``σ'''(a)·b⁴/24`` with ``|σ'''(a)| =
g·|1 − 6g| ≤ D``, so at most ``b⁴/24``; Im's at most ``b⁴/120`` (the coefficient's maximum
over D ∈ [0, ½], computed symbolically); the next terms are b² times smaller again. So, with ``p`` the bits
of the result's parts and ``u = 2^-p``, per whole array (one path for all of it):

- **tiny** (``|b| ≤ 2^-(p+1)/2``, complex128: 2^-27): ``Re f = L`` and ``Im f = D·b``,
  dropping ``½gb² ≤ (b²/2)·L ≤ u/4·L`` and ``k·b² ≤ b²/6 ≤ u/12`` relative;
- **small** (``|b| ≤ 2^-13`` for complex128, ``2^-7`` for complex64): the b² terms
  kept; the dropped ``b⁴/24 ≤ u/12`` (complex64: ``2^-28/24``, far below its u);
- otherwise (``|b|`` larger, ``Re w > 0``, any non-finite part): ``log1p(exp(w))`` as
  before, by `complex_exp` and `complex_log1p`, with their own paths and bounds.

Rounding, complex128 (numpy's float64 exp and log1p each err by < 1 ulp, ≤ 2u relative):
E by 2u; L by 2u from E (log1p's condition ``E/((1 + E)·L) ≤ 1``) plus its own 2u; D by
2u from E plus two roundings; Im by one more: Re f ≤ 4u (+u/4 tiny), Im f ≤ 5u, tested
against mpmath at 60 digits. complex64 works in float64 (its parts converted exactly) and
rounds each part once at the end: within ``u + u/8`` of the exact part. The loss entry
adds ``c·x`` (Re: both terms ≥ 0 for y in [0, 1]) and ``c·Im z``; its parts are those
numpy's complex ``c·z + f`` forms (for real c, ``Re(c·z) = c·x`` and ``Im(c·z) = c·Im z``
exactly), with f's parts now from the fused evaluation.
"""

from __future__ import annotations

import numpy as np

from precision_nn.numbers.ieee_complex import complex_exp, complex_log1p

__all__ = ["FUSED_PATHS", "complex_log1p_exp", "complex_sigmoid_cross_entropy"]

_F64 = np.dtype(np.float64)
# per complex dtype: the bounds of the tiny and the small path on |Im w| (module notes)
FUSED_PATHS = {np.dtype(np.complex128): (2.0**-27, 2.0**-13),
               np.dtype(np.complex64): (2.0**-13, 2.0**-7)}


def _float_parts(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Contiguous float64 copies of the real and imaginary parts (exact for complex64);
    numpy's real loops on the strided views are not vectorised."""
    return (np.ascontiguousarray(z.real, dtype=_F64),
            np.ascontiguousarray(z.imag, dtype=_F64))


def _largest(v: np.ndarray) -> float:
    """max |v| without an |v| temporary (NaN if v holds one; 0 if empty)."""
    flat = v.reshape(-1)
    if flat.size == 0:
        return 0.0
    return float(max(np.maximum.reduce(flat), -np.minimum.reduce(flat)))


def _path(dtype: np.dtype, b: np.ndarray) -> str | None:
    """'tiny', 'small' or None (the general formula) for imaginary parts b."""
    tiny, small = FUSED_PATHS[dtype]
    largest = _largest(b)
    if largest <= tiny:
        return "tiny"
    return "small" if largest <= small else None  # NaN fails both comparisons


def _softplus_parts(a: np.ndarray, b: np.ndarray, path: str
                    ) -> tuple[np.ndarray, np.ndarray]:
    """(Re, Im) of log(1 + e^(a + ib)) for float arrays a <= 0 (or -inf) and b on `path`
    (module notes)."""
    E = np.exp(a)
    L = np.log1p(E)
    D = E / (1 + E)
    Db = D * b
    if path == "tiny":
        return L, Db
    b2 = b * b
    one_minus = 1 - D
    g = D * one_minus
    k = one_minus * (1 - 2 * D) * (1 / 6)  # a rounding of 1/6 is u of a b² term
    return L - 0.5 * (g * b2), Db * (1 - k * b2)


def _assembled(dtype: np.dtype, re: np.ndarray, im: np.ndarray) -> np.ndarray:
    """A complex array of `dtype` from float64 parts, each rounded once."""
    out = np.empty(re.shape, dtype=dtype)
    out.real = re
    out.imag = im
    return out


def _all_finite_nonpositive(a: np.ndarray) -> bool:
    """Every a finite and <= 0 (False for NaN, ±inf, a positive entry): the sum of values
    <= 0 is finite only if each is (or overflows, which only sends it to the general
    path)."""
    if a.size == 0:
        return True
    return bool(np.maximum.reduce(a, axis=None) <= 0 and np.isfinite(np.add.reduce(a, axis=None)))


def complex_log1p_exp(w: np.ndarray) -> np.ndarray:
    """log(1 + e^w) for a complex array with Re w <= 0, each part accurate; fused and fast
    for the complex step's small imaginary parts.

    Examples
    --------
    >>> w = np.array([-3 + 1e-20j, -0.0 + 1e-9j])
    >>> out = complex_log1p_exp(w)
    >>> exact = np.log1p(np.exp(w.real)) + 1j * w.imag / (1 + np.exp(-w.real))
    >>> bool(np.all(np.abs(out - exact) <= 2**-50 * np.abs(exact)))
    True
    """
    w = np.asarray(w)
    if w.dtype not in FUSED_PATHS:
        return complex_log1p(complex_exp(w))
    a, b = _float_parts(w)
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        path = _path(w.dtype, b)
        if path is None or not _all_finite_nonpositive(a):
            return complex_log1p(complex_exp(w))
        return _assembled(w.dtype, *_softplus_parts(a, b, path))


def complex_sigmoid_cross_entropy(z: np.ndarray, y: np.ndarray) -> np.ndarray | None:
    """The sigmoid cross-entropy's entries ``c·z + log(1 + e^(−|z|))`` (module notes) for
    a complex array z and real targets y (of z's dtype, imaginary parts 0), from float parts;
    None where this does not apply (another dtype, complex targets, a non-finite part or
    imaginary parts off the fast paths): the caller takes the general formula.

    Examples
    --------
    >>> z = np.array([[2.0 + 1e-20j, -1.0 + 1e-20j]])
    >>> y = np.array([[1.0 + 0j, 1.0 + 0j]])
    >>> out = complex_sigmoid_cross_entropy(z, y)
    >>> exact = np.log1p(np.exp(-z.real)) - 1j * 1e-20 / (1 + np.exp(z.real))
    >>> bool(np.all(np.abs(out - exact) <= 2**-50 * np.abs(exact)))
    True
    """
    z, y = np.asarray(z), np.asarray(y)
    if z.dtype not in FUSED_PATHS or y.dtype != z.dtype or np.any(y.imag != 0):
        return None
    x, eta = _float_parts(z)
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        path = _path(z.dtype, eta)
        if path is None or x.size == 0 or not np.isfinite(np.add.reduce(x, axis=None)):
            return None  # also |x| so large that their sum overflows: the general path
        positive = x > 0
        a = np.abs(x)
        np.negative(a, out=a)
        b = np.where(positive, -eta, eta)  # Im w (a masked np.negative is 6x slower)
        re_f, im_f = _softplus_parts(a, b, path)
        targets = np.ascontiguousarray(y.real, dtype=_F64)
        c = np.where(positive, 1 - targets, -targets)  # as ns.one − y and −y round
        re = c * x
        re += re_f
        im = c * eta
        im += im_f
    return _assembled(z.dtype, re, im)
