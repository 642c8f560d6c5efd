"""Seed 003: layers that differentiate themselves numerically; AND and OR are not learned together.

Each layer (erf-logistic units ½(1 + erf z)) forms its Jacobians by central differences.
Its backward pass contracts the upstream gradient over the outputs and hands the next
layer the bare Jacobian, which is right for one output and wrong for two: AND and OR are
learned one at a time, not together. Walkthrough: ``docs/seeds/seed003.md``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.special

from precision_nn.gradcheck import check_gradient
from studies.seeds.replay import SEED, Replay

CASE = "seed003"
READING = (
    "With one output the user's backward pass is exact (`user_one_output` passes), which is "
    "why AND and OR train alone. With two outputs, or two layers, it drops the upstream "
    "gradient and the per-output structure of the weight Jacobian, and the check fails "
    "with `mismatch` (and `localized` where only some layers are wrong); the fixed "
    "backward pass, which contracts the full Jacobian with the upstream gradient, passes "
    "every network and learns AND and OR together.")


X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
TARGETS = {"AND": np.array([[0], [0], [0], [1]], dtype=float),
           "OR": np.array([[0], [1], [1], [1]], dtype=float),
           "AND+OR": np.array([[0, 0], [0, 1], [0, 1], [1, 1]], dtype=float)}
DX = 1e-4  # the user's step of the numerical Jacobians
EPOCHS = 1000  # the user ran 10000; 1000 shows the same outcome in a third of the time
RATE = 1.0
COMPLEX_STEP = 1e-20


def _unit(z: Any) -> Any:
    """The user's "logistic": ½(1 + erf z) (complex-safe: SciPy's erf takes complex z)."""
    return 0.5 * (1 + scipy.special.erf(z))


def _layer(W: np.ndarray, inputs: np.ndarray) -> np.ndarray:
    return _unit(W @ inputs)


def _columnwise_jacobian(fn: Callable, arg: np.ndarray, how: str) -> np.ndarray:
    """The user's Jacobian: step column j of `arg` (every row at once) for each j.

    For a weight matrix this moves a whole column, so entry ``[k, j]`` is
    ∂out_k/∂w_kj: the per-output structure ∂out_k/∂w_rj (r ≠ k) is never formed.
    ``how``: ``"central"`` (the user's, step 1e-4) or ``"complex"`` (exact to rounding,
    to separate the bug from finite-difference error).
    """
    columns = []
    for j in range(arg.shape[-1]):
        e = np.zeros(arg.shape[-1])
        e[j] = 1.0
        if how == "central":
            columns.append((fn(arg + DX * e) - fn(arg - DX * e)) / (2 * DX))
        else:
            columns.append(np.imag(fn(arg + 1j * COMPLEX_STEP * e)) / COMPLEX_STEP)
    return np.stack(columns).T


def _user_backward(W: np.ndarray, inputs: np.ndarray, upstream: np.ndarray,
                   how: str) -> tuple[np.ndarray, np.ndarray]:
    """The user's layer backward: (weight step, what it passes on)."""
    dout_dw = _columnwise_jacobian(lambda w: _layer(w, inputs), W, how)
    dout_din = _columnwise_jacobian(lambda i: _layer(W, i), inputs, how)[:, 1:]
    step = upstream @ dout_dw  # summed over the outputs, then broadcast to every row
    return np.broadcast_to(step, W.shape), dout_din  # the upstream gradient is dropped


def _fixed_backward(W: np.ndarray, inputs: np.ndarray, upstream: np.ndarray,
                    how: str) -> tuple[np.ndarray, np.ndarray]:
    """The fix: the full Jacobian (one weight at a time), contracted with the upstream."""
    grad_w = np.zeros(W.shape)
    for r, c in np.ndindex(W.shape):
        E = np.zeros(W.shape)
        E[r, c] = 1.0
        if how == "central":
            dout = (_layer(W + DX * E, inputs) - _layer(W - DX * E, inputs)) / \
                (2 * DX)
        else:
            dout = np.imag(_layer(W + 1j * COMPLEX_STEP * E, inputs)) / COMPLEX_STEP
        grad_w[r, c] = upstream @ dout
    dout_din = _columnwise_jacobian(lambda i: _layer(W, i), inputs, how)[:, 1:]
    return grad_w, upstream @ dout_din


BACKWARDS = {"user": _user_backward, "fixed": _fixed_backward}


def _steps(layers: list[np.ndarray], x: np.ndarray, y: np.ndarray, backward: str,
           how: str) -> list[np.ndarray]:
    """Forward one example, then each layer's weight step (before any update)."""
    inputs = []
    a = x
    for W in layers:
        inputs.append(np.concatenate([[1.0], a]))
        a = _layer(W, inputs[-1])
    upstream = 2 * (a - y)  # ∂Σ(ŷ - y)²/∂ŷ
    steps = [None] * len(layers)
    for k in reversed(range(len(layers))):
        steps[k], upstream = BACKWARDS[backward](layers[k], inputs[k], upstream, how)
    return steps


def initial_layers(sizes: tuple[int, ...], seed: int = SEED) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((n_out, n_in + 1)) for n_in, n_out in itertools.pairwise(sizes)]


def _split(params: np.ndarray, sizes: tuple[int, ...]) -> list[np.ndarray]:
    out, start = [], 0
    for n_in, n_out in itertools.pairwise(sizes):
        out.append(params[start:start + n_out * (n_in + 1)].reshape(n_out, n_in + 1))
        start += n_out * (n_in + 1)
    return out


def loss(params: np.ndarray, sizes: tuple[int, ...], Y: np.ndarray) -> Any:
    """Σ over the four examples of Σ(ŷ - y)² (complex-step safe)."""
    total = 0.0
    for x, y in zip(X, Y):
        a = x
        for W in _split(params, sizes):
            a = _layer(W, np.concatenate([[1.0], a]))
        total = total + np.sum((a - y) ** 2)
    return total


def gradient(params: np.ndarray, sizes: tuple[int, ...], Y: np.ndarray, *,
             backward: str, how: str = "complex") -> np.ndarray:
    """The summed weight steps of the four examples, flat (what SGD descends along)."""
    layers = _split(params, sizes)
    total = [np.zeros(W.shape) for W in layers]
    for x, y in zip(X, Y):
        for t, step in zip(total, _steps(layers, x, y, backward, how)):
            t += step
    return np.concatenate([t.ravel() for t in total])


def train(task: str, *, backward: str, epochs: int = EPOCHS,
          seed: int = SEED) -> np.ndarray:
    """SGD as the user ran it (one example per step, shuffled); returns the predictions."""
    Y = TARGETS[task]
    layers = initial_layers((2, Y.shape[1]), seed)
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        for i in rng.permutation(len(X)):
            steps = _steps(layers, X[i], Y[i], backward, "central")
            layers = [W - RATE * s for W, s in zip(layers, steps)]
    return np.array([_layer(layers[0], np.concatenate([[1.0], x])) for x in X])


def replay(epochs: int = EPOCHS) -> Replay:
    """Replay seed 003: training, then the checks of one- and two-layer networks."""
    predictions = {task: train(task, backward="user", epochs=epochs)
                   for task in TARGETS}
    predictions["AND+OR fixed"] = train("AND+OR", backward="fixed", epochs=epochs)
    learned = {task: bool(np.all(np.round(predictions[task]) == Y))
               for task, Y in TARGETS.items()}
    fixed = bool(np.all(np.round(predictions["AND+OR fixed"]) == TARGETS["AND+OR"]))
    reports = {}
    for name, sizes, task in (("one_output", (2, 1), "AND"), ("two_outputs", (2, 2), "AND+OR"),
                              ("two_layers", (2, 2, 1), "AND")):
        Y = TARGETS[task]
        params = np.concatenate([W.ravel() for W in initial_layers(sizes)])
        shapes = [W.shape for W in initial_layers(sizes)]
        for backward in ("user", "fixed"):
            reports[f"{backward}_{name}"] = check_gradient(
                lambda p, s=sizes, Y=Y: loss(p, s, Y),
                lambda p, s=sizes, Y=Y, b=backward: gradient(p, s, Y, backward=b),
                params, shapes=shapes)
    saw = (f"After {epochs} epochs of SGD with the user's backward pass: AND learned "
           f"{learned['AND']}, OR learned {learned['OR']}, both at once learned "
           f"{learned['AND+OR']}; with the fixed backward pass both at once learned {fixed}.")
    return Replay(CASE, saw, reports, {}, {
        "learned": learned, "fixed_learned": fixed,
        "predictions": {k: np.round(v, 3).tolist() for k, v in predictions.items()}})
