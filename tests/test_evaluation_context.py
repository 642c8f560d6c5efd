"""Every call of `f` runs in its system's context, batches and single points alike.

The evaluator enters the system's context once per request (`Evaluator.at_point`,
`Evaluator.at_shifts`) rather than once per call of `f`; these tests pin that every call
still sees the system's precision and numpy's warnings silenced, and that nothing
leaks out (the suite's autouse fixture checks the decimal and mpmath state after each
test), also when `f` raises.
"""

from __future__ import annotations

import decimal
import warnings

import numpy as np
import pytest

from precision_nn.derivatives import evaluation, gradient
from precision_nn.numbers import number_system


def test_every_call_of_a_stack_accepting_decimal_f_sees_the_systems_precision(monkeypatch):
    ns = number_system("decimal:40")
    monkeypatch.setattr(evaluation, "BATCH_BYTES", 4 * 3 * 96)  # four object points a batch
    seen = []

    def f(v):  # one point (3,) or a stack (k, 3) of Decimals
        seen.append((decimal.getcontext().prec, v.ndim))
        return np.sum(v * v * v, axis=-1)

    x = ns.asarray(["0.5", "-1.25", "2"])
    est = gradient(f, x, numbers=ns)
    assert {prec for prec, _ in seen} == {40}
    assert {ndim for _, ndim in seen} == {1, 2}  # alone (f(x), the probe) and stacked
    exact = [decimal.Decimal(3) * d * d for d in (decimal.Decimal("0.5"),
                                                  decimal.Decimal("-1.25"), decimal.Decimal(2))]
    assert all(abs(e - v) <= err for e, v, err in zip(exact, est.value, est.error))


def test_numpy_warnings_inside_f_stay_silent_in_batches():
    """A log(0) inside f is f's business (its value is checked): numpy must not warn,
    here with a term that is -inf and then discarded (the system's context of float64
    silences only overflow and underflow)."""

    def f(v):
        junk = np.log(v - v)  # divide by zero: -inf everywhere
        return np.sum(np.where(np.isfinite(junk), 0.0, 1.0) + np.sin(v), axis=-1)

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        est = gradient(f, np.array([0.8, 0.9, 1.0, 1.1]), h=2.0**-20)
    assert np.all(np.abs(est.value - np.cos([0.8, 0.9, 1.0, 1.1])) <= est.error)


def test_a_failing_f_leaves_the_context_as_it_was():
    ns = number_system("decimal:30")
    before = decimal.getcontext().prec

    def f(v):
        if np.ndim(v) == 2:
            raise RuntimeError("no stacks here, and no recovery either")
        return np.sum(v * v)

    calls = {"n": 0}

    def g(v):  # fails on the 5th call: inside a request, after the batching probe
        calls["n"] += 1
        if calls["n"] == 5:
            raise ZeroDivisionError("f broke")
        return f(v)

    with pytest.raises(ZeroDivisionError, match="f broke"):
        gradient(g, ns.asarray(["1", "2", "3"]), numbers=ns)
    assert decimal.getcontext().prec == before
