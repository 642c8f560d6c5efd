"""A backward that scales its result only in float32 is a constant factor, not float32
rounding (red-team review 2 of 2026-12-02, item 7): the float32 run is one constant
times the float64 run of the same backward at every entry of the block, which rounding
of a right backward never gives."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from precision_nn.adapters.torch import confirm
from precision_nn.gradcheck.blocks import Blocks
from precision_nn.torch import check_function
from tests.torch_helpers import random_tensor

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _tanh_layer(factor32: float) -> type:
    """tanh(x @ W.T) whose backward multiplies the weight gradient by `factor32` only
    when it runs in float32 (a dtype-dependent constant)."""

    class TanhLayer(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, w):
            ctx.save_for_backward(x, w)
            return torch.tanh(x @ w.T)

        @staticmethod
        def backward(ctx, g):
            x, w = ctx.saved_tensors
            y = torch.tanh(x @ w.T)
            d = g * (1 - y * y)
            c = factor32 if x.dtype == torch.float32 else 1.0
            return d @ w, c * (d.T @ x)

    return TanhLayer


@pytest.mark.parametrize("factor", [1.0001, 0.999])
def test_a_factor_in_float32_only_is_a_scale_not_rounding(factor):
    x, w = random_tensor(5, 3, seed=1, grad=True), random_tensor(4, 3, seed=2, grad=True)
    report = check_function(_tanh_layer(factor).apply, x, w)
    assert not report.passed
    assert not any(f.evidence.get("torch") == "float32_rounding" for f in report.findings), \
        report
    scale = [f for f in report.findings if f.kind == "scale"]
    assert scale, report
    assert scale[0].evidence["torch"] == "float32_scale"
    assert scale[0].evidence["factor"] == pytest.approx(factor, abs=1e-6)
    # the whole weight block (input 1, 12 entries) and only it
    assert scale[0].evidence["coordinates"] == list(range(15, 27))


def test_the_twin_without_the_factor_passes():
    x, w = random_tensor(5, 3, seed=1, grad=True), random_tensor(4, 3, seed=2, grad=True)
    assert check_function(_tanh_layer(1.0).apply, x, w).passed


def test_entries_rounded_differently_are_no_float32_scale():
    # float32 values that differ from the float64 run by relative errors that vary from
    # entry to entry (no common ratio): no scale is named
    rng = np.random.default_rng(0)
    a64 = rng.normal(size=12)
    a32 = a64 * (1 + 1e-4 * rng.normal(size=12))

    class _Report:  # the two fields float32_only_scales reads
        def __init__(self, analytic):
            self.analytic, self.blocks = analytic, Blocks.from_shapes(None, order="C", size=12)

    u = 2.0 ** -24
    assert confirm.float32_only_scales(_Report(a32), _Report(a64), np.arange(12), u) == []
    scaled = confirm.float32_only_scales(_Report(a64 * (1 + 1e-4)), _Report(a64),
                                         np.arange(12), u)
    assert len(scaled) == 1 and scaled[0].evidence["factor"] == pytest.approx(1 + 1e-4)
