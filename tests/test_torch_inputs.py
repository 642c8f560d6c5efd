"""precision_nn.torch on what users pass: buffers and modes, tied weights, tuple and nested
outputs, integer arguments, empty and non-finite tensors; dtypes checked as they are; the
caller's module restored exactly; the TF32 finding wired into a CUDA float32 check."""

from __future__ import annotations

import copy
from typing import ClassVar

import numpy as np
import pytest
import torch

import precision_nn.torch as pt
from precision_nn.adapters.torch import findings as tf
from precision_nn.adapters.torch.problem import BackwardPass
from precision_nn.adapters.torch.tensors import TensorBlocks
from precision_nn.torch import check_function, check_module
from tests.torch_helpers import random_tensor as _x
from tests.torch_helpers import scaled_linear

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _seeded(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64))
    return module


# -- buffers and modes ------------------------------------------------------------------------
def _bn_net() -> torch.nn.Module:
    return _seeded(torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4),
                                       torch.nn.Tanh(), torch.nn.Linear(4, 2)))


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
def test_batchnorm_is_checked_in_the_callers_mode_and_left_as_it_was(train):
    net = _bn_net().train(train)
    with torch.no_grad():  # running statistics away from their initial 0 and 1
        net[1].running_mean.fill_(0.3)
        net[1].running_var.fill_(2.0)
    state = {k: v.clone() for k, v in net.state_dict().items()}
    x = _x(6, 3)
    report = check_module(net, x, loss=lambda out: out.pow(2).mean())
    assert report.passed and report.kinds == ("match",), report
    assert all(torch.equal(state[k], v) for k, v in net.state_dict().items())
    assert [m.training for m in net.modules()] == [train] * 5
    # the gradient is that of the caller's mode (batch statistics in train, running ones in
    # eval): autograd's own, in that mode
    net.zero_grad()
    torch.manual_seed(0)
    net(x).pow(2).mean().backward()
    expected = np.concatenate([p.grad.double().numpy().ravel() for p in net.parameters()])
    net.zero_grad(set_to_none=True)
    np.testing.assert_allclose(np.asarray(report.analytic, dtype=np.float64), expected,
                               rtol=1e-5, atol=1e-6)  # (float32 sums in another order)


def test_train_and_eval_batchnorm_give_different_gradients():
    """The two modes differ (else the test above could not tell them apart)."""
    x = _x(6, 3)
    train = check_module(_bn_net().train(), x, loss=lambda out: out.pow(2).mean())
    evaluated = check_module(_bn_net().eval(), x, loss=lambda out: out.pow(2).mean())
    gap = np.max(np.abs(np.asarray(train.analytic, float) - np.asarray(evaluated.analytic,
                                                                         float)))
    assert gap > 1e-2


# -- tied weights -------------------------------------------------------------------------------
def _tied() -> torch.nn.Module:
    net = _seeded(torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.Tanh(),
                                      torch.nn.Linear(3, 3)))
    net[2].weight = net[0].weight
    return net


def test_a_tied_weight_is_one_block_perturbed_in_every_place_it_is_used():
    net, x = _tied(), _x(5, 3)
    report = check_module(net, x, loss=lambda out: out.pow(2).mean())
    assert report.passed and report.kinds == ("match",), report
    assert report.blocks.names == ("0.weight", "0.bias", "2.bias")
    assert net[2].weight is net[0].weight  # still tied, still the caller's Parameter
    # the gradient checked is the whole one, both uses of the weight summed, as autograd
    # gives it on the caller's module
    net(x).pow(2).mean().backward()
    expected = np.concatenate([p.grad.double().numpy().ravel() for p in net.parameters()])
    net.zero_grad(set_to_none=True)
    np.testing.assert_allclose(np.asarray(report.analytic, dtype=np.float64), expected,
                               rtol=1e-6, atol=1e-7)  # (float32 sums in another order)


# x @ w.T whose backward drops half of the weight gradient (a tied weight's gradient from
# one of its two uses is the usual way to lose it)
_HalfTiedGradient = scaled_linear(0.5)


class _TiedNet(torch.nn.Module):
    def __init__(self, function):
        super().__init__()
        self.a = torch.nn.Linear(3, 3, bias=False)
        self.b = torch.nn.Linear(3, 3, bias=False)
        self.b.weight = self.a.weight
        self.function = function
        _seeded(self)

    def forward(self, x):
        return self.function.apply(torch.tanh(self.function.apply(x, self.a.weight)),
                                   self.b.weight)


def test_a_tied_weight_with_a_wrong_gradient_fails():
    report = check_module(_TiedNet(_HalfTiedGradient), _x(4, 3))
    assert not report.passed and "scale" in report.kinds, report


# -- outputs ------------------------------------------------------------------------------------
class _SinCos(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return a.sin(), a.cos()

    @staticmethod
    def backward(ctx, g_sin, g_cos):
        (a,) = ctx.saved_tensors
        return g_sin * a.cos() - g_cos * a.sin()


class _SinCosDropsSecond(_SinCos):
    @staticmethod
    def backward(ctx, g_sin, g_cos):
        (a,) = ctx.saved_tensors
        return g_sin * a.cos()


def test_a_function_returning_a_tuple_is_checked_through_every_output():
    assert check_function(_SinCos.apply, _x(5, grad=True)).passed
    report = check_function(_SinCosDropsSecond.apply, _x(5, grad=True))
    assert not report.passed and "mismatch" in report.kinds, report


class _DictOut(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = _seeded(torch.nn.Linear(3, 2))

    def forward(self, x):
        y = self.lin(x)
        return {"logits": y, "steps": 3, "aux": (y.pow(2).sum(), torch.argmax(y, 1))}


def test_nested_and_dict_outputs_count_every_floating_tensor():
    assert check_module(_DictOut(), _x(4, 3)).passed
    assert check_module(_seeded(torch.nn.LSTM(3, 2)), _x(4, 1, 3)).passed  # (out, (h, c))


# -- integer arguments and inputs that do not require grad ----------------------------------------
def test_integer_inputs_mixed_with_float_ones():
    idx = torch.tensor([0, 2, 2, 4])
    assert check_module(_seeded(torch.nn.Embedding(5, 3)), idx).passed
    assert check_function(lambda t, i: (t[i] * 2).sum(), _x(5, grad=True), idx).passed
    assert check_function(lambda t, k: t * k, _x(4, grad=True), torch.arange(1, 5)).passed


def test_nothing_that_requires_grad_is_refused_with_the_fix():
    with pytest.raises(ValueError, match=r"no input requires grad.*requires_grad_\(\)"):
        check_function(torch.tanh, _x(3))
    frozen = torch.nn.Linear(2, 2).requires_grad_(False)
    with pytest.raises(ValueError, match=r"no parameter of `module` and no input requires "
                                         r"grad.*p\.requires_grad_\(\) on frozen"):
        check_module(frozen, _x(3, 2))


# -- empty and non-finite tensors -------------------------------------------------------------------
def test_empty_tensors_are_refused_or_left_out():
    with pytest.raises(ValueError, match=r"have no entries \(`input 0` \(0, 3\)\).*Fix: pass "
                                         r"tensors with at least one entry"):
        check_function(torch.tanh, _x(0, 3, grad=True))
    # an empty parameter has no gradient entry: the others are checked
    with pytest.warns(UserWarning, match="zero-element tensors"):  # torch's, at construction
        empty = torch.nn.Linear(0, 2)
    report = check_module(empty, _x(4, 0))
    assert report.passed and report.blocks.names == ("bias",)


@pytest.mark.parametrize("value", [float("nan"), float("inf")], ids=["nan", "inf"])
def test_non_finite_checked_tensors_are_refused_naming_them(value):
    x = _x(4)
    x[1] = value
    with pytest.raises(ValueError, match=rf"`input 0` holds {value} at 1 entry \(\[1\]\).*"
                                         r"Fix: check at finite values"):
        check_function(torch.tanh, x.requires_grad_())
    net = torch.nn.Linear(3, 2)
    with torch.no_grad():
        net.weight[1, 2] = value
    with pytest.raises(ValueError, match=rf"`weight` holds {value} at 1 entry \(\[1, 2\]\)"):
        check_module(net, _x(4, 3))


def test_a_nan_in_an_unchecked_input_that_poisons_the_output_is_refused():
    y = _x(4)
    y[2] = float("nan")
    with pytest.raises(ValueError, match=r"`input 1` holds nan at 1 entry \(\[2\]\) and the "
                                         r"output is not finite.*Fix:"):
        check_function(torch.mul, _x(4, grad=True), y)
    with pytest.raises(ValueError, match=r"`input 0` holds nan at 1 entry \(\[0, 2\]\)"):
        check_module(torch.nn.Linear(4, 2), y.reshape(1, 4))


def test_a_minus_inf_mask_with_finite_outputs_is_checked():
    mask = torch.zeros(4)
    mask[1] = float("-inf")
    report = check_function(lambda s, m: torch.softmax(s + m, 0), _x(4, grad=True), mask)
    assert report.passed, report


# -- dtypes as they are -------------------------------------------------------------------------
class _Recorded(torch.autograd.Function):
    seen: ClassVar[list] = []

    @staticmethod
    def forward(ctx, t):
        ctx.save_for_backward(t)
        return torch.sin(t)

    @staticmethod
    def backward(ctx, g):
        (t,) = ctx.saved_tensors
        _Recorded.seen.append(g.dtype)
        return g * torch.cos(t)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
def test_narrow_dtypes_run_the_users_backward_in_that_dtype(dtype):
    _Recorded.seen = []
    x = _x(6, grad=True, dtype=dtype)
    report = check_function(_Recorded.apply, x)
    assert report.passed and report.numbers == str(dtype).removeprefix("torch.")
    # the check's backward calls ran in `dtype`; a dtype too coarse to tell a bug from
    # rounding (bfloat16 here) is then confirmed in float32 on converted copies, as the
    # report's tolerance says
    assert _Recorded.seen[:3] == [dtype] * 3
    assert set(_Recorded.seen[3:]) <= {torch.float32}
    assert bool(_Recorded.seen[3:]) == ("float32 on converted copies" in report.tolerance_source)
    # the gradient under test is the user's own, in that dtype: v·cos(x) rounded as torch
    # rounds it in `dtype`
    v = torch.from_numpy(np.random.default_rng([0, 1]).standard_normal(6)).to(dtype)
    expected = (v * torch.cos(x.detach())).double().numpy()
    np.testing.assert_array_equal(np.asarray(report.analytic, dtype=np.float64), expected)


# -- the caller's module, exactly as it was --------------------------------------------------------
@pytest.mark.parametrize("numbers", [None, "float64"], ids=["own dtype", "float64"])
def test_every_piece_of_module_state_is_restored(numbers):
    net = _bn_net().half().float()  # float32 values that float16 holds too
    net[0].bias.requires_grad_(False)
    net[3].weight.grad = torch.full_like(net[3].weight, 3.0)
    net.eval()
    net[1].train()  # mixed modes
    params = dict(net.named_parameters())
    state = {k: (v.dtype, v.clone()) for k, v in net.state_dict().items()}
    x = _x(5, 3, grad=True)
    torch.manual_seed(7)
    rng = torch.get_rng_state()
    grad_mode = torch.is_grad_enabled()
    check_module(net, x, numbers=numbers)
    assert dict(net.named_parameters()) == params  # the same Parameter objects
    assert all(v.dtype == state[k][0] and torch.equal(v, state[k][1])
               for k, v in net.state_dict().items())
    assert [p.requires_grad for p in net.parameters()] == [True, False, True, True, True, True]
    assert torch.equal(net[3].weight.grad, torch.full_like(net[3].weight, 3.0))
    assert all(p.grad is None for n, p in net.named_parameters() if n != "3.weight")
    assert [m.training for m in net.modules()] == [False, False, True, False, False]
    assert torch.equal(torch.get_rng_state(), rng) and torch.is_grad_enabled() == grad_mode
    assert x.grad is None and x.requires_grad and x.is_leaf


# -- TF32 -----------------------------------------------------------------------------------------
def test_a_failing_float32_check_on_cuda_with_tf32_names_tf32(monkeypatch):
    """The wiring of `_with_torch_findings` (a CPU stand-in for the device: the finding
    depends only on the device type, the dtype, the TF32 flags and the verdict)."""
    class Wrong(torch.autograd.Function):
        @staticmethod
        def forward(ctx, t):
            ctx.save_for_backward(t)
            return t.sin()

        @staticmethod
        def backward(ctx, g):
            (t,) = ctx.saved_tensors
            return 2 * g * t.cos()

    failed = check_function(Wrong.apply, _x(4, grad=True))
    passed = check_function(torch.sin, _x(4, grad=True))
    blocks = TensorBlocks(("input 0",), ((4,),))
    monkeypatch.setattr(tf, "tf32_enabled", lambda: True)

    def with_findings(report, device, dtype=torch.float32):
        a = np.asarray(report.analytic, dtype=np.float64)
        bp = BackwardPass(a, a, 2 * a, None, (), (), [], [])
        return pt._with_torch_findings(report, bp, blocks, 2.0 ** -24, [],
                                       torch.device(device), dtype)

    (tf32,) = [f for f in with_findings(failed, "cuda").findings if "TF32" in f.message]
    assert tf32.kind == "precision_loss" and "allow_tf32 = False" in tf32.message
    assert not any("TF32" in f.message for f in with_findings(failed, "cpu").findings)
    assert not any("TF32" in f.message
                   for f in with_findings(failed, "cuda", torch.float64).findings)
    assert with_findings(passed, "cuda").passed


# -- forwards that write into their buffers ------------------------------------------------------
class _Counted(torch.nn.Module):
    """Scales its output by the number of calls so far, a buffer forward updates: without
    a restore every evaluation would see another function. (Its dropout draws random
    numbers, so the reference evaluates it one point at a time, many calls per copy.)"""

    def __init__(self):
        super().__init__()
        self.lin = _seeded(torch.nn.Linear(3, 2))
        self.drop = torch.nn.Dropout(0.2)
        self.register_buffer("calls", torch.zeros(()))

    def forward(self, x):
        with torch.no_grad():
            self.calls += 1
        return self.drop(self.lin(x)) * self.calls


def test_a_forward_that_updates_its_buffers_is_checked_as_one_function():
    """Every evaluation starts from the caller's buffers (else each would see another
    function), and the caller's buffers stay as they were."""
    net = _Counted()
    report = check_module(net, _x(4, 3))
    assert report.passed and report.kinds == ("match",), report
    assert float(net.calls) == 0.0


class _WrongSlope(torch.autograd.Function):
    """y = 2x with a backward that returns 3·grad_output: wrong in every mode."""

    @staticmethod
    def forward(ctx, x):
        return 2 * x

    @staticmethod
    def backward(ctx, grad):
        return 3 * grad


class _Wrong(torch.nn.Module):
    """The wrong backward in every mode, or (`train_only`) only in train mode."""

    def __init__(self, train_only: bool = False):
        super().__init__()
        self.train_only = train_only

    def forward(self, x):
        return _WrongSlope.apply(x) if self.training or not self.train_only else 2 * x


def _spectral(*after: torch.nn.Module) -> torch.nn.Module:
    torch.manual_seed(3)  # spectral_norm draws its start vectors u, v
    return torch.nn.Sequential(torch.nn.utils.spectral_norm(torch.nn.Linear(4, 3)),
                               torch.nn.Tanh(), *after)


def _train_mode_findings(report) -> list:
    return [f for f in report.findings if f.evidence.get("torch") == "train_mode_state"]


def test_spectral_norm_in_train_mode_is_traced_to_its_power_iteration():
    """One power iteration per call from the restored u: the forward's W ↦ σ depends on W
    through u, v, which torch's gradient treats as constants (exact only at convergence).
    The check fails (the backward is not the derivative of this forward), names the
    buffers, and says so only because the eval-mode copy passes; no generic 'look at your
    gradient code' mismatch remains."""
    net = _spectral()
    state = {k: v.clone() for k, v in net.state_dict().items()}
    report = check_module(net, _x(5, 4))
    assert not report.passed
    found = _train_mode_findings(report)
    assert len(found) == 1, report
    assert set(found[0].evidence["buffers"]) == {"0.weight_u", "0.weight_v"}
    assert "eval mode" in found[0].message and "spectral_norm" in found[0].message
    assert not [f for f in report.findings if f.kind in ("mismatch", "localized")
                and not f.evidence.get("torch")], report
    assert all(torch.equal(state[k], v) for k, v in net.state_dict().items())
    assert net.training
    assert check_module(net.eval(), _x(5, 4)).passed  # eval mode: u, v are constants


def test_a_real_bug_behind_a_power_iteration_is_not_excused():
    """The eval-mode copy fails too: the train-mode state explains nothing."""
    report = check_module(_spectral(_Wrong()), _x(5, 4))
    assert not report.passed and not _train_mode_findings(report), report


def test_a_real_bug_beside_running_statistics_is_not_excused():
    """BatchNorm writes its running statistics in train mode, but its train-mode output
    does not read them (it normalises with the batch's own). The bug here is wrong only in
    train mode, so an eval-mode retest alone would pass and excuse it: the check must see
    that the output does not read the written buffers, and never run that retest."""
    net = torch.nn.Sequential(_bn_net(), _Wrong(train_only=True)).train()
    assert check_module(copy.deepcopy(net).eval(), _x(6, 3)).passed  # the trap is real
    report = check_module(net, _x(6, 3))
    assert not report.passed and not _train_mode_findings(report), report


def test_check_function_on_a_module_never_runs_the_callers_module():
    net = _bn_net().train()
    state = {k: v.clone() for k, v in net.state_dict().items()}
    assert check_function(net, _x(6, 3, grad=True)).passed
    assert all(torch.equal(state[k], v) for k, v in net.state_dict().items())
    assert all(p.grad is None for p in net.parameters())
