"""A zoo of buggy PyTorch backward passes, each with its correct twin.

Every `Case` builds the same computation twice, ``make(bad=True)`` with the bug and
``make(bad=False)`` without, as custom ``torch.autograd.Function``s (or modules built on
them), at seeded random points in the requested dtype. ``expected`` is the finding kind
that names the bug (``"error"``: the check must refuse with a clear message). `KINKS` are
correct code at a non-differentiable point (ReLU at 0, max-pool ties), expected ``kink``,
whose twin is the same code at a generic point.

Used by ``benchmarks/torch_check.py`` (all cases against ``torch.autograd.gradcheck``)
and by ``tests/test_torch_zoo.py`` (a subset, fast).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

__all__ = ["CASES", "KINKS", "Case", "Problem"]

BATCH = 8


@dataclass(frozen=True)
class Problem:
    """What to check: ``fn(*inputs)`` (``module=True``: `fn` is a module, its parameters
    are checked too, with `loss`)."""

    fn: Callable[..., Any]
    inputs: tuple[Any, ...]
    module: bool = False
    loss: Callable[[Any], Any] | None = None


@dataclass(frozen=True)
class Case:
    name: str
    bug: str
    expected: str
    make: Callable[..., Problem]
    options: dict = field(default_factory=dict)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _randn(*shape: int, dtype: torch.dtype, seed: int, grad: bool = True) -> torch.Tensor:
    t = torch.randn(*shape, generator=_gen(seed), dtype=torch.float64).to(dtype)
    return t.requires_grad_(grad)


def _function(name: str, forward: Callable, backward: Callable) -> type:
    """A custom autograd Function from a forward and a backward (plain functions)."""
    return type(name, (torch.autograd.Function,), {"forward": staticmethod(forward),
                                                   "backward": staticmethod(backward)})


# -- 1. mean loss missing 1/batch -----------------------------------------------------------
def _mean_tanh(bad: bool) -> type:
    def forward(ctx, x, w):
        t = torch.tanh(x @ w.T)
        ctx.save_for_backward(x, w, t)
        return t.sum() / x.shape[0]

    def backward(ctx, g):
        x, w, t = ctx.saved_tensors
        dz = g * (1 - t * t) if bad else g * (1 - t * t) / x.shape[0]
        return dz @ w, dz.T @ x

    return _function("MeanTanhLoss", forward, backward)


def mean_missing_batch(bad: bool, dtype: torch.dtype = torch.float32) -> Problem:
    return Problem(_mean_tanh(bad).apply, (_randn(BATCH, 3, dtype=dtype, seed=1),
                                           _randn(2, 3, dtype=dtype, seed=2)))


# -- 2, 3, 18. linear layer: transposed weight gradient, bias reduction ----------------------
def _linear(bug: str | None) -> type:
    def forward(ctx, x, w, b):
        ctx.save_for_backward(x, w)
        return x @ w.T + b

    def backward(ctx, g):
        x, w = ctx.saved_tensors
        gw = x.T @ g if bug == "transposed" else g.T @ x
        gb = g.mean(0) if bug == "bias_mean" else g.sum(0)
        return g @ w, gw, gb

    return _function("Linear", forward, backward)


def linear_transposed(bad: bool, dtype: torch.dtype = torch.float32) -> Problem:
    fn = _linear("transposed" if bad else None).apply
    return Problem(fn, (_randn(BATCH, 4, dtype=dtype, seed=3), _randn(4, 4, dtype=dtype, seed=4),
                        _randn(4, dtype=dtype, seed=5)))


def linear_transposed_nonsquare(bad: bool, dtype: torch.dtype = torch.float32) -> Problem:
    fn = _linear("transposed" if bad else None).apply
    return Problem(fn, (_randn(BATCH, 5, dtype=dtype, seed=3), _randn(3, 5, dtype=dtype, seed=4),
                        _randn(3, dtype=dtype, seed=5)))


def linear_bias_mean(bad: bool, dtype: torch.dtype = torch.float32) -> Problem:
    fn = _linear("bias_mean" if bad else None).apply
    return Problem(fn, (_randn(BATCH, 3, dtype=dtype, seed=6), _randn(2, 3, dtype=dtype, seed=7),
                        _randn(2, dtype=dtype, seed=8)))


# -- 4. seed 003: backward ignores grad_output ----------------------------------------------
def _sigmoid_layer(bad: bool) -> type:
    def forward(ctx, x, w, b):
        s = torch.sigmoid(x @ w.T + b)
        ctx.save_for_backward(x, w, s)
        return s

    def backward(ctx, g):
        x, w, s = ctx.saved_tensors
        d = s * (1 - s) if bad else g * s * (1 - s)  # bad: dout/din, grad_output dropped
        return d @ w, d.T @ x, d.sum(0)

    return _function("SigmoidLayer", forward, backward)


def sigmoid_ignores_grad_output(bad: bool, dtype: torch.dtype = torch.float32) -> Problem:
    return Problem(_sigmoid_layer(bad).apply, (_randn(4, 2, dtype=dtype, seed=9),
                                               _randn(2, 2, dtype=dtype, seed=10),
                                               _randn(2, dtype=dtype, seed=11)))


# -- 5. a saved tensor taken before an in-place op changes it ---------------------------------
def _tanh_twice(bad: bool) -> type:
    def forward(ctx, x):
        t = torch.tanh(x)
        ctx.t = t if bad else t.clone()  # bad: the saved tensor is then scaled in place
        t.mul_(2)
        return t

    def backward(ctx, g):
        return g * 2 * (1 - ctx.t * ctx.t)

    return _function("TwiceTanh", forward, backward)


def saved_after_inplace(bad: bool, dtype: torch.dtype = torch.float32) -> Problem:
    return Problem(_tanh_twice(bad).apply, (_randn(3, 4, dtype=dtype, seed=12),))


# -- 6. softmax backward with only the Jacobian's diagonal ------------------------------------
def _softmax(bad: bool) -> type:
    def forward(ctx, x):
        s = torch.softmax(x, dim=-1)
        ctx.save_for_backward(s)
        return s

    def backward(ctx, g):
        (s,) = ctx.saved_tensors
        if bad:
            return g * s * (1 - s)
        return s * (g - (g * s).sum(-1, keepdim=True))

    return _function("Softmax", forward, backward)


def softmax_diagonal(bad: bool, dtype: torch.dtype = torch.float32) -> Problem:
    return Problem(_softmax(bad).apply, (_randn(4, 5, dtype=dtype, seed=13),))


# -- 7. layer norm backward without the mean term ---------------------------------------------
def _layer_norm(bad: bool) -> type:
    def forward(ctx, x):
        mu = x.mean(-1, keepdim=True)
        rstd = ((x - mu).pow(2).mean(-1, keepdim=True) + 1e-5).rsqrt()
        xhat = (x - mu) * rstd
        ctx.save_for_backward(xhat, rstd)
        return xhat

    def backward(ctx, g):
        xhat, rstd = ctx.saved_tensors
        inner = g - xhat * (g * xhat).mean(-1, keepdim=True)
        return rstd * (inner if bad else inner - g.mean(-1, keepdim=True))

    return _function("LayerNorm", forward, backward)


def layer_norm_no_mean(bad: bool, dtype: torch.dtype = torch.float32) -> Problem:
    return Problem(_layer_norm(bad).apply, (_randn(4, 6, dtype=dtype, seed=14),))


# -- 8. a gradient 1e-4 off, relative -----------------------------------------------------------
def _tanh_off(bad: bool) -> type:
    def forward(ctx, x):
        t = torch.tanh(x)
        ctx.save_for_backward(t)
        return t

    def backward(ctx, g):
        (t,) = ctx.saved_tensors
        return g * (1 - t * t) * (1 + 1e-4 if bad else 1)

    return _function("Tanh", forward, backward)


def off_by_1e4(bad: bool, dtype: torch.dtype = torch.float32) -> Problem:
    return Problem(_tanh_off(bad).apply, (_randn(3, 4, dtype=dtype, seed=15),))


# -- 9. sign ----------------------------------------------------------------------------------
def _square(bad: bool) -> type:
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return (-2 if bad else 2) * x * g

    return _function("Square", forward, backward)


def square_sign(bad: bool, dtype: torch.dtype = torch.float32) -> Problem:
    return Problem(_square(bad).apply, (_randn(5, dtype=dtype, seed=16),))


# -- 10. dropout mask drawn again in backward --------------------------------------------------
def _dropout(bad: bool) -> type:
    def forward(ctx, x):
        # drawn in float32 whatever x's dtype, so every dtype sees the same mask
        mask = (torch.rand(x.shape) > 0.5).to(x.dtype) * 2
        ctx.save_for_backward(mask)
        return x * mask

    def backward(ctx, g):
        (mask,) = ctx.saved_tensors
        if bad:
            mask = (torch.rand(g.shape) > 0.5).to(g.dtype) * 2
        return g * mask

    return _function("Dropout", forward, backward)


def dropout_redrawn(bad: bool, dtype: torch.dtype = torch.float32) -> Problem:
    return Problem(_dropout(bad).apply, (_randn(4, 6, dtype=dtype, seed=17),))


# -- 11. forward modifies its input in place ---------------------------------------------------
def _scale(bad: bool) -> type:
    def forward(ctx, x):
        if bad:
            x.mul_(2)
            return x.clone()
        return x * 2

    def backward(ctx, g):
        return 2 * g

    return _function("Scale", forward, backward)


def inplace_input(bad: bool, dtype: torch.dtype = torch.float32) -> Problem:
    return Problem(_scale(bad).apply, (_randn(3, 3, dtype=dtype, seed=18),))


# -- 14. g'(a) for g'(z) ------------------------------------------------------------------------
def _sigmoid(bad: bool) -> type:
    def forward(ctx, x):
        s = torch.sigmoid(x)
        ctx.save_for_backward(s)
        return s

    def backward(ctx, g):
        (s,) = ctx.saved_tensors
        d = torch.sigmoid(s) * (1 - torch.sigmoid(s)) if bad else s * (1 - s)
        return g * d

    return _function("Sigmoid", forward, backward)


def derivative_at_output(bad: bool, dtype: torch.dtype = torch.float32) -> Problem:
    return Problem(_sigmoid(bad).apply, (_randn(3, 4, dtype=dtype, seed=19),))


# -- 15. squared error missing its 2 ------------------------------------------------------------
def _squared_error(bad: bool) -> type:
    def forward(ctx, pred, target):
        ctx.save_for_backward(pred, target)
        return ((pred - target) ** 2).sum()

    def backward(ctx, g):
        pred, target = ctx.saved_tensors
        return g * (1 if bad else 2) * (pred - target), None

    return _function("SquaredError", forward, backward)


def squared_error_half(bad: bool, dtype: torch.dtype = torch.float32) -> Problem:
    return Problem(_squared_error(bad).apply, (_randn(6, dtype=dtype, seed=20),
                                               _randn(6, dtype=dtype, seed=21, grad=False)))


# -- 16. gradient returned in a narrower dtype ---------------------------------------------------
def _cube(bad: bool) -> type:
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x ** 3

    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        grad = 3 * x * x * g
        return grad.half() if bad else grad

    return _function("Cube", forward, backward)


def half_gradient(bad: bool, dtype: torch.dtype = torch.float32) -> Problem:
    return Problem(_cube(bad).apply, (_randn(6, dtype=dtype, seed=22),))


def _exp_bf16(bad: bool) -> type:
    def forward(ctx, x):
        y = torch.exp(x)
        ctx.save_for_backward(y)
        return y

    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return (g * y).bfloat16() if bad else g * y

    return _function("Exp", forward, backward)


def bfloat16_gradient(bad: bool, dtype: torch.dtype = torch.float32) -> Problem:
    return Problem(_exp_bf16(bad).apply, (_randn(2, 3, dtype=dtype, seed=39),))


# -- modules: 12. None gradient, 13. weight decay in backward only, 17. seed 003 as a net ------
class FnLinear(nn.Module):
    """A linear layer whose forward and backward are a custom Function."""

    def __init__(self, fan_in: int, fan_out: int, function: type, seed: int):
        super().__init__()
        g = _gen(seed)
        self.weight = nn.Parameter(torch.randn(fan_out, fan_in, generator=g) / fan_in ** 0.5)
        self.bias = nn.Parameter(torch.randn(fan_out, generator=g) / 4)
        self.function = function

    def forward(self, x):
        return self.function.apply(x, self.weight, self.bias)


def _linear_variant(bug: str | None) -> type:
    def forward(ctx, x, w, b):
        ctx.save_for_backward(x, w)
        return x @ w.T + b

    def backward(ctx, g):
        x, w = ctx.saved_tensors
        gw = g.T @ x
        if bug == "decay":
            gw = gw + 0.01 * w
        return g @ w, None if bug == "none" else gw, g.sum(0)

    return _function("LinearFn", forward, backward)


def _net(first: type, dtype: torch.dtype) -> nn.Module:
    net = nn.Sequential()
    net.add_module("fc1", FnLinear(3, 4, first, seed=30))
    net.add_module("act", nn.Tanh())
    net.add_module("fc2", FnLinear(4, 2, _linear_variant(None), seed=31))
    return net.to(dtype)


def _mse(out: torch.Tensor) -> torch.Tensor:
    return (out ** 2).mean()


def module_none_gradient(bad: bool, dtype: torch.dtype = torch.float32) -> Problem:
    net = _net(_linear_variant("none" if bad else None), dtype)
    return Problem(net, (_randn(BATCH, 3, dtype=dtype, seed=32, grad=False),), module=True,
                   loss=_mse)


def module_weight_decay(bad: bool, dtype: torch.dtype = torch.float32) -> Problem:
    net = _net(_linear_variant("decay" if bad else None), dtype)
    return Problem(net, (_randn(BATCH, 3, dtype=dtype, seed=33, grad=False),), module=True,
                   loss=_mse)


class _SigmoidNet(nn.Module):
    def __init__(self, bad: bool, dtype: torch.dtype):
        super().__init__()
        self.fc1 = FnLinear(2, 2, _sigmoid_layer(bad), seed=34)
        self.fc2 = FnLinear(2, 2, _sigmoid_layer(False), seed=35)
        self.to(dtype)

    def forward(self, x):
        return self.fc2(self.fc1(x))


def module_ignores_grad_output(bad: bool, dtype: torch.dtype = torch.float32) -> Problem:
    return Problem(_SigmoidNet(bad, dtype), (_randn(4, 2, dtype=dtype, seed=36, grad=False),),
                   module=True, loss=_mse)


# -- 19. bilinear form: weight gradient transposed ------------------------------------------------
def _bilinear(bad: bool) -> type:
    def forward(ctx, x, w, y):
        ctx.save_for_backward(x, w, y)
        return ((x @ w) * y).sum(-1)

    def backward(ctx, g):
        x, w, y = ctx.saved_tensors
        gy = g[:, None] * y
        gw = x.T @ gy
        return gy @ w.T, gw.T if bad else gw, g[:, None] * (x @ w)

    return _function("Bilinear", forward, backward)


def bilinear_transposed(bad: bool, dtype: torch.dtype = torch.float32) -> Problem:
    return Problem(_bilinear(bad).apply, (_randn(BATCH, 3, dtype=dtype, seed=23),
                                          _randn(3, 3, dtype=dtype, seed=24),
                                          _randn(BATCH, 3, dtype=dtype, seed=25)))


# -- 20. logistic loss: y - p instead of p - y ------------------------------------------------------
def _logistic_loss(bad: bool) -> type:
    def forward(ctx, z, y):
        ctx.save_for_backward(z, y)
        return (torch.nn.functional.softplus(z) - y * z).sum()

    def backward(ctx, g):
        z, y = ctx.saved_tensors
        p = torch.sigmoid(z)
        return g * ((y - p) if bad else (p - y)), None

    return _function("LogisticLoss", forward, backward)


def logistic_sign(bad: bool, dtype: torch.dtype = torch.float32) -> Problem:
    y = (torch.rand(6, generator=_gen(27)) > 0.5).to(dtype)
    return Problem(_logistic_loss(bad).apply, (_randn(6, dtype=dtype, seed=26), y))


# -- 21. backward accumulates into a buffer saved on ctx ---------------------------------------------
def _accumulating(bad: bool) -> type:
    def forward(ctx, x):
        ctx.acc = torch.zeros_like(x)
        ctx.save_for_backward(x)
        return torch.sin(x)

    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        if bad:  # the buffer keeps the previous call's gradient
            ctx.acc += g * torch.cos(x)
            return ctx.acc.clone()
        return g * torch.cos(x)

    return _function("AccumulatingSin", forward, backward)


def accumulating_buffer(bad: bool, dtype: torch.dtype = torch.float32) -> Problem:
    return Problem(_accumulating(bad).apply, (_randn(2, 4, dtype=dtype, seed=28),))


# -- 22. L2 penalty in backward only (function) --------------------------------------------------
def linear_decay(bad: bool, dtype: torch.dtype = torch.float32) -> Problem:
    fn = _linear_variant("decay" if bad else None).apply
    return Problem(fn, (_randn(BATCH, 3, dtype=dtype, seed=29), _randn(2, 3, dtype=dtype, seed=37),
                        _randn(2, dtype=dtype, seed=38)))


CASES = (
    Case("mean_missing_batch", "mean loss: backward misses 1/batch", "scale", mean_missing_batch),
    Case("linear_transposed", "weight gradient transposed (square W)", "layout",
         linear_transposed),
    Case("linear_transposed_nonsquare", "weight gradient transposed (3×5 W)", "error",
         linear_transposed_nonsquare),
    Case("linear_bias_mean", "bias gradient averaged instead of summed", "scale",
         linear_bias_mean),
    Case("sigmoid_ignores_grad_output", "seed 003: backward ignores grad_output",
         "ignores_grad_output", sigmoid_ignores_grad_output),
    Case("saved_after_inplace", "saved tensor scaled in place after saving", "mismatch",
         saved_after_inplace),
    Case("softmax_diagonal", "softmax backward with the Jacobian's diagonal only", "mismatch",
         softmax_diagonal),
    Case("layer_norm_no_mean", "layer-norm backward drops the mean term", "mismatch",
         layer_norm_no_mean),
    Case("off_by_1e-4", "tanh gradient 1e-4 too large, relative", "scale", off_by_1e4),
    Case("square_sign", "x² backward with the wrong sign", "sign", square_sign),
    Case("dropout_redrawn", "dropout mask drawn again in backward", "nondeterministic",
         dropout_redrawn),
    Case("inplace_input", "forward scales its input in place", "mismatch", inplace_input),
    Case("derivative_at_output", "sigmoid'(output) instead of sigmoid'(input)", "mismatch",
         derivative_at_output),
    Case("squared_error_half", "squared-error backward misses its factor 2", "scale",
         squared_error_half),
    Case("half_gradient", "backward returns a float16 gradient", "precision_loss",
         half_gradient),
    Case("bfloat16_gradient", "backward returns a bfloat16 gradient", "precision_loss",
         bfloat16_gradient),
    Case("module_none_gradient", "module: weight gradient returned as None", "mismatch",
         module_none_gradient),
    Case("module_weight_decay", "module: weight decay in backward, not in the loss",
         "regularization", module_weight_decay),
    Case("module_ignores_grad_output", "module: seed 003 layer inside a 2-layer net",
         "ignores_grad_output", module_ignores_grad_output),
    Case("bilinear_transposed", "bilinear form: weight gradient transposed", "layout",
         bilinear_transposed),
    Case("logistic_sign", "logistic loss: y - p instead of p - y", "sign", logistic_sign),
    Case("accumulating_buffer", "backward accumulates into a buffer saved on ctx",
         "nondeterministic", accumulating_buffer),
    Case("linear_decay", "L2 penalty in the weight gradient, not in forward",
         "regularization", linear_decay),
)


# -- kinks: correct code where it is not differentiable ------------------------------------------
def relu_at_zero(at_kink: bool, dtype: torch.dtype = torch.float32) -> Problem:
    x = torch.randn(2, 5, generator=_gen(40), dtype=torch.float64)
    if at_kink:
        x[:, ::2] = 0.0
    return Problem(torch.relu, (x.to(dtype).requires_grad_(),))


def maxpool_ties(at_kink: bool, dtype: torch.dtype = torch.float32) -> Problem:
    x = torch.randn(1, 2, 8, generator=_gen(41), dtype=torch.float64)
    # each pooling window holds two equal values, or two that differ by 3/4 (far beyond
    # the steps of the numerical reference)
    x[..., 1::2] = x[..., 0::2] + (0.0 if at_kink else 0.75)
    return Problem(lambda t: torch.nn.functional.max_pool1d(t, 2),
                   (x.to(dtype).requires_grad_(),))


KINKS = (
    Case("relu_at_zero", "ReLU at inputs exactly 0", "kink", relu_at_zero),
    Case("maxpool_ties", "max-pool windows with tied maxima", "kink", maxpool_ties),
)
