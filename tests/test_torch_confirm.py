"""float32 checks confirmed in float64 (adapters/torch/confirm.py): a bug hidden in entries
float32's norm-wise allowance swallows is found, float32's own rounding of a correct
backward is named as such, a 1e-5 bug is still a bug, code that refuses float64 keeps its
float32 report, and a common passing check runs no confirmation at all."""

from __future__ import annotations

import copy
from dataclasses import replace

import numpy as np
import pytest
import torch

from precision_nn.adapters.torch import confirm
from precision_nn.gradcheck.tolerance import ROUNDING_FACTOR
from precision_nn.torch import check_module
from tests.torch_helpers import scaled_linear

pytestmark = pytest.mark.usefixtures("one_torch_thread")

U32 = 2.0 ** -24




class _First(torch.nn.Module):
    def __init__(self, fn: type):
        super().__init__()
        self.fn = fn
        self.weight = torch.nn.Parameter(torch.randn(3, 3))

    def forward(self, x):
        return self.fn.apply(x, self.weight)


def _deep_sigmoid_net(sign: float) -> torch.nn.Module:
    """Seven sigmoid layers behind a custom first layer: its weight gradient is ~1e-6 of
    the largest entry (each sigmoid' ≤ 1/4), so float32's tolerance there, 128·u·max|g|,
    exceeds the entries themselves."""
    torch.manual_seed(3)
    layers = [_First(scaled_linear(sign)), torch.nn.Sigmoid()]
    for _ in range(6):
        layers += [torch.nn.Linear(3, 3), torch.nn.Sigmoid()]
    return torch.nn.Sequential(*layers)


def _squares(y):
    return (y ** 2).sum()


def test_sign_error_in_entries_below_float32s_allowance_is_found_in_float64():
    x = torch.randn(6, 3, generator=torch.Generator().manual_seed(1))
    good = check_module(_deep_sigmoid_net(1.0), x, loss=_squares)
    bad = check_module(_deep_sigmoid_net(-1.0), x, loss=_squares)
    # the premise: float32's tolerance at the first layer exceeds twice its entries, so
    # without the confirmation the sign error passes
    first = np.arange(9)
    assert np.all(good.tolerance[first] > 2 * np.abs(good.reference[first]))
    assert good.passed and good.kinds == ("match",), good
    assert "checked in float64" in good.tolerance_source and "passes there too" in \
        good.tolerance_source
    assert not bad.passed and "sign" in bad.kinds, bad
    assert bad.numbers == "float64" and "this is that check, which fails" in \
        bad.tolerance_source
    sign = next(f for f in bad.findings if f.kind == "sign")
    assert set(sign.evidence["coordinates"]) <= set(first.tolist())


class _Softmax(torch.autograd.Function):
    """Softmax with a hand-written backward, times `factor` (1: correct)."""

    factor = 1.0

    @staticmethod
    def forward(ctx, z):
        y = torch.softmax(z, -1)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return y * (g - (g * y).sum(-1, keepdim=True)) * _Softmax.factor


class _SoftmaxNet(torch.nn.Module):
    def __init__(self, own: bool):
        super().__init__()
        self.own = own
        self.l = torch.nn.Linear(5, 4)

    def forward(self, x):
        z = self.l(x)
        return _Softmax.apply(z) if self.own else torch.softmax(z, -1)


def _saturated(own: bool) -> tuple[torch.nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    x = torch.randn(8, 5) * 30
    return _SoftmaxNet(own), x


V = torch.randn(8, 4, generator=torch.Generator().manual_seed(5), dtype=torch.float64)


def _dot(y):
    return (y * V.to(y.dtype)).sum()


def test_saturated_softmax_in_float32_is_float32_rounding_not_a_bug():
    net, x = _saturated(own=False)
    report = check_module(net, x, loss=_dot)
    assert not report.passed and report.kinds == ("precision_loss",), report
    found = report.findings[0]
    assert found.evidence["torch"] == "float32_rounding"
    assert "float32 rounding, not a wrong backward" in found.message
    # the gap it reports is that of torch's own autograd, float32 against float64, at
    # the coordinates it names (computed here independently of the check)
    grads = []
    for module, inputs in ((net, x), (copy.deepcopy(net).double(), x.double())):
        module.zero_grad()
        _dot(module(inputs)).backward()
        grads.append(torch.cat([p.grad.flatten() for p in module.parameters()]).double())
    idx = found.evidence["coordinates"]
    gap = float((grads[0] - grads[1]).abs()[idx].max())
    assert found.evidence["gap"] == pytest.approx(gap, rel=1e-12)
    # far beyond the 128-ulp model (that is why float32 fails), and float64 cleared it
    assert found.evidence["share"] > ROUNDING_FACTOR * U32
    assert found.evidence["float64_tolerance"] < confirm.DECISIVE_SHARE * gap


@pytest.mark.parametrize("factor", [1 + 1e-5, 1 - 1e-5], ids=["+1e-5", "-1e-5"])
def test_a_1e_5_bug_at_saturation_is_named_a_bug_not_rounding(factor, monkeypatch):
    net, x = _saturated(own=True)
    monkeypatch.setattr(_Softmax, "factor", 1.0)
    assert check_module(net, x, loss=_dot).kinds == ("precision_loss",)  # the twin
    monkeypatch.setattr(_Softmax, "factor", factor)
    report = check_module(net, x, loss=_dot)
    assert not report.passed and "scale" in report.kinds, report
    assert not any(f.evidence.get("torch") == "float32_rounding" for f in report.findings)
    scale = next(f for f in report.findings if f.kind == "scale")
    assert scale.evidence["factor"] == pytest.approx(factor, abs=1e-8)


def test_code_that_refuses_float64_keeps_its_float32_report(monkeypatch):
    w32 = torch.randn(4, 4, generator=torch.Generator().manual_seed(2))

    class Float32Only(torch.nn.Module):  # mm with a float32 constant: float64 raises
        def __init__(self):
            super().__init__()
            self.l = torch.nn.Linear(5, 4)

        def forward(self, x):
            return torch.softmax(self.l(x) @ w32, -1)

    torch.manual_seed(0)
    net, x = Float32Only(), torch.randn(8, 5) * 30
    with pytest.raises(RuntimeError):
        copy.deepcopy(net).double()(x.double())
    report = check_module(net, x, loss=_dot)
    assert "cannot be checked in float64: the code raises there" in report.tolerance_source
    monkeypatch.delitem(confirm.CONFIRM_IN, torch.float32)  # today's check, unconfirmed
    unconfirmed = check_module(net, x, loss=_dot)
    assert (report.passed, report.kinds) == (unconfirmed.passed, unconfirmed.kinds)
    np.testing.assert_array_equal(report.tolerance, unconfirmed.tolerance)


def test_a_mask_drawn_in_the_tensors_dtype_is_named_not_called_rounding():
    class DTypeMask(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.l = torch.nn.Linear(6, 6)

        def forward(self, x):
            y = self.l(x)
            return (y * (torch.rand(y.shape, dtype=y.dtype) > 0.5)).tanh()

    torch.manual_seed(0)
    report = check_module(DTypeMask(), torch.randn(5, 6))
    assert not report.passed and report.undecided, report  # the backward is right
    found = report.findings[0]
    assert found.kind == "precision_loss" and found.evidence["torch"] == "dtype_dependent"
    assert found.evidence["random"] is True and found.evidence["share"] > 0.1


def _smooth_abs(factor: float) -> type:
    """``sqrt(x² + ε)`` with ε from the tensor's dtype (64·eps: 7.6e-6 in float32, 0.0625
    in float16), its backward exact for that forward in each dtype times `factor`."""
    class SmoothAbs(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return torch.sqrt(x * x + 64 * torch.finfo(x.dtype).eps)

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return factor * g * x / torch.sqrt(x * x + 64 * torch.finfo(x.dtype).eps)

    return SmoothAbs


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_an_eps_from_the_dtype_with_an_exact_backward_is_not_accused(dtype):
    """The float64 reference differentiates sqrt(x² + 64·eps_64), another function than
    the float32 (float16) one whose exact backward is checked: gaps of up to 1% at x =
    -0.02 (the two ε differ by 7.6e-6 against x² = 4e-4). Evidence against nothing: the
    check said FAILED, with a finding that called the formula right."""
    from precision_nn.torch import check_function

    fn = _smooth_abs(1.0)
    x = torch.tensor([0.05, -0.1, 0.2, 0.3, -0.02], dtype=dtype, requires_grad=True)
    report = check_function(lambda t: fn.apply(t).sum(), x)
    assert report.undecided, report
    assert "dtype_dependent" in [f.evidence.get("torch") for f in report.findings]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_an_eps_from_the_dtype_with_a_wrong_backward_still_fails(dtype):
    """The same forward with a backward 2% off: the float64 check, where both sides run
    the same code, fails, and so does the check."""
    from precision_nn.torch import check_function

    fn = _smooth_abs(1.02)
    x = torch.tensor([0.05, -0.1, 0.2, 0.3, -0.02], dtype=dtype, requires_grad=True)
    report = check_function(lambda t: fn.apply(t).sum(), x)
    assert not report.passed and not report.undecided, report


def test_a_common_passing_check_runs_no_confirmation(monkeypatch):
    calls = []
    decide = confirm.decide
    monkeypatch.setattr("precision_nn.torch.decide",
                        lambda *a: calls.append(a) or decide(*a))
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.Tanh(), torch.nn.Linear(5, 2))
    report = check_module(net, torch.randn(6, 4))
    assert report.passed and calls == []
    assert "checked in float64" not in report.tolerance_source


def _synthetic(gap: np.ndarray, analytic: np.ndarray, tolerance: np.ndarray):
    """A passing float32 report with the given gaps (reference = analytic - gap, exact
    reference)."""
    torch.manual_seed(0)
    base = check_module(torch.nn.Linear(2, 1), torch.randn(3, 2))
    n = analytic.size
    return replace(base, analytic=analytic, reference=analytic - gap, difference=gap,
                   tolerance=tolerance, reference_error=np.zeros(n),
                   relative_error=np.zeros(n))


def test_doubtful_coordinates_follow_the_stated_thresholds():
    a = np.array([1.0, 1e-3, 1e-3, 1e-7, 1e-3, 0.0])
    top = 1.0
    tol = ROUNDING_FACTOR * U32 * (np.abs(a) + top)
    gap = np.array([
        0.5 * tol[0],                           # large entry within its own allowance
        (confirm.NORMWISE_ULPS + 1) * U32,      # beyond its own part and 16 ulps of max
        (confirm.NORMWISE_ULPS - 1) * U32,      # beyond its own part, below 16 ulps
        0.0,                                    # tolerance 76 × its value: sign hides
        0.0,                                    # tolerance 0.008 × its value
        0.0,                                    # an exact zero of both
    ])
    report = _synthetic(gap, a, tol)
    assert report.passed
    reason = confirm.needs_confirmation(report, torch.float32, U32)
    assert reason.kind == "doubtful"
    assert reason.coordinates.tolist() == [1, 3]
    assert confirm.needs_confirmation(report, torch.float64, 2.0 ** -53) is None


class _ScaledExp(torch.autograd.Function):
    """exp with a backward `factor` times the true one."""

    factor = 1.0

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.exp(x)

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        return _ScaledExp.factor * grad_out * torch.exp(x)


@pytest.mark.parametrize("factor", [1.0, 1.05, 0.98])
def test_a_float16_backward_a_few_percent_off_is_confirmed_in_float32(factor, monkeypatch):
    """float16's own allowance, 128·2^-11 = 6% of the gradient's scale, passed a backward
    5% off; the check is now confirmed in float32 (allowance 128·2^-24), which names the
    factor. The correct backward passes there too."""
    from precision_nn.torch import check_function

    monkeypatch.setattr(_ScaledExp, "factor", factor)
    x = torch.tensor([3.0, 0.05, 0.5, 1.0], dtype=torch.float16, requires_grad=True)
    report = check_function(_ScaledExp.apply, x)
    if factor == 1.0:
        assert report.passed, report
    else:
        assert not report.passed and not report.undecided, report
        assert "scale" in report.kinds or "mismatch" in report.kinds, report
