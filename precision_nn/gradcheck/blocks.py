"""Where a flat parameter index lives: block (layer matrix), row and column.

A flat parameter vector is the concatenation of blocks, each a matrix flattened in
``order`` ("C": row-major, the numpy default; "F": column-major, the MATLAB/Octave
layout). Knowing the blocks lets the check say *where* a gradient is wrong and test the
two classic layout slips: a block flattened in the other order, and a block built
transposed. Both are the same permutation of the block's entries, because
``G.T.ravel("C") == G.ravel("F")``.
"""

from __future__ import annotations

from collections.abc import Sequence
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

    Examples
    --------
    >>> b = Blocks.from_shapes([(2, 3), (1, 3)], order="C", size=9)
    >>> b.locate(4), b.locate(7)
    ((0, 1, 1), (1, 0, 1))
    >>> b.label(7)
    'block 1 [0, 1]'
    """

    shapes: tuple[tuple[int, ...], ...]
    order: str
    given: bool

    @classmethod
    def from_shapes(cls, shapes: Sequence[Sequence[int]] | None, *, order: str,
                    size: int) -> Blocks:
        """Blocks for `shapes` (``None``: one 1-D block of `size` entries)."""
        if shapes is None:
            return cls(((size,),), order, False)
        return cls(tuple(tuple(int(d) for d in s) for s in shapes), order, True)

    @property
    def sizes(self) -> list[int]:
        return [int(np.prod(s, dtype=np.int64)) for s in self.shapes]

    @property
    def offsets(self) -> list[int]:
        return [0, *np.cumsum(self.sizes).tolist()]

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

    def label(self, i: int) -> str:
        """A short human label of flat index `i`."""
        block, *coords = self.locate(i)
        if not self.given:
            return f"[{coords[0]}]"
        return f"block {block} [{', '.join(str(c) for c in coords)}]"

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
