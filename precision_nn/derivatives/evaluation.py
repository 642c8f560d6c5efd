"""Calling the user's function: batches where it accepts a stack of points, one by one
otherwise, every value checked and converted into the number system exactly once.

A function "accepts a stack" when called with points stacked along a new leading axis it
returns one value per point, equal to what it returns for each point alone. That is probed
once on two points (four evaluations, counted) and then trusted.

How many points go into one call is measured, not assumed, because what a stack saves
depends on f and on the process it runs in: an elementwise f of 100 variables costs 4×
less per point in a stack of 128 KiB than alone and more again in stacks of 0.4-1.6 MiB
(its intermediates leave the core's cache), while the loss of a 9,610-weight network
costs 62 us alone, 50 us a point in stacks of 2 (the 128 KiB start) and 29 us in stacks
of 32 (2.4 MiB) once glibc's heap has grown, but more in stacks of 4-32 than of 2 on the
first gradient of a fresh process (stacks above its 128 KiB mmap threshold get fresh pages
at every call). So:

- the first `TIMED_BATCHES` batches hold `BATCH_BYTES` of input (at least 2 points) and
  the fastest is compared with the two points evaluated alone; where a stack is not
  faster per point (an `f` whose stacked path is slower, e.g. batched products of
  non-contiguous matrices) every later point is evaluated one by one;
- then the size doubles as long as the doubled batches (the fastest of `TIMED_BATCHES`)
  cost less than `GROWTH_GAIN` of the smaller size's time per point, up to
  `MAX_BATCH_BYTES` (the memory budget); the first doubling that does not pay sets the
  size back and ends the search, which so costs at most `TIMED_BATCHES` batches at a
  size that did not pay. A grown batch on which f fails (MemoryError, or any other
  exception: allocation failures take several forms) is split in halves and ends the
  search; an error that recurs at the first size is f's own and is raised.

The batched path is therefore never slower per evaluation than the loop it replaces, up
to the timing of those batches. `MAX_BATCH_BYTES` bounds the input of a batch only; f's
intermediates are several times that.

Batch sizes never change which points are evaluated, so `evaluations` is that of any
other size (calls that failed and were split are not counted). Values may differ in the
last bits between runs: the sizes, and whether stacks are used at all, follow measured
times, and a stacked f (e.g. a batched matrix product) may sum in an order that depends
on the stack's size. The stack probe bounds that difference at a stack of two (64 units
of roundoff of |f| per point); it is not re-checked at the grown sizes. Setting
``MAX_BATCH_BYTES = BATCH_BYTES`` in this module pins the size to the first one.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from precision_nn.numbers import NumberSystem

__all__ = ["BATCH_BYTES", "GROWTH_GAIN", "MAX_BATCH_BYTES", "TIMED_BATCHES", "Evaluator",
           "NonFiniteValueError"]

# Input bytes of the first batch: 128 KiB. Each of f's stacked intermediates has the size
# of the stack (complex ones twice), and a stack whose intermediates leave the core's cache
# costs more per point than a point alone: on sum(w·exp(sin x)) of 100 complex variables,
# 5-7 us per point in stacks of <= 200 KiB, 30-65 us in stacks of 0.4-1.6 MiB, 20 us alone.
# 128 KiB is 160 real points of 100 variables (2.5 us each against 11.5 us alone) and 8
# of 2,000; larger batches are tried only where they are measured to pay (module notes).
BATCH_BYTES = 2**17
# The memory budget: no batch holds more input than this (16 MiB; f's intermediates are
# a few times that).
MAX_BATCH_BYTES = 2**24
# A doubled batch is kept only when a point costs less than this fraction of its time in
# the smaller batch (10% clears the timing noise left by taking the fastest of several)
GROWTH_GAIN = 0.9
# batches timed per decision (the fastest counts)
TIMED_BATCHES = 3
# numpy's warnings for NaN/inf inside f are replaced by our own check of every value
def _quiet() -> np.errstate:
    return np.errstate(all="ignore")


# an object-array element (Decimal, mpf) costs about this many bytes with its Python object
_OBJECT_BYTES = 96


class NonFiniteValueError(ValueError):
    """`f` returned NaN or ±inf at a point the method needed."""


class Evaluator:
    """Evaluate `f` at `x` and at copies of `x` with one coordinate moved; counts points.

    Parameters
    ----------
    f : callable
        The user's function of one point (a scalar when `shape` is ``()``).
    ns : NumberSystem
        The system the points and values live in.
    x_flat : ndarray of `ns`
        The evaluation point, flattened.
    shape : tuple of int
        The shape `f` expects (``()`` for a scalar function).
    require_complex : bool
        Refuse real results (complex step: `f` must propagate the imaginary part).
    """

    def __init__(self, f: Callable[[Any], Any], ns: NumberSystem, x_flat: np.ndarray,
                 shape: tuple[int, ...], *, require_complex: bool = False):
        self.f = f
        self.ns = ns
        self.x_flat = x_flat
        self.shape = shape
        self.require_complex = require_complex
        self.evaluations = 0
        self.batched: bool | None = None
        self._alone_seconds: float | None = None  # per point, from the probe
        self._compared = False  # the first batch has been timed against points alone
        self._tuned = False  # the batch size is settled: no more timing
        self._best: tuple[int, float] | None = None  # (rows, seconds a point) so far
        self._timings: list[float] = []  # seconds a point of the batches timed since
        self._all_full = True  # ... and whether each held the current size
        self._at_point: Any = None
        # a system whose numbers are one numpy dtype takes values of that dtype as they
        # are (its `asarray` returns them unchanged): those need only the finiteness check
        self._native = getattr(ns, "dtype", None)
        per_point = max(1, math.prod(shape))
        itemsize = _OBJECT_BYTES if x_flat.dtype == object else x_flat.dtype.itemsize
        self._row_bytes = per_point * itemsize
        self._batch_rows = self._first_rows = max(2, BATCH_BYTES // self._row_bytes)

    def at_point(self) -> Any:
        """``f(x)`` as a scalar of `ns`, evaluated once (every round and probe of a method
        shares it)."""
        if self._at_point is None:
            point = self._rows(np.zeros(1, dtype=int),
                               self.x_flat[:1] if self.shape == () else None)
            with self.ns.context(), _quiet():
                self._at_point = self._one_by_one(point)[0]
        return self._at_point

    def at_shifts(self, coords: np.ndarray, values: np.ndarray) -> np.ndarray:
        """``f`` at the points ``x`` with ``x[coords[r]] = values[r]``, one value per row."""
        count = len(coords)
        if count == 0:
            return self.ns.zeros(0)
        # the system's precision and quiet numpy for every call of f below, entered once
        # (not per batch: 5 us each, a tenth of a batch's own cost at n = 2,000)
        with self.ns.context(), _quiet():
            if self.batched is None and count > 2:
                # two points alone (timed), then stacked: whether f accepts a stack, decided
                # on the whole request (its batches may hold only 2 points); their four
                # evaluations are the probe's, counted as such by cost models elsewhere.
                # Fewer points would not repay the probe's two extra evaluations.
                self._decide(self._rows(coords[:2], values[:2]))
            if count <= self._batch_rows:
                return self._evaluate(self._rows(coords, values))
            chunks, start = [], 0
            while start < count:
                stop = start + self._batch_rows  # the size may change between batches
                chunks.append(self._evaluate(self._rows(coords[start:stop],
                                                        values[start:stop])))
                start = stop
        return np.concatenate(chunks)

    def at_points(self, points: np.ndarray) -> np.ndarray:
        """``f`` at arbitrary points: a stack ``(k, n)`` of flat points of `ns`."""
        rows = points[:, 0] if self.shape == () else points.reshape((len(points),
                                                                     *self.shape))
        with self.ns.context(), _quiet():  # a few points: never worth the batching probe
            return self._batch(rows) if self.batched else self._one_by_one(rows)

    def _rows(self, coords: np.ndarray, values: np.ndarray | None) -> np.ndarray:
        """The stacked points: copies of x with one coordinate replaced per row."""
        if self.shape == ():
            return values
        block = np.repeat(self.x_flat[None, :], len(coords), axis=0)
        if values is not None:
            block[np.arange(len(coords)), coords] = values
        return block.reshape((len(coords), *self.shape))

    def _decide(self, two: np.ndarray) -> None:
        alone, self._alone_seconds = self._timed_alone(two)
        self.batched = self._probe(two, alone)

    def _evaluate(self, points: np.ndarray) -> np.ndarray:
        if not self.batched:
            return self._one_by_one(points)
        if self._tuned or self._alone_seconds is None:
            return self._batch_within_memory(points)
        start = time.perf_counter()
        values = self._batch_within_memory(points)
        if points.shape[0] <= self._batch_rows:  # not split by a MemoryError
            self._learn(points.shape[0], (time.perf_counter() - start) / points.shape[0])
        return values

    def _batch_within_memory(self, points: np.ndarray) -> np.ndarray:
        """`_batch`, or, where f fails on a stack larger than the first size, the same
        points in halves, and every later batch at most that half: a grown batch must
        not turn a gradient the first size could compute into an error. Allocation
        failures take several forms (MemoryError; numpy's ValueError "array is too
        big"; torch's RuntimeError), so any exception counts; one that is not about the
        size recurs at the first size and is raised from there."""
        try:
            return self._batch(points)
        except Exception:  # re-raised at the first size (docstring)
            if points.shape[0] <= self._first_rows:
                raise
        self._batch_rows = max(self._first_rows, points.shape[0] // 2)
        self._tuned = True
        half = self._batch_rows
        return np.concatenate([self._batch_within_memory(points[i:i + half])
                               for i in range(0, points.shape[0], half)])

    def _learn(self, rows: int, per_point: float) -> None:
        """Decide from timed batches, `TIMED_BATCHES` at a time (the fastest counts: the
        first batch at a new size often pays for fresh memory): first the stack against
        the points alone (batching stops where it does not pay), then the size, doubled
        while full batches get cheaper per point (module notes)."""
        full = rows == self._batch_rows
        if not (full or not self._compared):
            return  # a remainder: says nothing about the current size
        self._timings.append(per_point)
        self._all_full = self._all_full and full
        if len(self._timings) < TIMED_BATCHES:
            return
        fastest, measured_size = min(self._timings), self._all_full
        self._timings, self._all_full = [], True
        if not self._compared:
            self._compared = True
            if fastest >= self._alone_seconds:
                self.batched, self._tuned = False, True
                return
            if not measured_size:
                return
        if self._best is not None and fastest > GROWTH_GAIN * self._best[1]:
            self._batch_rows, self._tuned = self._best[0], True  # the doubling did not pay
            return
        self._best = (rows, fastest)
        if 2 * rows * self._row_bytes > MAX_BATCH_BYTES:
            self._tuned = True
        else:
            self._batch_rows = 2 * rows

    def _timed_alone(self, points: np.ndarray) -> tuple[np.ndarray, float]:
        """The values of `points` one by one and the faster call's seconds (the first
        call of a function often pays a warm-up that later calls do not)."""
        values, seconds = self.ns.zeros(points.shape[0]), []
        for k in range(points.shape[0]):
            start = time.perf_counter()
            values[k] = self._convert(self.f(points[k]), scalar=True)
            seconds.append(time.perf_counter() - start)
        self.evaluations += points.shape[0]
        return values, min(seconds)

    # -- the two ways of calling (inside the system's context and `_quiet`) ------------
    def _one_by_one(self, points: np.ndarray) -> np.ndarray:
        out = self.ns.zeros(points.shape[0])
        for k in range(points.shape[0]):
            out[k] = self._convert(self.f(points[k]), scalar=True)
        self.evaluations += points.shape[0]
        return out

    def _batch(self, points: np.ndarray) -> np.ndarray:
        values = self.f(points)
        if np.shape(values) != (points.shape[0],):
            raise ValueError(
                f"`f` accepted a stack of 2 points but returned shape {np.shape(values)} "
                f"for a stack of {points.shape[0]}; return one value per stacked point."
            )
        values = self._convert(values, scalar=False)
        self.evaluations += points.shape[0]
        return values

    def _probe(self, two: np.ndarray, alone: np.ndarray) -> bool:
        """Whether `f` maps a stack of two points to their two values (same as alone)."""
        try:
            stacked = self.f(two)
            if np.shape(stacked) != (2,):
                return False
            stacked = self._convert(stacked, scalar=False)
        except Exception:  # noqa: BLE001 - any failure on a stack means "not batched"
            return False
        finally:
            self.evaluations += 2
        # batched linear algebra may sum in another order: allow a few ulps of |f| per point
        alone = self.ns.to_float(alone)
        tol = 64 * self.ns.unit_roundoff * np.abs(alone)
        return bool((np.abs(self.ns.to_float(stacked) - alone) <= tol).all())

    # -- checking what f returned -----------------------------------------------------
    def _convert(self, value: Any, *, scalar: bool) -> np.ndarray | Any:
        if (self._native is not None and type(value) in (np.ndarray, self._native.type)
                and value.dtype == self._native and (value.ndim == 0 or not scalar)
                and np.isfinite(value).all()):
            # already the system's numbers (of the system's complex dtype where complex is
            # required): what the checks below would pass, and `asarray` return, unchanged
            return value[()] if scalar else value
        if self.require_complex:
            _check_complex(value, self.ns)
        if scalar and np.ndim(value) != 0:
            raise ValueError(
                f"`f` must return a scalar for each point; it returned shape "
                f"{np.shape(value)}. Reduce the output (e.g. a loss) before differentiating."
            )
        _check_precision(value, self.ns)
        try:
            converted = self.ns.asarray(value)
        except (ValueError, TypeError) as exc:
            raise ValueError(
                f"`f` returned {_describe(value)}, which is not a number of "
                f"{self.ns.name!r}: {exc}"
            ) from exc
        if not np.asarray(self.ns.isfinite(converted)).all():
            raise NonFiniteValueError(
                f"`f` returned a non-finite value ({_first_bad(converted, self.ns)!r}) "
                f"near the evaluation point; the step leaves the domain of `f` or `f` "
                "overflows there. Pass a smaller `h` or move `x`."
            )
        return converted[()] if scalar else converted


def _check_precision(value: Any, ns: NumberSystem) -> None:
    """Refuse a binary float returned for a Decimal/mpmath system: precision was lost."""
    if getattr(ns, "dtype", None) is not None:
        return
    sample = _first(value)
    if isinstance(sample, (float, complex, np.floating, np.complexfloating)):
        raise ValueError(  # noqa: TRY004 - a value problem: right type, lost precision
            f"`f` returned a {type(sample).__name__} for points of {ns.name!r}: it "
            "computed in binary floating point and lost the system's precision (the seed-000 "
            "bug). Compute with the system's functions (ns.exp, ...) or mpmath/Decimal."
        )


def _check_complex(value: Any, ns: NumberSystem) -> None:
    """Complex step needs f to carry the imaginary part through; a real result cannot."""
    sample = np.asarray(value).ravel()[:1]
    real_types = (float, int, np.floating, np.integer)
    is_real = np.isrealobj(value) if np.asarray(value).dtype != object else \
        bool(sample.size) and (isinstance(sample[0], real_types) or
                               type(sample[0]).__name__ in ("mpf", "Decimal"))
    if is_real:
        raise ValueError(
            f"`f` returned real values for complex points of {ns.name!r}: it is not "
            "complex-step safe (it drops the imaginary part, e.g. through abs, np.real, "
            "float() or a comparison). Use method='central' or 'richardson' instead."
        )


def _first(value: Any) -> Any:
    """The first element, as `f` returned it (a Python scalar stays a Python scalar)."""
    if np.ndim(value) == 0 and not isinstance(value, np.ndarray):
        return value
    flat = np.asarray(value).ravel()
    return flat[0] if flat.size else None


def _describe(value: Any) -> str:
    return f"{type(_first(value)).__name__} values of shape {np.shape(value)}"


def _first_bad(values: np.ndarray, ns: NumberSystem) -> Any:
    flat = np.asarray(values).ravel()
    return flat[~np.asarray(ns.isfinite(flat)).ravel()][0]
