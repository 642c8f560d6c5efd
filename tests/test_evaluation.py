"""The generic evaluator batches a stack-accepting `f` only while batching pays."""

from __future__ import annotations

import time

import numpy as np

from precision_nn.derivatives import evaluation, gradient

N = 30


def _recording(seconds_per_stacked_point: float, seconds_per_call: float):
    """A stack-accepting f that sleeps `seconds_per_call` per call plus
    `seconds_per_stacked_point` per point of a stack; records each call's point count."""
    calls: list[int] = []

    def f(x):
        stacked = x.ndim == 2
        calls.append(x.shape[0] if stacked else 1)
        time.sleep(seconds_per_call + (seconds_per_stacked_point * x.shape[0] if stacked
                                       else 0.0))
        return np.sum(np.exp(x), axis=-1)  # positive terms: f is accurate to u|f|

    return f, calls


def test_a_slow_stacked_path_falls_back_to_one_by_one(monkeypatch):
    """Stacked points cost 10 ms each, alone 1 ms: after its first (timed) batch the
    evaluator calls f once per point, and the gradient is still right."""
    monkeypatch.setattr(evaluation, "BATCH_BYTES", 8 * N * 8)  # eight points per batch
    f, calls = _recording(seconds_per_stacked_point=0.01, seconds_per_call=0.001)
    x = np.linspace(-1, 1, N)
    est = gradient(f, x, h=2.0**-16)
    stacks = [c for c in calls if c > 2]
    assert len(stacks) == 1, calls  # the one timed batch, then a loop
    assert sum(calls) == est.evaluations
    assert np.all(np.abs(est.value - np.exp(x)) <= est.error)


def test_a_fast_stacked_path_keeps_batching(monkeypatch):
    """A call costs 5 ms whatever its size: stacks win and are kept to the end."""
    monkeypatch.setattr(evaluation, "BATCH_BYTES", 8 * N * 8)
    f, calls = _recording(seconds_per_stacked_point=0.0, seconds_per_call=0.005)
    est = gradient(f, np.linspace(-1, 1, N), h=2.0**-16)
    assert sum(calls) == est.evaluations
    # f(x) and the two probe points alone (the 27 points that measure f's noise come in
    # one call, `derivatives.noise`: batches of 8, 8, 8 and 3)
    assert calls.count(1) == 3 and max(calls) == 8
