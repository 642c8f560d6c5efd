"""A multilayer perceptron written once for every number system, with analytic backprop.

Layer ``k`` is a matrix ``W[k]`` of shape ``(fan_out, fan_in + 1)`` whose column 0 is the
bias. With examples in the rows of ``X`` (shape ``(m, n_in)``) the forward pass is

    z[k] = a[k-1] @ W[k][:, 1:].T + W[k][:, 0],    a[k] = g_k(z[k]),    a[0] = X,

and backprop walks the same names in reverse with ``delta[k] = ∂J/∂z[k]``:

    ∂J/∂W[k][:, 1:] = delta[k].T @ a[k-1] (+ λ/m · W[k][:, 1:]),   ∂J/∂W[k][:, 0] = Σ_i delta[k],
    delta[k-1] = g'_{k-1} ⊙ (delta[k] @ W[k][:, 1:]).

Every operation goes through the network's `NumberSystem`, so a float32 network never
produces a float64 intermediate, a Decimal network never touches a Python float, and a
complex network is complex-step safe.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from precision_nn import layout
from precision_nn.activations import Activation, get_activation
from precision_nn.derivatives import Estimate
from precision_nn.derivatives.core import estimate_from
from precision_nn.gradcheck import GradientReport, check_network_gradient
from precision_nn.losses import get_loss
from precision_nn.network_inputs import (
    check_data,
    check_hidden,
    check_l2,
    check_layer_sizes,
    check_pairing,
    check_params,
    check_X,
    initial_params,
)
from precision_nn.numbers import NumberSystem, number_system
from precision_nn.perturbation import NetworkEvaluator

__all__ = ["MLP"]

class MLP:
    """A fully connected network ``layer_sizes[0] -> ... -> layer_sizes[-1]``.

    Parameters
    ----------
    layer_sizes : sequence of int
        Units per layer, input first; at least two entries.
    hidden, output : str
        Activations: ``sigmoid``, ``tanh``, ``relu``, ``erf_logistic``, ``identity``;
        ``softmax`` for the output only.
    loss : str
        ``cross_entropy`` (sigmoid outputs; mean over examples of the summed binary
        cross-entropy, the Coursera ML convention), ``softmax_cross_entropy`` or
        ``squared_error`` (½·Σ(y−ŷ)², mean over examples).
    l2 : number or str
        λ of the penalty (λ/2m)·Σθ² over all weights except the bias column. Give a string
        ("0.1") to have it exact in Decimal and mpmath systems.
    numbers : str or NumberSystem
        The number system of every parameter, intermediate and result.
    init : {"normal", "debug"} or array_like
        ``"normal"``: seeded N(0, 1/(fan_in+1)); ``"debug"``: the Coursera ML exercise's
        ``sin(1..n)/10`` per layer matrix, filled in column-major order; or an explicit
        flat parameter vector (C order).
    seed : int
        Seed of ``"normal"``.

    Examples
    --------
    >>> net = MLP([3, 5, 3], numbers="decimal:40", init="debug")
    >>> net.shapes
    [(5, 4), (3, 6)]
    >>> X = [["0.1", "-0.2", "0.3"]]; Y = [[1, 0, 0]]
    >>> str(net.loss(X, Y))[:12]
    '2.0677173674'
    >>> net.gradient(X, Y).shape
    (38,)
    """

    def __init__(self, layer_sizes: Sequence[int], *, hidden: str = "sigmoid",
                 output: str = "sigmoid", loss: str = "cross_entropy", l2: Any = 0.0,
                 numbers: str | NumberSystem = "float64", init: Any = "normal",
                 seed: int = 0):
        self.layer_sizes = check_layer_sizes(layer_sizes)
        self.hidden = check_hidden(hidden)
        self.output = get_activation(output, argument="output")
        self.loss_fn = get_loss(loss)
        check_pairing(output, loss)
        # a loss on its canonical output is evaluated from z, in a stable form (losses.py)
        self._canonical = self.output.name == self.loss_fn.canonical_output
        self.numbers = number_system(numbers)
        self.l2 = check_l2(self.numbers, l2)
        self._has_l2 = bool(self.l2 != self.numbers.zero)
        self.shapes = [(fan_out, fan_in + 1) for fan_in, fan_out in
                       zip(self.layer_sizes[:-1], self.layer_sizes[1:])]
        self.n_params = sum(r * c for r, c in self.shapes)
        self.seed = seed
        self._init = init if isinstance(init, str) else "explicit"
        self.params = initial_params(self, init, seed)

    def __repr__(self) -> str:
        return (f"MLP({self.layer_sizes}, hidden={self.hidden.name!r}, "
                f"output={self.output.name!r}, loss={self.loss_fn.name!r}, "
                f"numbers={self.numbers.name!r})")

    # -- layout -------------------------------------------------------------------------
    def unflatten(self, params: Any = None, order: str = "C") -> list[np.ndarray]:
        """Layer matrices from a flat vector (``order="F"``: MATLAB/Octave layout)."""
        return layout.unflatten(self.params if params is None else params, self.shapes, order)

    def flatten(self, mats: Sequence[Any], order: str = "C") -> np.ndarray:
        """The flat vector of layer matrices (``order="F"``: MATLAB/Octave layout)."""
        for k, (mat, shape) in enumerate(zip(mats, self.shapes)):
            if np.shape(mat) != shape:
                raise ValueError(f"`mats[{k}]` must have shape {shape}; got {np.shape(mat)}.")
        if len(mats) != len(self.shapes):
            raise ValueError(f"`mats` must hold {len(self.shapes)} matrices; got {len(mats)}.")
        return self.numbers.asarray(layout.flatten(mats, order))

    # -- forward ------------------------------------------------------------------------
    def forward(self, X: Any, params: Any = None) -> np.ndarray:
        """Network outputs, shape ``(m, n_out)`` (stacked params: ``(..., m, n_out)``)."""
        X = self._check_X(X)
        with self.numbers.context():
            _, a = self._forward(X, self._check_params(params))
        return a[-1]

    def loss(self, X: Any, Y: Any, params: Any = None) -> Any:
        """The loss J(θ), data term plus L2 penalty.

        `params` may be a stack of parameter vectors, shape ``(..., n_params)``: one loss
        each, evaluated together as array work.
        """
        X, Y = self._check_data(X, Y)
        params = self._check_params(params)
        with self.numbers.context():
            z, a = self._forward(X, params, outputs=not self._canonical)  # J from z[L]
            return self._loss_from_output(z[-1], a[-1], Y, params)

    def _forward(self, X: np.ndarray, params: np.ndarray, mats: list | None = None, *,
                 outputs: bool = True, saved: list | None = None) -> tuple[list, list]:
        """Pre-activations ``z[1..L]`` and activations ``a[0..L]`` (``a[0] = X``);
        ``outputs=False`` leaves ``a[L]`` as None (backprop of a canonical loss works
        from ``z[L]`` alone). A list `saved` receives, at index k, what layer k's
        activation keeps for its backward rule (`Activation.forward`: the sigmoid's
        σ(−z), so backprop forms σ' without a second exponential)."""
        z, a = [None], [X]
        if saved is not None:
            saved[:] = [None] * (len(self.shapes) + 1)
        mats = layout.unflatten(params, self.shapes) if mats is None else mats
        for k, W in enumerate(mats, start=1):
            z.append(self._affine(a[k - 1], W))
            if k == len(mats) and not outputs:
                a.append(None)
            elif saved is None:
                a.append(self._activation(k).value(self.numbers, z[k]))
            else:
                a_k, saved[k] = self._activation(k).forward(self.numbers, z[k])
                a.append(a_k)
        return z, a

    def _affine(self, a_prev: np.ndarray, W: np.ndarray) -> np.ndarray:
        """z = a_prev @ W[:, 1:]ᵀ + bias, through the system's `affine` (its `matmul`)."""
        return self.numbers.affine(a_prev, np.swapaxes(W[..., 1:], -1, -2),
                                   W[..., None, :, 0])

    def _activation(self, k: int) -> Activation:
        return self.output if k == len(self.shapes) else self.hidden

    def _loss_from_output(self, z_out: np.ndarray, a_out: np.ndarray, Y: np.ndarray,
                          params: np.ndarray) -> Any:
        """J from the output layer's pre-activation and activation: data term + L2."""
        return self._data_loss(z_out, a_out, Y) + self._penalty(params, m=Y.shape[0])

    def _data_loss(self, z_out: np.ndarray, a_out: np.ndarray, Y: np.ndarray) -> Any:
        """The data term: from z in the loss's stable form on its canonical output (finite
        and accurate at saturation), else from the outputs a."""
        if self._canonical:
            return self.loss_fn.from_logits(self.numbers, z_out, Y)
        return self.loss_fn.value(self.numbers, a_out, Y)

    def _penalty(self, params: np.ndarray, *, m: int) -> Any:
        """(λ/2m)·Σ θ² over every weight but the bias column."""
        if not self._has_l2:
            return self.numbers.zero
        ns = self.numbers
        total = sum(ns.accurate_sum(W[..., 1:] * W[..., 1:], (-2, -1))
                    for W in layout.unflatten(params, self.shapes))
        return self.l2 * total / (2 * m)

    # -- backward -----------------------------------------------------------------------
    def gradient(self, X: Any, Y: Any, params: Any = None) -> np.ndarray:
        """∂J/∂θ by backprop, flat in the layout of `params` (C order)."""
        X, Y = self._check_data(X, Y)
        params = self._check_params(params)
        if params.ndim != 1:
            raise ValueError(f"`params` must be one vector for `gradient`; got shape "
                             f"{params.shape}.")
        with self.numbers.context():
            mats = layout.unflatten(params, self.shapes)
            # a canonical loss's delta is formed from z[L] (losses.py): its outputs a[L]
            # would be exp work thrown away
            saved: list = []
            z, a = self._forward(X, params, mats, outputs=not self._canonical, saved=saved)
            grads = self._backward(z, a, mats, Y, saved=saved)
        return layout.flatten(grads)

    def _backward(self, z: list, a: list, mats: list, Y: np.ndarray, *,
                  saved: list | None = None) -> list[np.ndarray]:
        """The layer gradients from the forward pass's ``z``, ``a`` and `saved` (what each
        activation kept for its backward rule; None: formed again from ``z``)."""
        ns, L, m = self.numbers, len(mats), Y.shape[0]
        if saved is None:
            saved = [None] + [self._activation(k).forward(ns, z[k])[1]
                              for k in range(1, L + 1)]
        delta = self._output_delta(z[L], a[L], saved[L], Y)
        grads = [None] * L
        for k in range(L, 0, -1):
            W = mats[k - 1]
            grads[k - 1] = ns.affine_gradient(delta, a[k - 1])  # [Σ_i δ | δᵀ a]
            if self._has_l2:
                grads[k - 1][:, 1:] = grads[k - 1][:, 1:] + self.l2 * W[:, 1:] / m
            if k > 1:
                upstream = ns.matmul(delta, W[:, 1:])
                delta = self.hidden.vjp(ns, z[k - 1], a[k - 1], saved[k - 1], upstream)
        return grads

    def _output_delta(self, z_out: np.ndarray, a_out: np.ndarray, saved_out: Any,
                      Y: np.ndarray) -> np.ndarray:
        """∂J/∂z[L]: the loss's own stable rule for its canonical output (σ(z) − y, ...),
        else the chain rule through g_L."""
        if self._canonical:
            return self.loss_fn.logit_delta(self.numbers, z_out, a_out, Y)
        grad_a = self.loss_fn.grad(self.numbers, a_out, Y)
        return self.output.vjp(self.numbers, z_out, a_out, saved_out, grad_a)

    # -- numerical gradients and checks ---------------------------------------------------
    def numerical_gradient(self, X: Any, Y: Any, *, method: str = "central", h: Any = None,
                           order: int = 2) -> Estimate:
        """∂J/∂θ by finite differences, Richardson or complex step, with error estimates.

        Structure-aware: moving one weight changes one column of one pre-activation, so
        a layer's perturbations are one batched array operation; only that column, a
        rank-one update of the next pre-activation and the layers after it are
        recomputed, and an output weight touches only its unit's loss terms
        (`precision_nn.perturbation`), in every number system. The data are validated
        once here; the perturbed losses re-check nothing. Options and the returned
        `Estimate` (its `evaluations` counts every loss formed) are those of
        `precision_nn.derivatives.gradient`; the gradient check's reference uses
        ``method="central"``, ``"richardson"`` and ``"complex_step"``.

        Examples
        --------
        >>> import numpy as np
        >>> net = MLP([2, 3, 1], numbers="mpf:40", seed=1)
        >>> X, Y = [["0.1", "-0.4"], ["0.7", "0.2"]], [[1], [0]]
        >>> est = net.numerical_gradient(X, Y, method="richardson")
        >>> exact = net.to("mpf:80").gradient(X, Y)  # backprop at twice the digits
        >>> true_error = np.abs(net.numbers.to_float(est.value - exact))
        >>> bool(np.all(true_error <= est.error)), bool(np.max(est.error) < 1e-36)
        (True, True)
        """
        X, Y = self._check_data(X, Y)
        nets = {self.numbers: self}

        def evaluator_for(system: NumberSystem) -> NetworkEvaluator:
            net = nets.setdefault(system, self.to(system))
            return NetworkEvaluator(net, system.asarray(X), system.asarray(Y), net.params)

        return estimate_from(evaluator_for, self.numbers, (self.n_params,), method=method,
                             h=h, order=order)

    def check_gradient(self, X: Any, Y: Any, *, method: str = "auto", h: Any = None,
                       numbers: str | NumberSystem | None = None, order: str = "C",
                       directions: int | None = None,
                       progress: bool | None = None) -> GradientReport:
        """`check_gradient` of this network's backprop against its loss; see
        `precision_nn.gradcheck.check_network_gradient` for the options."""
        self._check_data(X, Y)  # the data's errors (empty, shapes, range) come first
        return check_network_gradient(self, X, Y, method=method, h=h, numbers=numbers,
                                      order=order, directions=directions,
                                      progress=progress)

    # -- conversion ---------------------------------------------------------------------
    def to(self, numbers: str | NumberSystem) -> MLP:
        """The same network in another number system (parameters converted exactly, then
        rounded once)."""
        target = number_system(numbers)
        return MLP(self.layer_sizes, hidden=self.hidden.name, output=self.output.name,
                   loss=self.loss_fn.name, l2=self.l2, numbers=target,
                   init=target.asarray(self.params), seed=self.seed)

    # -- validation (precision_nn.network_inputs) ------------------------------------------
    def _check_params(self, params: Any, *, name: str = "params") -> np.ndarray:
        return check_params(self, params, name=name)

    def _check_X(self, X: Any) -> np.ndarray:
        return check_X(self, X)

    def _check_data(self, X: Any, Y: Any) -> tuple[np.ndarray, np.ndarray]:
        return check_data(self, X, Y)
