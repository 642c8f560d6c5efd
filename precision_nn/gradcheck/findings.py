"""Findings: one small detector per kind, run in the order of `DETECTORS`.

Bug patterns come first (`patterns`: sign, scale, layout, regularization), then the
numerical causes (`causes`: kink, step_too_large, step_too_small, precision_loss,
not_complex_safe), and finally the summaries here: ``localized`` and ``mismatch`` for
whatever no pattern explains, ``match`` when nothing is wrong. Each detector is a pure
function of a `CheckData` and the findings before it.
"""

from __future__ import annotations

from collections.abc import Sequence

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

__all__ = ["ADAPTER_KINDS", "DETECTORS", "KINDS", "NOTICES", "Finding", "describe_factor",
           "diagnose"]

def detect_localized(data: CheckData, earlier: Sequence[Finding]) -> list[Finding]:
    """Unexplained failures confined to one block, or one column/row of a block."""
    rest = fails(data) & ~explained(data, earlier)
    if not rest.any() or not data.blocks.given or numerical(earlier):
        return []
    blocks = {data.blocks.locate(int(i))[0] for i in np.flatnonzero(rest)}
    if len(blocks) != 1:
        return []
    b = blocks.pop()
    narrow = narrow_regions(data, b, np.arange(data.blocks.index(b).start,
                                        data.blocks.index(b).stop), rest[data.blocks.index(b)])
    if not narrow and len(data.blocks.shapes) == 1:
        return []
    where = narrow[0].label if narrow else block_label(data, b)
    return [Finding("localized", f"Only {where} disagrees; every other coordinate matches. "
                    "Look at the code that computes this part of the gradient (for one "
                    "layer: its delta and the activations it multiplies).",
                    {"block": b, "region": where, "count": int(rest.sum())})]


def detect_mismatch(data: CheckData, earlier: Sequence[Finding]) -> list[Finding]:
    """Failures that no pattern and no numerical cause explains."""
    rest = fails(data) & ~explained(data, earlier)
    if not rest.any() or numerical(earlier):
        return []
    worst = int(np.argmax(np.where(rest, np.abs(data.difference), -np.inf)))
    return [Finding("mismatch", f"{int(rest.sum())} of {rest.size} coordinates disagree "
                    "beyond their tolerance and no simple pattern (sign, constant factor, "
                    "layout, regulariser, step, kink, precision) explains it; the largest gap "
                    f"is at {data.blocks.label(worst)}: analytic {data.analytic[worst]:.6g} vs "
                    f"reference {data.reference[worst]:.6g}. Likely a wrong term in backprop "
                    "(a missing chain-rule factor, g'(a) for g'(z)).",
                    {"coordinates": np.flatnonzero(rest).tolist(), "worst": worst})]


def detect_match(data: CheckData, earlier: Sequence[Finding]) -> list[Finding]:
    """Nothing failed and nothing else was found."""
    if any(f.kind not in NOTICES for f in earlier) or fails(data).any():
        return []
    rel = np.abs(data.difference) / np.maximum(np.abs(data.tolerance), 1e-300)
    share = float(np.max(rel, initial=0))
    return [Finding("match", "The analytic gradient matches the reference at every "
                    f"coordinate within its tolerance (the largest gap is {share:.2g} of its "
                    "tolerance).", {"largest_share_of_tolerance": share})]


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
    found: list[Finding] = []
    for detector in DETECTORS.values():
        found.extend(detector(data, tuple(found)))
    return tuple(found)
