"""The torch reference's complex-safety probe in float64 checks: an ``abs`` that drops the
imaginary part of a small term (a 1e-7 L1 penalty) is seen by its directional test, so
the complex step, which misses the same term, is not the reference (red-team R_A2)."""

from __future__ import annotations

import pytest
import torch

from precision_nn.torch import check_module

pytestmark = pytest.mark.usefixtures("one_torch_thread")

LAM = 1e-7


def _l1(correct: bool) -> type:
    """``LAM·Σ|w|``; the wrong backward forgets its gradient ``LAM·sign(w)``."""

    class L1(torch.autograd.Function):
        @staticmethod
        def forward(ctx, w):
            ctx.save_for_backward(w)
            return LAM * w.abs().sum()

        @staticmethod
        def backward(ctx, g):
            (w,) = ctx.saved_tensors
            return g * LAM * torch.sign(w) if correct else torch.zeros_like(w)

    return L1


class _Net(torch.nn.Module):
    def __init__(self, correct: bool):
        super().__init__()
        self.penalty = _l1(correct)
        self.l = torch.nn.Linear(5, 3)

    def forward(self, x):
        return self.l(x).tanh().pow(2).mean() + self.penalty.apply(self.l.weight)


@pytest.mark.parametrize("correct", [True, False], ids=["correct", "missing_term"])
def test_a_small_abs_term_is_not_left_to_the_complex_step(correct):
    torch.manual_seed(0)
    net = _Net(correct).double()
    report = check_module(net, torch.randn(8, 5, dtype=torch.float64))
    assert "not_complex_safe" in report.kinds
    assert "complex step" not in report.reference_name.split(";")[0]
    assert report.passed is correct, report
    if not correct:  # the missing 1e-7·sign(w) is named for what it is, where it is
        found = [f for f in report.findings if f.kind == "regularization"]
        assert found and found[0].evidence.get("penalty") == "l1", report
        assert "l.weight" in found[0].message
