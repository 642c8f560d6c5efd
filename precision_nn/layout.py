"""Flattening layer matrices to one parameter vector and back, in C or Fortran order.

``order="C"`` is numpy's row-major layout; ``order="F"`` is MATLAB/Octave's column-major
``Theta(:)`` unrolling, so a vector written by an Octave exercise reads back unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["block_slices", "check_order", "flatten", "unflatten"]

ORDERS = ("C", "F")


def check_order(order: str) -> str:
    if order not in ORDERS:
        raise ValueError(f"`order` must be 'C' (numpy) or 'F' (MATLAB/Octave); got {order!r}.")
    return order


def block_slices(shapes: Sequence[tuple[int, int]]) -> list[slice]:
    """The slice of the flat vector that holds each block."""
    out, start = [], 0
    for rows, cols in shapes:
        out.append(slice(start, start + rows * cols))
        start += rows * cols
    return out


def flatten(mats: Sequence[np.ndarray], order: str = "C") -> np.ndarray:
    """One vector of all matrices, each unrolled in `order`, in layer order."""
    check_order(order)
    return np.concatenate([np.asarray(m).reshape(-1, order=order) for m in mats])


def unflatten(params: np.ndarray, shapes: Sequence[tuple[int, int]],
              order: str = "C") -> list[np.ndarray]:
    """Split a flat vector (or a stack of them, leading axes kept) into matrices."""
    check_order(order)
    params = np.asarray(params)
    total = sum(r * c for r, c in shapes)
    if params.shape[-1] != total:
        raise ValueError(
            f"`params` must have {total} entries along its last axis for layer shapes "
            f"{list(shapes)}; got shape {params.shape}."
        )
    lead = params.shape[:-1]
    if order == "C":
        return [params[..., s].reshape(*lead, r, c)
                for s, (r, c) in zip(block_slices(shapes), shapes)]
    # column-major block: entries run down the columns, so reshape to (c, r) and transpose
    return [np.swapaxes(params[..., s].reshape(*lead, c, r), -1, -2)
            for s, (r, c) in zip(block_slices(shapes), shapes)]
