"""The torch bug zoo (benchmarks/torch_zoo.py), fast: every bug caught and named, every
correct twin passing in float32, every finding kind on at least two torch cases."""

from __future__ import annotations

import importlib.util
import pathlib
import sys
from collections import Counter

import pytest
import torch

from precision_nn.torch import check_function, check_module

pytestmark = pytest.mark.usefixtures("one_torch_thread")

_PATH = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "torch_zoo.py"
_spec = importlib.util.spec_from_file_location("torch_zoo", _PATH)
zoo = sys.modules.setdefault("torch_zoo", importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(zoo)


def run(problem, **options):
    if problem.module:
        return check_module(problem.fn, *problem.inputs, loss=problem.loss, **options)
    return check_function(problem.fn, *problem.inputs, **options)


BUGS = [c for c in zoo.CASES if c.expected != "error"]


@pytest.mark.parametrize("case", BUGS, ids=lambda c: c.name)
def test_bug_is_caught_and_named(case):
    report = run(case.make(True))
    assert not report.passed
    assert case.expected in report.kinds, report


@pytest.mark.parametrize("case", zoo.CASES, ids=lambda c: c.name)
def test_correct_twin_passes_in_float32(case):
    report = run(case.make(False))
    assert report.passed, report
    assert report.kinds == ("match",)


@pytest.mark.parametrize("case", zoo.KINKS, ids=lambda c: c.name)
def test_kink_is_reported_as_kink_and_passes_away_from_it(case):
    report = run(case.make(True))
    assert not report.passed and "kink" in report.kinds, report
    assert run(case.make(False)).passed


def test_transposed_non_square_weight_gradient_is_refused_with_a_clear_message():
    case = next(c for c in zoo.CASES if c.expected == "error")
    with pytest.raises(ValueError, match=r"shape \(5, 3\) for `input 1` of shape \(3, 5\) "
                                         r"\(transposed\?\)"):
        run(case.make(True))


def test_every_kind_is_shown_by_at_least_two_cases():
    counts = Counter(c.expected for c in (*zoo.CASES, *zoo.KINKS))
    counts.pop("error")
    assert all(n >= 2 for n in counts.values()), counts
    assert {"ignores_grad_output", "nondeterministic", "kink", "scale", "layout", "sign",
            "regularization", "mismatch", "precision_loss"} <= set(counts)


def test_findings_name_the_tensors():
    report = run(zoo.linear_bias_mean(True))
    (scale,) = [f for f in report.findings if f.kind == "scale"]
    assert "input 2" in scale.message.lower() and "1/m" in scale.message
    report = run(zoo.module_ignores_grad_output(True))
    (ignored,) = [f for f in report.findings if f.kind == "ignores_grad_output"]
    assert ignored.evidence["blocks"] == ["fc1.weight", "fc1.bias"]
    report = run(zoo.module_weight_decay(True))
    (reg,) = [f for f in report.findings if f.kind == "regularization"]
    assert "fc1.weight" in reg.message.lower()  # (the generic message capitalises it)


def test_torch_specific_mismatch_causes_are_named_in_the_evidence():
    report = run(zoo.inplace_input(True))
    assert [f.evidence.get("torch") for f in report.findings] == ["modified_in_place"]
    report = run(zoo.module_none_gradient(True))
    assert report.findings[0].evidence == {"torch": "missing_gradient",
                                           "blocks": ["fc1.weight"]}
    report = run(zoo.half_gradient(True))
    assert report.findings[0].evidence["torch"] == "gradient_dtype"


def test_seed_003_bug_passes_a_sum_loss_but_is_still_flagged():
    """With loss = sum (grad_output all ones) the ignoring backward gives the right numbers;
    only the doubled cotangent shows it."""
    layer = zoo.FnLinear(2, 2, zoo._sigmoid_layer(True), seed=34)
    x = torch.randn(4, 2, generator=torch.Generator().manual_seed(0))
    report = check_module(layer, x, loss=lambda out: out.sum())
    assert report.kinds[0] == "ignores_grad_output"
    assert not report.passed and not any(k == "mismatch" for k in report.kinds)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64], ids=str)
@pytest.mark.parametrize("name", ["mean_missing_batch", "linear_transposed",
                                  "sigmoid_ignores_grad_output", "layer_norm_no_mean"])
def test_other_dtypes_catch_and_pass(name, dtype):
    case = next(c for c in zoo.CASES if c.name == name)
    make, expected = case.make, case.expected
    bad = run(make(True, dtype))
    assert not bad.passed and expected in bad.kinds, bad
    assert run(make(False, dtype)).passed


@pytest.mark.parametrize("make", [zoo.mean_missing_batch, zoo.module_weight_decay],
                         ids=["function", "module"])
def test_directions_catch_a_bug_and_pass_its_twin(make):
    assert not run(make(True), directions=4).passed
    assert run(make(False), directions=4).passed


@pytest.mark.parametrize("make", [zoo.off_by_1e4, zoo.derivative_at_output],
                         ids=["tanh", "sigmoid"])
def test_explicit_steps_are_diagnosed(make):
    """A correct backward against central differences at a too large / too small step."""
    large = run(make(False), method="central", h=0.5)
    assert "step_too_large" in large.kinds, large
    small = run(make(False), method="central", h=1e-6)
    assert "step_too_small" in small.kinds, small


# -- every finding kind, as the check reports it, on at least two torch cases ---------------------
class _EntryOff(torch.autograd.Function):
    """sin with one entry of its gradient three times too large."""

    @staticmethod
    def forward(ctx, t):
        ctx.save_for_backward(t)
        return torch.sin(t)

    @staticmethod
    def backward(ctx, g):
        (t,) = ctx.saved_tensors
        out = g * torch.cos(t)
        out[0, 1] = 3 * out[0, 1]
        return out


class _NoInputGradient(torch.autograd.Function):
    """tanh(x·w) whose backward returns None for x."""

    @staticmethod
    def forward(ctx, t, w):
        ctx.save_for_backward(t, w)
        return torch.tanh(t * w)

    @staticmethod
    def backward(ctx, g):
        t, w = ctx.saved_tensors
        return None, g * (1 - torch.tanh(t * w) ** 2) * t


class _ReluInPlace(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(4, 2)

    def forward(self, t):
        t.relu_()  # writes into the caller's input
        return self.lin(t)


class _DetachedWeight(torch.nn.Module):
    """A linear layer whose forward detaches its weight: the weight requires grad but
    receives None."""

    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(3, 2)

    def forward(self, t):
        return torch.nn.functional.linear(t, self.lin.weight.detach(), self.lin.bias)


def _t(*shape, seed, grad=True):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)).requires_grad_(grad)


def _kind_cases():
    """(kind, torch cause or None, two ways to produce it) for every kind of DESIGN.md."""
    zoo_run = {c.name: (lambda c=c: run(c.make(True))) for c in (*zoo.CASES, *zoo.KINKS)}
    twin = {c.name: (lambda c=c: run(c.make(False))) for c in zoo.CASES}
    softplus = torch.nn.functional.softplus
    return [
        ("match", None, [twin["mean_missing_batch"], twin["module_weight_decay"]]),
        ("scale", None, [zoo_run["mean_missing_batch"], zoo_run["squared_error_half"]]),
        ("sign", None, [zoo_run["square_sign"], zoo_run["logistic_sign"]]),
        ("layout", None, [zoo_run["linear_transposed"], zoo_run["bilinear_transposed"]]),
        ("localized", None, [lambda: check_function(_EntryOff.apply, _t(2, 4, seed=3)),
                             zoo_run["module_none_gradient"]]),
        ("regularization", None, [zoo_run["module_weight_decay"], zoo_run["linear_decay"]]),
        ("kink", None, [zoo_run["relu_at_zero"], zoo_run["maxpool_ties"]]),
        ("step_too_large", None, [lambda: run(zoo.off_by_1e4(False), method="central", h=0.5),
                                  lambda: run(zoo.derivative_at_output(False),
                                              method="central", h=0.5)]),
        ("step_too_small", None, [lambda: run(zoo.off_by_1e4(False), method="central", h=1e-6),
                                  lambda: run(zoo.derivative_at_output(False),
                                              method="central", h=1e-6)]),
        ("precision_loss", "gradient_dtype", [zoo_run["half_gradient"],
                                              zoo_run["bfloat16_gradient"]]),
        ("not_complex_safe", None, [
            lambda: check_function(softplus, _t(2, 4, seed=3), method="complex_step"),
            lambda: check_function(lambda t: t * t.abs(), _t(5, seed=4), method="complex_step")]),
        ("mismatch", None, [zoo_run["softmax_diagonal"], zoo_run["layer_norm_no_mean"]]),
        ("ignores_grad_output", None, [zoo_run["sigmoid_ignores_grad_output"],
                                       zoo_run["module_ignores_grad_output"]]),
        ("nondeterministic", None, [zoo_run["dropout_redrawn"], zoo_run["accumulating_buffer"]]),
        ("mismatch", "modified_in_place", [
            zoo_run["inplace_input"],
            lambda: check_module(_ReluInPlace(), _t(3, 4, seed=6, grad=False))]),
        ("mismatch", "missing_gradient", [
            zoo_run["module_none_gradient"],
            lambda: check_module(_DetachedWeight(), _t(4, 3, seed=7, grad=False)),
            lambda: check_function(_NoInputGradient.apply, _t(2, 4, seed=3), _t(2, 4, seed=5))]),
    ]


@pytest.mark.parametrize(("kind", "cause", "makers"), _kind_cases(),
                         ids=lambda v: v if isinstance(v, str) else "")
def test_every_finding_kind_is_reported_on_two_torch_cases(kind, cause, makers):
    for make in makers:
        report = make()
        assert kind in report.kinds, report
        if cause is not None:
            (found,) = [f for f in report.findings if f.evidence.get("torch") == cause]
            assert found.kind == kind and "Fix:" in found.message, found.message


def test_design_kinds_are_all_covered():
    kinds = {k for k, _, _ in _kind_cases()}
    assert kinds == {"match", "scale", "sign", "layout", "localized", "regularization", "kink",
                     "step_too_large", "step_too_small", "precision_loss", "not_complex_safe",
                     "mismatch", "ignores_grad_output", "nondeterministic"}


def test_a_module_whose_backward_returns_a_wrong_shape_is_refused_clearly():
    net = torch.nn.Sequential()
    net.add_module("fc", zoo.FnLinear(5, 3, zoo._linear("transposed"), seed=1))
    with pytest.raises(ValueError, match=r"wrong shape.*transposed weight gradient"):
        check_module(net, _t(4, 5, seed=2, grad=False))
