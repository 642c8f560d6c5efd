"""`taylor_test`: the remainder of a correct gradient shrinks as h², of a wrong one as h."""

from __future__ import annotations

import numpy as np
import pytest

from precision_nn.gradcheck import taylor_test
from precision_nn.network import MLP
from precision_nn.numbers import number_system

X = np.array([0.3, -1.2, 2.0, 0.7])


def f(x):
    return np.sum(np.sin(x) * x)


def grad(x):
    return np.sin(x) + x * np.cos(x)


def test_correct_gradient_has_order_two():
    report = taylor_test(f, grad, X)
    assert report.passed and report.observed_order == pytest.approx(2, abs=0.05)
    assert np.all(np.diff(report.remainders) < 0)


def test_wrong_gradient_has_order_one():
    report = taylor_test(f, lambda x: 1.01 * grad(x), X)
    assert not report.passed and report.observed_order == pytest.approx(1, abs=0.2)


def test_zeroth_order_term_shrinks_as_h():
    report = taylor_test(f, grad, X)
    ratios = report.zeroth_order[:-1] / report.zeroth_order[1:]
    assert np.allclose(ratios[-4:], 2, rtol=0.05)


def test_rounding_floor_is_not_counted():
    """In float32 the smallest steps reach the rounding floor: those orders are NaN."""
    x32 = X.astype(np.float32)
    report = taylor_test(lambda x: np.sum(np.sin(x) * x), lambda x: np.sin(x) + x * np.cos(x),
                         x32, steps=0.1 * 0.5 ** np.arange(16))
    assert report.passed and np.isnan(report.orders[-1])
    assert report.numbers == "float32"


@pytest.mark.parametrize("spec", ["float64", "decimal:30", "mpf:40"])
def test_network_gradient_passes_in_every_system(spec):
    net = MLP([3, 3, 2], hidden="tanh", numbers=spec, seed=2)
    X_, Y = np.array([[0.1, -0.3, 0.5], [0.4, 0.2, -0.6]]), np.eye(2)[[0, 1]]
    report = taylor_test(lambda p: net.loss(X_, Y, params=p),
                         lambda p: net.gradient(X_, Y, params=p), net.params)
    assert report.passed and abs(report.observed_order - 2) < 0.1


def test_mpf_network_with_missing_one_over_m_fails():
    net = MLP([3, 3, 2], numbers="mpf:30", seed=2)
    X_, Y = np.array([[0.1, -0.3, 0.5], [0.4, 0.2, -0.6]]), np.eye(2)[[0, 1]]
    report = taylor_test(lambda p: net.loss(X_, Y, params=p),
                         lambda p: net.gradient(X_, Y, params=p) * 2, net.params)
    assert not report.passed


def test_explicit_direction_and_text():
    report = taylor_test(f, grad, X, direction=[1, 0, 0, 0])
    assert report.directional_derivative == pytest.approx(grad(X)[0])
    assert str(report).startswith("Taylor test PASSED")


@pytest.mark.parametrize("kwargs, match", [
    ({"direction": [1, 0]}, "`direction` must be a finite non-zero array with 4 entries"),
    ({"direction": [0, 0, 0, 0]}, "`direction` must be a finite non-zero array"),
    ({"steps": [0.1, 0.2, 0.05]}, "`steps` must be at least 3 positive, strictly decreasing"),
    ({"steps": [0.1]}, "`steps` must be at least 3"),
])
def test_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        taylor_test(f, grad, X, **kwargs)


def test_decimal_input_by_strings():
    ns = number_system("decimal:25")
    x = ns.asarray(["0.5", "1.5"])
    with ns.context():
        report = taylor_test(lambda v: np.sum(v * v * v), lambda v: 3 * v * v, x)
    assert report.passed


DEC30 = number_system("decimal:30")


def _sin_x(ns):
    """f, its gradient and X in `ns` (decimal through its own sin and cos)."""
    if ns.name == "float64":
        return f, grad, X
    return (lambda x: np.sum(ns.sin(x) * x), lambda x: ns.sin(x) + x * ns.cos(x),
            ns.asarray(["0.3", "-1.2", "2.0", "0.7"]))


@pytest.mark.parametrize("spec", ["float64", "decimal:30"])
@pytest.mark.parametrize("eps", ["1e-5", "1e-8"])
def test_small_relative_gradient_errors_are_detected(spec, eps):
    """The default steps go down to the rounding floor: an error ε is seen once ε·h·|vᵀg|
    exceeds the floor (with 0.1·s·2^-11 as the last step, 1e-5 passed with order 1.89)."""
    ns = number_system(spec)
    fn, gn, x = _sin_x(ns)
    with ns.context():
        wrong = taylor_test(fn, lambda v: gn(v) * (1 + ns.scalar(eps)), x)
        right = taylor_test(fn, gn, x)
    assert wrong.numbers == right.numbers == spec
    assert not wrong.passed, str(wrong)
    assert right.passed and right.observed_order == pytest.approx(2, abs=0.05)
    assert right.steps.size > 12 and np.isnan(right.orders[-1])  # it reached the floor


def test_default_steps_stop_at_the_floor():
    """float64 stops after about 20 halvings (h ≈ √u·s), decimal:30 after about 45."""
    assert 16 <= taylor_test(f, grad, X).steps.size <= 30
    fn, gn, x = _sin_x(DEC30)
    with DEC30.context():
        assert 35 <= taylor_test(fn, gn, x).steps.size <= 60


def _random_network_reports(dtype, count=40):
    """Taylor reports of the correct gradients of `count` random MLP([3, 4, 2]) losses."""
    reports = []
    for seed in range(count):
        rng = np.random.default_rng(seed)
        X_ = rng.standard_normal((5, 3)).astype(dtype)
        Y = np.eye(2, dtype=dtype)[rng.integers(0, 2, 5)]
        net = MLP([3, 4, 2], numbers=dtype, seed=seed)
        reports.append(taylor_test(lambda p, net=net, X_=X_, Y=Y: net.loss(X_, Y, params=p),
                                   lambda p, net=net, X_=X_, Y=Y: net.gradient(X_, Y, params=p),
                                   net.params))
    return reports


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_no_false_failures_on_random_networks(dtype):
    """A decided pass has an h²-free order of at least 2 or none usable, and then a
    resolution of at most 10%; in float32 a loss of small curvature along v can leave
    fewer than two usable h²-free orders and a worse resolution: no verdict, no failure."""
    from precision_nn.gradcheck.taylor_verdict import MAX_RESOLUTION

    reports = _random_network_reports(dtype)
    assert [k for k, r in enumerate(reports) if not r.passed] == []
    for r in reports:
        if r.decided:
            assert not r.eliminated_order < 2, str(r)
            assert r.relative_resolution <= MAX_RESOLUTION or np.sum(
                ~np.isnan(r.eliminated_orders)) >= 2, str(r)
        else:
            assert np.sum(~np.isnan(r.eliminated_orders)) < 2 and str(r).startswith(
                "Taylor test UNDECIDED")
    if dtype == "float64":
        assert all(r.decided for r in reports)


def test_float32_wrong_network_gradient_still_fails():
    """Undecided is not a blanket pass: a 10% error in a float32 network is decided and fails."""
    rng = np.random.default_rng(0)
    X_ = rng.standard_normal((5, 3)).astype("float32")
    Y = np.eye(2, dtype="float32")[rng.integers(0, 2, 5)]
    net = MLP([3, 4, 2], numbers="float32", seed=0)
    report = taylor_test(lambda p: net.loss(X_, Y, params=p),
                         lambda p: net.gradient(X_, Y, params=p) * np.float32(1.1), net.params)
    assert report.decided and not report.passed, str(report)
