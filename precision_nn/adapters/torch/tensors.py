"""The blocks of a torch check: named tensors laid end to end in one flat vector.

A check differentiates a scalar objective with respect to every tensor that requires
grad. `check_gradient` sees them as one flat vector (each tensor flattened in C order,
torch's own memory order for contiguous tensors) with one named block per tensor, so a
finding says "`fc1.weight`" instead of "block 0".
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from precision_nn.numbers import NumberSystem, number_system

__all__ = ["NUMBERS", "REFERENCE_DTYPES", "TensorBlocks", "numbers_of", "to_numpy"]

# the number system of each floating dtype a check can run in
NUMBERS = {torch.float16: "float16", torch.bfloat16: "bfloat16", torch.float32: "float32",
           torch.float64: "float64"}
# the reference evaluates the objective in these (exact for every dtype of `NUMBERS`)
REFERENCE_DTYPES = {"real": torch.float64, "complex": torch.complex128}


def numbers_of(dtype: torch.dtype) -> NumberSystem:
    """The number system of a torch floating dtype."""
    return number_system(NUMBERS[dtype])


def to_numpy(t: torch.Tensor) -> np.ndarray:
    """A detached CPU copy as numpy, exact (bfloat16 goes through float32, which holds it)."""
    t = t.detach().cpu()
    if t.dtype == torch.bfloat16:
        t = t.float()
    return t.numpy().copy()


@dataclass(frozen=True)
class TensorBlocks:
    """Names and shapes of the checked tensors, in the order of the flat vector.

    Examples
    --------
    >>> b = TensorBlocks(("fc.weight", "fc.bias"), ((2, 3), (2,)))
    >>> b.sizes, b.shapes_mapping()
    ([6, 2], {'fc.weight': (2, 3), 'fc.bias': (2,)})
    """

    names: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]

    @functools.cached_property
    def sizes(self) -> list[int]:
        return [math.prod(s) for s in self.shapes]

    @functools.cached_property
    def _pieces(self) -> list[tuple[int, int, tuple[int, ...]]]:
        return [(sl.start, sl.stop, shape) for sl, shape in zip(self.block_slices(),
                                                                 self.shapes)]

    def shapes_mapping(self) -> dict[str, tuple[int, ...]]:
        """``{name: shape}`` for `check_gradient` (a 0-d tensor is one entry, shape (1,))."""
        return {n: (s if s else (1,)) for n, s in zip(self.names, self.shapes)}

    def flatten(self, tensors: Sequence[torch.Tensor], ns: NumberSystem) -> np.ndarray:
        """The tensors as one flat vector of `ns` (exact)."""
        parts = [to_numpy(t).ravel() for t in tensors]
        return ns.asarray(np.concatenate(parts) if parts else np.zeros(0))

    def split(self, flat: torch.Tensor) -> list[torch.Tensor]:
        """The flat tensor cut back into tensors of the blocks' shapes."""
        if len(self._pieces) == 1:
            return [flat.view(self._pieces[0][2])]
        return [piece.view(shape) for piece, (_, _, shape)
                in zip(torch.split(flat, self.sizes), self._pieces)]

    def split_rows(self, points: torch.Tensor) -> list[list[torch.Tensor]]:
        """Every row of a ``(k, n)`` stack of flat points cut into the blocks' tensors,
        cutting the stack once (cheaper than `split` on each row).

        Examples
        --------
        >>> b = TensorBlocks(("w", "b"), ((2, 2), ()))
        >>> rows = b.split_rows(torch.arange(10.0).reshape(2, 5))
        >>> [tuple(t.shape) for t in rows[1]], rows[1][1].item()
        ([(2, 2), ()], 9.0)
        """
        k = points.shape[0]
        columns = torch.split(points, self.sizes, dim=1)
        per_block = [piece.reshape(k, *shape).unbind(0)
                     for piece, (_, _, shape) in zip(columns, self._pieces)]
        return [list(row) for row in zip(*per_block)]

    def block_slices(self) -> list[slice]:
        return list(self._slices)

    @functools.cached_property
    def _slices(self) -> tuple[slice, ...]:
        offsets = [0, *itertools.accumulate(self.sizes)]
        return tuple(slice(a, b) for a, b in itertools.pairwise(offsets))
