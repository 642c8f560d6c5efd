"""The loss at many one-weight perturbations, recomputing only what each one changes.

Moving weight ``W[k][i, j]`` by ``d`` changes one column of one pre-activation,

    z[k][:, i] += d · ã[k-1][:, j]       (ã = [1, a]: j = 0 is the bias),

so only ``a[k][:, i]`` is recomputed, the next pre-activation gets a rank-one update

    z[k+1] += (a'[k][:, i] − a[k][:, i]) ⊗ W[k+1][:, 1 + i],

and the layers after that run in full on the stack of perturbed copies. The L2 penalty
changes by λ(v² − w²)/2m. A central-difference gradient of an n-parameter network then
costs about 2n of those partial passes instead of 2n full ones, and every step is written
against the network's `NumberSystem`, so object types (Decimal, mpmath) gain the most.

`NetworkEvaluator` has the interface of `precision_nn.derivatives.evaluation.Evaluator`
(``ns``, ``x_flat``, ``evaluations``, ``at_point()``, ``at_shifts(coords, values)``), so
every finite-difference, Richardson and complex-step rule runs on it unchanged.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from precision_nn import layout

__all__ = ["NetworkEvaluator"]

# elements per stacked array in one chunk: bounds memory at ~64 MiB of float64 (and about
# 4 million Python objects' worth of time per chunk for object systems)
CHUNK_ELEMENTS = 2**23


class NetworkEvaluator:
    """Loss of `net` on (X, Y) at `params` and at copies with one parameter replaced.

    Parameters
    ----------
    net : MLP
        The network (its `numbers` is the system of every value).
    X, Y : ndarray
        Data already converted to ``net.numbers``.
    params : ndarray
        The base point θ, a flat vector of ``net.numbers``.
    """

    def __init__(self, net: Any, X: np.ndarray, Y: np.ndarray, params: np.ndarray):
        self.net, self.ns, self.X, self.Y = net, net.numbers, X, Y
        self.x_flat = params
        self.evaluations = 0
        self.mats = layout.unflatten(params, net.shapes)
        self.slices = layout.block_slices(net.shapes)
        with self.ns.context():
            self.z, self.a = net._forward(X, params)
            self.loss = net._loss_from_output(self.z[-1], self.a[-1], Y, params)

    def at_point(self) -> Any:
        """J(θ)."""
        self.evaluations += 1
        return self.loss

    def at_shifts(self, coords: np.ndarray, values: np.ndarray) -> np.ndarray:
        """J at θ with ``θ[coords[r]] = values[r]``, one value per r."""
        coords = np.asarray(coords, dtype=np.int64)
        out = self.ns.zeros(len(coords))
        with self.ns.context():
            for k, block in enumerate(self.slices):
                rows = np.flatnonzero((coords >= block.start) & (coords < block.stop))
                for part in np.array_split(rows, max(1, -(-len(rows) // self._chunk(k)))):
                    if len(part):
                        out[part] = self._block_losses(k, coords[part] - block.start,
                                                       values[part])
        self.evaluations += len(coords)
        return out

    def _chunk(self, k: int) -> int:
        widest = max(self.net.layer_sizes[k + 1:])
        return max(1, CHUNK_ELEMENTS // (self.X.shape[0] * widest))

    def _block_losses(self, k: int, local: np.ndarray, values: np.ndarray) -> np.ndarray:
        """Losses for perturbations of layer matrix k (0-based) at flat C indices `local`."""
        ns, net = self.ns, self.net
        W = self.mats[k]
        i, j = np.divmod(local, W.shape[1])
        d = values - W[i, j]  # the change of each weight, in the system
        a_prev = self.a[k]
        inputs = np.where(j[:, None] == 0, ns.one, a_prev[:, np.maximum(j - 1, 0)].T)
        z_col = self.z[k + 1][:, i].T + d[:, None] * inputs  # (R, m): the moved column
        if k + 1 == len(self.mats):  # output layer: its activation may couple the columns
            z = self._replace_column(self.z[k + 1], i, z_col)
            a = net.output.value(ns, z)
        else:
            z, a = self._downstream(k + 1, i, net.hidden.value(ns, z_col))
        data = net._data_loss(z, a, self.Y)
        return data + self._penalty_change(j, W[i, j], values) + \
            net._penalty(self.x_flat, m=self.Y.shape[0])

    def _downstream(self, layer: int, i: np.ndarray,
                    a_col: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Output pre-activations and outputs after hidden layer `layer` changed in column
        i[r] to a_col[r] (R, m): a rank-one update of the next pre-activation, then full
        layers on the stack."""
        net, ns = self.net, self.ns
        change = a_col - self.a[layer][:, i].T  # (R, m)
        W_next = self.mats[layer]
        z = self.z[layer + 1][None] + change[:, :, None] * W_next[:, 1 + i].T[:, None, :]
        a = net._activation(layer + 1).value(ns, z)
        for later in range(layer + 1, len(self.mats)):
            z = net._affine(a, self.mats[later])
            a = net._activation(later + 1).value(ns, z)
        return z, a

    def _replace_column(self, z: np.ndarray, i: np.ndarray, col: np.ndarray) -> np.ndarray:
        """A stack of copies of z, copy r with column i[r] replaced by col[r]."""
        stack = np.repeat(z[None], len(i), axis=0)
        stack[np.arange(len(i)), :, i] = col
        return stack

    def _penalty_change(self, j: np.ndarray, old: np.ndarray, new: np.ndarray) -> np.ndarray:
        """λ(v² − w²)/2m for weights (j > 0); bias moves leave the penalty alone."""
        net = self.net
        if not net._has_l2:
            return self.ns.zeros(len(j))
        change = net.l2 * (new * new - old * old) / (2 * self.Y.shape[0])
        return np.where(j > 0, change, self.ns.zero)
