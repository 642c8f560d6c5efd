"""The seed systems replayed: what each user saw, what `check_gradient` finds, the fix.

Every case is rebuilt here from the problem it describes (never from the user's code):

``seed000``
    A Decimal network (28 digits, like .NET's ``decimal``) whose sigmoid goes through a
    binary float, checked with central differences at the step 0.99399 and the user's
    relative distance |a - n|/(|a| + |n|) <= 0.1, on the "regression 1" case: constant
    input -0.2 into five hidden nodes without bias, one output, half squared error
    against 1.0.
``seed002``
    The Coursera ML 3-5-3 network (m = 5 examples, debug initialisation sin(1..n)/10)
    whose cost regularises with ``ΣΘ1² + ΣΘ2² - (b1·b1 - b2·b2)``, and the question
    whether C or Fortran order matters.
``seed003``
    A network of layers that differentiate themselves numerically (erf-logistic units),
    whose backward pass contracts the upstream gradient over the outputs and hands the
    next layer the bare Jacobian: AND and OR are learned one at a time, not together.
``seed004``
    The W3 check of a 4-3-1 ReLU/sigmoid network: the sigmoid's derivative taken at z
    instead of a, the missing 1/m, and the complex-step answer.

Each ``seedNNN()`` returns a `Replay`; the tests call them directly. As a study,
``run_cell`` returns one row per scenario with the columns

``case``, ``scenario``
    The seed and what is checked (``user``, ``fixed``, ...).
``passed``, ``findings``
    The verdict of `check_gradient` and its finding kinds joined by ``+``.
``max_relative_error``, ``relative_difference``
    From the report.
``user_metric``
    The number the user looked at for this scenario (empty when none).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.special

from precision_nn.gradcheck import GradientReport, check_gradient
from precision_nn.numbers import number_system

NAME = "seed_cases"
TITLE = "Seed cases: what the users saw, what check_gradient finds, the fix passing"
SEED = 0


@dataclass(frozen=True)
class Replay:
    """One seed case replayed.

    Attributes
    ----------
    case : str
        ``seed000`` ... ``seed004``.
    saw : str
        What the user saw, reproduced, in one paragraph.
    reports : dict of str to GradientReport
        `check_gradient`'s report per scenario (``"user"``: the user's setup).
    user_metrics : dict of str to float
        The number the user looked at, per scenario where there is one.
    facts : dict
        Further numbers of the replay (e.g. training results).
    """

    case: str
    saw: str
    reports: dict[str, GradientReport]
    user_metrics: dict[str, float] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)


# =========================================================================================
# seed 000: a Decimal network with a float sigmoid, checked at h = 0.99399
# =========================================================================================
S0_NUMBERS = number_system("decimal:28")  # .NET decimal: 28-29 significant digits
S0_INPUT, S0_TARGET = "-0.2", "1.0"
S0_HIDDEN = S0_INPUTS = 5
S0_STEP = "0.99399"
S0_DISTANCE = 0.1  # the user's pass mark for |a - n| / (|a| + |n|)
# the parameters as the user's test builds them: one weight array that every hidden node
# shares (one row of 5 weights), then the output node's 5 weights
S0_SHARED_SHAPES = [(1, S0_INPUTS), (1, S0_HIDDEN)]
# the same network with one weight array per hidden node (the fix of the aliasing)
S0_SHAPES = [(S0_HIDDEN, S0_INPUTS), (1, S0_HIDDEN)]


def _s0_sigmoid_float(z: np.ndarray) -> np.ndarray:
    """The bug: the sigmoid computed in binary float and converted back to Decimal."""
    ns = S0_NUMBERS
    return np.frompyfunc(lambda v: ns.scalar(1.0 / (1.0 + math.exp(-float(v)))), 1, 1)(z)


def _s0_sigmoid_decimal(z: np.ndarray) -> np.ndarray:
    """The fix: the sigmoid in Decimal arithmetic (exp correctly rounded to 28 digits)."""
    ns = S0_NUMBERS
    return ns.one / (ns.one + ns.exp(-z))


S0_SIGMOIDS = {"float": _s0_sigmoid_float, "decimal": _s0_sigmoid_decimal}


def _s0_matrices(params: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(W1, W2) from 10 shared parameters (W1's rows all the same array) or 30 own ones."""
    w2 = params[-S0_HIDDEN:].reshape(1, S0_HIDDEN)
    if params.size == S0_INPUTS + S0_HIDDEN:
        return np.tile(params[:S0_INPUTS], (S0_HIDDEN, 1)), w2
    return params[:-S0_HIDDEN].reshape(S0_HIDDEN, S0_INPUTS), w2


def _s0_forward(params: np.ndarray, sigmoid: str) -> tuple[np.ndarray, np.ndarray]:
    ns, act = S0_NUMBERS, S0_SIGMOIDS[sigmoid]
    W1, W2 = _s0_matrices(params)
    x = ns.asarray([S0_INPUT] * S0_INPUTS)
    with ns.context():
        hidden = act(W1 @ x)
        return hidden, act(W2 @ hidden)


def seed000_loss(params: np.ndarray, *, sigmoid: str = "float") -> Any:
    """½(1 - o)² of the regression-1 network (no biases), shared or own hidden weights."""
    ns = S0_NUMBERS
    _, out = _s0_forward(params, sigmoid)
    with ns.context():
        return (ns.scalar(S0_TARGET) - out[0]) ** 2 / 2


def seed000_node_gradients(params: np.ndarray, *, sigmoid: str = "float"
                           ) -> tuple[np.ndarray, np.ndarray]:
    """Backprop as the user wrote it, one weight array per node: (5×5 hidden, 5 output).

    δ_out = (o - y)·o(1 - o), δ_j = δ_out·w2_j·h_j(1 - h_j), ∂L/∂W1[j, i] = δ_j·x_i.
    """
    ns = S0_NUMBERS
    hidden, out = _s0_forward(params, sigmoid)
    _, W2 = _s0_matrices(params)
    x = ns.asarray([S0_INPUT] * S0_INPUTS)
    with ns.context():
        delta_out = (out - ns.scalar(S0_TARGET)) * out * (ns.one - out)
        delta_hidden = (W2.T @ delta_out) * hidden * (ns.one - hidden)
        return np.outer(delta_hidden, x), np.outer(delta_out, hidden).ravel()


def seed000_gradient(params: np.ndarray, *, sigmoid: str = "float", node: int | None = 0
                     ) -> np.ndarray:
    """The gradient in the layout of `params`.

    For 30 own weights: every node's row. For the 10 shared ones: the row of hidden node
    `node` (what the user's test compares with the derivative for the shared array), or
    with ``node=None`` the sum over the nodes (the true derivative for a shared array).
    """
    ns = S0_NUMBERS
    hidden, output = seed000_node_gradients(params, sigmoid=sigmoid)
    if params.size != S0_INPUTS + S0_HIDDEN:
        return np.concatenate([hidden.ravel(), output])
    with ns.context():
        first = hidden.sum(axis=0) if node is None else hidden[node]
    return np.concatenate([first, output])


def seed000_params(seed: int = SEED, *, shared: bool = True) -> np.ndarray:
    """Random weights 1 - 2·U(0,1) as doubles, converted exactly to Decimal (like the user)."""
    rng = np.random.default_rng(seed)
    w1, w2 = 1 - 2 * rng.random(S0_INPUTS), 1 - 2 * rng.random(S0_HIDDEN)
    values = np.concatenate([w1, w2]) if shared else \
        np.concatenate([np.tile(w1, S0_HIDDEN), w2])
    return S0_NUMBERS.asarray(values)


def _s0_user_numeric(params: np.ndarray, i: int, h: Any) -> Any:
    ns = S0_NUMBERS
    plus, minus = params.copy(), params.copy()
    plus[i] += h
    minus[i] -= h
    diff = seed000_loss(plus) - seed000_loss(minus)
    diff = diff if diff != 0 else ns.scalar("1e-20")  # the user's guard against 0
    return diff / (2 * h)


def seed000_user_distances(params: np.ndarray) -> np.ndarray:
    """The user's test: each node's own gradient entry against central differences at
    0.99399 that move the weight array the node shares; |a - n|/(|a| + |n|) per weight."""
    ns = S0_NUMBERS
    hidden, output = seed000_node_gradients(params)
    h = ns.scalar(S0_STEP)
    pairs = [(hidden[j, i], i) for j in range(S0_HIDDEN) for i in range(S0_INPUTS)]
    pairs += [(output[k], S0_INPUTS + k) for k in range(S0_HIDDEN)]
    out = []
    with ns.context():
        for a, i in pairs:
            n = _s0_user_numeric(params, i, h)
            out.append(abs(a - n) / (abs(a) + abs(n)))
    return ns.to_float(np.array(out, dtype=object))


def seed000(seed: int = SEED) -> Replay:
    """Replay seed 000: a shared weight array, a float sigmoid and a step of 0.99399."""
    shared, own = seed000_params(seed), seed000_params(seed, shared=False)
    dist = seed000_user_distances(shared)
    ns = S0_NUMBERS
    decimal = {"sigmoid": "decimal"}
    reports = {
        "user": check_gradient(seed000_loss, seed000_gradient, shared, method="central",
                               h=S0_STEP, shapes=S0_SHARED_SHAPES, numbers=ns),
        "own_weights_user_step": check_gradient(
            seed000_loss, seed000_gradient, own, method="central", h=S0_STEP,
            shapes=S0_SHAPES, numbers=ns),
        "own_weights_float_sigmoid": check_gradient(seed000_loss, seed000_gradient, own,
                                                    shapes=S0_SHAPES, numbers=ns),
        "fixed": check_gradient(lambda p: seed000_loss(p, **decimal),
                                lambda p: seed000_gradient(p, **decimal), own,
                                shapes=S0_SHAPES, numbers=ns),
        "fixed_shared": check_gradient(lambda p: seed000_loss(p, **decimal),
                                       lambda p: seed000_gradient(p, node=None, **decimal),
                                       shared, shapes=S0_SHARED_SHAPES, numbers=ns),
    }
    failing = int(np.sum(~(dist <= S0_DISTANCE)))
    w2 = ns.to_float(shared[S0_INPUTS:])
    saw = (f"With central differences at h = {S0_STEP} and the pass mark "
           f"|a - n|/(|a| + |n|) <= {S0_DISTANCE}, {failing} of {dist.size} weights fail "
           f"(largest distance {float(np.max(dist)):.3g}); all five hidden nodes share one "
           "weight array, so moving one of its weights moves that weight in every node.")
    return Replay("seed000", saw, reports, {"user": float(np.max(dist))},
                  {"failing_weights": failing, "distances": dist.tolist(),
                   "shared_factor": float(w2[0] / np.sum(w2))})


# =========================================================================================
# seed 002: the Coursera 3-5-3 network, its regulariser and the C/F question
# =========================================================================================
S2_SIZES = (3, 5, 3)
S2_M = 5
S2_LAMBDA = 3.0  # the regularised check of the exercise
S2_EPSILON = 1e-4  # the exercise's step
S2_SHAPES = [(S2_SIZES[1], S2_SIZES[0] + 1), (S2_SIZES[2], S2_SIZES[1] + 1)]


def debug_weights(fan_out: int, fan_in: int) -> np.ndarray:
    """The exercise's deterministic weights: sin(1), sin(2), ... over 10, shape (out, in+1)."""
    return (np.sin(np.arange(1, fan_out * (fan_in + 1) + 1)) / 10).reshape(fan_out, fan_in + 1)


def seed002_data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Parameters (C order), inputs X (m × 3) and one-hot targets Y (m × 3)."""
    theta1 = debug_weights(S2_SIZES[1], S2_SIZES[0])
    theta2 = debug_weights(S2_SIZES[2], S2_SIZES[1])
    X = debug_weights(S2_M, S2_SIZES[0] - 1)
    labels = np.arange(S2_M) % S2_SIZES[2]  # classes 1, 2, 3, 1, 2 (0-based here)
    return np.concatenate([theta1.ravel(), theta2.ravel()]), X, np.eye(S2_SIZES[2])[labels]


def _s2_unroll(params: np.ndarray, order: str) -> tuple[np.ndarray, np.ndarray]:
    n1 = S2_SHAPES[0][0] * S2_SHAPES[0][1]
    return (params[:n1].reshape(S2_SHAPES[0], order=order),
            params[n1:].reshape(S2_SHAPES[1], order=order))


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-z))


def _s2_forward(theta1: np.ndarray, theta2: np.ndarray, X: np.ndarray) -> tuple:
    a1 = np.hstack([np.ones((len(X), 1)), X])
    z2 = a1 @ theta1.T
    a2 = np.hstack([np.ones((len(X), 1)), _sigmoid(z2)])
    return a1, z2, a2, _sigmoid(a2 @ theta2.T)


def seed002_cost(params: np.ndarray, *, buggy: bool = True, read: str = "C",
                 lam: float = S2_LAMBDA) -> Any:
    """Cross-entropy + (λ/2m)·penalty; ``buggy`` uses ΣΘ1² + ΣΘ2² - (b1·b1 - b2·b2)."""
    _, X, Y = seed002_data()
    theta1, theta2 = _s2_unroll(params, read)
    *_, a3 = _s2_forward(theta1, theta2, X)
    data = -np.sum(Y * np.log(a3) + (1 - Y) * np.log(1 - a3)) / S2_M
    b1, b2 = theta1[:, 0], theta2[:, 0]
    if buggy:
        penalty = np.sum(theta1 ** 2) + np.sum(theta2 ** 2) - (b1 @ b1 - b2 @ b2)
    else:
        penalty = np.sum(theta1[:, 1:] ** 2) + np.sum(theta2[:, 1:] ** 2)
    return data + lam / (2 * S2_M) * penalty


def seed002_gradient(params: np.ndarray, *, read: str = "C", write: str = "C",
                     lam: float = S2_LAMBDA) -> np.ndarray:
    """Backprop with the bias columns left out of the penalty's gradient (correct)."""
    _, X, Y = seed002_data()
    theta1, theta2 = _s2_unroll(params, read)
    a1, z2, a2, a3 = _s2_forward(theta1, theta2, X)
    d3 = a3 - Y
    d2 = (d3 @ theta2[:, 1:]) * _sigmoid(z2) * (1 - _sigmoid(z2))
    grads = [d2.T @ a1 / S2_M, d3.T @ a2 / S2_M]
    for g, theta in zip(grads, (theta1, theta2)):
        g[:, 1:] += lam / S2_M * theta[:, 1:]
    return np.concatenate([g.ravel(order=write) for g in grads])


def seed002_user_difference(params: np.ndarray, *, buggy: bool = True) -> float:
    """The exercise's check: central differences at 1e-4, ‖n - a‖/‖n + a‖ (< 1e-9 hoped)."""
    a = seed002_gradient(params)
    n = np.empty_like(params)
    for i in range(params.size):
        e = np.zeros_like(params)
        e[i] = S2_EPSILON
        n[i] = (seed002_cost(params + e, buggy=buggy) -
                seed002_cost(params - e, buggy=buggy)) / (2 * S2_EPSILON)
    return float(np.linalg.norm(n - a) / np.linalg.norm(n + a))


def seed002() -> Replay:
    """Replay seed 002: regulariser bug, then C, F and mixed layouts."""
    params, _, _ = seed002_data()
    params_f = np.concatenate([m.ravel(order="F") for m in _s2_unroll(params, "C")])
    shapes = {"shapes": S2_SHAPES, "batch_size": S2_M}
    reports = {
        "user": check_gradient(seed002_cost, seed002_gradient, params, **shapes),
        "fixed_C": check_gradient(lambda p: seed002_cost(p, buggy=False), seed002_gradient,
                                  params, **shapes),
        "fixed_F": check_gradient(lambda p: seed002_cost(p, buggy=False, read="F"),
                                  lambda p: seed002_gradient(p, read="F", write="F"),
                                  params_f, order="F", **shapes),
        "mixed_read_F_write_C": check_gradient(
            lambda p: seed002_cost(p, buggy=False, read="F"),
            lambda p: seed002_gradient(p, read="F", write="C"), params, **shapes),
    }
    user = seed002_user_difference(params)
    fixed = seed002_user_difference(params, buggy=False)
    saw = (f"The exercise's relative difference ‖n - a‖/‖n + a‖ is {user:.3g} with λ = "
           f"{S2_LAMBDA:g} (it should be below 1e-9); with λ = 0 the cost and gradient agree "
           f"(the bug is in the regulariser), and after the fix it is {fixed:.2g}.")
    return Replay("seed002", saw, reports, {"user": user, "fixed_C": fixed},
                  {"lambda0_difference": _s2_lambda0(params)})


def _s2_lambda0(params: np.ndarray) -> float:
    a = seed002_gradient(params, lam=0.0)
    report = check_gradient(lambda p: seed002_cost(p, lam=0.0), lambda p: a, params)
    return report.relative_difference


# =========================================================================================
# seed 003: layers that differentiate themselves numerically; AND and OR not together
# =========================================================================================
S3_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
S3_TARGETS = {"AND": np.array([[0], [0], [0], [1]], dtype=float),
              "OR": np.array([[0], [1], [1], [1]], dtype=float),
              "AND+OR": np.array([[0, 0], [0, 1], [0, 1], [1, 1]], dtype=float)}
S3_DX = 1e-4  # the user's step of the numerical Jacobians
S3_EPOCHS = 1000  # the user ran 10000; 1000 shows the same outcome in a third of the time
S3_RATE = 1.0
S3_COMPLEX_STEP = 1e-20


def _s3_unit(z: Any) -> Any:
    """The user's "logistic": ½(1 + erf z) (complex-safe: SciPy's erf takes complex z)."""
    return 0.5 * (1 + scipy.special.erf(z))


def _s3_layer(W: np.ndarray, inputs: np.ndarray) -> np.ndarray:
    return _s3_unit(W @ inputs)


def _s3_columnwise_jacobian(fn: Callable, arg: np.ndarray, how: str) -> np.ndarray:
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
            columns.append((fn(arg + S3_DX * e) - fn(arg - S3_DX * e)) / (2 * S3_DX))
        else:
            columns.append(np.imag(fn(arg + 1j * S3_COMPLEX_STEP * e)) / S3_COMPLEX_STEP)
    return np.stack(columns).T


def _s3_user_backward(W: np.ndarray, inputs: np.ndarray, upstream: np.ndarray,
                      how: str) -> tuple[np.ndarray, np.ndarray]:
    """The user's layer backward: (weight step, what it passes on)."""
    dout_dw = _s3_columnwise_jacobian(lambda w: _s3_layer(w, inputs), W, how)
    dout_din = _s3_columnwise_jacobian(lambda i: _s3_layer(W, i), inputs, how)[:, 1:]
    step = upstream @ dout_dw  # summed over the outputs, then broadcast to every row
    return np.broadcast_to(step, W.shape), dout_din  # the upstream gradient is dropped


def _s3_fixed_backward(W: np.ndarray, inputs: np.ndarray, upstream: np.ndarray,
                       how: str) -> tuple[np.ndarray, np.ndarray]:
    """The fix: the full Jacobian (one weight at a time), contracted with the upstream."""
    grad_w = np.zeros(W.shape)
    for r, c in np.ndindex(W.shape):
        E = np.zeros(W.shape)
        E[r, c] = 1.0
        if how == "central":
            dout = (_s3_layer(W + S3_DX * E, inputs) - _s3_layer(W - S3_DX * E, inputs)) / \
                (2 * S3_DX)
        else:
            dout = np.imag(_s3_layer(W + 1j * S3_COMPLEX_STEP * E, inputs)) / S3_COMPLEX_STEP
        grad_w[r, c] = upstream @ dout
    dout_din = _s3_columnwise_jacobian(lambda i: _s3_layer(W, i), inputs, how)[:, 1:]
    return grad_w, upstream @ dout_din


S3_BACKWARDS = {"user": _s3_user_backward, "fixed": _s3_fixed_backward}


def _s3_steps(layers: list[np.ndarray], x: np.ndarray, y: np.ndarray, backward: str,
              how: str) -> list[np.ndarray]:
    """Forward one example, then each layer's weight step (before any update)."""
    inputs = []
    a = x
    for W in layers:
        inputs.append(np.concatenate([[1.0], a]))
        a = _s3_layer(W, inputs[-1])
    upstream = 2 * (a - y)  # ∂Σ(ŷ - y)²/∂ŷ
    steps = [None] * len(layers)
    for k in reversed(range(len(layers))):
        steps[k], upstream = S3_BACKWARDS[backward](layers[k], inputs[k], upstream, how)
    return steps


def seed003_layers(sizes: tuple[int, ...], seed: int = SEED) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((n_out, n_in + 1)) for n_in, n_out in itertools.pairwise(sizes)]


def _s3_split(params: np.ndarray, sizes: tuple[int, ...]) -> list[np.ndarray]:
    out, start = [], 0
    for n_in, n_out in itertools.pairwise(sizes):
        out.append(params[start:start + n_out * (n_in + 1)].reshape(n_out, n_in + 1))
        start += n_out * (n_in + 1)
    return out


def seed003_loss(params: np.ndarray, sizes: tuple[int, ...], Y: np.ndarray) -> Any:
    """Σ over the four examples of Σ(ŷ - y)² (complex-step safe)."""
    total = 0.0
    for x, y in zip(S3_X, Y):
        a = x
        for W in _s3_split(params, sizes):
            a = _s3_layer(W, np.concatenate([[1.0], a]))
        total = total + np.sum((a - y) ** 2)
    return total


def seed003_gradient(params: np.ndarray, sizes: tuple[int, ...], Y: np.ndarray, *,
                     backward: str, how: str = "complex") -> np.ndarray:
    """The summed weight steps of the four examples, flat (what SGD descends along)."""
    layers = _s3_split(params, sizes)
    total = [np.zeros(W.shape) for W in layers]
    for x, y in zip(S3_X, Y):
        for t, step in zip(total, _s3_steps(layers, x, y, backward, how)):
            t += step
    return np.concatenate([t.ravel() for t in total])


def seed003_train(task: str, *, backward: str, epochs: int = S3_EPOCHS,
                  seed: int = SEED) -> np.ndarray:
    """SGD as the user ran it (one example per step, shuffled); returns the predictions."""
    Y = S3_TARGETS[task]
    layers = seed003_layers((2, Y.shape[1]), seed)
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        for i in rng.permutation(len(S3_X)):
            steps = _s3_steps(layers, S3_X[i], Y[i], backward, "central")
            layers = [W - S3_RATE * s for W, s in zip(layers, steps)]
    return np.array([_s3_layer(layers[0], np.concatenate([[1.0], x])) for x in S3_X])


def seed003(epochs: int = S3_EPOCHS) -> Replay:
    """Replay seed 003: training, then the checks of one- and two-layer networks."""
    predictions = {task: seed003_train(task, backward="user", epochs=epochs)
                   for task in S3_TARGETS}
    predictions["AND+OR fixed"] = seed003_train("AND+OR", backward="fixed", epochs=epochs)
    learned = {task: bool(np.all(np.round(predictions[task]) == Y))
               for task, Y in S3_TARGETS.items()}
    fixed = bool(np.all(np.round(predictions["AND+OR fixed"]) == S3_TARGETS["AND+OR"]))
    reports = {}
    for name, sizes, task in (("one_output", (2, 1), "AND"), ("two_outputs", (2, 2), "AND+OR"),
                              ("two_layers", (2, 2, 1), "AND")):
        Y = S3_TARGETS[task]
        params = np.concatenate([W.ravel() for W in seed003_layers(sizes)])
        shapes = [W.shape for W in seed003_layers(sizes)]
        for backward in ("user", "fixed"):
            reports[f"{backward}_{name}"] = check_gradient(
                lambda p, s=sizes, Y=Y: seed003_loss(p, s, Y),
                lambda p, s=sizes, Y=Y, b=backward: seed003_gradient(p, s, Y, backward=b),
                params, shapes=shapes)
    saw = (f"After {epochs} epochs of SGD with the user's backward pass: AND learned "
           f"{learned['AND']}, OR learned {learned['OR']}, both at once learned "
           f"{learned['AND+OR']}; with the fixed backward pass both at once learned {fixed}.")
    return Replay("seed003", saw, reports, {}, {
        "learned": learned, "fixed_learned": fixed,
        "predictions": {k: np.round(v, 3).tolist() for k, v in predictions.items()}})


# =========================================================================================
# seed 004: the W3 check, g'(z) for g'(a), the missing 1/m, the complex-step answer
# =========================================================================================
S4_SIZES = (6, 4, 3, 1)
S4_M = 8
S4_EPSILON = 1e-4  # the user's step


def seed004_data(seed: int = SEED) -> tuple[dict, np.ndarray, np.ndarray]:
    """Parameters W1..W3, b1..b3 (small, He-like), X (features × m) and labels Y (1 × m)."""
    rng = np.random.default_rng(seed)
    params = {}
    for k, (n_in, n_out) in enumerate(itertools.pairwise(S4_SIZES), start=1):
        params[f"W{k}"] = rng.standard_normal((n_out, n_in)) * np.sqrt(2 / n_in)
        params[f"b{k}"] = np.zeros((n_out, 1))
    X = rng.standard_normal((S4_SIZES[0], S4_M))
    return params, X, (rng.random((1, S4_M)) > 0.5).astype(float)


def _s4_forward(params: dict, X: np.ndarray) -> dict:
    cache = {"a0": X}
    a = X
    for k in (1, 2, 3):
        z = params[f"W{k}"] @ a + params[f"b{k}"]
        a = _sigmoid(z) if k == 3 else np.maximum(z, 0)  # ReLU keeps Im z where Re z > 0
        cache[f"Z{k}"], cache[f"a{k}"] = z, a
    return cache


def seed004_cost(W3: np.ndarray, seed: int = SEED) -> Any:
    """Mean cross-entropy as a function of W3 alone (the other parameters fixed)."""
    params, X, Y = seed004_data(seed)
    a3 = _s4_forward({**params, "W3": W3}, X)["a3"]
    return -np.sum(Y * np.log(a3) + (1 - Y) * np.log(1 - a3)) / S4_M


def _sigmoid_back(v: np.ndarray) -> np.ndarray:
    """σ'(z) written through the activation: σ(z)(1 - σ(z)) = v(1 - v) with v = σ(z)."""
    return v * (1 - v)


def seed004_gradient(W3: np.ndarray, *, at: str = "z", mean: bool = False,
                     seed: int = SEED) -> np.ndarray:
    """dJ/dW3 by the user's formula; ``at="z"`` feeds Z3 to `_sigmoid_back` (the bug)."""
    params, X, Y = seed004_data(seed)
    cache = _s4_forward({**params, "W3": W3}, X)
    a3 = cache["a3"]
    dz = -(Y / a3 - (1 - Y) / (1 - a3)) * _sigmoid_back(cache["Z3" if at == "z" else "a3"])
    grad = dz @ cache["a2"].T
    return grad / S4_M if mean else grad


def seed004(seed: int = SEED) -> Replay:
    """Replay seed 004: each bug alone, both, the fix, and the complex step."""
    params, _, _ = seed004_data(seed)
    W3 = params["W3"]
    e = np.zeros_like(W3)
    e[0, 2] = S4_EPSILON
    central = (seed004_cost(W3 + e) - seed004_cost(W3 - e)) / (2 * S4_EPSILON)
    t = 1e-20
    complex_step = float(np.imag(seed004_cost(W3 + 1j * t * e / S4_EPSILON)) / t)
    check = {"shapes": [W3.shape], "batch_size": S4_M}
    reports = {name: check_gradient(seed004_cost, lambda w, at=at, mean=mean:
                                    seed004_gradient(w, at=at, mean=mean), W3, **check)
               for name, at, mean in (("user", "z", False), ("mean_only", "z", True),
                                      ("at_a_only", "a", False), ("fixed", "a", True))}
    reports["user_central_1e-4"] = check_gradient(
        seed004_cost, lambda w: seed004_gradient(w), W3, method="central", h=S4_EPSILON,
        **check)
    user = float(seed004_gradient(W3)[0, 2])
    saw = (f"Third element of W3: central difference at 1e-4 gives {central:.9g}, the "
           f"user's backprop {user:.9g}; the complex step gives {complex_step:.9g}, "
           f"agreeing with the central difference to {abs(central - complex_step):.1e}.")
    return Replay("seed004", saw, reports, {"user": abs(user - central) / abs(central)},
                  {"central": central, "complex_step": complex_step, "backprop": user,
                   "fixed": float(seed004_gradient(W3, at="a", mean=True)[0, 2])})


# =========================================================================================
# the study interface
# =========================================================================================
CASES: dict[str, Callable[[], Replay]] = {"seed000": seed000, "seed002": seed002,
                                          "seed003": seed003, "seed004": seed004}


def grid(quick: bool) -> list[dict]:
    """One cell per seed case (the replays are small; `quick` changes nothing)."""
    return [{"key": name} for name in CASES]


def run_cell(cell: dict) -> list[dict]:
    """Replay one case; one row per checked scenario."""
    replay = CASES[cell["key"]]()
    return [{"case": replay.case, "scenario": name, "passed": report.passed,
             "findings": "+".join(report.kinds),
             "max_relative_error": report.max_relative_error,
             "relative_difference": report.relative_difference,
             "user_metric": replay.user_metrics.get(name), "saw": replay.saw}
            for name, report in replay.reports.items()]


def render(rows: list[dict], out: Path) -> str:
    """A table per case: scenario, verdict, findings."""
    if not rows:
        return "No case finished.\n"
    parts = []
    for case in CASES:
        mine = [r for r in rows if r["case"] == case]
        if not mine:
            parts.append(f"## {case}\n\nThis case did not finish (see the failed cells).\n")
            continue
        lines = [f"## {case}", "", mine[0]["saw"], "",
                 f"The walkthrough: `docs/seeds/{case}.md`.", "",
                 "| scenario | passed | findings | max rel. error |", "|---|---|---|---:|"]
        lines += [f"| {r['scenario']} | {r['passed']} | {r['findings']} | "
                  f"{r['max_relative_error']:.3g} |" for r in mine]
        parts.append("\n".join(lines) + "\n")
    return "\n".join(parts)
