"""The user's code as a function of the checked tensors, in any dtype.

`FunctionTarget` substitutes them for the inputs of a callable, `ModuleTarget` for the
parameters (and checked inputs) of a module, on a deep copy, so the user's module is never
touched (a module passed as `fn` too). The copy is the target's own, so the tensors are
put straight into the parameter slots of its submodules (`Slots`: what
``torch.func.functional_call`` does, less its per-call bookkeeping, which costs as much
as a small module's forward), every slot of a tied parameter alike; a forward that writes
into the copy's buffers has them restored before every later call (`_Copies`), so that
the check differentiates one function. Other arguments are copied (converted to the dtype
of the evaluation) once per dtype, or at every call when the forward writes into its
inputs.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

__all__ = ["FunctionTarget", "ModuleTarget", "Slots", "fresh"]


def _convert(value: Any, dtype: torch.dtype) -> Any:
    """A fresh copy of a floating tensor in `dtype`; other values as they are."""
    if isinstance(value, torch.Tensor) and (value.is_floating_point() or value.is_complex()):
        return value.detach().to(dtype=dtype, copy=True)
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    return value


class _Arguments:
    """The arguments of the user's call, copied (converted to a dtype) once per dtype; a
    forward that writes into its inputs gets fresh copies at every call (`fresh`)."""

    def __init__(self, inputs: tuple[Any, ...], checked: tuple[int, ...]):
        self.inputs, self.checked = inputs, set(checked)
        self.fresh = False
        self._cache: dict = {}

    def get(self, dtype: torch.dtype | None) -> list[Any]:
        """A list of arguments (checked positions still to be filled in); None: as given."""
        if self.fresh or dtype is None or dtype not in self._cache:
            args = [None if i in self.checked else
                    (fresh(a) if dtype is None else _convert(a, dtype))
                    for i, a in enumerate(self.inputs)]
            if self.fresh or dtype is None:
                return args
            self._cache[dtype] = args
        return list(self._cache[dtype])


class _Copies:
    """The deep copies of one module, one per dtype (None: its own), each with the slots
    of the checked parameters and a snapshot of its buffers. A forward that writes into
    its buffers (BatchNorm's running statistics in train mode, a power iteration's
    vector) would make every evaluation see another function; once `note_state` has seen
    that, every call starts from the buffers the caller's module holds."""

    def __init__(self, module: torch.nn.Module, params: tuple[str, ...]):
        self.module, self.params = module, params
        self.restore = False
        self.written: tuple[str, ...] = ()  # the buffers a forward wrote into, by name
        self._made: dict = {}  # dtype -> (copy, its Slots, [(name, buffer, snapshot)])

    def get(self, dtype: torch.dtype | None) -> tuple[torch.nn.Module, Slots]:
        if dtype not in self._made:
            work = _converted(self.module, dtype)
            buffers = [(name, b, b.detach().clone()) for name, b in work.named_buffers()]
            self._made[dtype] = (work, Slots(work, self.params), buffers)
        work, slots, buffers = self._made[dtype]
        if self.restore:
            with torch.no_grad():
                for _, b, saved in buffers:
                    b.copy_(saved)
        return work, slots

    def note_state(self) -> None:
        """Whether the forward so far wrote into a copy's buffers (then restore them)."""
        written = {name for _, _, buffers in self._made.values()
                   for name, b, saved in buffers if not torch.equal(b, saved)}
        self.written = tuple(sorted(set(self.written) | written))
        self.restore = bool(self.written)


@dataclass
class FunctionTarget:
    """``fn(*inputs)`` with the inputs at positions `checked` replaced (a module `fn` is
    called on deep copies, never itself)."""

    fn: Callable[..., Any]
    inputs: tuple[Any, ...]
    checked: tuple[int, ...]
    args: _Arguments = field(init=False)
    copies: _Copies | None = field(init=False)

    def __post_init__(self) -> None:
        self.args = _Arguments(self.inputs, self.checked)
        self.copies = _Copies(self.fn, ()) if isinstance(self.fn, torch.nn.Module) else None

    def call(self, tensors: Sequence[torch.Tensor], dtype: torch.dtype, *,
             convert_others: bool) -> tuple[Any, list[Any]]:
        """The outputs, and the arguments the call received (to see in-place changes)."""
        args = self.args.get(dtype if convert_others else None)
        for pos, t in zip(self.checked, tensors):
            args[pos] = t
        return self._fn(dtype)(*args), args

    def _fn(self, dtype: torch.dtype) -> Callable[..., Any]:
        if self.copies is None:
            return self.fn
        own = dtype == _module_dtype(self.fn)
        return self.copies.get(None if own else dtype)[0]

    def note_state(self) -> None:
        if self.copies is not None:
            self.copies.note_state()


@dataclass
class ModuleTarget:
    """``module(*inputs)`` with the named parameters and checked inputs replaced."""

    module: torch.nn.Module
    inputs: tuple[Any, ...]
    params: tuple[str, ...]
    checked: tuple[int, ...]
    args: _Arguments = field(init=False)
    copies: _Copies = field(init=False)

    def __post_init__(self) -> None:
        self.args = _Arguments(self.inputs, self.checked)
        self.copies = _Copies(self.module, self.params)

    def call(self, tensors: Sequence[torch.Tensor], dtype: torch.dtype, *,
             convert_others: bool) -> tuple[Any, list[Any]]:
        k = len(self.params)
        args = self.args.get(dtype if convert_others else None)
        for pos, t in zip(self.checked, tensors[k:]):
            args[pos] = t
        module, slots = self.copies.get(dtype if convert_others else None)
        slots.fill(tensors[:k])
        return module(*args), args

    def note_state(self) -> None:
        self.copies.note_state()


class Slots:
    """The places of named parameters in a module: every ``(submodule, attribute)`` that
    holds each (several for a tied weight, which ``named_parameters`` lists once).

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 2))
    >>> net[1].weight = net[0].weight  # tied
    >>> slots = Slots(net, ("0.weight", "0.bias", "1.bias"))
    >>> w = torch.zeros(2, 2); slots.fill([w, torch.zeros(2), torch.zeros(2)])
    >>> net[0].weight is w and net[1].weight is w
    True
    """

    def __init__(self, module: torch.nn.Module, names: Sequence[str]):
        holders: dict[int, list[tuple[torch.nn.Module, str]]] = {}
        for full, p in module.named_parameters(remove_duplicate=False):
            prefix, _, leaf = full.rpartition(".")
            holders.setdefault(id(p), []).append((module.get_submodule(prefix), leaf))
        named = dict(module.named_parameters())
        self.places = [holders[id(named[n])] for n in names]

    def fill(self, tensors: Sequence[torch.Tensor]) -> None:
        """Put ``tensors[i]`` into every slot of parameter i."""
        for places, t in zip(self.places, tensors):
            for owner, leaf in places:
                owner._parameters[leaf] = t


def _converted(module: torch.nn.Module, dtype: torch.dtype | None) -> torch.nn.Module:
    """A deep copy of `module` (in `dtype`, if given); the original is never touched."""
    work = copy.deepcopy(module)
    if dtype is None:
        return work
    with warnings.catch_warnings():  # "complex modules are a new feature": we only evaluate
        warnings.simplefilter("ignore", UserWarning)
        return work.to(dtype)


def fresh(value: Any) -> Any:
    return value.detach().clone() if isinstance(value, torch.Tensor) else value


def _module_dtype(module: torch.nn.Module) -> torch.dtype | None:
    p = next(iter(module.parameters()), None)
    return None if p is None else p.dtype
