"""Findings only torch code can produce, each a small function of the backward pass.

* ``ignores_grad_output`` — a block's gradient does not double when the cotangent does.
  A correct backward is linear in ``grad_output``: for ``2v`` it returns ``Jᵀ(2v)``, which
  in binary floating point is exactly ``2·Jᵀv`` (doubling every input of a computation
  doubles every rounded result), so ``g(2v) - g(v) = g(v)``; a backward that returns
  ``Jᵀ·1`` (the derivative of the outputs, not multiplied by ``grad_output``: seed 003)
  gives ``g(2v) - g(v) = 0``. The test is decided by a ratio of 1 against 0, with no
  tolerance that depends on the dtype.
* ``nondeterministic`` — two backward calls with the same cotangent on the same graph
  differ beyond rounding. Reordered sums (CUDA atomics) of ``k`` terms differ by at most
  ``γ_k·Σ|terms|`` (Higham 2002, §3.1), within ``REPEAT_ULPS·u·max|g|`` for ``k`` up to
  about a hundred terms of the block's largest size; random numbers drawn in backward
  differ by O(1).
* ``mismatch`` with ``evidence["torch"]`` naming the cause, for what the generic kinds do
  not cover: an input modified in place by forward, a tensor that requires grad but
  receives ``None`` although the loss depends on it, a custom Function's backward that
  returns a gradient of a narrower dtype (torch casts it silently).
* ``precision_loss`` naming TF32 when float32 matmuls on CUDA run in TF32.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from precision_nn.adapters.torch.problem import BackwardPass
from precision_nn.adapters.torch.tensors import TensorBlocks
from precision_nn.gradcheck import Finding

__all__ = ["LINEAR_SHARE", "REPEAT_ULPS", "check_raw_gradients", "tf32_finding", "torch_findings",
           "train_mode_state"]

# two backward calls may differ by reordered sums (CUDA atomics): about √k·u·Σ|terms| for
# k terms; 16 ulps of the block's largest entry covers a few hundred terms of that size
# (and still flags a 6% difference in bfloat16, whose u is 2^-8)
REPEAT_ULPS = 16.0
# ‖g(2v) - g(v)‖ / ‖g(v)‖ is 1 for a backward linear in grad_output, 0 for one ignoring it
LINEAR_SHARE = 0.5


def _blocks_where(a: np.ndarray, b: np.ndarray, blocks: TensorBlocks, u: float,
                  ulps: float, *, same: bool) -> list[tuple[int, float, float]]:
    """Blocks where a and b are equal (`same`) or differ beyond ``ulps·u·max|·|``:
    (block, max gap, max entry)."""
    out = []
    for k, span in enumerate(blocks.block_slices()):
        x, y = a[span], b[span]
        # equal entries agree, also an inf in both or a NaN in both (inf − inf would read
        # as NaN: torch.sqrt's gradient at 0 twice is no nondeterminism); any other
        # non-finite pair differs without bound; the scale is that of the finite entries
        with np.errstate(invalid="ignore"):
            diff = np.abs(x - y)
        equal = (x == y) | (np.isnan(x) & np.isnan(y))
        diff = np.where(equal, 0.0, np.where(np.isnan(diff), np.inf, diff))
        gap = float(np.max(diff, initial=0.0))
        finite = np.abs(np.concatenate([x[np.isfinite(x)], y[np.isfinite(y)]]))
        size = float(np.max(finite, initial=0.0))
        close = gap <= ulps * u * size
        if size > 0 and close == same:
            out.append((k, gap, size))
    return out


def _names(blocks: TensorBlocks, hits: Sequence[tuple[int, float, float]]) -> str:
    return ", ".join(f"`{blocks.names[k]}`" for k, _, _ in hits)


_UPSTREAM = (" A backward that drops grad_output also cuts every tensor before it off from "
             "the cotangent, so look first at the one nearest the output.")


def ignores_grad_output(bp: BackwardPass, blocks: TensorBlocks, u: float) -> list[Finding]:
    """Blocks whose gradient does not double when the cotangent does."""
    if bp.other is None:
        return []
    first = bp.gradient if bp.first is None else bp.first
    hits = []
    for k, span in enumerate(blocks.block_slices()):
        # on the entries finite in both (an inf gradient doubles to inf: no evidence)
        ok = np.isfinite(first[span]) & np.isfinite(bp.other[span])
        size = float(np.max(np.abs(first[span][ok]), initial=0.0))
        change = float(np.max(np.abs(bp.other[span][ok] - first[span][ok]), initial=0.0))
        if size > 0 and change < LINEAR_SHARE * size:
            hits.append((k, change, size))
    if not hits:
        return []
    return [Finding("ignores_grad_output", f"{_names(blocks, hits)} "
                    f"receive{'' if len(hits) > 1 else 's'} the same "
                    "gradient when grad_output is doubled: the backward returns the "
                    "derivative of the outputs without multiplying it by grad_output (right "
                    "only when grad_output is all ones, e.g. for a loss that is a plain sum). "
                    "Fix: return Jᵀ·grad_output, multiplying by the incoming gradient."
                    + (_UPSTREAM if len(hits) > 1 else ""),
                    {"blocks": [blocks.names[k] for k, _, _ in hits],
                     "coordinates": _coordinates(blocks, hits)})]


def nondeterministic(bp: BackwardPass, blocks: TensorBlocks, u: float) -> list[Finding]:
    """Blocks whose gradient changes between two backward calls with the same cotangent."""
    hits = _blocks_where(bp.gradient, bp.repeat, blocks, u, REPEAT_ULPS, same=False)
    if not hits:
        return []
    worst = max(gap / size for _, gap, size in hits)
    return [Finding("nondeterministic", f"Two backward calls with the same grad_output give "
                    f"different gradients for {_names(blocks, hits)}: up to {worst:.3g} of "
                    f"the largest entry, beyond the {REPEAT_ULPS:g} ulps that reordered sums "
                    "can explain. The backward draws random numbers (a dropout mask drawn "
                    "again instead of saved in forward) or reads state that forward or an "
                    "earlier backward changed. Fix: save what backward needs in forward "
                    "(ctx.save_for_backward) and keep backward free of state.",
                    {"blocks": [blocks.names[k] for k, _, _ in hits], "share": worst,
                     "coordinates": _coordinates(blocks, hits)})]


def _coordinates(blocks: TensorBlocks, hits: Sequence[tuple[int, float, float]]) -> list[int]:
    spans = blocks.block_slices()
    return [i for k, _, _ in hits for i in range(spans[k].start, spans[k].stop)]


def _listed(names: Sequence[str]) -> tuple[str, bool]:
    """"`a`, `b`" and whether there are several."""
    return ", ".join(f"`{n}`" for n in names), len(names) > 1


def modified_in_place(positions: Sequence[int]) -> list[Finding]:
    """Inputs that forward modified in place."""
    if not positions:
        return []
    names, several = _listed([f"input {p}" for p in positions])
    return [Finding("mismatch", f"Input modified in place: the forward writes into {names}, "
                    "so calling it twice on the same tensors gives different results, and "
                    "the values autograd saved for the backward may no longer be the ones "
                    "the gradient needs. Fix: compute into a new tensor (y = x * 2, not "
                    "x.mul_(2)), or clone the input first; a custom Function that must write "
                    "into its input declares it with ctx.mark_dirty. The check ran on "
                    f"copies: your tensor{'s are' if several else ' is'} unchanged.",
                    {"torch": "modified_in_place", "inputs": list(positions)})]


def train_mode_state(written: Sequence[str], eval_report: Any) -> list[Finding]:
    """A train-mode module whose check failed, whose forward wrote into `written`, whose
    output reads those buffers, and whose eval-mode copy (a forward that writes nothing)
    passes the same check.

    Hypothesis tested: the disagreement lies in what the train-mode forward does
    differently. Values it computes from the parameters and stores in buffers (a power
    iteration's vectors) enter the output as constants to autograd, while the finite
    differences, which restore the buffers before every evaluation, see them move with the
    parameters. The test is the eval-mode check itself, not a guess from the names."""
    names, several = _listed(written)
    return [Finding("mismatch", f"Train-mode state: the forward writes into the buffer"
                    f"{'s' if several else ''} {names} at every call (e.g. spectral_norm's "
                    "power iteration), the output reads them (moving them before a call "
                    "changes it), and the check restored them before each evaluation. In "
                    "eval mode, "
                    "where the forward writes no buffers, the same check passes "
                    f"({eval_report.evaluations} more evaluations): the train-mode backward "
                    "treats what the forward computed from the parameters and stored as "
                    "constants, while the numerical derivative sees it move with them. That "
                    "is the module's design (e.g. spectral_norm's gradient is exact only "
                    "once its power iteration has converged), not a bug in your backward: "
                    "check in eval mode, or converge the buffers first. The check ran on "
                    "copies: your module is unchanged.",
                    {"torch": "train_mode_state", "buffers": list(written)})]


def missing_gradients(bp: BackwardPass, blocks: TensorBlocks, reference: np.ndarray,
                      tolerance: np.ndarray) -> list[Finding]:
    """Tensors that require grad but receive None, although the objective depends on them
    (their numerical gradient exceeds its tolerance somewhere)."""
    spans = blocks.block_slices()
    hits = [k for k in bp.missing if reference.size == tolerance.size
            and np.any(np.abs(reference[spans[k]]) > tolerance[spans[k]])]
    if not hits:
        return []
    names, several = _listed([blocks.names[k] for k in hits])
    verb, its, it = ("require", "their", "them") if several else ("requires", "its", "it")
    return [Finding("mismatch", f"Gradient missing: {names} {verb} grad but receive"
                    f"{'' if several else 's'} None from the backward, although the loss "
                    f"depends on {it} ({its} numerical gradient exceeds the tolerance). The "
                    f"backward returns None for {it}, or the forward detaches {it}. The check "
                    "compared the gradient as zeros, so the other findings about it follow "
                    "from this one. Fix: return the gradient "
                    "(a custom Function's backward returns one gradient per input of "
                    "forward, None only for inputs that need none); if the tensor should not "
                    "be trained, set requires_grad=False on it.",
                    {"torch": "missing_gradient", "blocks": [blocks.names[k] for k in hits]})]


def check_raw_gradients(raw: Sequence[Any], inputs: Sequence[Any],
                        checked: Sequence[int]) -> list[Finding]:
    """What a custom Function's backward returned, against its inputs: a gradient of a
    narrower dtype is a finding (torch casts it back silently; shapes were checked when
    the backward ran)."""
    found = []
    for pos in checked:
        g = raw[pos] if pos < len(raw) else None
        t = inputs[pos]
        if isinstance(g, torch.Tensor) and g.dtype != t.dtype and _narrower(g.dtype, t.dtype):
            found.append(Finding("precision_loss", f"The backward returns a {g.dtype} "
                                 f"gradient for `input {pos}`, which is {t.dtype}: torch casts "
                                 "it back silently, keeping only the digits of the narrower "
                                 "dtype. Fix: compute the gradient in the input's dtype (no "
                                 ".half()/.bfloat16() on what backward returns).",
                                 {"torch": "gradient_dtype", "input": pos,
                                  "returned": str(g.dtype), "expected": str(t.dtype)}))
    return found


def _narrower(a: torch.dtype, b: torch.dtype) -> bool:
    fa = torch.finfo(a) if a.is_floating_point else None
    fb = torch.finfo(b) if b.is_floating_point else None
    return fa is not None and fb is not None and fa.eps > fb.eps


def tf32_finding(*, device_type: str, dtype: torch.dtype, tf32: bool,
                 failed: bool) -> list[Finding]:
    """A failed float32 check on CUDA with TF32 matmuls enabled: TF32 keeps 10 bits of
    the significand (u = 2^-11), far below float32's 2^-24."""
    if not (failed and tf32 and device_type == "cuda" and dtype == torch.float32):
        return []
    return [Finding("precision_loss", "float32 matmuls and convolutions on this CUDA device "
                    "run in TF32 (10-bit significand, u = 2^-11), so the gradient carries "
                    "errors ~8000 times larger than float32's: the check cannot tell them "
                    "from a bug. Disable TF32 while checking: "
                    "torch.backends.cuda.matmul.allow_tf32 = False and "
                    "torch.backends.cudnn.allow_tf32 = False.", {"torch": "tf32"})]


def tf32_enabled() -> bool:
    """Whether float32 CUDA matmuls or cuDNN convolutions may use TF32."""
    return bool(torch.backends.cuda.matmul.allow_tf32 or torch.backends.cudnn.allow_tf32)


def torch_findings(bp: BackwardPass, blocks: TensorBlocks, u: float) -> list[Finding]:
    """The findings that need no reference: how the backward treats its cotangents."""
    return [*ignores_grad_output(bp, blocks, u), *nondeterministic(bp, blocks, u),
            *modified_in_place(bp.modified)]
