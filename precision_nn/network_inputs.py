"""Validation of an `MLP`'s arguments and data, in one place at the entry (the hot paths
re-check nothing): layer sizes, activations and their pairing with the loss, λ, the
initial parameters, and X, Y and parameter vectors given to its methods. Each error names
the parameter, the rule, the value and the fix."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from precision_nn import layout
from precision_nn.activations import Activation, get_activation
from precision_nn.numbers import NumberSystem

__all__ = ["INITS", "PROBABILITY_OUTPUTS", "check_X", "check_data", "check_hidden",
           "check_l2", "check_layer_sizes", "check_pairing", "check_params",
           "initial_params"]

# outputs that stay inside (0, 1), as cross-entropy's logarithms need
PROBABILITY_OUTPUTS = {"cross_entropy": {"sigmoid", "erf_logistic"},
                       "softmax_cross_entropy": {"softmax"}}
INITS = ("normal", "debug")


def check_l2(ns: NumberSystem, l2: Any) -> Any:
    """λ as a number of `ns`, or a ValueError unless it is finite and >= 0."""
    value = ns.scalar(l2)
    real = np.real(ns.to_float(np.asarray([value], dtype=object)
                               if not hasattr(value, "dtype") else value))
    if not np.all(np.isfinite(real)) or np.any(real < 0):
        raise ValueError(f"`l2` must be a finite number >= 0; got {l2!r}.")
    return value


def initial_params(net: Any, init: Any, seed: int) -> np.ndarray:
    """The parameters `init` asks for (see `MLP`), validated."""
    ns = net.numbers
    if isinstance(init, str):
        if init not in INITS:
            raise ValueError(f"`init` must be one of {list(INITS)} or a flat vector of "
                             f"{net.n_params} parameters; got {init!r}.")
        if init == "debug":
            return _debug_params(net)
        rng = np.random.default_rng(seed)
        mats = [rng.standard_normal(shape) / np.sqrt(shape[1]) for shape in net.shapes]
        return ns.asarray(layout.flatten(mats))
    return check_params(net, ns.asarray(np.asarray(init, dtype=object)
                                        if is_object_like(init) else init), name="init")


def _debug_params(net: Any) -> np.ndarray:
    """sin(1..n)/10 per matrix, column-major (the Coursera ML debug initialisation)."""
    ns = net.numbers
    mats = []
    with ns.context():
        for rows, cols in net.shapes:
            ramp = ns.sin(ns.asarray(np.arange(1, rows * cols + 1))) / 10
            mats.append(np.asarray(ramp).reshape(rows, cols, order="F"))
    return layout.flatten(mats)


def check_params(net: Any, params: Any, *, name: str = "params") -> np.ndarray:
    """`params` (None: the network's own) as an array of the network's system with
    `n_params` entries along its last axis, all finite."""
    if params is None:
        return net.params
    ns = net.numbers
    arr = np.asarray(params, dtype=object) if isinstance(params, list) else \
        np.asarray(params)
    if isinstance(params, list):
        arr = ns.asarray(arr)
    foreign = ns.foreign_type(arr)
    if foreign is not None:
        raise TypeError(
            f"`{name}` holds {foreign} values but the network computes in "
            f"{ns.name!r}; convert with `net.numbers.asarray({name})` or use "
            f"`net.to(...)` — mixing number systems would change precision silently."
        )
    if arr.ndim < 1 or arr.shape[-1] != net.n_params:
        raise ValueError(f"`{name}` must have {net.n_params} entries along its last "
                         f"axis for layers {net.layer_sizes}; got shape {arr.shape}.")
    check_finite(ns, arr, name)
    return arr


def check_X(net: Any, X: Any) -> np.ndarray:
    """`X` as an (m, n_in) array of the network's system, m >= 1, all finite."""
    ns = net.numbers
    arr = ns.asarray(X)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != net.layer_sizes[0]:
        raise ValueError(f"`X` must have shape (m, {net.layer_sizes[0]}) — one example "
                         f"per row; got shape {np.shape(X)}.")
    if arr.shape[0] == 0:
        raise ValueError(f"`X` must hold at least one example (m >= 1; the loss is a "
                         f"mean over examples); got shape {np.shape(X)}. Pass one "
                         f"example per row.")
    check_finite(ns, arr, "X")
    return arr


def check_data(net: Any, X: Any, Y: Any) -> tuple[np.ndarray, np.ndarray]:
    """`X` as in `check_X` and `Y` as (m, n_out), finite and in the loss's target range."""
    X = check_X(net, X)
    ns, n_out = net.numbers, net.layer_sizes[-1]
    arr = ns.asarray(Y)
    if arr.ndim == 1 and n_out == 1 and arr.shape[0] == X.shape[0]:
        arr = arr[:, None]
    elif arr.ndim == 1 and X.shape[0] == 1:
        arr = arr[None, :]
    if arr.shape != (X.shape[0], n_out):
        raise ValueError(f"`Y` must have shape (m, n_out) = {(X.shape[0], n_out)} to match "
                         f"`X`; got shape {np.shape(Y)} (one-hot encode class labels).")
    check_finite(ns, arr, "Y")
    if net.loss_fn.target_range is not None:
        lo, hi = net.loss_fn.target_range
        values = np.real(ns.to_float(arr))
        if not (values.min() >= lo and values.max() <= hi):
            raise ValueError(f"`Y` must lie in [{lo}, {hi}] for loss "
                             f"{net.loss_fn.name!r}; got values from {values.min()} to "
                             f"{values.max()}.")
    return X, arr


def is_object_like(values: Any) -> bool:
    """Lists, tuples and object arrays: converted element by element."""
    return isinstance(values, (list, tuple)) or (isinstance(values, np.ndarray)
                                                 and values.dtype == object)


def check_finite(ns: NumberSystem, arr: np.ndarray, name: str) -> None:
    """A ValueError naming the first non-finite entry of `arr` (argument `name`)."""
    finite = np.asarray(ns.isfinite(arr), dtype=bool)
    if not np.all(finite):
        where = tuple(int(i) for i in np.argwhere(~finite)[0])
        raise ValueError(f"`{name}` must be finite; found {arr[where]!r} at index {where}.")


def check_layer_sizes(layer_sizes: Sequence[int]) -> list[int]:
    """At least two positive integers, input first."""
    sizes = list(layer_sizes) if isinstance(layer_sizes, (list, tuple)) else None
    if sizes is None or len(sizes) < 2 or not all(
            isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= 1
            for s in sizes):
        raise ValueError("`layer_sizes` must be a list of at least two positive integers "
                         f"(input first); got {layer_sizes!r}.")
    return [int(s) for s in sizes]


def check_hidden(hidden: str) -> Activation:
    """The hidden activation by name; it must be elementwise (not softmax)."""
    act = get_activation(hidden, argument="hidden")
    if not act.elementwise:
        raise ValueError(f"`hidden` must be elementwise; {hidden!r} is for the output only.")
    return act


def check_pairing(output: str, loss: str) -> None:
    """Cross-entropy losses need outputs in (0, 1)."""
    allowed = PROBABILITY_OUTPUTS.get(loss)
    if allowed is not None and output not in allowed:
        raise ValueError(f"loss {loss!r} needs an output in {sorted(allowed)} (its logarithms "
                         f"need probabilities); got output={output!r}.")
