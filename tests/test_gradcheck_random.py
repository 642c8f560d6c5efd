"""No false finding on random correct networks, in float32, float64, decimal:30 and mpf:40.

Each network draws its layer sizes, hidden activation, output/loss pair, L2 weight, batch
size and data from its own seed, and `check_network_gradient` must report exactly
``("match",)``. The float systems are checked against the complex step and against Richardson
extrapolation. The object-type systems use tiny networks (≤ 3 units a layer, ≤ 2
examples) so that the whole file stays well under a minute.
"""

from __future__ import annotations

import numpy as np
import pytest

from precision_nn.gradcheck import check_gradient, check_network_gradient
from precision_nn.network import MLP

HIDDEN = ["sigmoid", "tanh", "relu", "erf_logistic", "identity"]
HEADS = [("sigmoid", "cross_entropy"), ("softmax", "softmax_cross_entropy"),
         ("identity", "squared_error"), ("tanh", "squared_error")]
# (number system, reference method, how many networks, largest layer, largest batch);
# "auto" takes the complex step wherever the network has a complex counterpart, so the
# float systems are also checked against Richardson (the reference of Decimal networks)
# and against central differences at the automatic step
SYSTEMS = [("float64", "auto", 60, 5, 6), ("float32", "auto", 60, 5, 6),
           ("float64", "richardson", 40, 5, 6), ("float32", "richardson", 40, 5, 6),
           ("float64", "central", 30, 5, 6),
           ("decimal:30", "auto", 50, 3, 2), ("mpf:40", "auto", 50, 3, 2)]


def random_network(spec: str, seed: int, widest: int, batch: int):
    """A random correct network, its data, and a description for failure messages."""
    rng = np.random.default_rng(seed)
    sizes = [int(rng.integers(1, widest + 1)) for _ in range(int(rng.integers(2, 4)))]
    output, loss = HEADS[int(rng.integers(len(HEADS)))]
    if output == "softmax":
        sizes[-1] = max(2, sizes[-1])
    hidden = HIDDEN[int(rng.integers(len(HIDDEN)))]
    l2 = ["0", "0.3"][int(rng.integers(2))]
    m = int(rng.integers(1, batch + 1))
    net = MLP(sizes, hidden=hidden, output=output, loss=loss, l2=l2, numbers=spec, seed=seed)
    X = rng.standard_normal((m, sizes[0]))
    Y = np.eye(sizes[-1])[rng.integers(0, sizes[-1], m)]
    return net, X, Y, f"{spec} {sizes} {hidden} {output}/{loss} l2={l2} m={m} seed={seed}"


@pytest.mark.parametrize("spec, method, count, widest, batch", SYSTEMS,
                         ids=[f"{s[0]}-{s[1]}" for s in SYSTEMS])
def test_no_false_finding_on_random_correct_networks(spec, method, count, widest, batch):
    false = []
    for seed in range(count):
        net, X, Y, label = random_network(spec, seed, widest, batch)
        report = check_network_gradient(net, X, Y, method=method)
        if report.kinds != ("match",) or not report.passed:
            false.append(f"{label}: {report.kinds}")
    assert not false, "\n".join(false)


def test_at_least_200_networks():
    assert sum(count for _, _, count, _, _ in SYSTEMS) >= 200


def _one_layer_without_one_over_m(net, X, Y):
    """The network's gradient with layer 1 multiplied by m (its 1/m forgotten)."""
    n0 = net.shapes[0][0] * net.shapes[0][1]

    def grad(p):
        g = net.gradient(X, Y, params=p).copy()
        g[:n0] = g[:n0] * len(X)
        return g

    return grad


def test_random_networks_are_caught_when_wrong():
    """The same generator with a gradient off by m in one layer: never a match."""
    for seed in range(20):
        net, X, Y, label = random_network("float64", seed, 5, 6)
        if len(X) == 1:
            continue
        report = check_gradient(lambda p, net=net, X=X, Y=Y: net.loss(X, Y, params=p),
                                _one_layer_without_one_over_m(net, X, Y), net.params,
                                shapes=net.shapes, batch_size=len(X))
        assert not report.passed, label
        assert report.kinds[0] in ("scale", "localized"), (label, report.kinds)


BUGS = {
    "sign": (lambda net, g: -g, ("sign",)),
    "times_3": (lambda net, g: 3 * g, ("scale",)),
    "fortran": (lambda net, g: net.flatten(net.unflatten(g), order="F"), ("layout",)),
}


@pytest.mark.parametrize("bug", list(BUGS))
def test_whole_gradient_bugs_are_named_on_random_networks(bug):
    """Against Richardson (the loss is not given complex input here), 30 networks each."""
    transform, expected = BUGS[bug]
    for seed in range(30):
        net, X, Y, label = random_network("float64", seed, 5, 6)
        report = check_gradient(lambda p, net=net, X=X, Y=Y: net.loss(X, Y, params=p),
                                lambda p, net=net, X=X, Y=Y: transform(
                                    net, net.gradient(X, Y, params=p)),
                                net.params, shapes=net.shapes, batch_size=len(X))
        invisible = bug == "fortran" and all(min(s) == 1 for s in net.shapes)
        assert report.kinds == (("match",) if invisible else expected), (label, report.kinds)
