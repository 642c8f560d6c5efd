"""The peer loop of the benchmarks: the central differences the seeds wrote by hand."""

from __future__ import annotations

from typing import Any

import numpy as np

from precision_nn.network import MLP


def naive_central(net: MLP, X: Any, Y: Any, h: Any) -> np.ndarray:
    """The seeds' loop: two full `MLP.loss` calls per parameter, in the network's system."""
    ns = net.numbers
    params, out, step = net.params.copy(), ns.zeros(net.n_params), ns.scalar(h)
    with ns.context():
        for i in range(net.n_params):
            saved = params[i]
            params[i] = saved + step
            plus = net.loss(X, Y, params=params)
            params[i] = saved - step
            minus = net.loss(X, Y, params=params)
            params[i] = saved
            out[i] = (plus - minus) / (2 * step)
    return out


def naive_complex_step(net: MLP, X: Any, Y: Any, h: np.ndarray) -> np.ndarray:
    """The same loop for the complex step: one `MLP.loss` of the complex network per
    parameter, ``Im J(θ + i·h_i·e_i) / h_i`` (float systems; `h` one step per parameter)."""
    ns = net.numbers.complex()
    complex_net = net.to(ns)
    Xc, Yc = ns.asarray(X), ns.asarray(Y)
    params, out = complex_net.params.copy(), np.zeros(net.n_params)
    for i in range(net.n_params):
        saved = params[i]
        params[i] = saved + 1j * h[i]
        out[i] = complex_net.loss(Xc, Yc, params=params).imag / h[i]
        params[i] = saved
    return out
