"""Seed 000: a Decimal network whose sigmoid goes through a binary float, checked at h = 0.99399.

The user's network holds 28-digit Decimals (like .NET's ``decimal``), but its sigmoid is
computed in binary float and converted back. It is checked with central differences at
the step 0.99399 and the user's relative distance |a - n|/(|a| + |n|) <= 0.1, on the
"regression 1" case: constant input -0.2 into five hidden nodes without bias, one output,
half squared error against 1.0. All five hidden nodes share one weight array, so moving
one of its weights moves that weight in every node. Walkthrough: ``docs/seeds/seed000.md``.
Seed 001 is the same question asked in Chinese; its replay is this one.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from precision_nn.gradcheck import check_gradient
from precision_nn.numbers import number_system
from studies.seeds.replay import SEED, Replay

CASE = "seed000"
READING = (
    "Three faults stack up. The check moves a weight of the shared array, which moves it "
    "in all five nodes, while the user compares one node's gradient, so the two differ by "
    "the constant factor w₂[j]/Σw₂ (finding `scale`); the step 0.99399 is far beyond the "
    "optimal step (`step_too_large`); and the sigmoid computed through a binary float "
    "makes the loss far noisier than 28-digit arithmetic allows (`precision_loss`), which "
    "no step can cure. With one weight array per node and the sigmoid in Decimal "
    "(`fixed`) the gradient matches, and the shared array passes too once its gradient "
    "sums over the nodes (`fixed_shared`).")


NUMBERS = number_system("decimal:28")  # .NET decimal: 28-29 significant digits
INPUT, TARGET = "-0.2", "1.0"
HIDDEN = INPUTS = 5
STEP = "0.99399"
DISTANCE = 0.1  # the user's pass mark for |a - n| / (|a| + |n|)
# the parameters as the user's test builds them: one weight array that every hidden node
# shares (one row of 5 weights), then the output node's 5 weights
SHARED_SHAPES = [(1, INPUTS), (1, HIDDEN)]
# the same network with one weight array per hidden node (the fix of the aliasing)
SHAPES = [(HIDDEN, INPUTS), (1, HIDDEN)]


def _sigmoid_float(z: np.ndarray, ns: Any = NUMBERS) -> np.ndarray:
    """The bug: the sigmoid computed in binary float and converted back to Decimal."""
    return np.frompyfunc(lambda v: ns.scalar(1.0 / (1.0 + math.exp(-float(v)))), 1, 1)(z)


def _sigmoid_decimal(z: np.ndarray, ns: Any = NUMBERS) -> np.ndarray:
    """The fix: the sigmoid in the network's own arithmetic (Decimal: exp correctly
    rounded to 28 digits; any other system, e.g. arb balls for a proof, works alike)."""
    return ns.one / (ns.one + ns.exp(-z))


SIGMOIDS = {"float": _sigmoid_float, "decimal": _sigmoid_decimal}


def _matrices(params: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(W1, W2) from 10 shared parameters (W1's rows all the same array) or 30 own ones."""
    w2 = params[-HIDDEN:].reshape(1, HIDDEN)
    if params.size == INPUTS + HIDDEN:
        return np.tile(params[:INPUTS], (HIDDEN, 1)), w2
    return params[:-HIDDEN].reshape(HIDDEN, INPUTS), w2


def _forward(params: np.ndarray, sigmoid: str, ns: Any = NUMBERS
             ) -> tuple[np.ndarray, np.ndarray]:
    act = SIGMOIDS[sigmoid]
    W1, W2 = _matrices(params)
    x = ns.asarray([INPUT] * INPUTS)
    with ns.context():
        hidden = act(W1 @ x, ns)
        return hidden, act(W2 @ hidden, ns)


def loss(params: np.ndarray, *, sigmoid: str = "float", numbers: Any = NUMBERS) -> Any:
    """½(1 - o)² of the regression-1 network (no biases), shared or own hidden weights,
    computed in `numbers` (the user's decimal:28 by default)."""
    ns = numbers
    _, out = _forward(params, sigmoid, ns)
    with ns.context():
        return (ns.scalar(TARGET) - out[0]) ** 2 / 2


def node_gradients(params: np.ndarray, *, sigmoid: str = "float"
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Backprop as the user wrote it, one weight array per node: (5×5 hidden, 5 output).

    δ_out = (o - y)·o(1 - o), δ_j = δ_out·w2_j·h_j(1 - h_j), ∂L/∂W1[j, i] = δ_j·x_i.
    """
    ns = NUMBERS
    hidden, out = _forward(params, sigmoid)
    _, W2 = _matrices(params)
    x = ns.asarray([INPUT] * INPUTS)
    with ns.context():
        delta_out = (out - ns.scalar(TARGET)) * out * (ns.one - out)
        delta_hidden = (W2.T @ delta_out) * hidden * (ns.one - hidden)
        return np.outer(delta_hidden, x), np.outer(delta_out, hidden).ravel()


def gradient(params: np.ndarray, *, sigmoid: str = "float", node: int | None = 0
             ) -> np.ndarray:
    """The gradient in the layout of `params`.

    For 30 own weights: every node's row. For the 10 shared ones: the row of hidden node
    `node` (what the user's test compares with the derivative for the shared array), or
    with ``node=None`` the sum over the nodes (the true derivative for a shared array).
    """
    ns = NUMBERS
    hidden, output = node_gradients(params, sigmoid=sigmoid)
    if params.size != INPUTS + HIDDEN:
        return np.concatenate([hidden.ravel(), output])
    with ns.context():
        first = hidden.sum(axis=0) if node is None else hidden[node]
    return np.concatenate([first, output])


def initial_params(seed: int = SEED, *, shared: bool = True) -> np.ndarray:
    """Random weights 1 - 2·U(0,1) as doubles, converted exactly to Decimal (like the user)."""
    rng = np.random.default_rng(seed)
    w1, w2 = 1 - 2 * rng.random(INPUTS), 1 - 2 * rng.random(HIDDEN)
    values = np.concatenate([w1, w2]) if shared else \
        np.concatenate([np.tile(w1, HIDDEN), w2])
    return NUMBERS.asarray(values)


def _user_numeric(params: np.ndarray, i: int, h: Any) -> Any:
    ns = NUMBERS
    plus, minus = params.copy(), params.copy()
    plus[i] += h
    minus[i] -= h
    diff = loss(plus) - loss(minus)
    diff = diff if diff != 0 else ns.scalar("1e-20")  # the user's guard against 0
    return diff / (2 * h)


def user_distances(params: np.ndarray) -> np.ndarray:
    """The user's test: each node's own gradient entry against central differences at
    0.99399 that move the weight array the node shares; |a - n|/(|a| + |n|) per weight."""
    ns = NUMBERS
    hidden, output = node_gradients(params)
    h = ns.scalar(STEP)
    pairs = [(hidden[j, i], i) for j in range(HIDDEN) for i in range(INPUTS)]
    pairs += [(output[k], INPUTS + k) for k in range(HIDDEN)]
    out = []
    with ns.context():
        for a, i in pairs:
            n = _user_numeric(params, i, h)
            out.append(abs(a - n) / (abs(a) + abs(n)))
    return ns.to_float(np.array(out, dtype=object))


def replay(seed: int = SEED) -> Replay:
    """Replay seed 000: a shared weight array, a float sigmoid and a step of 0.99399."""
    shared, own = initial_params(seed), initial_params(seed, shared=False)
    dist = user_distances(shared)
    ns = NUMBERS
    decimal = {"sigmoid": "decimal"}
    reports = {
        "user": check_gradient(loss, gradient, shared, method="central",
                               h=STEP, shapes=SHARED_SHAPES, numbers=ns),
        "own_weights_user_step": check_gradient(
            loss, gradient, own, method="central", h=STEP,
            shapes=SHAPES, numbers=ns),
        "own_weights_float_sigmoid": check_gradient(loss, gradient, own,
                                                    shapes=SHAPES, numbers=ns),
        "fixed": check_gradient(lambda p: loss(p, **decimal),
                                lambda p: gradient(p, **decimal), own,
                                shapes=SHAPES, numbers=ns),
        "fixed_shared": check_gradient(lambda p: loss(p, **decimal),
                                       lambda p: gradient(p, node=None, **decimal),
                                       shared, shapes=SHARED_SHAPES, numbers=ns),
    }
    failing = int(np.sum(~(dist <= DISTANCE)))
    w2 = ns.to_float(shared[INPUTS:])
    saw = (f"With central differences at h = {STEP} and the pass mark "
           f"|a - n|/(|a| + |n|) <= {DISTANCE}, {failing} of {dist.size} weights fail "
           f"(largest distance {float(np.max(dist)):.3g}); all five hidden nodes share one "
           "weight array, so moving one of its weights moves that weight in every node.")
    return Replay(CASE, saw, reports, {"user": float(np.max(dist))},
                  {"failing_weights": failing, "distances": dist.tolist(),
                   "shared_factor": float(w2[0] / np.sum(w2))})
