"""The entry checks of `precision_nn.torch`: options, the tensors to check, their dtype.

Every message names the parameter (``input 1``, ``fc1.weight``), the rule, the value and
the fix. A checked tensor must hold finite values (a NaN or inf entry cannot be perturbed,
and its gradient is not defined) and at least one entry overall; an empty checked tensor
has no gradient entry and is left out of the blocks, like a frozen parameter.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from precision_nn.adapters.torch.tensors import NUMBERS
from precision_nn.gradcheck import METHODS

__all__ = ["batch_size_of", "check_dtype", "check_options", "checked_inputs",
           "checked_parameters", "non_finite_from_inputs", "require_finite"]

_SUPPORTED = sorted(str(d) for d in NUMBERS)


def check_options(fn: Any, *, method: Any, directions: Any, numbers: Any, seed: Any) -> None:
    """The options shared by `check_function` and `check_module`."""
    if not callable(fn):
        raise TypeError(f"`fn` must be callable; got {type(fn).__name__}.")
    if method not in METHODS:
        raise ValueError(f"`method` must be one of {list(METHODS)}; got {method!r}.")
    if numbers is not None and numbers not in NUMBERS.values():
        raise ValueError(f"`numbers` must be None (the tensors' dtype) or one of "
                         f"{sorted(NUMBERS.values())}; got {numbers!r}.")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"`seed` must be a non-negative integer; got {seed!r}.")
    if directions is not None and (isinstance(directions, bool) or
                                   not isinstance(directions, int) or directions < 1):
        raise ValueError(f"`directions` must be a positive integer or None; got "
                         f"{directions!r}.")


def _non_finite(t: torch.Tensor) -> str | None:
    """"nan at 1 entry ([1])" for a tensor with non-finite entries, else None."""
    if bool(torch.isfinite(t.detach()).all()):  # (one reduction in the usual case)
        return None
    bad = ~torch.isfinite(t.detach())
    count = int(bad.sum())
    where = ", ".join(str(w) for w in bad.nonzero()[:3].tolist()) + (" …" if count > 3 else "")
    values = "/".join(sorted({str(v) for v in t.detach()[bad].flatten()[:8].tolist()}))
    return f"{values} at {count} entr{'y' if count == 1 else 'ies'} ({where})"


def require_finite(name: str, t: torch.Tensor) -> None:
    """A tensor whose gradient is checked holds finite values only."""
    found = _non_finite(t)
    if found is not None:
        raise ValueError(f"`{name}` holds {found}: the gradient is not defined there and "
                         "the check cannot perturb it. Fix: check at finite values (e.g. "
                         "torch.nan_to_num, or the point before the overflow), or set "
                         "requires_grad=False on it if it is not trained.")


def non_finite_from_inputs(outputs: Sequence[torch.Tensor], inputs: Sequence[Any],
                           checked: Sequence[int]) -> None:
    """Refuse a check whose outputs are not finite because an input that is not checked
    holds NaN or inf (a -inf mask whose outputs stay finite is fine): every comparison
    would be with NaN, and the generic findings would blame the gradient code."""
    if all(bool(torch.isfinite(o.detach()).all()) for o in outputs):
        return
    for i, t in enumerate(inputs):
        if i in checked or not isinstance(t, torch.Tensor) or not (
                t.is_floating_point() or t.is_complex()):
            continue
        found = _non_finite(t)
        if found is not None:
            raise ValueError(f"`input {i}` holds {found} and the output is not finite, so "
                             "there is nothing to compare the gradient with. Fix: pass "
                             "finite values (e.g. torch.nan_to_num), or mask them so that "
                             "the output stays finite (torch.where, not a multiplication "
                             "by 0).")


def checked_inputs(inputs: tuple[Any, ...], *, required: bool,
                   module: bool = False) -> tuple[int, ...]:
    """Positions of the floating inputs that require grad and have entries (`required`:
    at least one, else there is nothing to check)."""
    wanted = tuple(i for i, t in enumerate(inputs)
                   if isinstance(t, torch.Tensor) and t.requires_grad)
    for i in wanted:
        if inputs[i].dtype not in NUMBERS:
            raise ValueError(f"`input {i}` requires grad but has dtype {inputs[i].dtype}; "
                             f"the check supports {_SUPPORTED}. Fix: pass it in one of "
                             "those dtypes, or set requires_grad=False on it.")
        require_finite(f"input {i}", inputs[i])
    checked = tuple(i for i in wanted if inputs[i].numel() > 0)
    if required and not checked:
        if wanted:
            shapes = ", ".join(f"`input {i}` {tuple(inputs[i].shape)}" for i in wanted)
            raise ValueError(f"the tensors that require grad have no entries ({shapes}), "
                             "so there is nothing to check. Fix: pass tensors with at least "
                             "one entry.")
        whom = "no parameter of `module` and no input" if module else "no input"
        raise ValueError(f"{whom} requires grad, so there is nothing to check; call "
                         "x.requires_grad_() on the tensors whose gradient you want checked"
                         + (" (or p.requires_grad_() on frozen parameters)." if module
                            else "."))
    return checked


def checked_parameters(module: torch.nn.Module) -> list[tuple[str, torch.Tensor]]:
    """The parameters that require grad and have entries, named as torch names them (a
    tied weight once, under its first name)."""
    params = []
    for name, p in module.named_parameters():
        if not p.requires_grad:
            continue
        if p.dtype not in NUMBERS:
            raise ValueError(f"`{name}` requires grad but has dtype {p.dtype}; the check "
                             f"supports {_SUPPORTED}. Fix: convert the module (e.g. "
                             "module.float()), or set requires_grad=False on it.")
        require_finite(name, p)
        if p.numel() > 0:
            params.append((name, p))
    return params


def check_dtype(point: Sequence[torch.Tensor], names: Sequence[str],
                numbers: str | None) -> torch.dtype:
    """The dtype the check runs in: `numbers`, else the one the checked tensors share."""
    if numbers is not None:
        return {v: k for k, v in NUMBERS.items()}[numbers]
    dtypes = {p.dtype for p in point}
    if len(dtypes) > 1:
        found = ", ".join(f"`{n}` {p.dtype}" for n, p in zip(names, point))
        raise ValueError(f"the checked tensors must share one dtype, the one the check runs "
                         f"in; got {found}. Pass numbers='float32' (or another) to check "
                         "all of them in one dtype.")
    return point[0].dtype


def batch_size_of(batch_size: Any, inputs: tuple[Any, ...]) -> int | None:
    """`batch_size`, else the leading dimension of the first tensor input of rank ≥ 2."""
    if batch_size is not None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"`batch_size` must be a positive integer or None; got "
                             f"{batch_size!r}.")
        return batch_size
    for t in inputs:
        if isinstance(t, torch.Tensor) and t.dim() >= 2 and t.shape[0] >= 2:
            return int(t.shape[0])
    return None
