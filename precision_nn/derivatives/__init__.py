"""Numerical derivatives with error estimates (see `derivative` and `gradient`).

Layout: `stencils` (exact finite-difference weights), `steps` (the error model that
chooses h), `real_offsets` (the steps really realised and the exact weights on them),
`finite_difference`, `richardson`, `complex_step` (the methods), `resolution` (the probe
of f's own precision), `evaluation` (batched calls of the user's function), `constants`
(exact small constants, converted once), `core` (the public entry points), `estimate`
(the result type).
"""

from precision_nn.derivatives.core import METHODS, derivative, estimate_from, gradient
from precision_nn.derivatives.estimate import Estimate
from precision_nn.derivatives.stencils import Stencil, fornberg_weights, stencil

__all__ = [
           "METHODS",
           "Estimate",
           "Stencil",
           "derivative",
           "estimate_from",
           "fornberg_weights",
           "gradient",
           "stencil",
]
