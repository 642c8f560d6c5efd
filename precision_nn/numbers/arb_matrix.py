"""Matrix products of Arb balls through ``arb_mat``/``acb_mat``, converting each operand once.

python-flint's product is C (about 50 ns a multiply-add at 169 bits), but moving a ball
into a matrix costs ~350 ns (``arb_mat(n, k, entries)`` calls the ``arb`` constructor per
entry) and out of it ~300 ns (``entries()`` indexes entry by entry), so in a network's
small products the conversions cost as much as the arithmetic. A network converts the
same operands again and again: the weights in the forward pass and in backprop (once
transposed), the activations ``a[k-1]`` forward and in ``δᵀ·a[k-1]``, the delta in
``δᵀ·a`` and ``δ·W``, and the weights once more in every perturbed loss of a numerical
gradient. `OperandCache` keeps the last few converted operands.

Why the cache cannot return a wrong matrix. Its key is the operand's shape and the
identity (the ``PyObject*``, as ``id`` gives it) of every element in C order, and it holds a reference to those elements while the
entry lives, so no id in a live key can be reused by another object; balls (and every
other type the conversion accepts: int, float, mpmath numbers, strings) are immutable.
Equal keys therefore mean the same objects in the same places, hence the same values.
Only the element *values* are copied into the matrix (``arb_set``, exact), so a hit gives
the matrix a fresh conversion would give; a string element is rounded at the working
precision of its first conversion, still an enclosure of the string's value.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

import numpy as np

__all__ = ["BallMatrixProducts", "OperandCache", "entries", "product"]

# items kept: each converted operand takes two (itself and its transpose), and one
# gradient of a network of L layers converts about 4L operands, so a gradient re-uses
# all it can while 8L items fit: 256 holds 32 layers (measured: 4L - 1 conversions)
CACHE_SIZE = 256
# ... and at most this many entries in all: the memory the kept operands pin (their
# elements and keys, ~150 bytes an entry) stays below ~150 MB
CACHED_ENTRIES = 1_000_000
# operands above this many entries are converted but not kept (their key and the memory
# they pin would cost more than a miss saves)
LARGEST_CACHED = 250_000


class OperandCache:
    """The last `CACHE_SIZE` 2-D operands converted to `mat_type`, by element identity,
    holding at most `CACHED_ENTRIES` entries in all.

    A hit on an operand's transpose (the same elements, transposed) gives the cached
    matrix transposed in C (``transpose()``, about a third of a conversion).
    """

    def __init__(self, mat_type: type):
        self._mat = mat_type
        self._lock = threading.Lock()
        self._items: dict[tuple, list] = {}  # key -> [matrix, elements, transposed?]
        self._entries = 0  # entries of the kept items (an operand and its transpose: 2x)

    def matrix(self, arr: np.ndarray) -> Any:
        """`arr` (2-D object array) as a ``mat_type``; TypeError if an element has no
        exact conversion (a first-order series, a complex ball in a real system)."""
        rows, cols = arr.shape
        if rows * cols > LARGEST_CACHED:
            return self._convert(arr)
        key = (rows, cols, _pointers(arr))
        with self._lock:  # also the transposition: another thread may read the item
            item = self._items.pop(key, None)
            if item is not None:
                self._items[key] = item  # most recently used last
                if item[2]:  # stored as the transpose of an earlier operand: once
                    item[0], item[2] = item[0].transpose(), False
                return item[0]
        elements = arr.ravel().tolist()
        mat = self._convert(arr)
        transposed = (cols, rows, _pointers(arr.T))
        with self._lock:
            for k, item in ((key, [mat, elements, False]), (transposed, [mat, elements, True])):
                if k not in self._items:
                    self._items[k] = item
                    self._entries += len(elements)
            while len(self._items) > CACHE_SIZE or self._entries > CACHED_ENTRIES:
                self._entries -= len(self._items.pop(next(iter(self._items)))[1])
        return mat

    def _convert(self, arr: np.ndarray) -> Any:
        """A new matrix holding `arr`'s values: the matrix's ``__setitem__`` as the loop
        of a ufunc over precomputed ``(i, j)`` tuples, which copies a ball in place
        (``any_as_arb`` passes balls through), ~35% cheaper than the constructor, whose
        loop builds a temporary ``arb`` per entry."""
        mat = self._mat(*arr.shape)
        np.frompyfunc(mat.__setitem__, 2, 0)(_indices(arr.shape), arr)
        return mat

    def clear(self) -> None:
        """Forget every operand (and release the elements they pin)."""
        with self._lock:
            self._items.clear()
            self._entries = 0


def _pointers(arr: np.ndarray) -> bytes:
    """The element identities of an object array in C order, whatever its strides: the
    raw contents of its buffer, one ``PyObject*`` per element (numpy's layout of
    ``dtype=object``), as ``tobytes`` copies them in C (0.4 us for 500 entries, against
    4 us through ``arr.ctypes``, whose object costs more than the copy, and ~45 ns an
    element for a tuple of ``id``)."""
    return arr.tobytes()


@functools.lru_cache(maxsize=64)
def _indices(shape: tuple[int, int]) -> np.ndarray:
    """The ``(i, j)`` tuple of every entry of a matrix of `shape`, as an object array."""
    out = np.empty(shape, dtype=object)
    for index in np.ndindex(*shape):
        out[index] = index
    return out


def entries(mat: Any) -> np.ndarray:
    """The entries of an ``arb_mat``/``acb_mat`` as a 2-D object array of new balls (its
    ``__getitem__`` as a ufunc's loop, filling the array directly)."""
    return np.frompyfunc(mat.__getitem__, 1, 1)(_indices((mat.nrows(), mat.ncols())))


def product(cache: OperandCache, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` of two 2-D object arrays through the cache's matrix type, as an object
    array of balls; TypeError (from the conversion) when an element is not a number."""
    return entries(cache.matrix(a) * cache.matrix(b))



class BallMatrixProducts:
    """The matrix hooks of `ArbSystem` (`NumberSystem.matmul`, ``affine``,
    ``affine_gradient``) through its `OperandCache` (``self._operands``); listed before
    `NumberSystem` among the bases, whose defaults take stacks and arrays holding
    first-order series (no exact ball conversion: the conversion raises TypeError)."""

    def matmul(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """``a @ b`` through ``arb_mat``/``acb_mat`` (stacks: one product per matrix),
        each operand converted once while it is re-used (`OperandCache`); object arrays
        holding anything but numbers (series) take numpy's product."""
        a, b = np.asarray(a, dtype=object), np.asarray(b, dtype=object)
        if a.ndim < 2 or b.ndim < 2:
            with self.context():
                return a @ b
        if a.shape[-1] != b.shape[-2]:
            raise ValueError(f"matmul: shapes {a.shape} and {b.shape} do not align.")
        try:
            with self.context():
                if a.ndim == b.ndim == 2:  # the network's products: no stack to broadcast
                    return product(self._operands, a, b)
                return self._stacked_product(a, b)
        except TypeError:  # an element with no exact ball conversion: a series
            with self.context():
                return a @ b

    def affine(self, a: Any, w_t: Any, bias: Any) -> Any:
        """``a @ w_t + bias`` (`bias` one row, broadcast over the rows of 2-D `a`) as one
        matrix product ``[1 | a] @ [bias ; w_t]``: the bias is the product's first term,
        so each entry is an enclosure of one dot product of ``n + 1`` terms, typically
        rounded once (``arb_dot`` in flint's classical product; the blocked product it
        picks for large matrices rounds otherwise), where the default rounds the
        product, then the sum; the radius bounds every rounding either way.
        ``[1 | a]`` is the operand backprop's `affine_gradient` takes again (the same
        elements, so the cache converts it once per layer), and ``[bias ; w_t]`` holds the
        same weight objects at every call (converted once while the weights live).
        Stacks, and elements with no exact ball conversion (series), take the default."""
        if not (np.ndim(a) == np.ndim(w_t) == 2 and np.shape(bias) == (1, np.shape(w_t)[1])):
            return super().affine(a, w_t, bias)
        try:
            with self.context():
                left = self._operands.matrix(self._with_ones(a))
                right = self._operands.matrix(np.concatenate(
                    [np.asarray(bias, dtype=object), np.asarray(w_t, dtype=object)]))
                return entries(left * right)
        except TypeError:  # an element with no exact ball conversion: a series
            return super().affine(a, w_t, bias)

    def affine_gradient(self, delta: Any, a: Any) -> Any:
        """``[Σ_i delta_i | deltaᵀ @ a]`` for 2-D operands as one product ``deltaᵀ @ [1 | a]``
        (each entry one dot product over the examples, rounded once, where numpy's sum of
        balls rounds once per example); ``[1 | a]`` is the forward pass's operand, found
        in the cache."""
        if not np.ndim(delta) == np.ndim(a) == 2:
            return super().affine_gradient(delta, a)
        try:
            with self.context():
                left = self._operands.matrix(np.asarray(delta, dtype=object).T)
                return entries(left * self._operands.matrix(self._with_ones(a)))
        except TypeError:  # an element with no exact ball conversion: a series
            return super().affine_gradient(delta, a)

    def _with_ones(self, a: Any) -> np.ndarray:
        """``[1 | a]``: a column of the system's one (one object, so the cache key of
        ``[1 | a]`` is the same at every call on the same `a`) before the columns of `a`."""
        a = np.asarray(a, dtype=object)
        out = np.empty((a.shape[0], a.shape[1] + 1), dtype=object)
        out[:, 0] = self.one
        out[:, 1:] = a
        return out

    def _stacked_product(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        shape = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        a = np.broadcast_to(a, (*shape, *a.shape[-2:]))
        b = np.broadcast_to(b, (*shape, *b.shape[-2:]))
        out = np.empty((*shape, a.shape[-2], b.shape[-1]), dtype=object)
        for idx in np.ndindex(*shape):
            out[idx + (slice(None), slice(None))] = product(self._operands, a[idx], b[idx])
        return out
