"""What a gradient check will cost, measured from its first evaluations, and what to do
when a full check is too long.

A full check of ``n`` coordinates costs about ``c_method · n`` evaluations of ``f``
(`EVALUATIONS_PER_COORDINATE`: central 3 — ±h and the truncation witness; complex step 2
— D(h) and D(2h) for its error; Richardson about 24, the mean measured on random MLPs with
automatic first steps); a directional check with ``k`` directions costs ``k · d_method``
(`DIRECTIONAL_EVALUATIONS`: one derivative of ``t ↦ f(x + t·v)`` per direction, with its
error estimate) plus, for the complex step, `COMPLEX_PROBE_EVALUATIONS` for the probe
that decides whether f is complex-step safe. The seconds are those of an evaluation at
a real point; the complex step's points cost what f's complex arithmetic costs (numpy's
complex ``exp`` is ~3-17 times its real one), which the sentence says. `EvaluationClock` times the evaluations the check makes anyway (the first
``f(x)``, the probes), `estimate_cost` turns that into seconds, and `plan_check` decides:

- ``directions=None`` (the default) keeps the full check for at most
  `FULL_CHECK_COORDINATES` coordinates estimated to take at most `FULL_CHECK_SECONDS`;
  above either it checks `DEFAULT_DIRECTIONS` random directions instead and says so in one sentence for the report (`CheckPlan.sentence`), naming both
  costs and how to ask for the full check (``directions="all"``).
- ``directions="all"`` always runs the full check; an integer ``k`` always runs ``k``
  directions.

Progress: `ProgressMeter` watches the evaluations of a running check (the check's
wrapped ``f`` reports each call's points and seconds) and, with ``progress=None`` (the
default of `check_gradient`), opens a tqdm bar on stderr as soon as the check's expected
evaluations at the measured seconds per evaluation exceed `PROGRESS_SECONDS`; no
evaluation is spent on the estimate. ``progress=True`` shows the bar from the start,
``progress=False`` never. On a terminal the bar refreshes at most every
`PROGRESS_INTERVAL` seconds; when stderr is not a terminal (a log, CI) at most every
`PROGRESS_INTERVAL_LOG` seconds, so logs get a line every half minute rather than a
stream. `progress` is the same bar for a known total.

Examples
--------
>>> cost = estimate_cost(100_000, seconds_per_evaluation=2e-3, method="complex_step")
>>> plan = plan_check(cost, directions=None)
>>> plan.directions
8
>>> print(plan.sentence)  # doctest: +NORMALIZE_WHITESPACE
A full check of 100,000 coordinates would take about 200,000 evaluations of f (≈ 6.7 min
at 2 ms each, the time of one at a real point; at complex points they may cost more); it
checks 8 random directions instead (about 95 evaluations, 18 of them at complex points, ≈
190 ms). Pass directions="all" for the full check.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
from tqdm import tqdm

__all__ = ["COMPLEX_PROBE_EVALUATIONS", "DEFAULT_DIRECTIONS", "DIRECTIONAL_EVALUATIONS",
           "EVALUATIONS_PER_COORDINATE", "FULL_CHECK_COORDINATES",
           "FULL_CHECK_SECONDS", "PROGRESS_INTERVAL", "PROGRESS_INTERVAL_LOG",
           "PROGRESS_SECONDS", "CheckCost", "CheckPlan", "EvaluationClock", "ProgressMeter",
           "estimate_cost", "expected_evaluations", "plan_check", "progress"]

# evaluations of f per coordinate of a full reference (module notes)
EVALUATIONS_PER_COORDINATE = {"central": 3, "complex_step": 2, "richardson": 24}
# evaluations of f per direction of a directional check, counted on smooth f of 10^4 and
# 10^5 variables (tests/test_cost.py): the 1-D derivative with its error bar. Central: ±h,
# the resolution probe and the noise measurement (`derivatives.noise.EVALUATIONS`);
# complex step: D(h) and D(h₂) at complex points and the 4-point cross-check in real
# arithmetic; Richardson: its tableau of automatic steps
DIRECTIONAL_EVALUATIONS = {"central": 35, "complex_step": 6, "richardson": 45}
# evaluations of the probe whether f is complex-step safe (`complex_safety.complex_probe`): two
# at complex points, f(x), central differences at ±h and Richardson along a direction
COMPLEX_PROBE_EVALUATIONS = 46
# ... of which at complex points: the probe's two and two per direction
COMPLEX_PER_DIRECTION, COMPLEX_IN_PROBE = 2, 2
# a default check estimated above this many seconds becomes directional: a minute is what
# a user waits for at an interactive prompt without wondering whether it hangs
FULL_CHECK_SECONDS = 60.0
# ... and so does one of more coordinates than this, whatever f costs: a generic full
# check builds every perturbed point as a copy of x, n² elements of memory traffic that
# the timing of f alone does not see (10^5 variables: 10^10 copied elements, the issue's
# 122 s for a cheap f); 20,000² elements are ~3 GB, about a second
FULL_CHECK_COORDINATES = 20_000
# random directions of the default directional check: a wrong gradient is seen along
# almost every direction, and 8 are enough for the factor/sign/regulariser diagnoses
DEFAULT_DIRECTIONS = 8
# show progress for checks estimated to take longer than this
PROGRESS_SECONDS = 5.0
# the bar's refresh interval in seconds on a terminal, and when stderr is not one
PROGRESS_INTERVAL = 0.5
PROGRESS_INTERVAL_LOG = 30.0
# the modes of `check_gradient(progress=...)`: automatic, always, never
PROGRESS_MODES = (None, True, False)
ALL = "all"


@dataclass(frozen=True)
class CheckCost:
    """Estimated evaluations and seconds of a full and of a directional check."""

    n: int
    method: str
    seconds_per_evaluation: float
    full_evaluations: int
    directions: int
    directional_evaluations: int

    @property
    def full_seconds(self) -> float:
        return self.full_evaluations * self.seconds_per_evaluation

    @property
    def directional_seconds(self) -> float:
        return self.directional_evaluations * self.seconds_per_evaluation


@dataclass(frozen=True)
class CheckPlan:
    """The check to run: ``directions`` None for the full check, else k; `sentence` says
    why for the report ("" when the user chose)."""

    directions: int | None
    cost: CheckCost
    sentence: str
    show_progress: bool


class EvaluationClock:
    """Wrap `f` and time its calls: `seconds_per_evaluation` from what was measured.

    A call with a stack of points (leading axis `stack_axis_size` of ``ndim + 1`` inputs)
    counts each point once.

    Parameters
    ----------
    f : callable
        The function the check evaluates.
    ndim : int
        Dimensions of one point (a stacked call has one more).

    Examples
    --------
    >>> import numpy as np
    >>> clock = EvaluationClock(lambda x: np.sum(x**2, axis=-1), ndim=1)
    >>> float(clock(np.ones(3))), float(clock(np.ones((4, 3)))[0]), clock.evaluations
    (3.0, 3.0, 5)
    """

    def __init__(self, f: Callable[[Any], Any], *, ndim: int):
        self.f, self.ndim = f, ndim
        self.evaluations = 0
        self.seconds = 0.0

    def __call__(self, x: Any) -> Any:
        start = time.perf_counter()
        value = self.f(x)
        self.seconds += time.perf_counter() - start
        self.evaluations += np.shape(x)[0] if np.ndim(x) > self.ndim else 1
        return value

    @property
    def seconds_per_evaluation(self) -> float:
        """Mean seconds per point so far (NaN before the first call)."""
        return self.seconds / self.evaluations if self.evaluations else float("nan")


def estimate_cost(n: int, *, seconds_per_evaluation: float, method: str,
                  directions: int = DEFAULT_DIRECTIONS) -> CheckCost:
    """The cost of a full check of `n` coordinates by `method` and of `directions`
    directions, at `seconds_per_evaluation` (e.g. `EvaluationClock`'s)."""
    if method not in EVALUATIONS_PER_COORDINATE:
        raise ValueError(f"`method` must be one of {sorted(EVALUATIONS_PER_COORDINATE)} "
                         f"(the reference's method, after 'auto' is resolved); got "
                         f"{method!r}.")
    if not (isinstance(n, (int, np.integer)) and n >= 1):
        raise ValueError(f"`n` must be a positive integer (the coordinates checked); "
                         f"got {n!r}.")
    if not (np.isfinite(seconds_per_evaluation) and seconds_per_evaluation >= 0):
        raise ValueError("`seconds_per_evaluation` must be finite and >= 0; got "
                         f"{seconds_per_evaluation!r}. Time at least one evaluation first.")
    _check_directions(directions)
    per = EVALUATIONS_PER_COORDINATE[method]
    return CheckCost(n=int(n), method=method, seconds_per_evaluation=seconds_per_evaluation,
                     full_evaluations=per * int(n) + 1, directions=int(directions),
                     directional_evaluations=directional_evaluations(method, directions))


def directional_evaluations(method: str, directions: int) -> int:
    """The evaluations of f a check along `directions` random directions by `method`
    makes before follow-ups, f(x) included (module notes)."""
    probe = COMPLEX_PROBE_EVALUATIONS if method == "complex_step" else 0
    return DIRECTIONAL_EVALUATIONS[method] * int(directions) + probe + 1


def plan_check(cost: CheckCost, *, directions: int | str | None = None,
               limit_seconds: float = FULL_CHECK_SECONDS,
               limit_coordinates: int = FULL_CHECK_COORDINATES,
               progress_seconds: float = PROGRESS_SECONDS) -> CheckPlan:
    """Full or directional, from the user's `directions` and the estimated `cost`.

    Parameters
    ----------
    cost : CheckCost
        From `estimate_cost`.
    directions : None, "all" or int
        None: full unless it would take more than `limit_seconds`; "all": full;
        an int k: k directions.
    limit_seconds, limit_coordinates, progress_seconds
        The documented thresholds (`FULL_CHECK_SECONDS`, `FULL_CHECK_COORDINATES`,
        `PROGRESS_SECONDS`).
    """
    if directions == ALL:
        return CheckPlan(None, cost, "", cost.full_seconds > progress_seconds)
    if directions is not None:
        _check_directions(directions)
        seconds = cost.seconds_per_evaluation * \
            directional_evaluations(cost.method, int(directions))
        return CheckPlan(int(directions), cost, "", seconds > progress_seconds)
    small = cost.full_seconds <= limit_seconds and cost.n <= limit_coordinates
    if small or cost.directions >= cost.n:
        return CheckPlan(None, cost, "", cost.full_seconds > progress_seconds)
    complex_points = cost.method == "complex_step"
    at_real = (", the time of one at a real point; at complex points they may cost more"
               if complex_points else "")
    complex_count = (f", {COMPLEX_IN_PROBE + COMPLEX_PER_DIRECTION * cost.directions} of "
                     "them at complex points" if complex_points else "")
    sentence = (f"A full check of {cost.n:,} coordinates would take about "
                f"{cost.full_evaluations - 1:,} evaluations of f (≈ "
                f"{_duration(cost.full_seconds)} at "
                f"{_duration(cost.seconds_per_evaluation)} each{at_real}); it checks "
                f"{cost.directions} random directions instead "
                f"(about {cost.directional_evaluations:,} evaluations{complex_count}, ≈ "
                f"{_duration(cost.directional_seconds)}). Pass directions=\"all\" for the "
                "full check.")
    return CheckPlan(cost.directions, cost, sentence,
                     cost.directional_seconds > progress_seconds)


@contextmanager
def progress(total: int, *, enabled: bool, description: str = "gradient check"
             ) -> Iterator[Callable[[int], None]]:
    """A callable ``advance(k)`` that moves a tqdm bar of `total` steps by k (a no-op
    when not `enabled`); the bar is closed on exit, also after an exception."""
    if not enabled:
        yield lambda k: None
        return
    bar = tqdm(total=total, desc=description, unit="eval", leave=False)
    try:
        yield bar.update
    finally:
        bar.close()


def expected_evaluations(n: int, method: str, directions: Any = None) -> int:
    """The evaluations a check of `n` coordinates by `method` ("auto" is costed as the
    complex step) makes before follow-ups: the total of its progress bar."""
    costed = method if method in EVALUATIONS_PER_COORDINATE else "complex_step"
    if directions is not None and directions != ALL:
        return directional_evaluations(costed, int(directions))
    return EVALUATIONS_PER_COORDINATE[costed] * int(n) + 1


class ProgressMeter:
    """A progress bar a running check feeds with its evaluations (module notes).

    Parameters
    ----------
    total : int
        The evaluations expected (`expected_evaluations`); follow-ups may exceed it, and
        the bar then grows with them.
    mode : None, True or False
        None: show once the estimated duration exceeds `threshold` seconds; True: from
        the start; False: never.
    threshold : float, optional
        Seconds; default `PROGRESS_SECONDS`.
    stream : file, optional
        Where the bar is written (default ``sys.stderr``).

    Examples
    --------
    >>> import io
    >>> meter = ProgressMeter(1000, mode=None, threshold=5.0, stream=io.StringIO())
    >>> meter.advance(10, seconds=0.001)  # 0.1 ms per evaluation: 0.1 s in all
    >>> meter.shown
    False
    >>> meter.advance(10, seconds=0.2)    # now ~10 ms each: ~10 s expected
    >>> meter.shown, meter.done
    (True, 20)
    >>> meter.close()
    """

    def __init__(self, total: int, *, mode: Any = None, threshold: float | None = None,
                 stream: Any = None):
        if mode not in PROGRESS_MODES:
            raise ValueError(f"`progress` must be None (automatic), True or False; got "
                             f"{mode!r}.")
        self.total, self.mode = int(total), mode
        self.threshold = float(PROGRESS_SECONDS if threshold is None else threshold)
        self.stream = sys.stderr if stream is None else stream
        self.done, self.seconds = 0, 0.0
        self.bar: Any = None
        if mode is True:
            self._open()

    @property
    def shown(self) -> bool:
        return self.bar is not None

    def advance(self, points: int, *, seconds: float) -> None:
        """Count `points` evaluations that took `seconds` together."""
        self.done += int(points)
        self.seconds += float(seconds)
        if self.bar is None and self.mode is None and self.done >= 2 and \
                self.seconds / self.done * max(self.total, self.done) > self.threshold:
            self._open()
        if self.bar is not None:
            self.bar.total = max(self.bar.total, self.done)
            self.bar.update(self.done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def _open(self) -> None:
        isatty = getattr(self.stream, "isatty", None)
        interval = PROGRESS_INTERVAL if isatty is not None and isatty() else \
            PROGRESS_INTERVAL_LOG
        self.bar = tqdm(total=max(self.total, self.done), initial=self.done,
                        desc="gradient check", unit="eval", leave=False, file=self.stream,
                        mininterval=interval, maxinterval=max(interval, 10.0))


def _check_directions(directions: Any) -> None:
    if isinstance(directions, bool) or not isinstance(directions, (int, np.integer)) or \
            directions < 1:
        raise ValueError(f"`directions` must be None, \"all\" or a positive integer; got "
                         f"{directions!r}.")


def _duration(seconds: float) -> str:
    """Seconds as a short human duration: 32 ms, 190 ms, 4.1 s, 6.7 min, 2.3 h."""
    # (unit, its seconds, the duration up to which it is used)
    for unit, size, below in (("ms", 1e-3, 1.0), ("s", 1.0, 60.0), ("min", 60.0, 3600.0)):
        if seconds < below:
            return f"{_digits(seconds / size)} {unit}"
    return f"{_digits(seconds / 3600)} h"


def _digits(value: float) -> str:
    """Two significant digits, never in exponent form (190, not 1.9e+02)."""
    return f"{value:.2g}" if value < 100 else f"{value:.0f}"
