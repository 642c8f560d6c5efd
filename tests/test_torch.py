"""precision_nn.torch: the API, validation, dtypes, state left exactly as it was, imports."""

from __future__ import annotations

import copy
import subprocess
import sys

import numpy as np
import pytest
import torch

from precision_nn.adapters.torch.findings import tf32_finding
from precision_nn.torch import check_function, check_module
from tests.torch_helpers import random_tensor as _x

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _net(dtype=torch.float32) -> torch.nn.Module:
    g = torch.Generator().manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g))
    return net.to(dtype)


# -- imports ------------------------------------------------------------------------------------
def test_importing_precision_nn_does_not_import_torch():
    code = "import sys, precision_nn; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_without_torch_the_import_error_says_how_to_install():
    code = ("import sys; sys.modules['torch'] = None\n"
            "try:\n    import precision_nn.torch\nexcept ImportError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True).stdout
    assert "pip install torch==2.13.0" in out


# -- correct code passes, in every dtype -------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64],
                         ids=str)
def test_correct_module_passes_in_its_dtype(dtype):
    report = check_module(_net(dtype), _x(5, 3, dtype=dtype))
    assert report.passed, report
    assert report.numbers == str(dtype).removeprefix("torch.")


def test_check_function_on_builtin_ops_and_several_outputs():
    x = _x(4, 3, grad=True)
    assert check_function(torch.tanh, x).passed
    assert check_function(lambda t: (t.sin(), t.exp().sum(0)), x).passed


def test_check_function_accepts_a_module_as_fn_and_non_tensor_arguments():
    net = _net()
    assert check_function(net, _x(5, 3, grad=True)).passed
    assert check_function(lambda t, k: t.pow(k), _x(4, grad=True), 3).passed


def test_module_with_loss_and_input_gradient_names_the_blocks():
    x = _x(6, 3, grad=True)
    report = check_module(_net(), x, loss=lambda out: (out ** 2).mean())
    assert report.passed
    assert [c.label.split(" ")[0] for c in report.worst(100)] and \
        {"0.weight", "0.bias", "2.weight", "2.bias", "input"} >= \
        {c.label.split(" ")[0] for c in report.worst(100)}


def test_closure_over_tensors_of_the_user_dtype_still_checks():
    w = _x(3, 3, seed=5)  # float32, captured: the float64 reference cannot mix it in

    def fn(x):
        return torch.tanh(x @ w)

    report = check_function(fn, _x(2, 3, grad=True))
    assert report.passed, report


def test_numbers_checks_in_another_dtype_on_copies():
    net = _net(torch.float32)
    report = check_module(net, _x(5, 3), numbers="float64")
    assert report.passed and report.numbers == "float64"
    assert all(p.dtype == torch.float32 for p in net.parameters())


def test_directions_mode_passes_correct_and_fails_wrong():
    net = _net()
    assert check_module(net, _x(5, 3), directions=3).passed

    class Wrong(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x.sin()

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * x.cos() * 1.5

    report = check_function(Wrong.apply, _x(6, grad=True), directions=3)
    assert report.directional and not report.passed and "scale" in report.kinds


# -- nothing of the caller's is changed ----------------------------------------------------------
def _snapshot(module: torch.nn.Module) -> dict:
    return {"state": {k: (v.dtype, v.device, v.detach().clone()) for k, v in
                      module.state_dict().items()},
            "requires_grad": {n: p.requires_grad for n, p in module.named_parameters()},
            "grad": {n: None if p.grad is None else p.grad.clone()
                     for n, p in module.named_parameters()},
            "training": [m.training for m in module.modules()]}


def _same(a: dict, b: dict) -> bool:
    for k in a["state"]:
        da, db = a["state"][k], b["state"][k]
        if da[0] != db[0] or da[1] != db[1] or not torch.equal(da[2], db[2]):
            return False
    grads = all((a["grad"][n] is None and b["grad"][n] is None) or
                (a["grad"][n] is not None and b["grad"][n] is not None and
                 torch.equal(a["grad"][n], b["grad"][n])) for n in a["grad"])
    return grads and a["requires_grad"] == b["requires_grad"] and a["training"] == b["training"]


def test_module_and_tensors_are_left_exactly_as_they_were():
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4),
                              torch.nn.Dropout(0.3), torch.nn.Tanh(), torch.nn.Linear(4, 2))
    net[0].bias.requires_grad_(False)  # a frozen parameter
    net[4].weight.grad = torch.full_like(net[4].weight, 7.0)  # a gradient left by the user
    net.train()
    x = _x(6, 3, grad=True)
    x_before = x.detach().clone()
    before = _snapshot(net)
    torch.manual_seed(123)
    rng_before = torch.get_rng_state()
    check_module(net, x, loss=lambda out: out.pow(2).sum())
    assert torch.equal(torch.get_rng_state(), rng_before)
    assert _same(before, _snapshot(net))
    assert x.grad is None and x.requires_grad and x.dtype == torch.float32
    assert torch.equal(x.detach(), x_before)


def test_check_function_leaves_inputs_and_rng_alone():
    x = _x(4, grad=True)
    y = _x(4, seed=2)
    torch.manual_seed(5)
    state = torch.get_rng_state()
    check_function(lambda a, b: torch.nn.functional.dropout(a * b, 0.5), x, y)
    assert torch.equal(torch.get_rng_state(), state)
    assert x.grad is None and not y.requires_grad and y.grad is None


def test_dropout_in_forward_draws_the_same_mask_at_every_evaluation():
    net = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.Dropout(0.5), torch.nn.Tanh())
    report = check_module(net.train(), _x(4, 3))
    assert report.passed, report


# -- errors name the parameter and the fix ---------------------------------------------------------
@pytest.mark.parametrize(("kwargs", "match"), [
    ({"method": "magic"}, "`method` must be one of"),
    ({"numbers": "float128"}, "`numbers` must be None"),
    ({"seed": -1}, "`seed` must be a non-negative integer"),
    ({"directions": 0}, "`directions` must be a positive integer"),
    ({"batch_size": 0}, "`batch_size` must be a positive integer"),
])
def test_bad_options_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        check_function(torch.tanh, _x(3, grad=True), **kwargs)


def test_unknown_option_is_a_type_error():
    with pytest.raises(TypeError, match="directoins"):
        check_function(torch.tanh, _x(3, grad=True), directoins=3)


def test_nothing_requires_grad():
    with pytest.raises(ValueError, match="no input requires grad"):
        check_function(torch.tanh, _x(3))


def test_mixed_dtypes_are_refused_with_the_fix():
    with pytest.raises(ValueError, match="share one dtype.*numbers="):
        check_function(torch.mul, _x(3, grad=True), _x(3, dtype=torch.float64, grad=True))


def test_fn_module_and_loss_must_be_the_right_things():
    with pytest.raises(TypeError, match="`fn` must be callable"):
        check_function(3, _x(3, grad=True))
    with pytest.raises(TypeError, match="`module` must be a torch.nn.Module"):
        check_module(torch.tanh, _x(3, grad=True))
    with pytest.raises(TypeError, match="`loss` must be callable"):
        check_module(_net(), _x(2, 3), loss="mse")
    with pytest.raises(ValueError, match="`loss` must return a scalar tensor"):
        check_module(_net(), _x(2, 3), loss=lambda out: out)


def test_no_floating_output():
    with pytest.raises(ValueError, match="no floating-point tensor"):
        check_function(lambda t: torch.argmax(t), _x(3, grad=True))


# -- TF32 and CUDA ---------------------------------------------------------------------------------
def test_tf32_finding_names_tf32_and_how_to_disable_it():
    (finding,) = tf32_finding(device_type="cuda", dtype=torch.float32, tf32=True, failed=True)
    assert finding.kind == "precision_loss" and "TF32" in finding.message
    assert "allow_tf32 = False" in finding.message
    assert tf32_finding(device_type="cpu", dtype=torch.float32, tf32=True, failed=True) == []
    assert tf32_finding(device_type="cuda", dtype=torch.float64, tf32=True, failed=True) == []
    assert tf32_finding(device_type="cuda", dtype=torch.float32, tf32=False, failed=True) == []
    assert tf32_finding(device_type="cuda", dtype=torch.float32, tf32=True, failed=False) == []


cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@cuda
def test_on_cuda_a_correct_module_passes_and_stays_on_its_device():
    net = _net().cuda()
    flags = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        report = check_module(net, _x(5, 3).cuda())
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = flags
    assert report.passed, report
    assert all(p.device.type == "cuda" for p in net.parameters())


@cuda
def test_on_cuda_with_tf32_a_failing_float32_check_names_tf32():
    net = torch.nn.Linear(64, 64).cuda()
    flags = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = True
    try:
        report = check_module(net, _x(32, 64).cuda())
    finally:
        torch.backends.cuda.matmul.allow_tf32 = flags
    if not report.passed:  # devices without TF32 units compute in float32 and pass
        assert any("TF32" in f.message for f in report.findings)


def test_report_values_are_the_users_gradient():
    x = _x(5, grad=True)
    report = check_function(torch.sin, x)
    v = np.random.default_rng([0, 1]).standard_normal(5)
    expected = (torch.from_numpy(v).float() * torch.cos(x.detach())).double().numpy()
    np.testing.assert_array_equal(np.asarray(report.analytic, dtype=np.float64), expected)


def test_module_is_deep_copied_not_mutated_even_if_forward_writes_a_buffer():
    class Counter(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(2, 2)
            self.register_buffer("calls", torch.zeros(()))

        def forward(self, x):
            self.calls += 1
            return self.lin(x)

    net = Counter()
    before = copy.deepcopy(net.state_dict())
    assert check_module(net, _x(3, 2)).passed
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
