"""Two backward calls that both give inf (or NaN) at an entry agree there: torch.sqrt's
gradient at 0 is inf in both, and inf − inf = NaN must not read as nondeterminism."""

from __future__ import annotations

import pytest
import torch

from precision_nn.torch import check_function

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_an_infinite_gradient_twice_is_not_nondeterministic():
    report = check_function(torch.sqrt, torch.tensor([0.0, 1.0, 4.0]).requires_grad_())
    assert not report.passed
    assert "nondeterministic" not in report.kinds, report
    assert any("not finite" in f.message for f in report.findings), report


def test_a_backward_that_redraws_is_still_nondeterministic():
    class Redraw(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, grad):
            return grad * (2 + torch.rand_like(grad))

    x = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64, requires_grad=True)
    assert "nondeterministic" in check_function(Redraw.apply, x).kinds
