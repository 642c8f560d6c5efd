"""The certified reference gradient of an `MLP`: one weight at a time in series arithmetic,
reusing the unperturbed layers, with the products in ``arb_mat``.

Perturbing weight ``W_k[r, c]`` by t moves only column r of ``z_k`` by ``t·x_c`` (``x_c``
the c-th column of ``[1 | a_{k-1}]``). In first-order series arithmetic with ball
coefficients (`BallSeries`) every later quantity is ``value + t·tangent`` with the values
of the unperturbed forward pass, so only the tangents are new:

    dz_k = e_r ⊗ x_c,   da_l = g'_l(z_l) ⊙ dz_l,   dz_{l+1} = da_l @ W_{l+1}[:, 1:]ᵀ,
    dJ = Σ_ij ∂J/∂z_L[i, j] · dz_L[i, j]  (+ the penalty's own series coefficient).

The coefficients ``g'_l(z_l)`` and ``∂J/∂z_L`` are not the network's derivative formulas:
they are the t-coefficients of the network's *value* functions (its activations, its
output and loss) evaluated on series, so a wrong derivative formula in the network cannot
leak into the reference. All tangents of one layer's weights are propagated together, the
products going through ``ns.matmul`` (``arb_mat``). The result is a ball enclosing
``∂J/∂θ`` at every entry, under one assumption, stated in the report: the loss is the
documented composition ``z_k = [1 | a_{k-1}] W_kᵀ``, ``a_k = g_k(z_k)``,
``J = loss(a_L, Y) + penalty(θ)`` (`precision_nn.network`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from precision_nn import layout
from precision_nn.derivatives.taylor_mode import SeriesError
from precision_nn.gradcheck.blocks import Blocks
from precision_nn.gradcheck.certified import analytic_values, compare_certified
from precision_nn.numbers import NumberSystem, number_system
from precision_nn.numbers.arb_series import BallSeries

__all__ = ["ASSUMED", "certified_gradient", "check_network_certified"]

ASSUMED = ("the loss is the documented MLP composition z_k = [1 | a_(k-1)]·W_kᵀ, a_k = g_k(z_k), "
           "J = loss(a_L, Y) + penalty(θ); its activations, output, loss and penalty are "
           "differentiated by series (no branch the balls cannot decide)")
_CHUNK = 64  # parameter vectors per batched series evaluation of the penalty


def certified_gradient(net: Any, X: np.ndarray, Y: np.ndarray
                       ) -> tuple[np.ndarray, dict[int, str]]:
    """Balls enclosing ``∂J/∂θ`` (flat, C order) and the entries nothing could be proven at.

    `net` computes in a ball system (``arb:N``); `X`, `Y` are arrays of it.

    Examples
    --------
    >>> from precision_nn.network import MLP
    >>> net = MLP([2, 3, 1], numbers="arb:30", seed=1)
    >>> X, Y = net.numbers.asarray([["0.5", "-0.25"]]), net.numbers.asarray([[1]])
    >>> balls, failures = certified_gradient(net, X, Y)
    >>> backprop = net.gradient(X, Y)
    >>> all(b.overlaps(g) for b, g in zip(balls, backprop)), failures
    (True, {})
    """
    ns = net.numbers
    with ns.context():
        mats = layout.unflatten(net.params, net.shapes)
        z, a = net._forward(X, net.params, mats)
        slopes, failures = _hidden_slopes(net, ns, z)
        output = _output_sensitivity(net, ns, z[-1], Y)
        grads = [_layer_tangents(ns, k, a, mats, slopes, output) if k not in failures
                 else None for k in range(1, len(mats) + 1)]
        flat = _assemble(net, ns, grads)
        if net._has_l2:
            flat = _add_penalty(net, ns, flat, Y.shape[0])
    return flat, _flat_failures(net, failures)


def _hidden_slopes(net: Any, ns: NumberSystem, z: list) -> tuple[dict, dict[int, str]]:
    """``g'(z_l)`` enclosures for every hidden layer l, from the t-coefficient of
    ``g(z_l + t)``; a layer whose series evaluation fails makes layers 1..l unprovable."""
    slopes, failures = {}, {}
    for layer in range(1, len(z) - 1):
        seeded = np.frompyfunc(lambda v: BallSeries(v, ns.one), 1, 1)(z[layer])
        try:
            values = net.hidden.value(ns, seeded)
        except (TypeError, ValueError, ArithmeticError) as exc:
            for k in range(1, layer + 1):
                failures[k] = (f"the hidden activation {net.hidden.name!r} cannot be "
                               f"differentiated on series at layer {layer}: {exc}")
            continue
        slopes[layer] = np.frompyfunc(lambda v: _slope_of(ns, v), 1, 1)(values)
    return slopes, failures


def _output_sensitivity(net: Any, ns: NumberSystem, z_out: np.ndarray, Y: np.ndarray) -> Any:
    """``∂J_data/∂z_L`` (m × n_out) from series of ``loss(g_L(z_L + t·e_ij), Y)``, all
    entries at once as a stack of m·n_out points."""
    m, n_out = z_out.shape
    stack = np.repeat(z_out[None], m * n_out, axis=0)
    for idx in range(m * n_out):
        i, j = divmod(idx, n_out)
        stack[idx, i, j] = BallSeries(z_out[i, j], ns.one)
    values = net.loss_fn.value(ns, net.output.value(ns, stack), Y)
    slopes = np.array([_slope_of(ns, v) for v in values], dtype=object)
    return slopes.reshape(m, n_out)


def _layer_tangents(ns: NumberSystem, k: int, a: list, mats: list, slopes: dict,
                    output: np.ndarray) -> np.ndarray:
    """dJ for every weight of layer k (shape of W_k), forward through the later layers."""
    L = len(mats)
    inputs = np.concatenate([np.full((a[k - 1].shape[0], 1), ns.one, dtype=object),
                             a[k - 1]], axis=1)  # x_c: column c of [1 | a_{k-1}]
    if k == L:  # dz_L = e_r ⊗ x_c, so dJ[r, c] = Σ_i ∂J/∂z_L[i, r]·x_c[i]
        return ns.matmul(np.ascontiguousarray(output.T), inputs)
    # da_k for weight (r, c): g'_k[:, r]·x_c; then dz_{k+1} = da_k ⊗ W_{k+1}[:, 1 + r]
    rows, cols = mats[k - 1].shape
    m = inputs.shape[0]
    da = slopes[k].T[:, None, :] * inputs.T[None, :, :]  # (r, c, i)
    tangent = da[..., None] * mats[k][:, 1:].T[:, None, None, :]  # (r, c, i, j)
    tangent = tangent.reshape(rows * cols * m, -1)
    for layer in range(k + 1, L):  # through the hidden layers after k
        n_l = tangent.shape[1]
        scaled = tangent.reshape(rows * cols, m, n_l) * slopes[layer][None]
        tangent = ns.matmul(scaled.reshape(rows * cols * m, n_l),
                            np.ascontiguousarray(mats[layer][:, 1:].T))
    contracted = ns.matmul(tangent.reshape(rows * cols, -1), output.reshape(-1, 1))
    return contracted.reshape(rows, cols)


def _assemble(net: Any, ns: NumberSystem, grads: list) -> np.ndarray:
    filled = [g if g is not None else np.full(shape, None, dtype=object)
              for g, shape in zip(grads, net.shapes)]
    return np.concatenate([np.asarray(g, dtype=object).reshape(-1) for g in filled])


def _add_penalty(net: Any, ns: NumberSystem, flat: np.ndarray, m: int) -> np.ndarray:
    """Add the t-coefficient of ``penalty(θ + t·e_i)``, batched over i."""
    n = net.n_params
    out = flat.copy()
    for start in range(0, n, _CHUNK):
        idx = np.arange(start, min(start + _CHUNK, n))
        stack = np.repeat(net.params[None], len(idx), axis=0)
        for row, i in enumerate(idx):
            stack[row, i] = BallSeries(net.params[i], ns.one)
        values = np.atleast_1d(net._penalty(stack, m=m))
        for row, i in enumerate(idx):
            v = values[row]
            if out[i] is not None:
                out[i] = out[i] + _slope_of(ns, v)
    return out


def _slope_of(ns: NumberSystem, value: Any) -> Any:
    """The t-coefficient; a plain ball (a constant branch, ReLU's 0) has slope exactly 0."""
    return value.slope if isinstance(value, BallSeries) else ns.zero


def _flat_failures(net: Any, failures: dict[int, str]) -> dict[int, str]:
    offsets = np.cumsum([0] + [r * c for r, c in net.shapes])
    return {int(i): why for k, why in failures.items()
            for i in range(offsets[k - 1], offsets[k])}


def check_failures(failures: dict[int, str]) -> None:
    """Raise the first failure as a `SeriesError` (for callers that need every entry)."""
    if failures:
        index = min(failures)
        raise SeriesError(f"entry {index} of θ: {failures[index]}")


def check_network_certified(net: Any, X: Any, Y: Any, *, numbers: Any = None,
                            order: str = "C", h: Any = None,
                            directions: int | None = None) -> Any:
    """``MLP.check_gradient(X, Y, method="certified")``: backprop against the proven
    structure-aware enclosure.

    `numbers` is the ball system of the proof (default: the network's, which must then be
    ``arb:N``). The analytic gradient is the network's own backprop in its own system: in
    ``arb:N`` it is a ball and nothing is assumed about it; in any other system (float64,
    decimal:28, ...) its rounding is assumed within the library's model, and the report
    says so. To prove the backprop *formula* with nothing assumed, convert first:
    ``net.to("arb:50").check_gradient(X, Y, method="certified")``.

    Examples
    --------
    >>> from precision_nn.network import MLP
    >>> net = MLP([3, 4, 2], seed=0)  # float64
    >>> X, Y = [[0.1, -0.2, 0.3], [0.5, 0.1, -0.7]], [[1, 0], [0, 1]]
    >>> report = net.check_gradient(X, Y, method="certified", numbers="arb:30")
    >>> report.status, "given in float64" in report.assumed
    ('consistent', True)
    """
    if h is not None or directions is not None:
        raise ValueError("`h` and `directions` are not used by method='certified' (no step, "
                         "every entry is proven); drop them.")
    if order not in ("C", "F"):
        raise ValueError(f"`order` must be 'C' or 'F'; got {order!r}.")
    ns = net.numbers if numbers is None else number_system(numbers)
    if not ns.is_ball or ns.is_complex:
        raise ValueError(f"method='certified' needs a real ball system to prove anything; "
                         f"got {ns.name!r}. Pass numbers='arb:N' (e.g. 'arb:30').")
    X_own, Y_own = net._check_data(X, Y)
    ball_net = net if net.numbers == ns else net.to(ns)
    Xb, Yb = ball_net._check_data(_exact(X, X_own), _exact(Y, Y_own))
    balls, failures = certified_gradient(ball_net, Xb, Yb)
    analytic = net.gradient(X_own, Y_own)
    in_order = (lambda v: v) if order == "C" else \
        (lambda v: np.asarray(layout.flatten(layout.unflatten(v, net.shapes), "F"), dtype=object))
    positions = in_order(np.arange(net.n_params, dtype=object)).astype(int)
    where = {int(k): i for i, k in enumerate(positions)}
    blocks = Blocks.from_shapes(net.shapes, order=order, size=net.n_params)
    return compare_certified(
        ns, analytic_values(ns, in_order(analytic)), in_order(balls), blocks,
        x=np.asarray(net.numbers.to_float(in_order(net.params)), dtype=float),
        evaluations=net.n_params, unprovable={where[k]: v for k, v in failures.items()},
        batch_size=Xb.shape[0], assumed_f=ASSUMED,
        reference_name=(f"structure-aware Taylor-mode enclosure (one weight at a time in "
                        f"series arithmetic, arb_mat products) in {ns.name}"))


def _exact(given: Any, converted: np.ndarray) -> Any:
    """The data as given when they are strings or numbers (converted exactly into the ball
    system), else the network's own converted values (exact as they are)."""
    arr = np.asarray(given, dtype=object)
    return given if arr.dtype == object and all(isinstance(v, str) for v in arr.flat) \
        else converted
