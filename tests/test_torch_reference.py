"""The torch check's float64 reference (adapters/torch/reference.py): error bars that bound
the true error, the complex step refused where the code is not analytic, vmap and the
one-by-one loop agreeing, the generic path where the cheap estimate cannot decide, and
the caller's state after an exception inside the user's code."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from precision_nn.adapters.torch import reference as tr
from precision_nn.adapters.torch.problem import cotangents
from precision_nn.torch import check_function, check_module
from tests.torch_helpers import random_tensor as _x

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# functions with and without complex support; the exact gradient comes from autograd in
# float64 (accurate to ~1e-15 relative, 10^5 times below the bars under test)
FUNCTIONS = {
    "tanh": torch.tanh,
    "sin_exp": lambda x: torch.sin(x) * torch.exp(x / 3),
    "softplus": F.softplus,
    "softmax": lambda x: torch.softmax(x, dim=-1),
    "log_softmax": lambda x: torch.log_softmax(x, dim=-1),
    "relu_mix": lambda x: torch.relu(x) * x + torch.tanh(x),
    "gelu": F.gelu,
    "layer_norm": lambda x: F.layer_norm(x, x.shape[-1:]),
    "maxpool": lambda x: F.max_pool1d(x[None], 2)[0],
}


def _exact(fn, x32):
    """The gradient of ⟨v, fn(x)⟩ in float64, v the check's cotangents (float32 values)."""
    x = x32.detach().double().requires_grad_()
    out = fn(x32.detach())
    v = cotangents([out], 0, 1)[0].double()
    (g,) = torch.autograd.grad((v * fn(x)).sum(), x)
    return g.numpy().ravel()


@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("scale", [0.5, 3.0])
def test_error_bars_bound_the_true_error(name, scale):
    fn = FUNCTIONS[name]
    x = _x(3, 6, seed=len(name), scale=scale).requires_grad_()
    report = check_function(fn, x)
    assert report.passed, report
    assert "in float64" in report.reference_name, report.reference_name
    truth = _exact(fn, x)
    err = np.abs(np.asarray(report.reference, dtype=np.float64) - truth)
    # the bar bounds the error itself (the tolerance adds 4x on top of it)
    assert np.all(err <= report.reference_error), (err / report.reference_error).max()


def test_complex_step_where_safe_central_differences_elsewhere():
    x = _x(2, 3).requires_grad_()
    assert check_function(torch.tanh, x).reference_name.startswith("complex step in float64")
    name = check_function(F.softplus, x).reference_name
    assert name.startswith("central differences in float64"), name


def test_code_that_runs_on_complex_but_is_not_analytic_gets_a_real_reference():
    # torch's abs of a complex number is its modulus: Im f(x + i·t·e)/t is not f'(x)
    x = _x(7, seed=3).requires_grad_()
    report = check_function(lambda t: t * t.abs(), x)
    assert report.passed, report
    assert not report.reference_name.startswith("complex step"), report.reference_name
    wrong = check_function(_with_backward(lambda t: t * t.abs(), lambda t, g: g * t.abs()), x)
    assert not wrong.passed and "scale" in wrong.kinds, wrong  # half of 2|t|


def _with_backward(forward, backward):
    class Op(torch.autograd.Function):
        @staticmethod
        def forward(ctx, t):
            ctx.save_for_backward(t)
            return forward(t)

        @staticmethod
        def backward(ctx, g):
            (t,) = ctx.saved_tensors
            return backward(t, g)

    return Op.apply


def test_vmap_and_the_loop_give_the_same_reference():
    fn = lambda t: torch.softmax(t, dim=-1) * t  # vmap-able built-in ops
    op = _with_backward(fn, lambda t, g: torch.autograd.functional.vjp(fn, t, g)[1])
    x = _x(3, 4, seed=5).requires_grad_()
    batched, looped = check_function(fn, x), check_function(op, x)
    assert batched.passed and looped.passed
    # vmap ran the built-in ops; it refused the custom Function (no vmap rule), once
    assert fn not in tr._NO_VMAP and op.__self__ in tr._NO_VMAP
    np.testing.assert_allclose(np.asarray(batched.reference, dtype=float),
                               np.asarray(looped.reference, dtype=float),
                               rtol=0, atol=float(np.max(batched.reference_error)) * 2)


def test_the_generic_path_takes_over_where_the_cheap_estimate_cannot_decide():
    # float64 code: its tolerance (128·2^-53) is below the central differences' bar, so the
    # provider declines and the generic reference decides, as before
    x = _x(5, dtype=torch.float64).requires_grad_()
    report = check_function(F.softplus, x)
    assert report.passed, report
    assert "central differences in float64 (the Richardson" not in report.reference_name
    provider = tr.Float64Reference.__new__(tr.Float64Reference)
    provider._done = {"real": "not accurate enough to decide cheaply"}
    with pytest.raises(NotImplementedError, match="not accurate enough"):
        provider("richardson", None, None)
    with pytest.raises(NotImplementedError):
        provider("central", None, None)  # explicit methods and steps: the generic path
    with pytest.raises(NotImplementedError):
        provider("richardson", None, 1e-3)


def test_a_kink_inside_the_steps_is_never_called_a_mismatch():
    # a ReLU input at h/5 on either side of its kink (h = 2^-13), where the bar of the
    # central difference can vanish, and 1e-6 from it
    for offset in (-tr.CENTRAL_STEP / 5, tr.CENTRAL_STEP / 5, -tr.CENTRAL_STEP / 9, 1e-6,
                   -1e-6):
        x = torch.tensor([0.7, offset, -0.4], dtype=torch.float32, requires_grad=True)
        report = check_function(torch.relu, x)
        # a pass, `kink`, or undecidable (`precision_loss`: the bar is honest about the
        # jump within its steps), never a bug
        assert set(report.kinds) <= {"match", "kink", "precision_loss"}, report


class _Flaky(torch.nn.Module):
    """Raises from its `fail_at`-th call on (inside the check's evaluations; an error at
    complex input alone only rules out the complex step)."""

    def __init__(self, fail_at: int):
        super().__init__()
        self.lin = torch.nn.Linear(3, 2)
        self.drop = torch.nn.Dropout(0.5)
        self.fail_at = fail_at

    def forward(self, x):
        type(self).calls_total = getattr(type(self), "calls_total", 0) + 1
        if type(self).calls_total >= self.fail_at:
            raise ArithmeticError("boom inside the user's forward")
        return torch.tanh(self.drop(self.lin(x)))


@pytest.mark.parametrize("fail_at", [1, 2, 5, 30])
def test_state_is_restored_after_an_exception_inside_the_users_code(fail_at):
    _Flaky.calls_total = 0
    net = _Flaky(fail_at).train()
    net.lin.weight.grad = torch.full_like(net.lin.weight, 3.0)
    weight, bias = net.lin.weight.detach().clone(), net.lin.bias.detach().clone()
    x = _x(4, 3).requires_grad_()
    x_before = x.detach().clone()
    torch.manual_seed(77)
    rng = torch.get_rng_state()
    grad_mode = torch.is_grad_enabled()
    with pytest.raises(ArithmeticError, match="boom"):
        check_module(net, x)
    assert torch.equal(torch.get_rng_state(), rng)
    assert torch.is_grad_enabled() == grad_mode
    assert torch.equal(net.lin.weight, weight) and torch.equal(net.lin.bias, bias)
    assert torch.equal(net.lin.weight.grad, torch.full_like(weight, 3.0))
    assert net.lin.bias.grad is None and net.lin.weight.dtype == torch.float32
    assert net.training and net.lin.weight.requires_grad
    assert x.grad is None and x.requires_grad and torch.equal(x.detach(), x_before)


@pytest.mark.parametrize("name", ["tanh", "softplus", "relu_mix", "maxpool"])
def test_directional_references_are_float64_and_their_bars_hold(name):
    from precision_nn.gradcheck.directional import directions_matrix

    fn = FUNCTIONS[name]
    x = _x(3, 6, seed=len(name), scale=2.0).requires_grad_()
    report = check_function(fn, x, directions=4)
    assert report.passed, report
    assert report.reference_name.endswith("in float64"), report.reference_name
    truth = directions_matrix(4, x.numel()) @ _exact(fn, x)
    err = np.abs(np.asarray(report.reference, dtype=np.float64) - truth)
    assert np.all(err <= report.reference_error), (err / report.reference_error).max()


class _Counted(torch.autograd.Function):
    """tanh or softplus (as `complex_safe` says), counting its forward calls."""

    calls = 0
    complex_safe = False

    @staticmethod
    def forward(ctx, t):
        _Counted.calls += 1
        y = torch.tanh(t) if _Counted.complex_safe else F.softplus(t)
        ctx.save_for_backward(t)
        return y

    @staticmethod
    def backward(ctx, g):
        (t,) = ctx.saved_tensors
        if _Counted.complex_safe:
            return g * (1 - torch.tanh(t) ** 2)
        return g * torch.sigmoid(t)


@pytest.mark.parametrize("complex_safe", [True, False])
@pytest.mark.parametrize("directions", [None, 3])
def test_evaluations_count_every_call_of_the_users_code(complex_safe, directions):
    _Counted.calls, _Counted.complex_safe = 0, complex_safe
    report = check_function(_Counted.apply, _x(7).requires_grad_(), directions=directions)
    assert report.passed, report
    # every call but the one forward whose graph the backward under test runs on
    assert report.evaluations == _Counted.calls - 1
