"""Independent references for tests: gradients by complex step in mpc:60.

The complex step f'(x) ≈ Im f(x + i·h)/h has no subtractive cancellation, so with
h = 1e-40 its truncation error h²|f'''|/6 is ~1e-80 and its rounding error is at the
unit roundoff of mpc:60 (~1e-60): far below any tolerance used against float or 50-digit
networks (Squire & Trapp 1998; Martins, Sturdza & Alonso 2003).
"""

from __future__ import annotations

import numpy as np

from precision_nn.network import MLP

REFERENCE_SYSTEM = "mpc:60"
REFERENCE_STEP = "1e-40"


def complex_step_gradient(net: MLP, X, Y) -> np.ndarray:
    """∂J/∂θ of `net` (any number system) by complex step in mpc:60, as mpf:60 values."""
    ref = net.to(REFERENCE_SYSTEM)
    ns = ref.numbers
    # the data as the network itself sees it (rounded to its system), then exactly to mpc:60
    X, Y = ns.asarray(net.numbers.asarray(X)), ns.asarray(net.numbers.asarray(Y))
    h = ns.real().scalar(REFERENCE_STEP)
    stack = np.tile(ref.params, (ref.n_params, 1))
    for i in range(ref.n_params):
        stack[i, i] = stack[i, i] + ns.ctx.mpc(0, h)
    losses = ref.loss(X, Y, params=stack)
    return ns.real().asarray([v.imag / h for v in losses])
