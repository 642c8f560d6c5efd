"""Findings: one small detector per kind, run in the order of `DETECTORS`.

Bug patterns come first (`patterns`: sign, scale, layout, regularization), then the
numerical causes (`causes`: kink, step_too_large, step_too_small, precision_loss,
not_complex_safe), and finally the summaries here: ``localized`` and ``mismatch`` for
whatever no pattern explains, ``match`` when nothing is wrong. Each detector is a pure
function of a `CheckData` and the findings before it.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import numpy as np

from precision_nn.gradcheck.causes import (
    detect_kink,
    detect_not_complex_safe,
    detect_precision_loss,
    detect_step_too_large,
    detect_step_too_small,
)
from precision_nn.gradcheck.diagnosis import (
    NOTICES,
    Detector,
    Finding,
    against_limit,
    explained,
    fails,
    numerical,
)
from precision_nn.gradcheck.evidence import CheckData
from precision_nn.gradcheck.patterns import (
    block_label,
    describe_factor,
    layout_in,
    narrow_regions,
    pattern_detector,
    regularization_in,
    scale_in,
    sign_in,
)

SHOWN = 5  # entries a finding lists by name

__all__ = ["ADAPTER_KINDS", "DETECTORS", "KINDS", "NOTICES", "Finding", "describe_factor",
           "diagnose", "match_finding"]

def detect_non_finite(data: CheckData) -> list[Finding]:
    """An analytic gradient with inf or NaN entries fails, naming them (it is checked
    before every pattern: an infinite entry would otherwise make every tolerance
    infinite, and a NaN fits no pattern)."""
    bad = ~np.isfinite(data.analytic)
    if not bad.any():
        return []
    idx = np.flatnonzero(bad)
    where = ", ".join(where_is(data, int(i)) for i in idx[:SHOWN])
    more = f" and {idx.size - SHOWN} more" if idx.size > SHOWN else ""
    values = sorted({str(v) for v in data.analytic[idx]})
    return [Finding("mismatch", f"The analytic gradient is not finite ({', '.join(values)}) "
                    f"at {idx.size} {data.unit}(s): {where}{more}. Look for an overflow "
                    "(exp of a large argument), a division by zero or a log of 0 in the "
                    "gradient code at these entries.",
                    {"coordinates": idx.tolist(), "non_finite": True})]


def detect_non_finite_reference(data: CheckData) -> list[Finding]:
    """A reference that is not finite where the analytic gradient is: f itself gives
    inf or NaN at or near x, and the check cannot decide there (never a bug verdict)."""
    bad = ~np.isfinite(data.reference) & np.isfinite(data.analytic)
    if not bad.any():
        return []
    idx = np.flatnonzero(bad)
    where = ", ".join(where_is(data, int(i)) for i in idx[:SHOWN])
    more = f" and {idx.size - SHOWN} more" if idx.size > SHOWN else ""
    return [Finding("precision_loss", f"The numerical reference is not finite at {idx.size} "
                    f"{data.unit}(s) ({where}{more}): f returns inf or NaN at or near x (an "
                    "overflow, or a log of 0 such as log(1 - a) for a saturated output a = 1), "
                    "so the check cannot decide there. Evaluate f in a stable form "
                    "(log-sum-exp, softplus) or check at another point.",
                    {"coordinates": idx.tolist(), "undecidable": True, "non_finite": True})]


def detect_localized(data: CheckData, earlier: Sequence[Finding]) -> list[Finding]:
    """Unexplained failures confined to one block, or one column/row of a block, or
    to one entry."""
    rest = fails(data) & ~explained(data, earlier)
    if not rest.any() or not data.blocks.given or numerical(earlier):
        return []
    blocks = {data.blocks.locate(int(i))[0] for i in np.flatnonzero(rest)}
    if len(blocks) != 1:
        return []
    b = blocks.pop()
    span = data.blocks.index(b)
    narrow = narrow_regions(data, b, np.arange(span.start, span.stop), rest[span])
    if rest.sum() == 1:
        where = f"entry {data.blocks.label(int(np.flatnonzero(rest)[0]))}"
    elif narrow:
        where = narrow[0].label
    elif len(data.blocks.shapes) > 1:
        where = block_label(data, b)
    else:
        return []
    others = [data.blocks.name(k) for k in range(len(data.blocks.shapes)) if k != b]
    agree = f" ({', '.join(others)} agree{'s' if len(others) == 1 else ''})" if others else ""
    return [Finding("localized", f"Only {where} disagrees; every other {data.unit} "
                    f"matches{agree}. Look at the code that computes this part of the "
                    "gradient" + (" (for one layer: its delta and the activations it "
                                  "multiplies)." if _layered(data) else "."),
                    {"block": b, "region": where, "count": int(rest.sum()),
                     "entries": np.flatnonzero(rest).tolist()})]


def detect_mismatch(data: CheckData, earlier: Sequence[Finding]) -> list[Finding]:
    """Failures that no pattern and no numerical cause explains, with the structure
    that is visible: which blocks agree and which do not."""
    rest = fails(data) & ~explained(data, earlier)
    if not rest.any() or numerical(earlier):
        return []
    # with the user's step probed, the gap is shown against the h → 0 limit (the better
    # reference, which the failure was also judged against)
    data = against_limit(data)
    worst = int(np.argmax(np.where(rest, np.abs(data.difference), -np.inf)))
    cause = ("Likely a wrong term in backprop (a missing chain-rule factor, g'(a) for "
             "g'(z))." if _layered(data) else
             "Look at the terms of the gradient code that produce these entries.")
    return [Finding("mismatch", f"{int(rest.sum())} of {rest.size} {data.unit}s disagree "
                    "beyond their tolerance and no simple pattern (sign, constant factor, "
                    "layout, regulariser, step, kink, precision) explains it"
                    f"{_block_structure(data, rest)}; the largest gap is at "
                    f"{where_is(data, worst)}: analytic {data.analytic[worst]:.6g} vs "
                    f"reference {data.reference[worst]:.6g}. {cause}",
                    {"coordinates": np.flatnonzero(rest).tolist(), "worst": worst})]


def _block_structure(data: CheckData, rest: np.ndarray) -> str:
    """``"; layer 1 disagrees (3 of 6 entries), layer 2 agrees"`` for several blocks."""
    blocks = data.blocks
    if not blocks.given or len(blocks.shapes) < 2:
        return ""
    off, on = [], []
    for b in range(len(blocks.shapes)):
        k = int(rest[blocks.index(b)].sum())
        (off.append(f"{blocks.name(b)} ({k} of {blocks.sizes[b]})") if k
         else on.append(blocks.name(b)))
    text = f": {', '.join(off)} disagree{'s' if len(off) == 1 else ''}"
    return text + (f", {', '.join(on)} agree{'s' if len(on) == 1 else ''}" if on else "")


def _layered(data: CheckData) -> bool:
    """Whether the blocks look like the layers of a network (several matrices, each
    taking the previous one's outputs: fan_in of block k+1 within one of fan_out of
    block k, allowing for a bias column), where backprop slips are the usual suspects."""
    shapes = data.blocks.shapes
    if not data.blocks.given or len(shapes) < 2 or any(len(s) != 2 for s in shapes):
        return False
    return all(0 <= nxt[1] - prev[0] <= 1 for prev, nxt in pairwise(shapes))


def where_is(data: CheckData, i: int) -> str:
    """The label of flat index `i` (``"direction 4"`` in directional mode)."""
    return f"direction {i}" if data.unit == "direction" else data.blocks.label(i)


def detect_match(data: CheckData, earlier: Sequence[Finding]) -> list[Finding]:
    """Nothing failed and nothing else was found."""
    if any(f.kind not in NOTICES for f in earlier) or fails(data).any():
        return []
    return [match_finding(data.difference, data.tolerance, data.unit)]


def match_finding(difference: np.ndarray, tolerance: np.ndarray, unit: str) -> Finding:
    """The ``match`` finding: every gap within its tolerance, and the largest share."""
    rel = np.abs(difference) / np.maximum(np.abs(tolerance), 1e-300)
    share = float(np.max(rel, initial=0))
    return Finding("match", "The analytic gradient matches the reference at every "
                   f"{unit} within its tolerance (the largest gap is {share:.2g} of its "
                   "tolerance).", {"largest_share_of_tolerance": share})


DETECTORS: dict[str, Detector] = {
    "sign": pattern_detector("sign", sign_in),
    "scale": pattern_detector("scale", scale_in),
    "layout": pattern_detector("layout", layout_in),
    "regularization": pattern_detector("regularization", regularization_in),
    "kink": detect_kink,
    "step_too_large": detect_step_too_large,
    "step_too_small": detect_step_too_small,
    "precision_loss": detect_precision_loss,
    "not_complex_safe": detect_not_complex_safe,
    "localized": detect_localized,
    "mismatch": detect_mismatch,
    "match": detect_match,
}


# kinds that adapters produce (the PyTorch checks: a backward that ignores its incoming
# gradient, a backward that differs between two runs); no generic detector makes them
ADAPTER_KINDS = ("ignores_grad_output", "nondeterministic")


KINDS = (*DETECTORS, *ADAPTER_KINDS)


def diagnose(data: CheckData) -> tuple[Finding, ...]:
    """Every finding for `data`, in the order of `DETECTORS`."""
    found: list[Finding] = [*detect_non_finite(data), *detect_non_finite_reference(data)]
    for detector in DETECTORS.values():
        found.extend(detector(data, tuple(found)))
    return tuple(found)
