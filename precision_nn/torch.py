"""Check PyTorch backward passes: `check_function` and `check_module` (extra ``torch``).

Both return the `GradientReport` of `precision_nn.gradcheck.check_gradient`, run on the
flat vector of the tensors that require grad, each a block named as torch names it
(``fc1.weight``; ``input 0`` for the inputs). The check runs in the dtype the user trains
in: the gradient under test is the user's own backward in that dtype, and the tolerance
follows from that dtype's unit roundoff. Where that tolerance cannot tell a bug from the
dtype's rounding, the same backward is checked again in a wider dtype on converted copies
(`adapters.torch.confirm`): bfloat16/float16 in float32 when the tolerance admits more than
a hundredth of the gradient's scale; float32 in float64 when the float32 check fails, or
passes only by the norm-wise part of its allowance somewhere, or with a tolerance above
half an entry's value. A failure there decides and names the bug; a float32 failure that
passes in float64 is reported as float32 rounding (with the measured float32-vs-float64
gap) or, if the two forwards differ beyond rounding, as a dtype-dependent forward, whose
float64 reference differentiates another function (UNDECIDED). Code
that does not run in the wider dtype keeps its own dtype's report. The numerical reference differentiates the
objective on a deep copy converted to float64, or complex128 for the complex step (which
``method="auto"`` takes where every op of the forward supports complex numbers; else
float64 central differences with a measured error bar), each taken where its bar is far
inside the tolerance the dtype needs (`adapters.torch.reference`; otherwise the check's
generic Richardson reference decides). The caller's module and tensors are never
modified: no dtype change, no ``.grad`` left behind, ``requires_grad`` as it was, torch's
RNG state restored, also when the user's code raises (it is reseeded with `seed` before
every evaluation, so dropout draws the same mask each time).

Besides the generic findings, the adapter reports ``ignores_grad_output`` (a backward
that does not multiply by its upstream gradient), ``nondeterministic`` (two backward
calls that differ beyond rounding), inputs modified in place by forward, gradients that
are ``None``, a custom Function's gradient of a narrower dtype, TF32 on CUDA, and
train-mode state: a failed train-mode module whose forward rewrites buffers its output
reads (spectral_norm's power iteration) is checked again in eval mode, and only if that
passes is the failure traced to the buffers.

Install with ``pip install torch==2.13.0`` (the pinned CPU build; a plain ``torch`` may
pull a CUDA build of several GB).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

try:
    import torch
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    raise ImportError("precision_nn.torch needs PyTorch: pip install torch==2.13.0 (the CPU "
                      "build; an unpinned `pip install torch` may pull a CUDA build of "
                      "several GB), or pip install 'precision_nn[torch]'.") from exc

from precision_nn.adapters.torch import findings as tf
from precision_nn.adapters.torch.confirm import (
    CONFIRM_IN,
    Checked,
    decide,
    needs_confirmation,
    not_in_dtype,
    without_cancellation,
)
from precision_nn.adapters.torch.kinks import KINK_MAX, KINK_STEPS, kink_finding
from precision_nn.adapters.torch.problem import Objective, backward_pass, floating_outputs
from precision_nn.adapters.torch.reference import Float64Reference
from precision_nn.adapters.torch.rng import Rng
from precision_nn.adapters.torch.targets import FunctionTarget, ModuleTarget
from precision_nn.adapters.torch.tensors import NUMBERS, TensorBlocks, numbers_of
from precision_nn.adapters.torch.validation import (
    batch_size_of,
    check_dtype,
    check_options,
    checked_inputs,
    checked_parameters,
)
from precision_nn.gradcheck import GradientReport
from precision_nn.gradcheck.check import PLANNED_ABOVE, run_check
from precision_nn.numbers import number_system

__all__ = ["check_function", "check_module"]


def check_function(fn: Callable[..., Any], *inputs: Any, method: str = "auto",
                   directions: int | None = None, numbers: str | None = None,
                   h: float | None = None, batch_size: int | None = None,
                   seed: int = 0) -> GradientReport:
    """Check the backward pass of `fn` with respect to its inputs that require grad.

    Parameters
    ----------
    fn : callable
        Any differentiable callable on tensors: ``MyFunction.apply``, a functional op,
        a module. A non-scalar output (or several) is reduced to ``Σ⟨v, output⟩`` with
        seeded standard-normal cotangents ``v``; the backward is then ``Jᵀv``.
    *inputs : tensors and other arguments
        Passed to `fn` as given; the floating tensors with ``requires_grad=True`` are
        checked (blocks named ``input 0``, ``input 1``, … by position).
    method : {"auto", "complex_step", "richardson", "central", "forward", "backward"}
        The numerical reference, as in `check_gradient`.
    directions : int, optional
        Compare ``vᵀg`` along this many random directions instead of every coordinate.
    numbers : {"float16", "bfloat16", "float32", "float64"}, optional
        The dtype to check in (default: that of the checked tensors, which must agree);
        another dtype checks the backward on converted copies.
    h : float, optional
        An explicit step for the finite-difference methods.
    batch_size : int, optional
        The batch size ``m``, to name a factor ``1/m`` (default: the leading dimension of
        the first tensor input with two or more dimensions).
    seed : int
        Seeds the cotangents and torch's RNG during every evaluation.

    Returns
    -------
    GradientReport

    Examples
    --------
    >>> import torch
    >>> x = torch.tensor([0.5, -1.0, 2.0], requires_grad=True)
    >>> check_function(torch.tanh, x).kinds
    ('match',)
    """
    check_options(fn, method=method, directions=directions, numbers=numbers, seed=seed)
    checked = checked_inputs(inputs, required=True)
    names = tuple(f"input {i}" for i in checked)
    target = FunctionTarget(fn, inputs, checked)
    point = [inputs[i] for i in checked]
    return _run(target, point, names, inputs, loss=None, method=method,
                directions=directions, numbers=numbers, h=h,
                batch_size=batch_size_of(batch_size, inputs), seed=seed)


def check_module(module: torch.nn.Module, *inputs: Any,
                 loss: Callable[[Any], Any] | None = None, method: str = "auto",
                 directions: int | None = None, numbers: str | None = None,
                 h: float | None = None, batch_size: int | None = None,
                 seed: int = 0) -> GradientReport:
    """Check the gradients of `module`'s parameters (and of inputs that require grad).

    The objective is ``loss(module(*inputs))``, or ``Σ⟨v, output⟩`` with seeded random
    cotangents ``v`` when `loss` is None. Blocks are the parameters that require grad,
    named as ``module.named_parameters()`` names them, then ``input i`` for inputs that
    require grad. The module is evaluated on deep copies (their parameters replaced by the checked tensors),
    so its parameters, buffers, ``.grad`` and mode stay exactly as they were.

    Parameters
    ----------
    module : torch.nn.Module
    *inputs : tensors and other arguments
        Passed to the module.
    loss : callable, optional
        ``loss(output) -> scalar tensor``; with a loss the cotangent of the output is the
        loss's gradient, and ``ignores_grad_output`` is still tested with random ones.
    method, directions, numbers, h, batch_size, seed
        As in `check_function`.

    Returns
    -------
    GradientReport

    Examples
    --------
    >>> import torch
    >>> _ = torch.manual_seed(0)
    >>> net = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Tanh())
    >>> report = check_module(net, torch.randn(4, 3))
    >>> report.passed, report.kinds
    (True, ('match',))
    """
    check_options(module, method=method, directions=directions, numbers=numbers, seed=seed)
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"`module` must be a torch.nn.Module; got {type(module).__name__}. "
                        "Use check_function for other callables.")
    if loss is not None and not callable(loss):
        raise TypeError(f"`loss` must be callable (output -> scalar tensor) or None; got "
                        f"{type(loss).__name__}.")
    params = checked_parameters(module)
    checked = checked_inputs(inputs, required=not params, module=True)
    names = (*(n for n, _ in params), *(f"input {i}" for i in checked))
    point = [p for _, p in params] + [inputs[i] for i in checked]
    options = {"loss": loss, "method": method, "directions": directions, "numbers": numbers,
               "h": h, "batch_size": batch_size_of(batch_size, inputs), "seed": seed}
    target = ModuleTarget(module, inputs, tuple(n for n, _ in params), checked)
    report = _run(target, point, names, inputs, **options)
    if report.passed or not module.training or not target.copies.written:
        return report
    return _retested_in_eval_mode(report, target, point, names, inputs, options)


def _retested_in_eval_mode(report: GradientReport, target: ModuleTarget,
                           point: list[torch.Tensor], names: tuple[str, ...],
                           inputs: tuple[Any, ...], options: dict) -> GradientReport:
    """A failed train-mode check whose forward wrote into buffers, run again on an
    eval-mode copy: if that copy writes nothing and passes, the failure is the train-mode
    state's (`findings.train_mode_state`); otherwise the report stands as it was."""
    if not _output_reads(target.module, inputs, target.copies.written):
        return report  # the written buffers do not feed the output (running statistics)
    frozen = copy.deepcopy(target.module).eval()
    again = ModuleTarget(frozen, target.inputs, target.params, target.checked)
    try:
        in_eval = _run(again, point, names, inputs, **options)
    except (ValueError, RuntimeError):  # the module refuses eval mode here: no evidence
        return report
    if not in_eval.passed or again.copies.written:
        return report
    found = tf.train_mode_state(target.copies.written, in_eval)
    rest = tuple(f for f in report.findings if f.evidence.get("torch") or
                 f.kind not in ("mismatch", "match", "localized"))
    return replace(report, findings=(*found, *rest),
                   evaluations=report.evaluations + in_eval.evaluations)


def _output_reads(module: torch.nn.Module, inputs: tuple[Any, ...],
                  written: tuple[str, ...]) -> bool:
    """Whether the train-mode output changes when the floating buffers the forward writes
    are moved (by 1/64 of their scale, seeded) before the call: a power iteration's start
    vector feeds the output, BatchNorm's running statistics do not (train mode normalises
    with the batch's own), and the outputs then agree bit for bit."""
    outputs = []
    for moved in (False, True):
        work = copy.deepcopy(module)
        buffers = dict(work.named_buffers())
        generator = torch.Generator().manual_seed(0)
        args = [a.detach().clone() if isinstance(a, torch.Tensor) else a for a in inputs]
        with torch.no_grad(), torch.random.fork_rng():
            for name in written if moved else ():
                b = buffers[name]
                if b.is_floating_point():
                    noise = torch.randn(b.shape, generator=generator, dtype=torch.float64)
                    scale = float(b.abs().max()) or 1.0
                    b.add_((noise * scale / 64).to(b.dtype).to(b.device))
            torch.manual_seed(0)
            outputs.append(floating_outputs(work(*args)))
    return any(not torch.equal(a, b) for a, b in zip(*outputs))


FLOAT64 = number_system("float64")


# -- the check ----------------------------------------------------------------------------
def _run(target: Any, point: list[torch.Tensor], names: tuple[str, ...],
         inputs: tuple[Any, ...], *, loss: Any, method: str, directions: int | None,
         numbers: str | None, h: Any, batch_size: int | None, seed: int) -> GradientReport:
    dtype = check_dtype(point, names, numbers)
    options = {"loss": loss, "method": method, "directions": directions, "h": h,
               "batch_size": batch_size, "seed": seed}
    return _confirmed_check(target, point, names, dtype, options).report


def _confirmed_check(target: Any, point: list[torch.Tensor], names: tuple[str, ...],
                     dtype: torch.dtype, options: dict) -> Checked:
    """The check in `dtype`, confirmed in the wider dtype where `dtype` cannot decide
    (`adapters.torch.confirm`; the wider check is confirmed in turn: bfloat16 → float32
    → float64)."""
    checked = _check_in(target, point, names, dtype, **options)
    reason = needs_confirmation(checked.report, dtype, numbers_of(dtype).unit_roundoff)
    if reason is None:
        return checked
    try:
        wider = _confirmed_check(target, point, names, CONFIRM_IN[dtype], options)
    except Exception as exc:  # noqa: BLE001 - the user's code does not run in that dtype
        wider = None
        refusal = f"the code raises there ({type(exc).__name__}: {exc})"
    if wider is None:
        return replace(checked, report=replace(
            checked.report, tolerance_source=f"{checked.report.tolerance_source} "
            f"({reason.sentence}; the same backward cannot be checked in "
            f"{NUMBERS[CONFIRM_IN[dtype]]}: {refusal}; this verdict stands.)"))
    return replace(checked, report=decide(checked, wider, reason))


def _check_in(target: Any, point: list[torch.Tensor], names: tuple[str, ...],
              dtype: torch.dtype, *, loss: Any, method: str, directions: int | None,
              h: Any, batch_size: int | None, seed: int) -> Checked:
    """The check in `dtype` (the user's backward run in it on converted copies if the
    tensors have another dtype)."""
    device = point[0].device
    convert = any(p.dtype != dtype for p in point)
    point = [p.detach().to(dtype=dtype, copy=True) for p in point]
    blocks = TensorBlocks(names, tuple(tuple(p.shape) for p in point))
    ns = numbers_of(dtype)
    rng = Rng(seed, device)
    try:
        bp = backward_pass(target, point, blocks, loss=loss, seed=seed, rng=rng,
                           convert=convert)
        early = tf.check_raw_gradients(bp.raw, target.inputs, getattr(target, "checked", ()))
        objective = Objective(target, blocks, loss=loss, rng=rng, device=device, dtype=dtype,
                              v=bp.v)
        x = blocks.flatten(point, ns)
        gradient = ns.asarray(bp.gradient.astype(ns.dtype))  # (exact: it holds ns's numbers)
        provider = None
        if directions is not None or x.size <= PLANNED_ABOVE:  # (larger: the check plans)
            provider = Float64Reference(objective, blocks.flatten(point, FLOAT64), bp.gradient,
                                        ns.unit_roundoff)
        report = run_check(objective, lambda _x: gradient, x, method=method, h=h,
                           numbers=ns, shapes=blocks.shapes_mapping(), order="C",
                           directions=directions, batch_size=batch_size, provider=provider)
        report = _with_kinks(without_cancellation(report), objective, x)
    finally:
        rng.restore()
    report = _with_torch_findings(report, bp, blocks, ns.unit_roundoff, early, device, dtype)
    return Checked(report, dtype, bp.outputs, rng.used,
                   not_in_dtype(dtype, bp.raw, bp.outputs) if convert else None)


def _with_kinks(report: GradientReport, objective: Any, x: Any) -> GradientReport:
    """The report with `kink` where coordinates failed or stayed undecidable because the
    objective is not differentiable there (scanned in float64 on the copy)."""
    if report.directional or "kink" in report.kinds:
        return report
    suspect = ~(np.abs(report.difference) <= report.tolerance)
    for finding in report.findings:
        if finding.evidence.get("undecidable"):
            suspect[np.asarray(finding.evidence.get("coordinates", []), dtype=int)] = True
    if not suspect.any():
        return report
    order = np.argsort(-np.where(suspect, np.abs(report.difference), -1.0), kind="stable")
    indices = order[: int(suspect.sum())]
    labels = {int(i): report.blocks.label(int(i)) for i in indices[:KINK_MAX]}
    scale = float(np.max(np.abs(report.reference), initial=0.0))
    found = kink_finding(objective, np.asarray(x, dtype=np.float64), indices, labels, scale)
    if not found:
        return report
    spent = 1 + 2 * KINK_STEPS * min(len(indices), KINK_MAX)
    return replace(report, passed=False, findings=(*found, *report.findings),
                   evaluations=report.evaluations + spent)


def _with_torch_findings(report: GradientReport, bp: Any, blocks: TensorBlocks, u: float,
                         early: list, device: torch.device, dtype: torch.dtype
                         ) -> GradientReport:
    found = [*tf.torch_findings(bp, blocks, u), *early]
    if not report.directional:
        found += tf.missing_gradients(bp, blocks, report.reference, report.tolerance)
    found += tf.tf32_finding(device_type=device.type, dtype=dtype, tf32=tf.tf32_enabled(),
                             failed=not report.passed or bool(found))
    if not found:
        return report
    rest = tuple(f for f in report.findings if f.kind != "match")
    return replace(report, passed=False, findings=(*found, *rest))
