"""The entry of a check: validation in one place, and the point built once.

`validate` checks every option (messages name the parameter, the rule, the value and
the fix), infers the number system, converts `x` once and builds the one flat view
of it (in `order`) that every later stage uses, and wraps `f` once so that
`evaluations` counts the points at which `f` really ran.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from precision_nn.derivatives.arguments import convert_h
from precision_nn.derivatives.real_offsets import realize
from precision_nn.derivatives.steps import check_steps
from precision_nn.gradcheck.blocks import Blocks
from precision_nn.gradcheck.cost import PROGRESS_MODES, PROGRESS_SECONDS
from precision_nn.numbers import NumberSystem, infer_number_system, number_system

__all__ = ["METHODS", "ORDERS", "STEP_METHODS", "Setup", "analytic_gradient", "gradient_in",
           "narrower_dtype", "point_in", "returned_gradient", "validate"]

STEP_METHODS = ("central", "forward", "backward")
METHODS = ("auto", "complex_step", "richardson", *STEP_METHODS)
ORDERS = ("C", "F")


class Counted:
    """`f` wrapped once: counts the points it is evaluated at (a stack of k points along a
    new leading axis counts k), so a report's `evaluations` is what really ran.

    Examples
    --------
    >>> f = Counted(lambda p: p.sum(axis=-1), ndim=1)
    >>> _ = f(np.ones(3)), f(np.ones((4, 3)))
    >>> f.points
    5
    """

    def __init__(self, f: Callable[[Any], Any], *, ndim: int):
        self.f, self.ndim, self.points, self.provided = f, ndim, 0, 0
        self.meter: Any = None  # a cost.ProgressMeter fed with every call, once attached

    def __call__(self, point: Any) -> Any:
        shape = np.shape(point)
        points = int(shape[0]) if len(shape) == self.ndim + 1 else 1
        self.points += points
        if self.meter is None:
            return self.f(point)
        start = time.perf_counter()
        value = self.f(point)
        self.meter.advance(points, seconds=time.perf_counter() - start)
        return value

    @property
    def evaluations(self) -> int:
        """Points `f` ran at, plus the evaluations an adapter's provider reported."""
        return self.points + self.provided


@dataclass(frozen=True)
class Setup:
    """Everything the later stages share, built once at the entry."""

    f: Counted
    x: np.ndarray  # in ns, the caller's shape
    ns: NumberSystem
    blocks: Blocks
    order: str
    batch_size: int | None
    flat: np.ndarray  # x in ns, flattened in `order` (what the indices refer to)
    x_float: np.ndarray  # `flat` as float64
    # optional: provider(method, ns, h) -> Estimate of the gradient at x (flat in `order`)
    provider: Callable[[str, NumberSystem, Any], Any] | None = None
    grad: Callable[[Any], Any] | None = None
    # the measured noise of grad per coordinate (flat, float), once measured
    analytic_noise: np.ndarray | None = None
    # the analytic gradient's rounding at x, measured in the wider system (flat, float),
    # and that system's name (`measurements.wider_rounding`); None: the model's bound
    analytic_rounding: np.ndarray | None = None
    rounding_system: str | None = None
    underflow: float = 0.0  # the system's smallest subnormal (0: no small-exponent limit)

    def at(self, flat: Any) -> Any:
        """``f`` at a flat point (in `order`), reshaped like x."""
        return self.f(np.reshape(flat, self.x.shape, order=self.order))


def point_in(ns: NumberSystem, x: Any) -> np.ndarray:
    """`x` converted to `ns`, with at least one entry (a `ValueError` says what is wrong)."""
    try:
        arr = ns.asarray(x)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"`x` cannot be represented in {ns.name!r}: {exc}") from exc
    if arr.size == 0:
        raise ValueError("`x` must have at least one entry; got an empty array.")
    if arr.ndim == 0:
        raise ValueError("`x` must be an array with at least one dimension; got a scalar "
                         f"({x!r}). Pass np.atleast_1d(x), with f and grad taking and "
                         "grad returning arrays of that shape.")
    return arr


def validate(f: Any, grad: Any, x: Any, *, method: Any, h: Any, numbers: Any, shapes: Any,
             order: Any, directions: Any, batch_size: Any,
             column_names: Mapping[int, str] | None = None, progress: Any = None) -> Setup:
    """Every option checked, x converted once, f wrapped once (see the module docstring)."""
    for name, fn in (("f", f), ("grad", grad)):
        if not callable(fn):
            raise TypeError(f"`{name}` must be callable; got {type(fn).__name__}.")
    if method not in METHODS:
        raise ValueError(f"`method` must be one of {list(METHODS)}; got {method!r}.")
    if order not in ORDERS:
        raise ValueError(f"`order` must be 'C' (row-major) or 'F' (column-major, MATLAB); "
                         f"got {order!r}.")
    if h is not None and method not in STEP_METHODS:
        raise ValueError(f"`h` is only used by methods {list(STEP_METHODS)}; got h={h!r} "
                         f"with method={method!r}. Drop `h` or pick one of those methods.")
    for name, value in (("directions", directions), ("batch_size", batch_size)):
        if name == "directions" and value == "all":  # the full check, whatever its size
            continue
        if value is not None and (isinstance(value, bool) or not isinstance(
                value, (int, np.integer)) or value < 1):
            extra = ', "all"' if name == "directions" else ""
            raise ValueError(f"`{name}` must be a positive integer{extra} or None; got "
                             f"{value!r}.")
    if progress not in PROGRESS_MODES or not isinstance(progress, (bool, type(None))):
        raise ValueError(f"`progress` must be None (automatic: a bar once the check is "
                         f"estimated to take over {PROGRESS_SECONDS:g} s), True or False; "
                         f"got {progress!r}.")
    ns = _numbers(x, numbers)
    arr = point_in(ns, x)
    if ns.is_complex:
        raise ValueError(f"`x` must be real; got the complex system {ns.name!r}. Pass "
                         "numbers= with its real counterpart.")
    if shapes is None and arr.ndim >= 2:
        shapes = [arr.shape]  # a matrix x is one block: findings name its rows and columns
    flat = np.ravel(arr, order=order)
    if h is not None:
        _check_step(ns, flat, h, arr.shape, order, per_coordinate=directions in (None, "all"))
    return Setup(Counted(f, ndim=arr.ndim), arr, ns,
                 _blocks(shapes, order, arr.size, column_names), order,
                 None if batch_size is None else int(batch_size), flat,
                 np.real(ns.to_float(flat)).astype(float), grad=grad,
                 underflow=_underflow(ns))


def _check_step(ns: NumberSystem, flat: np.ndarray, h: Any, shape: tuple[int, ...],
                order: str, *, per_coordinate: bool) -> None:
    """Refuse a step no difference can use, with the derivatives' own messages: not
    positive and finite, longer than the length scale ``max(|x|, 1)`` (times
    `MAX_STEP_RATIO`), or (coordinate steps) below the spacing of the numbers at some
    ``x_i``. The reference would raise the same errors later, where they could only read
    as "no finite reference" (as if f were not finite at x). Directions step along a
    unit vector from t = 0 (`directional`): their steps are checked at 0."""
    steps = convert_h(ns, h, shape)
    if not per_coordinate:
        check_steps(ns, ns.zeros(1), steps[:1])
        return
    if np.ndim(h) > 0:  # a step per coordinate, in the caller's shape: flatten as x is
        steps = np.ravel(np.reshape(steps, shape), order=order)
    check_steps(ns, flat, steps)
    realize(ns, flat, steps)


def _underflow(ns: NumberSystem) -> float:
    """The smallest subnormal of a fixed-width system (0.0 for object systems, whose
    exponent range is practically unbounded)."""
    if ns.object_elements:
        return 0.0
    try:
        return float(np.finfo(ns.dtype).smallest_subnormal)
    except (AttributeError, TypeError, ValueError):
        return 0.0


def _numbers(x: Any, numbers: Any) -> NumberSystem:
    if numbers is not None:
        return number_system(numbers)
    try:
        return infer_number_system(x)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"cannot tell the number system of `x`: {exc} Pass `numbers=` "
                        "(e.g. numbers='decimal:30').") from exc


def _blocks(shapes: Any, order: str, size: int, column_names: Any = None) -> Blocks:
    if shapes is None:
        return Blocks.from_shapes(None, order=order, size=size)
    listed = list(shapes.values()) if isinstance(shapes, Mapping) else shapes
    try:
        dims = [tuple(int(d) for d in s) for s in listed]
    except TypeError as exc:
        raise ValueError(f"`shapes` must be a sequence of shapes like [(5, 4), (3, 6)] or a "
                         f"mapping like {{'fc1.weight': (5, 4)}}; got {shapes!r}.") from exc
    total = sum(int(np.prod(s, dtype=np.int64)) for s in dims)
    if total != size or any(d < 1 for s in dims for d in s):
        raise ValueError(f"`shapes` {dims} must have positive sizes adding up to x.size = "
                         f"{size}; they add up to {total}.")
    if isinstance(shapes, Mapping):
        return Blocks.from_shapes(dict(zip(shapes, dims)), order=order, size=size,
                                  column_names=column_names)
    return Blocks.from_shapes(dims, order=order, size=size, column_names=column_names)


def analytic_gradient(grad: Callable[[Any], Any], setup: Setup) -> np.ndarray:
    """``grad(x)`` flattened in `order`, converted exactly into the system."""
    return gradient_in(setup, returned_gradient(grad, setup))


def returned_gradient(grad: Callable[[Any], Any], setup: Setup) -> np.ndarray:
    """``grad(x)`` as the array grad returned (its own dtype, not yet converted)."""
    with setup.ns.context():
        return np.asarray(grad(setup.x))


def narrower_dtype(g: np.ndarray, ns: NumberSystem) -> str | None:
    """The name of the binary float `g` holds its entries in when that float is less
    precise than `ns` (a float64 array for a ``decimal:30`` check), else None: every
    entry of such an array was rounded to that float, whatever grad computed."""
    if g.dtype.kind not in "fc":
        return None
    info = np.finfo(g.dtype)
    return info.dtype.name if float(info.eps) / 2 > ns.unit_roundoff else None


def gradient_in(setup: Setup, g: np.ndarray) -> np.ndarray:
    """A returned gradient `g` flattened in `order`, converted exactly into the system."""
    if g.size != setup.x.size:
        raise ValueError(f"`grad(x)` must have one entry per entry of x ({setup.x.size}); "
                         f"got shape {g.shape}.")
    g = g.reshape(setup.x.shape) if g.shape != setup.x.shape else g
    flat = np.ravel(g, order=setup.order)
    out = setup.ns.asarray(np.real(flat) if flat.dtype.kind == "c" else flat)
    _refuse_unbounded(setup.ns, out)
    return out


def _refuse_unbounded(ns: NumberSystem, g: np.ndarray) -> None:
    """A gradient entry the system calls not finite although its value reads as a finite
    float (an interval of infinite radius around a finite midpoint) claims nothing: no
    comparison can call it right or wrong, so the check refuses it. (A plain inf or NaN
    reads as non-finite and is reported as a finding instead.)"""
    unbounded = ~np.asarray(ns.isfinite(g), dtype=bool) & \
        np.isfinite(np.real(ns.to_float(g)))
    if unbounded.any():
        idx = np.flatnonzero(unbounded)
        raise ValueError(f"`grad(x)` returned {idx.size} entr{'y' if idx.size == 1 else 'ies'} "
                         f"(flat indices {idx[:5].tolist()}) that {ns.name} does not count as "
                         f"finite although their value is, e.g. {g[idx[0]]!r}: an enclosure "
                         "of infinite radius holds every number, so it can be neither "
                         "confirmed nor refuted. Compute the gradient with enough working "
                         "precision that every entry is a finite ball.")
