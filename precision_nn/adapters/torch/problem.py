"""What a torch check differentiates, and how the user's backward is run.

A target (`targets`) maps the checked tensors to the outputs of the user's code in any
dtype. The objective is ``loss(outputs)`` or ``⟨v, outputs⟩`` with seeded random
cotangents ``v``.

`backward_pass` runs the user's code once in the check's dtype and its backward three or
four times on that graph (vector-Jacobian products for ``v``, again for ``v``, and for
``2v``, where a custom Function's own backward called for ``v`` is the repeat; with a
loss, its gradient twice and the products for ``v`` and ``2v``):
the gradient under test, the repeat that shows nondeterminism, and the pair that shows a
backward ignoring ``grad_output``. `Objective` evaluates the scalar at a flat point in
float64 or complex128, the dtype of the point (on converted deep copies).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from precision_nn.adapters.torch.rng import Rng
from precision_nn.adapters.torch.targets import fresh
from precision_nn.adapters.torch.tensors import REFERENCE_DTYPES, TensorBlocks
from precision_nn.adapters.torch.validation import non_finite_from_inputs

__all__ = ["BackwardPass", "Objective", "backward_pass", "cotangents", "floating_outputs",
           "objective_value"]


def floating_outputs(outputs: Any) -> list[torch.Tensor]:
    """The floating (or complex) tensors among the outputs, in order, also inside nested
    tuples, lists and dicts (an LSTM's ``(out, (h, c))``, a dict of named outputs)."""
    if isinstance(outputs, torch.Tensor):
        return [outputs] if outputs.is_floating_point() or outputs.is_complex() else []
    if isinstance(outputs, Mapping):
        outputs = list(outputs.values())
    if isinstance(outputs, (tuple, list)):
        return [t for item in outputs for t in floating_outputs(item)]
    return []


def cotangents(outputs: Sequence[torch.Tensor], seed: int, salt: int) -> list[torch.Tensor]:
    """Seeded standard-normal cotangents, one per output, in its dtype and on its device."""
    rng = np.random.default_rng([seed, salt])
    return [torch.from_numpy(rng.standard_normal(tuple(o.shape))).to(o.dtype).to(o.device)
            for o in outputs]


def objective_value(outputs: Any, loss: Callable[[Any], Any] | None,
                    v: Sequence[torch.Tensor]) -> torch.Tensor:
    """``loss(outputs)``, or ``Σ_k ⟨v_k, output_k⟩`` (no conjugate: complex-step safe)."""
    if loss is not None:
        value = loss(outputs)
        if not isinstance(value, torch.Tensor) or value.numel() != 1:
            raise ValueError(f"`loss` must return a scalar tensor; got {_describe(value)}. "
                             "Reduce it, e.g. loss=lambda out: out.pow(2).mean().")
        return value.reshape(())
    outs = floating_outputs(outputs)
    total = (v[0] * outs[0]).sum()
    for vk, o in zip(v[1:], outs[1:]):
        total = total + (vk * o).sum()
    return total


def _describe(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)}"
    return type(value).__name__


@dataclass(frozen=True)
class BackwardPass:
    """The user's gradients in the check dtype (flat numpy float64, exact), and what
    the forward did."""

    gradient: np.ndarray
    repeat: np.ndarray
    other: np.ndarray | None  # for the doubled cotangent 2v (None: outputs not differentiable)
    first: np.ndarray | None  # the VJP for v when the gradient is a loss's (else = gradient)
    missing: tuple[int, ...]  # blocks that received None
    modified: tuple[int, ...]  # positions of inputs the forward modified in place
    raw: list[Any]  # what a custom Function's backward returned, before torch cast it
    v: list[torch.Tensor]  # the cotangents of the outputs (the objective's, without a loss)
    outputs: tuple[torch.Tensor, ...] = ()  # the floating outputs of that forward, detached


def backward_pass(target: Any, point: Sequence[torch.Tensor], blocks: TensorBlocks, *,
                  loss: Callable[[Any], Any] | None, seed: int, rng: Rng,
                  convert: bool = False) -> BackwardPass:
    """One forward in the check dtype, then the user's backward on that graph (`convert`:
    the other inputs and the module converted to that dtype, when it is not theirs)."""
    tensors = [p.detach().clone().requires_grad_(True) for p in point]
    rng.reset()
    before = [fresh(a) for a in target.inputs]
    outputs, args = target.call(tensors, point[0].dtype, convert_others=convert)
    rng.note_use()
    target.note_state()  # (a forward that wrote into buffers: each later call restores them)
    outs = floating_outputs(outputs)
    if not outs:
        raise ValueError("the call returns no floating-point tensor, so there is no gradient "
                         "to check; return the tensor(s) the backward differentiates.")
    non_finite_from_inputs(outs, target.inputs, target.checked)
    v1 = cotangents(outs, seed, 1)
    v2 = [2 * v for v in v1]  # exactly doubled: a linear backward returns exactly twice
    raw = _raw_backward(target, outs, v1)
    vjp = _vjp(tensors, outs)
    if loss is None:
        # a custom Function's own backward, already called for v, is the repeat: torch's
        # VJP is that call's result cast to the inputs' dtypes (exact for the comparison)
        grads = [vjp(v1)]
        grads.append([raw[p] if p < len(raw) else None for p in target.checked] if raw
                     else vjp(v1))
        first = None
    else:
        value = objective_value(outputs, loss, v1)
        grads = [_grad(value, tensors, None), _grad(value, tensors, None)]
        first = vjp(v1)
    other = vjp(v2)
    missing = tuple(i for i, g in enumerate(grads[0]) if g is None)
    modified = _modified(before, args)
    target.args.fresh = bool(modified)
    return BackwardPass(_flat(grads[0], point), _flat(grads[1], point),
                        None if other is None else _flat(other, point),
                        None if first is None else _flat(first, point), missing,
                        modified, raw, v1, tuple(o.detach() for o in outs))


def _vjp(tensors: list[torch.Tensor], outs: list[torch.Tensor]):
    diff = [(o, k) for k, o in enumerate(outs) if o.requires_grad]

    def vjp(v: list[torch.Tensor]) -> list[torch.Tensor | None] | None:
        if not diff:
            return None
        return _grad([o for o, _ in diff], tensors, [v[k] for _, k in diff])

    return vjp


def _grad(outputs: Any, inputs: list[torch.Tensor], grad_outputs: Any) -> list[Any]:
    try:
        return list(torch.autograd.grad(outputs, inputs, grad_outputs=grad_outputs,
                                        retain_graph=True, allow_unused=True))
    except RuntimeError as exc:
        if "invalid gradient" in str(exc):
            raise ValueError(f"the backward returned a gradient of the wrong shape: {exc}. "
                             "Each gradient must have the shape of the tensor it belongs "
                             "to (a transposed weight gradient is the usual slip).") from exc
        raise


def _flat(grads: Sequence[torch.Tensor | None], point: Sequence[torch.Tensor]) -> np.ndarray:
    parts = []
    for g, p in zip(grads, point):
        g = torch.zeros_like(p) if g is None else g
        parts.append(_as_float64(g).ravel())
    return np.concatenate(parts)


def _as_float64(t: torch.Tensor) -> np.ndarray:
    t = t.detach().cpu()
    return (t.real if t.is_complex() else t).to(torch.float64).numpy()


def _modified(before: list[Any], after: list[Any]) -> tuple[int, ...]:
    """Positions of tensor inputs whose values the forward changed (NaN equals NaN)."""
    return tuple(pos for pos, (b, a) in enumerate(zip(before, after))
                 if isinstance(b, torch.Tensor) and isinstance(a, torch.Tensor)
                 and not torch.equal(torch.nan_to_num(b.detach()), torch.nan_to_num(a.detach())))


def _raw_backward(target: Any, outs: list[torch.Tensor], v: list[torch.Tensor]) -> list[Any]:
    """What a custom `Function`'s backward returns before torch validates and casts it,
    when `fn` is ``SomeFunction.apply`` with one output (else an empty list)."""
    owner = getattr(getattr(target, "fn", None), "__self__", None)
    if not (isinstance(owner, type) and issubclass(owner, torch.autograd.Function)):
        return []
    if len(outs) != 1 or not hasattr(outs[0].grad_fn, "_forward_cls"):
        return []
    with torch.no_grad():
        raw = outs[0].grad_fn.apply(v[0])
    raw = list(raw) if isinstance(raw, (tuple, list)) else [raw]
    _check_shapes(raw, target.inputs, target.checked)
    return raw


def _check_shapes(raw: list[Any], inputs: Sequence[Any], checked: Sequence[int]) -> None:
    """A gradient of another shape than its input leaves nothing to compare: refuse it."""
    for pos in checked:
        g = raw[pos] if pos < len(raw) else None
        shape = tuple(inputs[pos].shape)
        if isinstance(g, torch.Tensor) and tuple(g.shape) != shape:
            hint = " (transposed?)" if tuple(g.shape) == shape[::-1] else ""
            raise ValueError(f"The backward returns a gradient of shape {tuple(g.shape)} for "
                             f"`input {pos}` of shape {shape}{hint}; it must return one "
                             "gradient of the input's shape per input.")


class Objective:
    """The scalar objective of a flat point, evaluated in float64 or complex128.

    Complex points (the complex step) run in complex128, real ones in float64 — exact for
    the check's dtype and every wider one it may ask for; the value is returned rounded
    to the point's dtype.
    If the user's code cannot run in the reference dtype (it mixes in tensors of its own
    dtype), it runs in the check's dtype instead and the check's own error model applies.
    """

    def __init__(self, target: Any, blocks: TensorBlocks, *, loss: Any, rng: Rng,
                 device: torch.device, dtype: torch.dtype, v: list[torch.Tensor]):
        self.target, self.blocks, self.loss, self.rng = target, blocks, loss, rng
        self.device, self.dtype, self.v = device, dtype, v
        self.fallback: str | None = None
        self._v: dict = {}
        self._known: tuple[np.ndarray, float] | None = None  # the last float64 point, value

    def __call__(self, x: Any) -> Any:
        arr = np.asarray(x)
        if arr.ndim == 2:  # a stack of points (the evaluator's batches): one value each
            return np.array([self(row) for row in arr], dtype=arr.dtype)
        if arr.dtype.kind == "c":  # the complex step: complex128 or nothing
            return self._value(arr, REFERENCE_DTYPES["complex"])
        if self.fallback is None:
            try:
                return self._value(arr, REFERENCE_DTYPES["real"])
            except RuntimeError as exc:  # e.g. "expected scalar type Float but found Double"
                if "type" not in str(exc).lower():
                    raise
                self.fallback = str(exc)
        return self._value(arr, self.dtype)

    def _value(self, arr: np.ndarray, dtype: torch.dtype) -> Any:
        wide = arr.astype(np.complex128 if dtype.is_complex else np.float64)
        flat = torch.from_numpy(wide).to(device=self.device, dtype=dtype)
        tensors = self.blocks.split(flat)
        self.rng.reset()
        with torch.no_grad():
            outputs, _ = self.target.call(tensors, dtype, convert_others=True)
            value = objective_value(outputs, self.loss, self.cotangents_in(dtype)).item()
        if dtype == REFERENCE_DTYPES["real"]:
            self._known = (wide, value)
        # returned in the point's own dtype (rounded once from the wide value), so that the
        # check sees a function of that system when it widens the reference
        return np.asarray(value, dtype=arr.dtype)[()]

    def value_at(self, x: np.ndarray) -> float | None:
        """The float64 value at `x` if the last float64 evaluation was there (the check
        evaluates f(x) first, and the reference's differences need it too), else None."""
        known = self._known
        if known is not None and np.array_equal(known[0], x):
            return known[1]
        return None

    def cotangents_in(self, dtype: torch.dtype) -> list[torch.Tensor]:
        """The cotangents v of the outputs, converted to `dtype` once."""
        if dtype not in self._v:
            self._v[dtype] = [v.to(dtype) for v in self.v]
        return self._v[dtype]


