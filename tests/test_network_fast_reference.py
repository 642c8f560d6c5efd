"""The network check's automatic reference computed in a faster system (issue 11, item 5).

mpf:N networks take their reference in mpfr:N (the same binary precision: exact
conversions both ways), decimal:N networks in mpfr:(N+10) (each input rounded once into
binary, the result rounded back; both in the error bars). References are tested against
backprop at twice the digits: the true error of every entry must lie within its error
bar. Verdicts must be those of the reference computed in the network's own system: a
correct gradient passes and a gradient off by far less than the old bars' width fails.
"""

from __future__ import annotations

import numpy as np
import pytest

from precision_nn.gradcheck.network_check import _in_fast_system
from precision_nn.network import MLP
from precision_nn.numbers import number_system
from precision_nn.numbers.base import optional_system

pytest.importorskip("gmpy2")  # the extra `mpfr`; `make test` installs it


def _problem(spec: str, seed: int = 3) -> tuple[MLP, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    net = MLP([3, 4, 2], numbers=spec, seed=seed, l2="0.1")
    X = net.numbers.asarray(np.round(rng.normal(size=(3, 3)), 6).astype(str))
    Y = net.numbers.asarray(np.eye(2)[rng.integers(0, 2, 3)])
    return net, X, Y


def test_each_system_names_its_fast_reference_system() -> None:
    assert number_system("mpf:30").fast_reference_system() == number_system("mpfr:30")
    assert number_system("mpc:30").fast_reference_system() == number_system("mpfrc:30")
    assert number_system("decimal:20").fast_reference_system() == number_system("mpfr:30")
    for spec in ("float64", "mpfr:30", "arb:30"):
        assert number_system(spec).fast_reference_system() is None
    mpfr, mpf, dec = (number_system(s) for s in ("mpfr:30", "mpf:30", "decimal:20"))
    assert mpfr.holds_exactly(mpf) and mpf.holds_exactly(mpfr)
    assert not number_system("mpfr:30").holds_exactly(dec)  # 0.1 has no binary expansion
    assert not mpf.holds_exactly(number_system("mpfr:60"))
    assert optional_system("no-such-family:3") is None


@pytest.mark.parametrize(("spec", "method", "wide"), [
    ("mpf:30", "complex_step", "mpf:60"), ("mpf:30", "central", "mpf:60"),
    ("decimal:20", "richardson", "mpf:80"), ("decimal:20", "central", "mpf:80")])
def test_the_fast_reference_bounds_its_true_error(spec: str, method: str, wide: str) -> None:
    """True error against backprop at (at least) twice the digits, formed in the wide
    system; the decimal bars must hold the back-rounding u·|g| at least."""
    net, X, Y = _problem(spec)
    ns = net.numbers
    fast = ns.fast_reference_system()
    est = _in_fast_system(net, X, Y, method, fast)
    assert est is not None and ns.owns(est.value) and fast.name in est.note
    exact_net = net.to(wide)
    exact = exact_net.gradient(exact_net.numbers.asarray(X), exact_net.numbers.asarray(Y))
    w = exact_net.numbers
    with w.context():
        true_error = np.abs(w.to_float(w.asarray(est.value) - exact))
    assert np.all(true_error <= est.error), (true_error / est.error).max()
    if not ns.holds_exactly(fast):
        assert np.all(est.error >= ns.unit_roundoff * np.abs(ns.to_float(est.value)))


@pytest.mark.parametrize("spec", ["mpf:30", "decimal:20"])
def test_the_automatic_check_uses_it_and_keeps_its_verdicts(spec: str) -> None:
    net, X, Y = _problem(spec)
    fast = net.numbers.fast_reference_system()
    report = net.check_gradient(X, Y)
    assert report.passed and f"in {fast.name} for {spec}" in report.reference_name
    # a gradient off by 1e-15 relative: far below float64, far above 30 / 20 digits
    true_gradient = net.gradient

    def off(X, Y, params=None):
        g = true_gradient(X, Y, params=params)
        with net.numbers.context():
            g[5] = g[5] * (1 + net.numbers.scalar("1e-15"))
        return g

    net.gradient = off
    bad = net.check_gradient(X, Y)
    # (the failure is confirmed at twice the digits: again in the fast system)
    assert not bad.passed and " in mpfr:" in bad.reference_name, bad.reference_name
    # an explicit method keeps the reference in the network's own family
    family = spec.partition(":")[0]
    explicit = net.check_gradient(X, Y, method="complex_step" if family == "mpf" else
                                  "richardson")
    assert f" in {family}:" in explicit.reference_name
    assert "mpfr" not in explicit.reference_name
