"""The generic evaluator batches a stack-accepting `f` only while batching pays."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np
import pytest

from precision_nn.derivatives import evaluation, gradient
from precision_nn.numbers import number_system

N = 30


def _costed(seconds: Callable[[int, bool], float]):
    """A stack-accepting f that sleeps ``seconds(points, stacked)`` per call; records each
    call's point count."""
    calls: list[int] = []

    def f(x):
        stacked = x.ndim == 2
        calls.append(x.shape[0] if stacked else 1)
        time.sleep(seconds(calls[-1], stacked))
        return np.sum(np.exp(x), axis=-1)  # positive terms: f is accurate to u|f|

    return f, calls


def _recording(seconds_per_stacked_point: float, seconds_per_call: float):
    """`_costed` at `seconds_per_call` per call plus `seconds_per_stacked_point` per point
    of a stack."""
    return _costed(lambda points, stacked: seconds_per_call +
                   (seconds_per_stacked_point * points if stacked else 0.0))


def test_a_slow_stacked_path_falls_back_to_one_by_one(monkeypatch):
    """Stacked points cost 10 ms each, alone 1 ms: after its first `TIMED_BATCHES` (timed)
    batches the evaluator calls f once per point, and the gradient is still right."""
    monkeypatch.setattr(evaluation, "BATCH_BYTES", 8 * N * 8)  # eight points per batch
    f, calls = _recording(seconds_per_stacked_point=0.01, seconds_per_call=0.001)
    x = np.linspace(-1, 1, N)
    est = gradient(f, x, h=2.0**-16)
    stacks = [c for c in calls if c > 2]
    assert len(stacks) == evaluation.TIMED_BATCHES, calls  # timed, then a loop
    assert sum(calls) == est.evaluations
    assert np.all(np.abs(est.value - np.exp(x)) <= est.error)


def test_a_fast_stacked_path_keeps_batching_and_grows_to_the_budget(monkeypatch):
    """A call costs 5 ms whatever its size: stacks win and are kept to the end, doubling
    from `BATCH_BYTES` (4 points) while that pays, up to `MAX_BATCH_BYTES` (16) and no
    further."""
    monkeypatch.setattr(evaluation, "BATCH_BYTES", 4 * N * 8)
    monkeypatch.setattr(evaluation, "MAX_BATCH_BYTES", 16 * N * 8)
    f, calls = _recording(seconds_per_stacked_point=0.0, seconds_per_call=0.005)
    est = gradient(f, np.linspace(-1, 1, N), h=2.0**-16)
    assert sum(calls) == est.evaluations
    # f(x) and the two probe points alone; then 4, 8 and 16 points a call
    assert calls.count(1) == 3 and max(calls) == 16 and calls.count(16) >= 4, calls
    assert calls.index(4) < calls.index(8) < calls.index(16)
    assert np.all(np.abs(est.value - np.exp(np.linspace(-1, 1, N))) <= est.error)


def test_batches_stay_at_the_size_beyond_which_a_point_costs_more(monkeypatch):
    """Stacks of up to 4 points cost one call, larger ones a call per point: from 2 points
    the batches double to 4 (cheaper per point), try 8 for `TIMED_BATCHES` batches
    (dearer), and go back to 4 for good, though the budget allows 64."""
    monkeypatch.setattr(evaluation, "BATCH_BYTES", 2 * N * 8)
    monkeypatch.setattr(evaluation, "MAX_BATCH_BYTES", 64 * N * 8)
    f, calls = _costed(lambda points, stacked: 0.002 * (1 if points <= 4 else points))
    gradient(f, np.linspace(-1, 1, N), h=2.0**-16)
    assert max(calls) == 8 and calls.count(8) == evaluation.TIMED_BATCHES, calls
    after = calls[len(calls) - calls[::-1].index(8):]
    assert after.count(4) >= 10 and max(after) == 4, calls


@pytest.mark.parametrize("failure", [
    MemoryError("Unable to allocate the stack"),
    ValueError("array is too big; `arr.size * arr.dtype.itemsize` is larger than the "
               "maximum possible size"),  # numpy's form
    RuntimeError("DefaultCPUAllocator: not enough memory"),  # torch's form
])
def test_a_grown_batch_that_f_cannot_hold_is_split_and_the_gradient_completes(
        monkeypatch, failure):
    """f fails on stacks of more than 8 points: the doubling to 16 is tried once, split
    in halves, the batches stay at 8, and the gradient is that of any other size."""
    monkeypatch.setattr(evaluation, "BATCH_BYTES", 2 * N * 8)
    monkeypatch.setattr(evaluation, "MAX_BATCH_BYTES", 64 * N * 8)
    inner, calls = _recording(seconds_per_stacked_point=0.0, seconds_per_call=0.002)
    attempts: list[int] = []

    def f(x):
        attempts.append(x.shape[0] if x.ndim == 2 else 1)
        if x.ndim == 2 and x.shape[0] > 8:
            raise failure
        return inner(x)

    x = np.linspace(-1, 1, N)
    est = gradient(f, x, h=2.0**-16)
    assert [a for a in attempts if a > 8] == [16], attempts
    assert max(calls) == 8 and calls.count(8) >= 4, calls
    assert sum(calls) == est.evaluations
    reference = gradient(lambda v: np.sum(np.exp(v), axis=-1), x, h=2.0**-16)
    np.testing.assert_array_equal(est.value, reference.value)
    assert np.all(np.abs(est.value - np.exp(x)) <= est.error)


def test_an_error_of_f_that_recurs_at_the_first_size_is_raised():
    """A failure that is f's own (not the size's) reaches the caller unchanged, however
    large the batch it first appears in."""
    calls: list[int] = []

    def f(x):
        calls.append(x.shape[0] if x.ndim == 2 else 1)
        if len(calls) > 8:
            raise RuntimeError("f's own failure")
        return np.sum(np.exp(x), axis=-1)

    with pytest.raises(RuntimeError, match="f's own failure"):
        gradient(f, np.linspace(-1, 1, 2000), h=2.0**-16)
    assert len(calls) <= 8 + 1 + math.ceil(math.log2(evaluation.MAX_BATCH_BYTES /
                                                     evaluation.BATCH_BYTES)), calls


def test_an_empty_request_after_batching_is_decided_returns_no_values():
    ns = number_system("float64")
    x = np.linspace(-1, 1, N)
    evaluator = evaluation.Evaluator(lambda v: np.sum(np.exp(v), axis=-1), ns, x, (N,))
    coords = np.arange(4)
    np.testing.assert_array_equal(evaluator.at_shifts(coords, x[coords] + 0.5),
                                  [np.sum(np.exp(np.where(np.arange(N) == k, x + 0.5, x)))
                                   for k in coords])
    assert evaluator.batched is not None
    out = evaluator.at_shifts(np.zeros(0, dtype=int), np.zeros(0))
    assert out.shape == (0,) and evaluator.evaluations == 8  # 2 alone, 2 probed, 4
