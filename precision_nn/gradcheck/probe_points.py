"""The points and values the probes of `f` share: one evaluation as a number of the system
(`call`), seeded random directions, points along them, values as floats.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from precision_nn.numbers import NumberSystem

__all__ = ["PROBE_SEED", "as_float", "call", "random_direction"]

PROBE_SEED = 20240601  # every random direction of the probes comes from this seed


def call(f: Callable[[Any], Any], point: np.ndarray, ns: NumberSystem, *,
         strict: bool = False) -> Any:
    """``f(point)`` as one number of `ns`.

    Like the derivatives' evaluator: an IEEE value of another width is rounded into an
    IEEE system, while an object system (Decimal, mpmath) refuses anything but its own
    numbers (`TypeError`): a binary float there means precision was lost. `strict`
    refuses other widths too (to tell whether f really computes in `ns`).
    """
    with ns.context():
        value = f(point)
    arr = np.asarray(value)
    if arr.size != 1:
        raise TypeError(f"f must return a scalar; got shape {arr.shape}.")
    arr = arr.reshape(())
    if not strict and getattr(ns, "dtype", None) is not None and arr.dtype != object:
        return ns.asarray(np.real(arr) if not ns.is_complex else arr)[()]
    if not ns.owns(arr):
        raise TypeError(f"f returned a {ns.foreign_type(arr)} for a point of {ns.name}.")
    return arr[()]


def random_direction(n: int, salt: int = 0) -> np.ndarray:
    """A seeded random unit vector (float64) of length `n`."""
    v = np.random.default_rng(PROBE_SEED + salt).standard_normal(n)
    return v / np.linalg.norm(v)


def _along(ns: NumberSystem, x: np.ndarray, v: np.ndarray, t: float) -> np.ndarray:
    """The point ``x + t·v`` of `ns` (``t·v`` rounded once into the system)."""
    with ns.context():
        return x + ns.asarray(t * v)


def as_float(ns: NumberSystem, value: Any) -> float:
    """One number of `ns` as a float (its real part)."""
    return float(np.real(ns.to_float(np.array([value], dtype=object))[0]))


def _sub(ns: NumberSystem, p: Any, q: Any) -> float:
    with ns.context():
        return as_float(ns, p - q)
