"""Set-up shared by the torch tests: single-threaded torch and seeded random tensors.

A torch test module opts in with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``
(the fixture lives in conftest.py, so modules that never import torch do not pay for it).
"""

from __future__ import annotations

import torch


def random_tensor(*shape: int, seed: int = 1, scale: float = 1.0,
                  dtype: torch.dtype = torch.float32, grad: bool = False) -> torch.Tensor:
    """``scale·N(0, 1)`` of `shape`, drawn in float64 from `seed` and then cast, so every
    dtype sees the same values up to its own rounding."""
    g = torch.Generator().manual_seed(seed)
    x = (scale * torch.randn(*shape, generator=g, dtype=torch.float64)).to(dtype)
    return x.requires_grad_(grad)


def scaled_linear(weight_factor: float) -> type:
    """``x @ w.T`` as a custom autograd Function whose backward multiplies the weight
    gradient by `weight_factor` (1: right; -1: a sign bug; 0.5: half of a tied weight's
    gradient lost)."""

    class ScaledLinear(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, w):
            ctx.save_for_backward(x, w)
            return x @ w.T

        @staticmethod
        def backward(ctx, g):
            x, w = ctx.saved_tensors
            return g @ w, weight_factor * (g.T @ x)

    return ScaledLinear
