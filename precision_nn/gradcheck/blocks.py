"""Where a flat parameter index lives: block (layer matrix), row and column.

A flat parameter vector is the concatenation of blocks, each a matrix flattened in
``order`` ("C": row-major, the numpy default; "F": column-major, the MATLAB/Octave
layout). Knowing the blocks lets the check say *where* a gradient is wrong and test the
classic layout slips: a block flattened in the other order, and a block built
transposed. Both are the same permutation of the block's entries, because
``G.T.ravel("C") == G.ravel("F")``.

Blocks have names: the caller's (``shapes={"fc1.weight": (4, 3), ...}``), an adapter's
(the MLP passes ``"layer 1"``, ...) or ``"block 0"``, ``"block 1"``, ... for a plain
sequence of shapes. An adapter may also name single columns (the MLP names column 0 of
every layer ``"bias"``), so that findings speak the caller's language.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["OTHER_ORDER", "Blocks"]

OTHER_ORDER = {"C": "F", "F": "C"}


@dataclass(frozen=True)
class Blocks:
    """The block structure of a flat parameter vector.

    Attributes
    ----------
    shapes : tuple of tuple of int
        One shape per block, in the order the blocks are concatenated.
    order : {"C", "F"}
        How each block is flattened.
    given : bool
        Whether the shapes came from the caller (otherwise one 1-D block).
    names : tuple of str
        One name per block (``"block 0"``, ... unless the caller named them).
    column_names : tuple of tuple of (int, str)
        Per block, names of single columns (e.g. ``((0, "bias"),)``).

    Examples
    --------
    >>> b = Blocks.from_shapes([(2, 3), (1, 3)], order="C", size=9)
    >>> b.locate(4), b.locate(7)
    ((0, 1, 1), (1, 0, 1))
    >>> b.label(7)
    'block 1 [0, 1]'
    >>> Blocks.from_shapes({"fc1.weight": (2, 3), "fc1.bias": (3,)}, order="C",
    ...                    size=9).label(7)
    'fc1.bias [1]'
    """

    shapes: tuple[tuple[int, ...], ...]
    order: str
    given: bool
    names: tuple[str, ...] = ()
    column_names: tuple[tuple[tuple[int, str], ...], ...] = ()

    @classmethod
    def from_shapes(cls, shapes: Sequence[Sequence[int]] | Mapping[str, Sequence[int]] | None,
                    *, order: str, size: int,
                    column_names: Mapping[int, str] | None = None) -> Blocks:
        """Blocks for `shapes` (``None``: one 1-D block of `size` entries; a mapping:
        named blocks in insertion order). `column_names` names columns of every 2-D block."""
        if shapes is None:
            return cls(((size,),), order, False, ("the gradient",), ((),))
        if isinstance(shapes, Mapping):
            names = tuple(str(k) for k in shapes)
            dims = tuple(tuple(int(d) for d in s) for s in shapes.values())
        else:
            dims = tuple(tuple(int(d) for d in s) for s in shapes)
            names = tuple(f"block {b}" for b in range(len(dims)))
        cols = tuple(sorted((column_names or {}).items()))
        return cls(dims, order, True, names,
                   tuple(cols if len(s) == 2 else () for s in dims))

    def named(self, names: Sequence[str]) -> Blocks:
        """The same blocks under other names (one per block)."""
        return Blocks(self.shapes, self.order, self.given, tuple(names), self.column_names)

    @functools.cached_property
    def sizes(self) -> list[int]:
        # (computed once: the pattern detectors ask for every block's slice many times)
        return [math.prod(s) for s in self.shapes]

    @functools.cached_property
    def offsets(self) -> list[int]:
        return [0, *itertools.accumulate(self.sizes)]

    def name(self, block: int) -> str:
        """The name of `block`."""
        return self.names[block] if self.names else f"block {block}"

    def column_name(self, block: int, column: int) -> str | None:
        """The name of one column of `block` (``None`` when it has none)."""
        notes = dict(self.column_names[block]) if self.column_names else {}
        return notes.get(column)

    def index(self, block: int) -> slice:
        """The slice of the flat vector that holds `block`."""
        start = self.offsets[block]
        return slice(start, start + self.sizes[block])

    def locate(self, i: int) -> tuple[int, ...]:
        """``(block, row, column)`` of flat index `i` (``(block, i_local)`` for 1-D)."""
        block = int(np.searchsorted(self.offsets, i, side="right") - 1)
        local = i - self.offsets[block]
        coords = np.unravel_index(local, self.shapes[block], order=self.order)
        return (block, *(int(c) for c in coords))

    def entry(self, i: int) -> str:
        """The position of flat index `i` inside its block, ``"[1, 2]"``."""
        _, *coords = self.locate(i)
        return f"[{', '.join(str(c) for c in coords)}]"

    def label(self, i: int) -> str:
        """A short human label of flat index `i` (``"layer 1 [0, 2]"``)."""
        if not self.given:
            return self.entry(i)
        return f"{self.name(self.locate(i)[0])} {self.entry(i)}"

    def columns(self, block: int) -> np.ndarray:
        """The column of every entry of `block` (all zeros for a 1-D block)."""
        shape = self.shapes[block]
        if len(shape) < 2:
            return np.zeros(self.sizes[block], dtype=int)
        grid = np.indices(shape)[1]
        return grid.ravel(order=self.order)

    def rows(self, block: int) -> np.ndarray:
        """The row of every entry of `block`."""
        shape = self.shapes[block]
        return np.indices(shape)[0].ravel(order=self.order)

    def reread(self, values: np.ndarray, block: int, *, written: str) -> np.ndarray:
        """Entries of `block` written in order `written`, re-laid out in this order.

        ``reread(G.ravel(written), b, written=written) == G.ravel(self.order)``.
        """
        shape = self.shapes[block]
        return np.asarray(values).reshape(shape, order=written).ravel(order=self.order)

    def unread(self, values: np.ndarray, block: int, *, read: str) -> np.ndarray:
        """The inverse slip: entries laid out in this order but read back in `read`."""
        shape = self.shapes[block]
        return np.asarray(values).reshape(shape, order=self.order).ravel(order=read)
