"""`MLP.numerical_gradient` (structure-aware) against the generic `gradient` of `MLP.loss`
and against exact gradients (backprop in a system with twice the digits)."""

from __future__ import annotations

import numpy as np
import pytest

from precision_nn.derivatives import gradient
from precision_nn.network import MLP
from precision_nn.numbers import infer_number_system
from precision_nn.perturbation import NetworkEvaluator

# every system family (IEEE single and double, Decimal, mpmath) with every method the
# gradient check's reference uses; Decimal has no complex counterpart (tested below)
SYSTEMS = ("float32", "float64", "decimal:25", "mpf:30")
METHODS = ("central", "richardson", "complex_step")
CASES = [(s, m) for s in SYSTEMS for m in METHODS if (s, m) != ("decimal:25", "complex_step")]
CASES.append(("decimal:25", "forward"))
# twice the digits: the reference's own error is invisible next to the estimate's
REFERENCE = {"float64": "mpf:40", "float32": "mpf:30", "mpf:30": "mpf:60",
             "decimal:25": "decimal:50"}
# network shapes: one hidden layer (sigmoid + cross-entropy: the separable output path),
# two hidden layers with softmax (rank-one update, a full layer downstream, and the
# coupled output path), and a saturated net: some outputs within 4e-8 of 0 or 1 (float32)
NETS = {
    "tanh-sigmoid": {"sizes": [3, 4, 2], "hidden": "tanh", "output": "sigmoid",
                     "loss": "cross_entropy", "scale": 1},
    "deep-softmax": {"sizes": [3, 4, 3, 3], "hidden": "sigmoid", "output": "softmax",
                     "loss": "softmax_cross_entropy", "scale": 1},
    "saturated": {"sizes": [3, 4, 2], "hidden": "tanh", "output": "sigmoid",
                  "loss": "cross_entropy", "scale": 9},
}


def _problem(spec, kind="tanh-sigmoid"):
    shape = NETS[kind]
    base = MLP(shape["sizes"], hidden=shape["hidden"], output=shape["output"],
               loss=shape["loss"], l2="0.1", seed=4)
    # scale the float64 weights before conversion: the net is then exact in every system
    net = MLP(shape["sizes"], hidden=shape["hidden"], output=shape["output"],
              loss=shape["loss"], l2="0.1", numbers=spec, init=base.params * shape["scale"])
    rng = np.random.default_rng(2)
    X = net.numbers.asarray(rng.standard_normal((5, 3)) / 2)
    n_out = shape["sizes"][-1]
    Y = net.numbers.asarray(np.eye(n_out)[rng.integers(0, n_out, 5)])
    return net, X, Y


# Structure-aware and generic losses agree to AGREEMENT_ULPS·u·|J| (tests/test_perturbation.py
# measures ≤ 4 ulps; the bound there is 64). A difference rule divides two such losses by h
# (central: by 2h, forward: by h), so the two gradients may differ by 128·u·|J|/h, far
# below the rule's truncation error (~h²), which both share and which cancels here. The
# complex step has no cancellation: its imaginary parts agree to 64·u of the gradient.
# Richardson's adaptive stopping may pick different tableau entries on rounding-level
# differences, so there the two estimates' own error bars are the bound.
AGREEMENT_ULPS = 64


def _agreement_bound(net, X, Y, method, h, fast, generic):
    ns = net.numbers
    J = float(np.abs(ns.to_float(np.asarray([net.loss(X, Y)], dtype=object)))[0])
    g = float(np.max(np.abs(ns.to_float(fast.value))))
    if method in ("central", "forward"):
        return 2 * AGREEMENT_ULPS * ns.unit_roundoff * J / float(h)
    if method == "complex_step":
        return AGREEMENT_ULPS * ns.unit_roundoff * g
    return fast.error + generic.error


def _loss_by_system(net, X, Y):
    """The loss with complex points through the complex counterpart of `net` (the complex
    step) and real points, such as the step's real cross-check, through `net` itself."""
    nets = {}

    def loss(p):
        system = infer_number_system(p)
        if system.name not in nets:
            nets[system.name] = net if system == net.numbers else net.to(system)
        return nets[system.name].loss(X, Y, params=p)

    return loss


@pytest.mark.parametrize("spec, method", CASES, ids=[f"{s}-{m}" for s, m in CASES])
def test_structure_aware_agrees_with_generic_gradient(spec, method):
    """Same rule, same explicit step: the two differ only by the rounding of the rank-one
    update, amplified by the rule (≈ 1/h for differences, not at all for the complex step);
    the difference is formed in the network's own system."""
    net, X, Y = _problem(spec)
    h = "1e-20" if method == "complex_step" else "0.001"
    fast = net.numerical_gradient(X, Y, method=method, h=h)
    # complex step hands f points of the complex counterpart: evaluate the converted net
    generic = gradient(_loss_by_system(net, X, Y), net.params, method=method, h=h)
    with net.numbers.context():
        diff = np.abs(net.numbers.to_float(fast.value - generic.value))
    assert np.all(diff <= _agreement_bound(net, X, Y, method, h, fast, generic)), diff.max()
    assert fast.value.shape == (net.n_params,)


@pytest.mark.parametrize("kind", sorted(NETS))
@pytest.mark.parametrize("spec, method", CASES, ids=[f"{s}-{m}" for s, m in CASES])
def test_error_estimate_bounds_the_true_error(spec, method, kind):
    """The true error is formed in the reference system (twice the digits), not after
    rounding both to float64, where a 30-digit estimate's error would be invisible."""
    net, X, Y = _problem(spec, kind)
    est = net.numerical_gradient(X, Y, method=method)
    ref = net.to(REFERENCE[spec])
    R = ref.numbers
    exact = ref.gradient(R.asarray(X), R.asarray(Y))
    with R.context():  # asarray converts the estimate exactly; subtract in R
        true_error = R.to_float(np.abs(R.asarray(est.value) - exact))
    # the estimate is stored in its own system: 4 ulps of the value (its rounding plus the
    # last operations') may lie beyond an estimate of the method's error alone
    floor = 4 * net.numbers.unit_roundoff * np.abs(R.to_float(exact))
    assert np.all(true_error <= est.error + floor), (true_error / est.error).max()
    assert np.all(np.isfinite(est.error)) and est.evaluations > net.n_params


@pytest.mark.parametrize("kind", sorted(NETS))
@pytest.mark.parametrize("method", ("central", "complex_step"))
def test_evaluations_match_the_generic_count(method, kind):
    """Fixed rules: the structure-aware path reports exactly what the generic gradient of
    `MLP.loss` spends on the same rule and step (Richardson stops adaptively, so rounding
    differences may change its count; see the next test)."""
    net, X, Y = _problem("float64", kind)
    h = "1e-20" if method == "complex_step" else "0.001"
    fast = net.numerical_gradient(X, Y, method=method, h=h)
    generic = gradient(_loss_by_system(net, X, Y), net.params, method=method, h=h)
    # the generic evaluator's batching probe: two points alone, two stacked (the complex
    # step's cross-check in f's real arithmetic, 4 points in both paths, is too small a
    # request for its evaluator to probe batching)
    probe = 4
    assert fast.evaluations == generic.evaluations - probe


@pytest.mark.parametrize("method", METHODS)
def test_evaluations_count_the_losses_really_computed(method, monkeypatch):
    """Count the perturbed losses the evaluator really forms (and the base point each
    time a rule asks for it) and compare with the reported `evaluations`."""
    formed = []
    block_losses = NetworkEvaluator._block_losses
    at_point = NetworkEvaluator.at_point

    def counting_block(self, k, local, values):
        formed.append(len(local))
        return block_losses(self, k, local, values)

    def counting_point(self):
        formed.append(1)
        return at_point(self)

    def counting_full(self, p):
        formed.append(1)
        return loss_at(self, p)

    loss_at = NetworkEvaluator._loss_at
    monkeypatch.setattr(NetworkEvaluator, "_block_losses", counting_block)
    monkeypatch.setattr(NetworkEvaluator, "at_point", counting_point)
    monkeypatch.setattr(NetworkEvaluator, "_loss_at", counting_full)
    net, X, Y = _problem("float64", "deep-softmax")
    est = net.numerical_gradient(X, Y, method=method)
    assert est.evaluations == sum(formed) > net.n_params


def test_bad_method_is_rejected():
    net, X, Y = _problem("float64")
    with pytest.raises(ValueError, match="`method` must be one of"):
        net.numerical_gradient(X, Y, method="secant")


def test_decimal_has_no_complex_step():
    net, X, Y = _problem("decimal:25")
    with pytest.raises(ValueError, match="complex"):
        net.numerical_gradient(X, Y, method="complex_step")
