"""The contracts other branches build on: named blocks, adapter finding kinds, and the
reference provider of the check's reference stage (the MLP's structure-aware one)."""

from __future__ import annotations

import numpy as np
import pytest

from precision_nn.gradcheck import KINDS, Finding, check_gradient
from precision_nn.network import MLP

RNG = np.random.default_rng(11)


def _quadratic(shapes):
    """f = Σ c_i x_i² / 2 + Σ sin(x_i), with its gradient, at a random point."""
    n = sum(int(np.prod(s)) for s in shapes)
    c = RNG.uniform(0.5, 2.0, n)
    x = RNG.standard_normal(n)
    return (lambda p: np.sum(c * p * p) / 2 + np.sum(np.sin(p)),
            lambda p: c * p + np.cos(p), x)


@pytest.mark.parametrize("shapes, wrong, label", [
    ({"fc1.weight": (3, 2), "fc1.bias": (3,)}, 7, "fc1.bias [1]"),
    ({"conv.weight": (2, 2, 2), "head": (4,)}, 3, "conv.weight [0, 1, 1]"),
    ({"embed": (5,), "proj": (2, 3)}, 9, "proj [1, 1]"),
])
def test_named_blocks_label_findings_and_table(shapes, wrong, label):
    f, g, x = _quadratic(list(shapes.values()))

    def bad(p):
        out = g(p).copy()
        out[wrong] += 0.5
        return out

    report = check_gradient(f, bad, x, shapes=shapes)
    assert not report.passed
    assert report.worst(1)[0].label == label
    name = label.split(" [")[0]
    assert any(name in fd.message for fd in report.findings)
    assert name in str(report).split("worst coordinates:")[1]
    # the other blocks agree, and a finding says so
    assert any(f"Only {name}" in fd.message or name in fd.message for fd in report.findings)


def test_named_blocks_validation_names_the_parameter():
    f, g, x = _quadratic([(6,)])
    with pytest.raises(ValueError, match="`shapes`.*adding up to x.size = 6"):
        check_gradient(f, g, x, shapes={"a": (2, 2)})
    with pytest.raises(ValueError, match="`shapes` must be a sequence of shapes"):
        check_gradient(f, g, x, shapes={"a": 6})


def test_sequence_shapes_keep_block_numbers():
    f, g, x = _quadratic([(2, 3)])
    report = check_gradient(f, lambda p: 2 * g(p), x, shapes=[(2, 3)])
    assert report.kinds == ("scale",)
    assert report.worst(1)[0].label.startswith("block 0 [")


def test_adapter_kinds_are_valid_kinds():
    for kind in ("ignores_grad_output", "nondeterministic"):
        assert kind in KINDS
        assert Finding(kind, "from an adapter").kind == kind


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("method", ["auto", "richardson", "complex_step"])
def test_mlp_reference_comes_from_its_numerical_gradient(monkeypatch, order, method):
    calls = []
    original = MLP.numerical_gradient

    def spy(self, *args, **kwargs):
        calls.append(kwargs.get("method"))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(MLP, "numerical_gradient", spy)
    net = MLP([3, 4, 2], seed=3)
    X = RNG.standard_normal((5, 3))
    Y = np.eye(2)[[0, 1, 0, 1, 1]]
    report = net.check_gradient(X, Y, order=order, method=method)
    assert report.kinds == ("match",)
    assert calls and calls[0] in ("complex_step", "richardson")
    # the provided reference is mapped to the layout of the check: a gradient returned in
    # the other layout is caught as a layout slip of the layer matrices
    assert report.worst(1)[0].label.startswith("layer ")


def test_mlp_blocks_are_named_layers_with_a_bias_column():
    net = MLP([2, 3, 1], seed=1)
    X = np.array([[0.1, -0.4], [0.7, 0.2], [0.3, 0.9]])
    Y = np.array([[1.0], [0.0], [1.0]])
    report = net.check_gradient(X, Y)
    assert report.blocks.names == ("layer 1", "layer 2")
    assert report.blocks.column_name(0, 0) == "bias"
    assert "layer 1" in str(report)
