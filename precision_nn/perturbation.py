"""The loss at many one-weight perturbations, recomputing only what each one changes.

Moving weight ``W[k][i, j]`` by ``d`` changes one column of one pre-activation,

    z[k][:, i] += d · ã[k-1][:, j]       (ã = [1, a]: j = 0 is the bias),

so a whole layer's perturbations are one batched array operation on an ``(R, m)`` stack of
moved columns. What happens next depends on where the layer sits:

- **output layer, elementwise output activation, loss separable over units**
  (cross-entropy, squared error): only unit i's loss terms change, so

      J' = J + [ℓ_i(g(z'[:, i]), y[:, i]) − ℓ_i(a[:, i], y[:, i])] + ΔP,

  ``O(m)`` work per perturbation (ℓ_i is the loss restricted to unit i: the loss function
  itself applied to that column, so every rounding is that of `MLP.loss`'s own terms);
- **output layer otherwise** (softmax couples the units): the moved column replaces
  column i of ``z[L]`` in a stacked copy, ``O(m·n_out)``;
- **hidden layer**: ``a[k][:, i]`` is recomputed, the next pre-activation gets the rank-one
  update ``z[k+1] += (a'[k][:, i] − a[k][:, i]) ⊗ W[k+1][:, 1 + i]`` and the layers after
  it run in full on the stack (through ``ns.matmul``, the system's matrix product). For
  the last hidden layer under a loss read from the logits, the loss evaluates the
  rank-one update itself (`Loss.from_rank_one`: the stacks formed in pieces, or on float
  parts by the IEEE complex systems, `numbers/ieee_rank_one.py`), ``O(m·n_out)`` per
  perturbation; deeper layers pay the layers downstream of them, which a nonlinear
  network cannot avoid.

The L2 penalty changes by ``ΔP = λ(v² − w²)/2m``. A central-difference gradient of an
``n``-parameter one-hidden-layer network then costs about ``2n·m·n_out`` loss terms, the
exp/log work of the perturbed losses, instead of ``2n`` forward passes. Every value is an
element of the network's `NumberSystem` (complex ones too: the complex step runs the
same code on the converted network), and nothing is validated here: the data and point
were checked once at the entry (`MLP.numerical_gradient`).

What bounds the cost (the float64 complex-step gradient of [64, 128, 10] × 32, 9,610
weights, 2 steps each: 5.3 M loss entries, ~40-50 ms; each part timed in one run of
46.8 ms): the last hidden layer's rank-one losses, 51% (`numbers/ieee_rank_one.py`: the
entries' three float64 passes, η = q ⊗ s, its product with the base's e and the
pairwise sum, ~2.3 ns per entry, 26%; the entries whose real parts the witness step
moves, ~0.1%, evaluated in full as corrections, 13%; splitting parts, checks and the
path, 12%); the hidden sigmoid on (R, m) stacks, fused (~14 passes and an exp per
element), 17%; moving the columns 7%; the output layer's perturbations 6%; the rest
(gathers and differences of the activations, the evaluator's setup, the cross-check in
real arithmetic, the complex-step driver) 19%. The chunks of the last hidden layer hold
~240 perturbations (their (R, m) complex arrays stay under glibc's mmap threshold), so
~70 calls of the rank-one loss serve the whole gradient and the per-call overhead is
~10%; what remains is memory passes at 0.4-1 ns per element, every entry of every
perturbed loss formed once. Going further needs compiled kernels (none installed) or
sharing work between perturbations, which would be backprop, not an independent
reference.

`NetworkEvaluator` has the interface of `precision_nn.derivatives.evaluation.Evaluator`
(``ns``, ``x_flat``, ``evaluations``, ``at_point()``, ``at_shifts(coords, values)``), so
every finite-difference, Richardson and complex-step rule runs on it unchanged and its
``evaluations`` counts every perturbed loss it returns.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from precision_nn import layout
from precision_nn.numbers.composite import STACK_BYTES

__all__ = ["CHUNK_BYTES", "SEPARABLE_LOSSES", "NetworkEvaluator"]

# bytes of the largest stacked intermediate per chunk: just under glibc's mmap threshold
# (`numbers.composite.STACK_BYTES` says why)
CHUNK_BYTES = STACK_BYTES
# losses that are a sum over output units of a term in (a[:, i], y[:, i]) alone
SEPARABLE_LOSSES = frozenset({"cross_entropy", "squared_error"})


class NetworkEvaluator:
    """Loss of `net` on (X, Y) at `params` and at copies with one parameter replaced.

    Parameters
    ----------
    net : MLP
        The network (its `numbers` is the system of every value).
    X, Y : ndarray
        Data already validated and converted to ``net.numbers``.
    params : ndarray
        The base point θ, a flat vector of ``net.numbers``.

    Examples
    --------
    >>> import numpy as np
    >>> from precision_nn.network import MLP
    >>> net = MLP([2, 3, 2], numbers="mpf:30", seed=1)
    >>> X, Y = net.numbers.asarray([["0.1", "0.2"]]), net.numbers.asarray([[1, 0]])
    >>> ev = NetworkEvaluator(net, X, Y, net.params)
    >>> moved = net.params.copy(); moved[[4, 12]] += 1  # one hidden, one output weight
    >>> fast = ev.at_shifts(np.array([4, 12]), moved[[4, 12]])
    >>> for r, c in enumerate([4, 12]):
    ...     alone = net.params.copy(); alone[c] = moved[c]
    ...     print(abs(fast[r] - net.loss(X, Y, alone)) < 1e-28)
    True
    True
    """

    def __init__(self, net: Any, X: np.ndarray, Y: np.ndarray, params: np.ndarray):
        self.net, self.ns, self.X, self.Y = net, net.numbers, X, Y
        self.x_flat = params
        self.evaluations = 0
        self.mats = layout.unflatten(params, net.shapes)
        self.slices = layout.block_slices(net.shapes)
        self.m = X.shape[0]
        self.itemsize = np.asarray(params).dtype.itemsize  # object arrays: a pointer
        with self.ns.context():
            self.z, self.a = net._forward(X, params, self.mats)
            self.penalty = net._penalty(params, m=self.m)
            self.data = net._data_loss(self.z[-1], self.a[-1], Y)
            self.loss = self.data + self.penalty
            self._transposed()
            self.separable = net.output.elementwise and net.loss_fn.name in SEPARABLE_LOSSES
            if self.separable:  # ℓ_i at the base point, one per output unit
                self.unit_data = self._unit_losses(self.z[-1].T, self.a[-1].T,
                                                   np.arange(Y.shape[1]))

    def _transposed(self) -> None:
        """Row-major copies the perturbations gather rows from (a column of z, a or W per
        perturbation becomes one contiguous row): ã[k]ᵀ = [1, a[k]]ᵀ, z[k]ᵀ, a[k]ᵀ, W[k]ᵀ."""
        ones = np.full((1, self.m), self.ns.one, dtype=np.asarray(self.a[0]).dtype)
        self.inputs_t = [np.concatenate([ones, np.asarray(a).T]) for a in self.a[:-1]]
        self.z_t = [None] + [np.ascontiguousarray(z.T) for z in self.z[1:]]
        self.a_t = [np.ascontiguousarray(np.asarray(a).T) for a in self.a]
        self.w_t = [np.ascontiguousarray(W.T) for W in self.mats]

    def at_point(self) -> Any:
        """J(θ)."""
        self.evaluations += 1
        return self.loss

    def at_points(self, points: np.ndarray) -> np.ndarray:
        """J at arbitrary parameter vectors, a stack ``(k, n)``: full forward passes."""
        out = self.ns.zeros(len(points))
        with self.ns.context():
            for r, p in enumerate(points):
                out[r] = self._loss_at(p)
        self.evaluations += len(points)
        return out

    def _loss_at(self, p: np.ndarray) -> Any:
        """J at the parameter vector p, by a full forward pass."""
        net = self.net
        z, a = net._forward(self.X, p, layout.unflatten(p, net.shapes))
        return net._data_loss(z[-1], a[-1], self.Y) + net._penalty(p, m=self.m)

    def at_shifts(self, coords: np.ndarray, values: np.ndarray) -> np.ndarray:
        """J at θ with ``θ[coords[r]] = values[r]``, one value per r."""
        coords = np.asarray(coords, dtype=np.int64)
        out = self.ns.zeros(len(coords))
        with self.ns.context():
            for k, block in enumerate(self.slices):
                rows = np.flatnonzero((coords >= block.start) & (coords < block.stop))
                size = self._chunk(k)
                for start in range(0, len(rows), size):
                    part = rows[start:start + size]
                    out[part] = self._block_losses(k, coords[part] - block.start,
                                                   values[part])
        self.evaluations += len(coords)
        return out

    def _chunk(self, k: int) -> int:
        """Perturbations per chunk of layer k: its widest stacked array has m·width
        elements per perturbation. Layer k's own pre-activation changes in one column
        (width 1); the stacks are the full layers after it, or the output layer itself
        when its loss couples the units. The last hidden layer's rank-one update of the
        output logits is evaluated by the loss (`_rank_one_output`), which forms any
        stacks in pieces of its own (`numbers.composite.rank_one_stacks`): width 1."""
        sizes = self.net.layer_sizes
        if k + 1 == len(self.mats):
            width = 1 if self.separable else sizes[-1]
        elif self._rank_one_output(k + 1):
            width = 1
        else:
            width = max(sizes[k + 2:])
        return max(1, CHUNK_BYTES // (self.itemsize * self.m * width))

    def _rank_one_output(self, layer: int) -> bool:
        """Hidden layer `layer` feeds the output layer and the loss is read from the
        output logits: a change of its column i moves them by a rank-one update."""
        return layer + 1 == len(self.mats) and self.net._canonical

    # -- one layer's perturbations ------------------------------------------------------
    def _block_losses(self, k: int, local: np.ndarray, values: np.ndarray) -> np.ndarray:
        """Losses for perturbations of layer matrix k (0-based) at flat C indices `local`."""
        W = self.mats[k]
        i, j = np.divmod(local, W.shape[1])
        old = W[i, j]
        z_col = self._moved_column(k, i, j, values - old)  # (R, m)
        penalty = self.penalty + self._penalty_change(j, old, values)
        net = self.net
        if k + 1 < len(self.mats):
            return self._downstream(k + 1, i, net.hidden.value(self.ns, z_col)) + penalty
        if self.separable:
            change = self._unit_losses(z_col, self._outputs(z_col), i) - self.unit_data[i]
            return self.data + change + penalty
        z_out = self._replace_column(self.z[k + 1], i, z_col)
        return net._data_loss(z_out, self._outputs(z_out), self.Y) + penalty

    def _outputs(self, z_out: np.ndarray) -> np.ndarray | None:
        """The output activation of a stack of output pre-activations, or None when the
        loss is read from z alone (its stable form on the canonical output): the
        activation would be a second exp per element that nothing reads."""
        if self.net._canonical:
            return None
        return self.net.output.value(self.ns, z_out)

    def _moved_column(self, k: int, i: np.ndarray, j: np.ndarray, d: np.ndarray
                      ) -> np.ndarray:
        """``z[k+1][:, i] + d·ã[k][:, j]`` for every perturbation: shape (R, m)."""
        return self.z_t[k + 1][i] + d[:, None] * self.inputs_t[k][j]

    def _unit_losses(self, z_cols: np.ndarray, a_cols: np.ndarray | None, i: np.ndarray
                     ) -> np.ndarray:
        """ℓ_i: the loss of output unit i[r] alone with pre-activations z_cols[r] and
        outputs a_cols[r] (R, m), in the network's stable form (from z where canonical)."""
        a_cols = None if a_cols is None else a_cols[:, :, None]
        return self.net._data_loss(z_cols[:, :, None], a_cols, self.Y[:, i].T[:, :, None])

    def _downstream(self, layer: int, i: np.ndarray, a_col: np.ndarray) -> np.ndarray:
        """Data losses after hidden layer `layer` changed in column i[r] to a_col[r]
        (R, m): a rank-one update ``change ⊗ W[layer][:, 1 + i]`` of the next
        pre-activation, evaluated by the loss itself when that is the output logits,
        else formed and followed by full layers on the stack."""
        net, ns = self.net, self.ns
        change = a_col - self.a_t[layer][i]  # (R, m)
        weights = self.w_t[layer][1 + i]  # (R, n)
        if self._rank_one_output(layer):
            return net.loss_fn.from_rank_one(ns, self.z[layer + 1], self.Y, change, weights)
        z = change[:, :, None] * weights[:, None, :]
        z += self.z[layer + 1]  # in place: one (R, m, n) temporary fewer
        for later in range(layer + 1, len(self.mats)):
            a = net._activation(later).value(ns, z)
            z = self._affine(a, self.mats[later])
        return net._data_loss(z, self._outputs(z), self.Y)

    def _affine(self, a: np.ndarray, W: np.ndarray) -> np.ndarray:
        """``a @ W[:, 1:].T + W[:, 0]`` on a stack (R, m, n) as one 2-D ``ns.matmul``."""
        R, m, n = a.shape
        z = self.ns.matmul(a.reshape(R * m, n), np.ascontiguousarray(W[:, 1:].T))
        return (z + W[:, 0]).reshape(R, m, W.shape[0])

    def _replace_column(self, z: np.ndarray, i: np.ndarray, col: np.ndarray) -> np.ndarray:
        """A stack of copies of z, copy r with column i[r] replaced by col[r]."""
        stack = np.repeat(z[None], len(i), axis=0)
        stack[np.arange(len(i)), :, i] = col
        return stack

    def _penalty_change(self, j: np.ndarray, old: np.ndarray, new: np.ndarray) -> Any:
        """λ(v² − w²)/2m for weights (j > 0); bias moves leave the penalty alone."""
        net = self.net
        if not net._has_l2:
            return self.ns.zero
        change = net.l2 * (new * new - old * old) / (2 * self.m)
        return np.where(j > 0, change, self.ns.zero)
