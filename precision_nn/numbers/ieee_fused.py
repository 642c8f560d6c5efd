"""The complex step's softplus, sigmoid cross-entropy and logistic function on numpy
parts, fused.

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
over D ∈ [0, ½], computed symbolically); the next terms are b² times smaller again. So,
with ``p`` the bits of the result's parts and ``u = 2^-p``, per whole array (one path for
all of it):

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

Two exact economies, neither an approximation: the loss's sums over examples and outputs
are taken of the float parts (the complex entries are never assembled), and the complex
step's stacks of perturbed outputs whose every row has the base point's real parts (the
tiny step moves imaginary parts only) evaluate the functions of x once, on one row,
remembered for the next such stack (`_shared_rows`, `_functions_of_x`): the same
arithmetic on equal numbers, so the same bits (tested row by row).

The logistic function (the hidden layers' sigmoid) is the same idea for ``σ(x + iη)``, with
``E = e^{−|x|}``, ``r = 1/(1 + E)``, ``D = E·r = σ(−|x|)`` and ``g = D·r = σ'(x)``, each
as `NumberSystem.sigmoid` forms them (``σ(x) = r`` for x > 0, ``D`` elsewhere); its series
in η about x (σ'' = ∓g(1 − 2D), the upper sign for x > 0; σ''' = g(1 − 6g)):

    Re σ = σ(x) ± ½·η²·g·(1 − 2D) + O(η⁴),   Im σ = η·g·(1 − η²(1 − 6g)/6 + O(η⁴)).

Relative to the part, the η² terms are at most ``η²/2`` (Re, as ``g(1 − 2D) <= σ(x)``)
and ``η²/6`` (Im), so the tiny path drops them (``<= u/4``); the η⁴ terms are at most
``η⁴/24`` and ``η⁴/120`` (symbolic maxima), which the small path drops. Rounding: σ(x)
as the generic sigmoid (E 2u, then 1 + E, the quotient and the product: <= 5u); Im two
products more (g = D·r, then η·g: <= 7u); complex64 again rounds once from float64 work.
"""

from __future__ import annotations

import numpy as np

from precision_nn.numbers.ieee_complex import complex_exp, complex_log1p

__all__ = ["FUSED_PATHS", "complex_log1p_exp", "complex_sigmoid",
           "complex_sigmoid_cross_entropy"]

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


def _softplus_of_real(a: np.ndarray, path: str) -> dict[str, np.ndarray]:
    """The functions of the real part a <= 0 (or -inf) that f's parts need on `path`:
    L = log1p(E), D = E/(1 + E) and, on the small path, ½g and k (module notes)."""
    E = np.exp(a)
    terms = {"L": np.log1p(E), "D": E / (1 + E)}
    if path == "small":
        D = terms["D"]
        one_minus = 1 - D
        terms["half_g"] = 0.5 * (D * one_minus)
        terms["k"] = one_minus * (1 - 2 * D) * (1 / 6)  # a rounding of 1/6: u of a b² term
    return terms


def _softplus_parts(terms: dict[str, np.ndarray], Db: np.ndarray, b: np.ndarray,
                    path: str) -> tuple[np.ndarray, np.ndarray]:
    """(Re, Im) of log(1 + e^(a + ib)) from `_softplus_of_real(a)` and ``D·b`` (module
    notes); the terms may be rows that broadcast against b."""
    if path == "tiny":
        return terms["L"], Db
    b2 = b * b
    re = terms["half_g"] * b2
    np.subtract(terms["L"], re, out=re)
    b2 *= terms["k"]
    np.subtract(1, b2, out=b2)
    b2 *= Db
    return re, b2


def _assembled(dtype: np.dtype, re: np.ndarray, im: np.ndarray) -> np.ndarray:
    """A complex array of `dtype` from float64 parts, each rounded once (a part that is
    a shared row broadcasts)."""
    shape = im.shape if re.shape == im.shape else np.broadcast_shapes(re.shape, im.shape)
    out = np.empty(shape, dtype=dtype)
    out.real = re
    out.imag = im
    return out


def _shared_rows(x: np.ndarray) -> np.ndarray:
    """x[:1] if every row of x along its first axis equals the first one, else x.

    The complex step moves imaginary parts only: on the tiny paths the real parts of a
    stack of perturbed output pre-activations are those of the base point, bit for bit,
    in every row. Every function of x alone is then evaluated once, on that row, and
    broadcast; that is the same arithmetic on the same numbers as row by row, so the
    result is identical (NaN never equals itself, so NaN rows are never shared)."""
    if x.ndim < 2 or x.shape[0] < 2 or not np.equal(x, x[:1]).all():
        return x
    return x[:1]


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
        terms = _softplus_of_real(a, path)
        return _assembled(w.dtype, *_softplus_parts(terms, terms["D"] * b, b, path))


def complex_sigmoid_cross_entropy(z: np.ndarray, y: np.ndarray, *, summed: bool = False
                                  ) -> np.ndarray | None:
    """The sigmoid cross-entropy's entries ``c·z + log(1 + e^(−|z|))`` (module notes) for
    a complex array z and real targets y (of z's dtype, imaginary parts 0), from float parts;
    None where this does not apply (another dtype, complex targets, a non-finite part or
    imaginary parts off the fast paths): the caller takes the general formula.

    ``summed=True`` gives their sums over the last two axes instead (z at least 2-D), each
    part summed in float64 (numpy's pairwise sum) and rounded once: the complex entries
    are then never assembled, and a shared row's real part is summed once.

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
    if z.dtype not in FUSED_PATHS or y.dtype != z.dtype or y.imag.any() or z.ndim < 2:
        return None
    shape = np.broadcast_shapes(z.shape, y.shape)
    # entries as (rows, m·n) when y is one (m, n) block or z's own shape: every pass then
    # runs long inner loops, not n-long ones (numpy's broadcast over short last axes)
    flat = y.shape in (z.shape[-2:], z.shape)
    if flat:
        z = z.reshape(-1, z.shape[-2] * z.shape[-1])
        y = y.reshape(-1) if y.ndim == 2 else y.reshape(z.shape)
    parts = _entry_parts(z, y)
    if parts is None:
        return None
    re, im = parts
    if not summed:
        return _assembled(z.dtype, re, im).reshape(shape)
    total = (lambda v: np.add.reduce(v, axis=-1)) if flat else _sum_last_two
    return _assembled(z.dtype, total(re), total(im)).reshape(shape[:-2])[()]


def _entry_parts(z: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(Re, Im) of the entries as float64 arrays (Re possibly one shared row), or None
    off the fast paths."""
    x, eta = _float_parts(z)
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        path = _path(z.dtype, eta)
        if path is None or x.size == 0:
            return None
        rows = x.shape[0]
        x = _shared_rows(x)
        targets = np.ascontiguousarray(y.real, dtype=_F64)
        of_x = _functions_of_x(x, targets, path, shared=x.shape[0] < rows)
        if of_x is None:
            return None
        im = of_x["c"] * eta
        Db = of_x["signed_D"] * eta  # D·Im w, Im w = ∓Im z
        if path == "tiny":
            im += Db
            return of_x["re"], im
        re_f, im_f = _softplus_parts(of_x, Db, eta, path)
        im += im_f
    return of_x["cx"] + re_f, im


# the last shared row's functions of x: (path, x, targets, values), values read-only
_LAST_ROW: list = [None]


def _functions_of_x(x: np.ndarray, targets: np.ndarray, path: str, *, shared: bool
                    ) -> dict[str, np.ndarray] | None:
    """What the entries need of x and y alone: the signed D, c, and c·x + L (tiny) or c·x
    with f's real terms (small); None if x holds a non-finite value.

    A shared row (`_shared_rows`) is remembered, and the next shared row that equals it
    in x and in the targets takes the same values: the complex step's stacks of one
    gradient mostly share the base point's row. The values are then the same arithmetic
    on equal numbers (x = ±0 compare equal and give the same entries: c·x = ±0 is added
    to L > 0); they are read-only, so nothing downstream can change them."""
    if shared:
        last = _LAST_ROW[0]
        if (last is not None and last[0] == path and last[1].shape == x.shape
                and last[2].shape == targets.shape and (last[1] == x).all()
                and (last[2] == targets).all()):
            return last[3]
    if not np.isfinite(np.add.reduce(x, axis=None)):
        return None  # also |x| so large that their sum overflows: the general path
    positive = x > 0
    a = np.abs(x)
    np.negative(a, out=a)
    values = _softplus_of_real(a, path)
    values["signed_D"] = np.where(positive, -values["D"], values["D"])
    values["c"] = np.where(positive, 1 - targets, -targets)  # as ns.one − y and −y round
    cx = values["c"] * x
    if path == "tiny":
        values["re"] = cx + values["L"]
    else:
        values["cx"] = cx
    if shared:
        for v in values.values():
            v.flags.writeable = False
        _LAST_ROW[0] = (path, x.copy(), targets.copy(), values)
    return values


def _sum_last_two(v: np.ndarray) -> np.ndarray:
    """Σ over the last two axes, as one contiguous axis (numpy's pairwise sum)."""
    return np.add.reduce(v.reshape(*v.shape[:-2], -1), axis=-1)


_FINITE = float(np.finfo(np.float64).max)


def complex_sigmoid(z: np.ndarray) -> np.ndarray | None:
    """The logistic function ``1/(1 + e^{−z})`` of a complex array from float parts
    (module notes), or None off the fast paths (another dtype, a non-finite part, large
    imaginary parts): the caller takes the general formula.

    No floating-point state is touched: on finite inputs nothing here overflows
    (``E <= 1``) or is invalid, and an underflow (``E`` or ``η²`` below the normal
    range) rounds gradually as in the generic formula.

    Examples
    --------
    >>> z = np.array([3.0 + 1e-20j, -2.0 + 1e-20j])
    >>> out = complex_sigmoid(z)
    >>> s = 1 / (1 + np.exp(-z.real))
    >>> exact = s + 1j * 1e-20 * s * (1 - s)
    >>> bool(np.all(np.abs(out - exact) <= 2**-50 * np.abs(exact)))
    True
    """
    z = np.asarray(z)
    if z.dtype not in FUSED_PATHS:
        return None
    x, eta = _float_parts(z)
    path = _path(z.dtype, eta)
    if path is None:
        return None
    E = np.abs(x)
    if E.size and not np.maximum.reduce(E, axis=None) <= _FINITE:  # NaN fails too
        return None
    positive = x > 0
    np.negative(E, out=E)
    np.exp(E, out=E)
    r = 1 / (1 + E)
    D = E * r
    g = D * r
    if path == "tiny":
        return _assembled(z.dtype, np.where(positive, r, D), eta * g)
    eta2 = eta * eta
    change = 0.5 * (eta2 * (g * (1 - 2 * D)))
    re = np.where(positive, r + change, D - change)
    im = (eta * g) * (1 - eta2 * (1 - 6 * g) * (1 / 6))
    return _assembled(z.dtype, re, im)
