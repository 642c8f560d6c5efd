"""The sigmoid cross-entropy of a stack of rank-one updates of one logit matrix, summed,
on float parts: the complex step's perturbations of the last hidden layer.

Moving one weight of the last hidden layer moves one hidden unit's activations by
``u_r`` (m examples) and the output logits by the rank-one ``u_r ⊗ v_r`` (``v_r`` the
unit's outgoing weights, `precision_nn.perturbation`); the loss is the sum over the
``m·n`` entries ``c·z' + f(−|z'|)`` of ``z' = z + u_r ⊗ v_r`` (`ieee_fused`'s notes: ``f``
the softplus, ``c = 1 − y`` or ``−y`` by the sign of Re z'). Generically each stack is
formed as complex arrays and the fused entries are taken of it; here it is formed on
float parts, and what the complex step leaves unchanged is not recomputed:

- **Forming z'.** At a real base point (``Im z = 0`` and ``Im v = 0``: every weight but
  the moved one is real) numpy's complex product and sum give per entry exactly
  ``Re z' = X + fl(p·s)`` and ``Im z' = fl(q·s)`` (u = p + iq, v = s, X = Re z: the cross
  terms are products with 0), so the float parts are the same arithmetic.
- **Functions of the real part.** Where ``Re z' = X`` the entry's functions of x (``c``,
  the signed ``D``, ``L`` and the small path's ``½g``, ``k``) are those of the base: the
  same arithmetic on equal numbers, evaluated once per base and remembered (`_base`).
  That holds for every entry of a perturbation whose ``p`` is 0 (the tiny step moves
  imaginary parts only) and for most others: the witness step ``h₂ ≈ √u`` moves the
  hidden activations' real parts by ``~h₂²`` relative, and ``X + fl(p·s)`` rounds back
  to X in all but ~0.1% of the entries of the benchmark network. Those few (found from
  the nonzero p alone) are evaluated in full at ``Re z'``; their entries replace the
  base-table ones as a correction of each sum.
- **The sums.** With ``e = c + sD`` (the entry's Im per unit Im z' on the tiny path) the
  sums are ``Im = Σ e·η (− Σ sD·k·η³)`` and ``Re = Σ(c·X + L) (− Σ ½g·η²)`` over the
  stack's imaginary parts ``η = q ⊗ s`` (the parenthesised terms on the small path), plus
  the corrections. Every entry is still formed, one ``η`` per example, output and
  perturbation, in float64 work arrays reused across calls (`_work`): no complex
  temporary of the stack's size is allocated, page-faulted and freed per call.

Rounding: ``(c + sD)·η`` forms the entry's Im in two roundings where `ieee_fused` takes
three (``c·η + sD·η``); both err by at most u·(|c| + |D|)·|η| per rounding, so the
entry bounds of `ieee_fused` (Re 5.5u, Im 6.5u of |c·η| + |Im f|, complex128) hold, and
each sum is numpy's pairwise float64 sum plus the corrections' sum, rounded once to the
result's dtype. complex64 parts are converted to float64 exactly; there the products
``q·s`` and ``p·s`` of 24-bit significands are exact, one rounding fewer than complex64's
own product, and each sum is rounded once to float32.
"""

from __future__ import annotations

import threading

import numpy as np

from precision_nn.numbers.ieee_fused import (
    FUSED_PATHS,
    _assembled,
    _float_parts,
    _functions_of_x,
    _largest,
)

__all__ = ["WORK_BYTES", "complex_sigmoid_cross_entropy_rank_one"]

# bytes of one float64 work array: the stacks are formed in pieces of at most this many
# bytes, which stay in the 2 MiB L2 cache of the benchmark VM and bound what the reused
# arrays keep allocated (3 of them at most, on the small path)
WORK_BYTES = 2**20
_WORK = threading.local()
# the last base's tables: (X, targets, tables), read-only
_LAST_BASE: list = [None]


def _work(slot: int, shape: tuple[int, ...]) -> np.ndarray:
    """A float64 array of `shape` (contents undefined), the same memory on every call of
    this thread: arrays above glibc's mmap threshold (128 KiB) are otherwise mapped and
    page-faulted afresh at each allocation (`precision_nn.perturbation.CHUNK_BYTES`)."""
    store = _WORK.__dict__.setdefault("arrays", {})
    size = int(np.prod(shape))
    buffer = store.get(slot)
    if buffer is None or buffer.size < size:
        buffer = store[slot] = np.empty(max(size, 1))
    return buffer[:size].reshape(shape)


def _applies(z: np.ndarray, y: np.ndarray, u: np.ndarray, v: np.ndarray) -> bool:
    """Shapes (m, n), (m, n), (R, m), (R, n) of one fused complex dtype, real targets,
    and a real base and weights (the only imaginary parts are u's)."""
    dtype = z.dtype
    return (dtype in FUSED_PATHS and all(a.dtype == dtype for a in (y, u, v))
            and z.ndim == 2 and y.shape == z.shape and u.ndim == 2 and v.ndim == 2
            and u.shape == (v.shape[0], z.shape[0]) and v.shape[1] == z.shape[1]
            and not (y.imag.any() or z.imag.any() or v.imag.any()))


def _path(dtype: np.dtype, q: np.ndarray, s: np.ndarray) -> str | None:
    """'tiny', 'small' or None for the imaginary parts η = q_r ⊗ s_r, from their largest
    modulus max_r fl(max|q_r|·max|s_r|) (rounding is monotone), formed without η; first
    from the bound max|q|·max|s| over all r, which suffices for the tiny path."""
    if q.size == 0 or s.size == 0:
        return "tiny"
    tiny, small = FUSED_PATHS[dtype]
    if _largest(q) * _largest(s) <= tiny:  # NaN fails: the exact maximum decides
        return "tiny"
    largest = np.max(np.max(np.abs(q), axis=1) * np.max(np.abs(s), axis=1))
    if largest <= tiny:
        return "tiny"
    return "small" if largest <= small else None  # NaN, inf fail both


def _base(x: np.ndarray, targets: np.ndarray) -> dict[str, np.ndarray] | None:
    """The base's functions of x, laid out (n, m) like the work arrays: e = c + sD,
    ½g, sD·k, the entries' real parts c·x + L and their sum; None if x is not finite.
    Remembered for the next call with the same x and targets (one gradient's calls)."""
    last = _LAST_BASE[0]
    if (last is not None and last[0].shape == x.shape and last[1].shape == targets.shape
            and (last[0] == x).all() and (last[1] == targets).all()):
        return last[2]
    of_x = _functions_of_x(x, targets, "small", shared=False)
    if of_x is None:
        return None
    tables = {"e": of_x["c"] + of_x["signed_D"], "half_g": of_x["half_g"],
              "sDk": of_x["signed_D"] * of_x["k"], "re": of_x["cx"] + of_x["L"]}
    tables = {k: np.ascontiguousarray(v.T) for k, v in tables.items()}
    tables["re_sum"] = np.add.reduce(tables["re"].reshape(-1))
    for value in tables.values():
        if isinstance(value, np.ndarray):
            value.flags.writeable = False
    _LAST_BASE[0] = (x.copy(), targets.copy(), tables)
    return tables


def _entries(of_x: dict[str, np.ndarray], x: np.ndarray | None, eta: np.ndarray,
             path: str) -> tuple[np.ndarray, np.ndarray]:
    """(Re, Im) of single entries from their functions of x (`_functions_of_x` at x, or
    the base tables gathered, x None) and imaginary parts η."""
    if x is None:
        re, e = of_x["re"], of_x["e"]
    else:
        re, e = of_x["cx"] + of_x["L"], of_x["c"] + of_x["signed_D"]
    im = e * eta
    if path == "small":
        eta2 = eta * eta
        half_g = of_x["half_g"]
        sDk = of_x["sDk"] if x is None else of_x["signed_D"] * of_x["k"]
        re = re - half_g * eta2
        im = im - sDk * (eta2 * eta)
    return re, im


def _corrections(tables: dict, X: np.ndarray, targets: np.ndarray, p: np.ndarray,
                 q: np.ndarray, s: np.ndarray, path: str
                 ) -> tuple[np.ndarray, np.ndarray] | bool:
    """Per perturbation, Σ (exact entry − base-table entry) over the entries whose real
    part X + fl(p·s) differs from X (only where p ≠ 0); True if there are none, False if
    one is not finite."""
    if not p.any():
        return True
    m, n = X.shape
    rows, examples = np.divmod(np.flatnonzero(p), m)
    moved = X[examples]
    moved += p[rows, examples, None] * s[rows]  # (K, n): Re z' where p ≠ 0
    which, outputs = np.divmod(np.flatnonzero(moved != X[examples]), n)
    if which.size == 0:
        return True
    rows, examples = rows[which], examples[which]
    x_new = moved[which, outputs]
    eta = q[rows, examples] * s[rows, outputs]
    new = _functions_of_x(x_new, targets[examples, outputs], "small", shared=False)
    if new is None:
        return False
    old = {k: tables[k][outputs, examples] for k in ("re", "e", "half_g", "sDk")}
    re_new, im_new = _entries(new, x_new, eta, path)
    re_old, im_old = _entries(old, None, eta, path)
    R = len(p)
    return (np.bincount(rows, weights=re_new - re_old, minlength=R),
            np.bincount(rows, weights=im_new - im_old, minlength=R))


def _sums(tables: dict, q: np.ndarray, s: np.ndarray, path: str
          ) -> tuple[np.ndarray, np.ndarray]:
    """(Re, Im) sums of the base-table entries of η = q_r ⊗ s_r, in pieces of at most
    `WORK_BYTES` per work array; η laid out (R, n, m), every pass over contiguous rows."""
    R, m = q.shape
    n = s.shape[1]
    re = np.full(R, tables["re_sum"])
    im = np.empty(R)
    rows = max(1, WORK_BYTES // (8 * m * n))
    for start in range(0, R, rows):
        piece = slice(start, min(R, start + rows))
        shape = (piece.stop - start, n, m)
        eta = _work(0, shape)
        np.multiply(s[piece, :, None], q[piece, None, :], out=eta)
        if path == "small":
            eta2 = np.multiply(eta, eta, out=_work(1, shape))
            term = np.multiply(eta2, tables["half_g"], out=_work(2, shape))
            re[piece] -= np.add.reduce(term.reshape(len(term), -1), axis=1)
            eta2 *= eta
            eta2 *= tables["sDk"]  # sD·k·η³
        eta *= tables["e"]
        if path == "small":
            eta -= eta2
        im[piece] = np.add.reduce(eta.reshape(len(eta), -1), axis=1)
    return re, im


def complex_sigmoid_cross_entropy_rank_one(z: np.ndarray, y: np.ndarray, u: np.ndarray,
                                           v: np.ndarray) -> np.ndarray | None:
    """``Σ_{m,n}`` of the sigmoid cross-entropy's entries of ``z + u_r ⊗ v_r`` with targets
    y, one sum per r (module notes); None where this does not apply (another dtype or
    shape, complex targets, an imaginary part in z or v, a non-finite part, imaginary
    parts off the fast paths): the caller forms the stacks.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> z = rng.normal(size=(4, 3)) + 0j
    >>> y = np.eye(3)[[0, 1, 2, 0]] + 0j
    >>> u, v = 1e-20j * rng.normal(size=(2, 4)), rng.normal(size=(2, 3)) + 0j
    >>> from precision_nn.numbers.ieee_fused import complex_sigmoid_cross_entropy
    >>> stacks = z + u[:, :, None] * v[:, None, :]
    >>> direct = complex_sigmoid_cross_entropy(stacks, y, summed=True)
    >>> fused = complex_sigmoid_cross_entropy_rank_one(z, y, u, v)
    >>> bool(np.all(np.abs(fused - direct) <= 2**-48 * np.abs(direct)))
    True
    """
    z, y, u, v = (np.asarray(a) for a in (z, y, u, v))
    if not _applies(z, y, u, v):
        return None
    X = np.ascontiguousarray(z.real, dtype=np.float64)
    targets = np.ascontiguousarray(y.real, dtype=np.float64)
    p, q = _float_parts(u)
    s = np.ascontiguousarray(v.real, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        path = _path(z.dtype, q, s)
        if path is None or not (np.isfinite(np.add.reduce(np.abs(p), axis=None))
                                and np.isfinite(np.add.reduce(np.abs(s), axis=None))):
            return None
        tables = _base(X, targets)
        if tables is None:
            return None
        corrections = _corrections(tables, X, targets, p, q, s, path)
        if corrections is False:
            return None
        re, im = _sums(tables, q, s, path)
        if corrections is not True:
            re += corrections[0]
            im += corrections[1]
    return _assembled(z.dtype, re, im)
