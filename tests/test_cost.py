"""`gradcheck.cost`: cost estimates from timed evaluations, the full-or-directional plan
and its sentence, progress bars; the evaluation counts against what `gradient` spends."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest

from precision_nn.derivatives import gradient
from precision_nn.derivatives.noise import EVALUATIONS as NOISE_EVALUATIONS
from precision_nn.gradcheck import check_gradient, cost
from precision_nn.gradcheck.cost import (
    DEFAULT_DIRECTIONS,
    FULL_CHECK_COORDINATES,
    FULL_CHECK_SECONDS,
    EvaluationClock,
    estimate_cost,
    plan_check,
    progress,
)

PROBE = 4  # the generic evaluator's batching probe: two points alone, two stacked


def _f(x):
    return np.sum(np.exp(x) * (1 + np.arange(x.shape[-1])), axis=-1)


@pytest.mark.parametrize(("method", "h"), [("central", 2.0**-16), ("complex_step", None)])
def test_full_evaluations_are_what_gradient_spends(method, h):
    """The estimate is not a formula from nowhere: a fixed-step central gradient and a
    complex-step gradient spend exactly the estimated evaluations (plus the probe)."""
    n = 40
    est = gradient(_f, np.linspace(-1, 1, n), method=method, h=h)
    cost = estimate_cost(n, seconds_per_evaluation=1e-6, method=method)
    # the complex step never evaluates f(x) itself: the estimate's +1 is the check's f(x);
    # central adds its resolution probe (2 points at one coordinate) and the measurement
    # of f's noise (NOISE_POINTS at that coordinate); the complex step its cross-check in
    # real arithmetic (4 points along a random direction, one rung here: too few for that
    # evaluator to probe batching)
    fixed = {"central": 2 + NOISE_EVALUATIONS, "complex_step": 4}[method]
    assert est.evaluations + (1 if method == "complex_step" else 0) == \
        cost.full_evaluations + PROBE + fixed


def test_clock_times_and_counts_stacked_points():
    def slow(x):
        time.sleep(0.01)
        return _f(x)

    clock = EvaluationClock(slow, ndim=1)
    clock(np.zeros(5))
    clock(np.zeros((3, 5)))
    assert clock.evaluations == 4
    # two calls of >= 10 ms over 4 points: >= 5 ms per point, and not wildly more
    assert 0.005 <= clock.seconds_per_evaluation < 0.05


def test_small_checks_stay_full():
    cost = estimate_cost(1000, seconds_per_evaluation=1e-4, method="central")
    plan = plan_check(cost)
    assert plan.directions is None and plan.sentence == "" and not plan.show_progress


def test_large_checks_become_directional_and_say_both_costs():
    cost = estimate_cost(100_000, seconds_per_evaluation=1e-3, method="richardson")
    assert cost.full_seconds > FULL_CHECK_SECONDS
    plan = plan_check(cost)
    assert plan.directions == DEFAULT_DIRECTIONS
    assert "2,400,000 evaluations" in plan.sentence  # 24 per coordinate
    assert f"{DEFAULT_DIRECTIONS} random directions" in plan.sentence
    # 45 per direction, f(x): what `test_directional_estimates_are_what_checks_spend` counts
    assert "about 361 evaluations" in plan.sentence and 'directions="all"' in plan.sentence
    assert "complex points" not in plan.sentence
    complex_step = plan_check(estimate_cost(100_000, seconds_per_evaluation=1e-3,
                                            method="complex_step")).sentence
    assert "about 95 evaluations, 18 of them at complex points" in complex_step
    assert "the time of one at a real point" in complex_step


def test_the_users_choice_wins():
    cost = estimate_cost(100_000, seconds_per_evaluation=1e-3, method="central")
    assert plan_check(cost, directions="all").directions is None
    assert plan_check(cost, directions="all").show_progress  # 5 minutes: show a bar
    assert plan_check(cost, directions=3).directions == 3
    assert plan_check(cost, directions=3).sentence == ""


def test_limit_is_a_parameter():
    cost = estimate_cost(100, seconds_per_evaluation=1.0, method="central")
    assert plan_check(cost, limit_seconds=1000).directions is None
    assert plan_check(cost, limit_seconds=10).directions == DEFAULT_DIRECTIONS


def test_many_coordinates_become_directional_even_when_f_is_cheap():
    """10^5 coordinates at 1 µs per evaluation is 0.2 s of f, but n² of copying."""
    cost = estimate_cost(100_000, seconds_per_evaluation=1e-6, method="complex_step")
    assert cost.full_seconds < FULL_CHECK_SECONDS
    assert plan_check(cost).directions == DEFAULT_DIRECTIONS
    small = estimate_cost(FULL_CHECK_COORDINATES, seconds_per_evaluation=1e-6,
                          method="complex_step")
    assert plan_check(small).directions is None


def test_progress_bar_shows_and_can_be_turned_off(capsys):
    with progress(10, enabled=True, description="reference") as advance:
        advance(4)
        advance(6)
    shown = capsys.readouterr().err
    assert "reference" in shown
    with progress(10, enabled=False) as advance:
        advance(10)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"method": "auto"}, "`method` must be one of .* after 'auto' is resolved"),
    ({"n": 0}, "`n` must be a positive integer"),
    ({"seconds_per_evaluation": float("nan")}, "`seconds_per_evaluation` must be finite"),
    ({"directions": 0}, "`directions` must be None, \"all\" or a positive integer"),
])
def test_bad_input_is_named(kwargs, match):
    args = {"n": 10, "seconds_per_evaluation": 1e-3, "method": "central"} | kwargs
    n = args.pop("n")
    with pytest.raises(ValueError, match=match):
        estimate_cost(n, **args)


def test_bad_directions_in_plan_are_named():
    cost = estimate_cost(10, seconds_per_evaluation=1e-3, method="central")
    with pytest.raises(ValueError, match="`directions` must be None"):
        plan_check(cost, directions="some")


# -- check_gradient plans its own size ----------------------------------------------------
def _large_problem(n):
    w = np.random.default_rng(1).normal(size=n)
    return (lambda x: np.sum(np.exp(np.sin(x)) * w, axis=-1),
            lambda x: np.exp(np.sin(x)) * np.cos(x) * w)


def test_a_large_default_check_runs_directions_and_says_why():
    n = FULL_CHECK_COORDINATES + 1
    f, g = _large_problem(n)
    x = np.linspace(-1, 1, n)
    report = check_gradient(f, g, x)
    assert report.passed and report.directional
    assert f"A full check of {n:,} coordinates" in str(report)
    assert 'Pass directions="all"' in str(report)
    wrong = check_gradient(f, lambda p: 1.001 * g(p), x)
    assert not wrong.passed and wrong.directional


@pytest.mark.parametrize("method", ["central", "complex_step", "richardson", "auto"])
@pytest.mark.parametrize("n", [3_000, FULL_CHECK_COORDINATES + 1])
def test_directional_estimates_are_what_checks_spend(method, n):
    """The plan's count of a directional check (and its progress bar's total) is what a
    check of a smooth f spends, within a tenth: a sentence that said 16 evaluations for
    a check of 95 would mislead the user it is written for."""
    f, g = _large_problem(n)
    x = np.linspace(-1, 1, n)
    report = check_gradient(f, g, x, method=method, directions=DEFAULT_DIRECTIONS)
    expected = cost.expected_evaluations(n, method, DEFAULT_DIRECTIONS)
    assert report.passed and report.directional
    assert abs(report.evaluations - expected) <= expected / 10, (report.evaluations,
                                                                  expected)


def test_durations_read_as_a_person_writes_them():
    assert [cost._duration(s) for s in (0.032, 0.19, 4.1, 402, 8280, 540_000)] == \
        ["32 ms", "190 ms", "4.1 s", "6.7 min", "2.3 h", "150 h"]


def test_directions_all_asks_for_the_full_check_and_small_checks_stay_full():
    f, g = _large_problem(12)
    x = np.linspace(-1, 1, 12)
    for directions in (None, "all"):
        report = check_gradient(f, g, x, directions=directions)
        assert report.passed and not report.directional and report.plan == ""


def test_directions_must_be_a_positive_integer_or_all():
    f, g = _large_problem(3)
    with pytest.raises(ValueError, match=r'`directions` must be a positive integer, "all" '
                                         r"or None; got 'some'"):
        check_gradient(f, g, np.ones(3), directions="some")


# -- progress ---------------------------------------------------------------------------
def _sleepy(x):
    """One evaluation per call (no stacks): about 1 ms each."""
    time.sleep(0.001)
    return float(np.sum(np.sin(x)))


def test_automatic_progress_shows_a_bar_once_the_check_is_estimated_long(monkeypatch,
                                                                         capsys):
    """Automatic mode times the check's own evaluations: ~90 evaluations of 1 ms are
    ~0.1 s, above a threshold of 20 ms, so the bar appears; the verdict is unchanged."""
    monkeypatch.setattr(cost, "PROGRESS_SECONDS", 0.02)
    x = np.linspace(0.1, 1, 30)  # not symmetric: there Σ sin x cancels to ~1e-17
    report = check_gradient(_sleepy, np.cos, x, method="central")
    assert report.kinds == ("match",)
    assert "gradient check" in capsys.readouterr().err


def test_short_checks_and_progress_false_show_nothing(monkeypatch, capsys):
    x = np.linspace(0.1, 1, 30)  # not symmetric: there Σ sin x cancels to ~1e-17
    check_gradient(_sleepy, np.cos, x, method="central")  # ~0.1 s: under 5 s
    monkeypatch.setattr(cost, "PROGRESS_SECONDS", 0.02)
    report = check_gradient(_sleepy, np.cos, x, method="central", progress=False)
    assert report.kinds == ("match",)
    assert capsys.readouterr().err == ""


def test_progress_true_shows_the_bar_also_for_a_network(capsys):
    from precision_nn.network import MLP

    net = MLP([2, 3, 1], seed=1)
    X, Y = np.array([[0.1, -0.4], [0.7, 0.2]]), np.array([[1.0], [0.0]])
    assert net.check_gradient(X, Y, progress=True).kinds == ("match",)
    assert "gradient check" in capsys.readouterr().err


def test_progress_is_throttled_off_a_terminal():
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    log, tty = io.StringIO(), Terminal()
    for stream, interval in ((log, cost.PROGRESS_INTERVAL_LOG), (tty, cost.PROGRESS_INTERVAL)):
        meter = cost.ProgressMeter(100, mode=True, stream=stream)
        assert meter.bar.mininterval == interval
        meter.advance(150, seconds=0.1)  # follow-ups beyond the expected total
        assert meter.bar.total == 150
        meter.close()
    assert cost.PROGRESS_INTERVAL_LOG >= 30 * cost.PROGRESS_INTERVAL


def test_meter_estimates_from_measured_seconds():
    meter = cost.ProgressMeter(1000, mode=None, threshold=5.0, stream=io.StringIO())
    meter.advance(100, seconds=0.1)  # 1 ms each: 1 s expected
    assert not meter.shown
    meter.advance(100, seconds=1.9)  # 10 ms each: 10 s expected
    assert meter.shown
    meter.close()
    assert not meter.shown


@pytest.mark.parametrize("bad", [1, 0, "yes", 2.0])
def test_bad_progress_is_refused(bad):
    with pytest.raises(ValueError, match=r"`progress` must be None \(automatic"):
        check_gradient(np.sum, np.ones_like, np.ones(3), progress=bad)
