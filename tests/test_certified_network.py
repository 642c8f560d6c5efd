"""The structure-aware certified reference of an MLP, and MLP.check_gradient(method=
"certified"): enclosures of backprop in mpmath at twice the digits, agreement with the
generic Taylor-mode gradient, buggy backprops proven wrong, kinks named."""

from __future__ import annotations

import numpy as np
import pytest

from precision_nn.certified_network import certified_gradient
from precision_nn.derivatives import gradient
from precision_nn.network import MLP
from precision_nn.numbers import number_system
from precision_nn.numbers.arb_system import flint_precision
from precision_nn.numbers.literals import exact_parts

flint = pytest.importorskip("flint")

DIGITS = 30
NS = number_system(f"arb:{DIGITS}")
ARCHS = [("sigmoid", "sigmoid", "cross_entropy"), ("tanh", "softmax", "softmax_cross_entropy"),
         ("erf_logistic", "identity", "squared_error"), ("relu", "sigmoid", "squared_error")]


def _point(value):
    q = exact_parts(value, "reference")[0]
    with flint_precision(4000):
        return flint.arb(flint.fmpq(q.numerator, q.denominator))


def _problem(seed, sizes=(5, 7, 4, 3), l2="0.1"):
    hidden, output, loss = ARCHS[seed % len(ARCHS)]
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((6, sizes[0])).round(5).astype(str)
    Y = np.eye(sizes[-1])[rng.integers(0, sizes[-1], 6)]
    net = MLP(list(sizes), hidden=hidden, output=output, loss=loss, l2=l2, seed=seed,
              numbers=NS)
    return net, X, Y


def test_structure_aware_enclosure_contains_backprop_at_twice_the_digits():
    entries, outside = 0, []
    for seed in range(18):  # 18 networks x 89 weights, three layers, every activation
        net, X, Y = _problem(seed)
        balls, failures = certified_gradient(net, NS.asarray(X), NS.asarray(Y))
        assert not failures
        reference = net.to(f"mpf:{2 * DIGITS}").gradient(X, Y)
        for i, (ball, ref) in enumerate(zip(balls, reference)):
            entries += 1
            if not ball.contains(_point(ref)):
                outside.append((seed, i, str(ball), str(ref)))
    assert entries >= 1500 and not outside, outside[:5]


def test_structure_aware_and_generic_taylor_references_agree():
    for seed in range(4):
        net, X, Y = _problem(seed, sizes=(3, 4, 2), l2="0.25")
        Xa, Ya = NS.asarray(X), NS.asarray(Y)
        balls, _ = certified_gradient(net, Xa, Ya)
        generic = gradient(lambda p, net=net, Xa=Xa, Ya=Ya: net.loss(Xa, Ya, params=p),
                           net.params,
                           method="taylor", numbers=NS)
        assert all(b.overlaps(g) for b, g in zip(balls, generic.value))


def test_mlp_check_gradient_certified_proves_backprop_in_arb_with_nothing_assumed():
    net, X, Y = _problem(1)
    report = net.check_gradient(X, Y, method="certified")
    assert report.status == "consistent" and report.passed, str(report)
    assert "nothing about the analytic gradient" in report.assumed
    assert "documented MLP composition" in report.assumed
    assert np.max(report.bound) < 1e-26 * np.max(np.abs(report.reference))


def test_a_float64_network_is_proven_consistent_to_its_rounding():
    net = MLP([4, 6, 3], seed=3)  # float64
    rng = np.random.default_rng(3)
    X, Y = rng.standard_normal((5, 4)), rng.uniform(0, 1, (5, 3))
    report = net.check_gradient(X, Y, method="certified", numbers="arb:30")
    assert report.status == "consistent" and "given in float64" in report.assumed


class _Buggy(MLP):
    """Backprop with one of the bugs of the seeds (seed 002: L2 on the bias; a lost 1/m)."""

    def __init__(self, *args, bug: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.bug = bug

    def gradient(self, X, Y, params=None):
        g = super().gradient(X, Y, params)
        if self.bug == "times_m":
            return g * np.asarray(X).shape[0]
        if self.bug == "bias_l2":  # λ/m·θ added to the bias column of layer 0 as well
            mats = self.unflatten(g)
            W = self.unflatten(self.params)[0]
            mats[0][:, 0] = mats[0][:, 0] + self.l2 * W[:, 0] / np.asarray(X).shape[0]
            return self.flatten(mats)
        if self.bug == "one_weight":
            g = g.copy()
            g[7] = g[7] * (1 + self.numbers.scalar("1e-15"))
            return g
        raise AssertionError(self.bug)


@pytest.mark.parametrize("bug", ["times_m", "bias_l2", "one_weight"])
def test_buggy_backprop_is_proven_wrong(bug):
    rng = np.random.default_rng(5)
    net = _Buggy([3, 4, 2], l2="0.5", numbers=NS, seed=5, bug=bug)
    X = rng.standard_normal((4, 3)).round(4).astype(str)
    Y = np.eye(2)[rng.integers(0, 2, 4)]
    report = net.check_gradient(X, Y, method="certified")
    assert report.status == "proven_wrong", str(report)
    if bug == "one_weight":  # one part in 10^15, proven at the one entry it touches
        assert report.wrong == (7,)


def test_a_relu_kink_makes_the_layers_below_it_unprovable():
    net = MLP([2, 2, 1], hidden="relu", output="identity", loss="squared_error",
              numbers=NS, seed=0)
    params = net.params.copy()
    params[0] = params[1] = params[2] = NS.zero  # unit 0 of layer 0: z = 0 exactly
    net = MLP([2, 2, 1], hidden="relu", output="identity", loss="squared_error",
              numbers=NS, init=params)
    report = net.check_gradient([["0.5", "0.25"]], [[1]], method="certified")
    assert report.status == "cannot_prove" and set(report.unprovable) == set(range(6))
    assert report.kinds == ("kink",) and "cannot decide 0 > 0" in report.findings[0].message


def test_fortran_order_names_the_same_entries():
    net = _Buggy([3, 4, 2], l2="0.5", numbers=NS, seed=5, bug="one_weight")
    X, Y = [["0.1", "0.2", "-0.3"]], [[1, 0]]
    c = net.check_gradient(X, Y, method="certified")
    f = net.check_gradient(X, Y, method="certified", order="F")
    assert c.wrong == (7,) and len(f.wrong) == 1
    assert c.blocks.locate(7) == f.blocks.locate(f.wrong[0])


def test_certified_network_validation():
    net = MLP([2, 2, 1], seed=0)
    with pytest.raises(ValueError, match=r"needs a real ball system.*'float64'"):
        net.check_gradient([[0.1, 0.2]], [[1]], method="certified")
    with pytest.raises(ValueError, match="`h` and `directions` are not used"):
        net.check_gradient([[0.1, 0.2]], [[1]], method="certified", numbers=NS, h=1e-3)
