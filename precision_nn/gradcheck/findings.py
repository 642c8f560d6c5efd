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
    _noise_covers,
    detect_kink,
    detect_not_complex_safe,
    detect_precision_loss,
    detect_step_too_large,
    detect_step_too_small,
)
from precision_nn.gradcheck.decisions import is_lossy, undecidable
from precision_nn.gradcheck.diagnosis import (
    NOTICES,
    Detector,
    Finding,
    against_limit,
    explained,
    fails,
    numerical,
)
from precision_nn.gradcheck.evidence import REPEAT_ULPS, CheckData
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
from precision_nn.gradcheck.rounding import BINARY_ULPS

SHOWN = 5  # entries a finding lists by name

__all__ = ["ADAPTER_KINDS", "DETECTORS", "KINDS", "NOTICES", "Finding", "describe_factor",
           "diagnose", "match_finding", "repeat_differs"]

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


def repeat_differs(gap: np.ndarray | None, analytic: np.ndarray, unit_roundoff: float
                   ) -> np.ndarray:
    """Coordinates where two calls of grad at the same x differ beyond reordered sums:
    ``REPEAT_ULPS·u·max|a|`` (a over its finite entries; `evidence.REPEAT_ULPS`)."""
    if gap is None:
        return np.zeros(np.shape(analytic), dtype=bool)
    a = np.abs(np.asarray(analytic, dtype=float))
    size = float(np.max(a[np.isfinite(a)], initial=0.0))
    return np.asarray(gap) > REPEAT_ULPS * unit_roundoff * size


def detect_nondeterministic(data: CheckData, earlier: Sequence[Finding]) -> list[Finding]:
    """grad returns different values when called twice at the same x.

    Rounding is a deterministic function of x; the noise allowance of the analytic
    gradient (its scatter over a few ulps of x read as rounding) rests on that. A gap
    beyond reordered sums between two calls at x is randomness or changing state: no
    tolerance widens for it, and the check cannot pass (checked before every pattern,
    whose fits would read the random scatter as a bug)."""
    found = []
    differs = repeat_differs(data.probes.gradient_repeat, data.analytic, data.unit_roundoff)
    if differs.any():
        gap = np.asarray(data.probes.gradient_repeat)
        a = np.abs(data.analytic)
        size = float(np.max(a[np.isfinite(a)], initial=0.0))
        worst = int(np.argmax(np.where(differs, gap, -np.inf)))
        share = float(gap[worst]) / size if size > 0 else float("inf")
        rel = np.abs(data.difference)
        rel_worst = int(np.argmax(np.where(np.isfinite(rel), rel, -np.inf)))
        found.append(Finding(
            "nondeterministic", f"grad returns different values when called twice at the "
            f"same x: the two calls differ at {int(differs.sum())} of {differs.size} "
            f"{data.unit}s, by up to {gap[worst]:.3g} at {where_is(data, worst)} "
            f"({share:.3g} of the largest entry), beyond the {REPEAT_ULPS:g} ulps that "
            "reordered sums explain. Rounding is a deterministic function of x, so this is "
            "not rounding: grad draws random numbers (a dropout mask drawn again instead of "
            "the one f used) or reads state that changes between calls. The gradient "
            "checked is one random draw, so no comparison with a reference can pass it, "
            "and no tolerance was widened for the scatter (the largest gap to the "
            f"reference is {rel[rel_worst]:.3g} at {where_is(data, rel_worst)}). Fix: draw "
            "the randomness once (save the mask, fix the seed) and use the same values in "
            "f and grad.",
            {"coordinates": np.flatnonzero(differs).tolist(), "share": share,
             "repeat_gap": gap.tolist(), "source": "grad"}))
    return found


def detect_random_f(data: CheckData, earlier: Sequence[Finding]) -> list[Finding]:
    """f different between two calls at the same x: its noise is randomness (dropout,
    sampling) or changing state, not the lower precision `causes.detect_precision_loss`
    names for a deterministic noisy f (which it leaves to this detector then).

    The verdict is the one a noisy f gets: the reference's error bars carry the
    measured noise (`reference.noisy_reference`); when f is noisier than its system
    allows, the failing gaps that noise explains are covered (`causes._noise_covers`)
    and the rest are left to the bug detectors; otherwise the finding explains no
    coordinate and only says why the check does not pass."""
    probe = data.probes.noise
    if probe is None or not probe.nondeterministic:
        return []
    lossy = is_lossy(probe)
    # randomness within the noise f's system allows decides nothing by itself; it is
    # named only where the verdict is no pass already (a failure, an undecidable bar)
    if not lossy and not (data.failing.any() or undecidable(data).any()):
        return []
    size = probe.expected / data.unit_roundoff  # max |f| over the probe's points
    relative = probe.repeat / size if size > 0 else float("inf")
    ratio = probe.sigma / probe.expected if probe.expected > 0 else float("inf")
    covered = _noise_covers(data, probe) if lossy else np.zeros(data.failing.shape, bool)
    evidence = ({"partial": bool(np.any(data.failing & ~covered))} if lossy else
                {"undecidable": True})  # not lossy: explains no coordinate
    return [Finding("precision_loss", f"f returns different values when called twice at "
                    f"the same x: they differ by {probe.repeat:.3g} ({relative:.2g} relative "
                    f"to |f|), beyond the {REPEAT_ULPS:g} ulps that reordered sums explain, "
                    f"and offsets of {probe.delta:.2g} show noise of {probe.sigma:.3g} "
                    f"({ratio:.2g} times u·|f|). Rounding is a deterministic function of x, "
                    "so this is no lower precision inside f: f draws random numbers (dropout "
                    "in training mode, a sampled minibatch, injected noise) or reads state "
                    "that changes between calls. Every finite difference of f carries that "
                    "randomness (the reference's error bars include it), so the check "
                    "resolves the gradient no better. Make f deterministic for the check "
                    "(a fixed seed or mask inside f, dropout off).",
                    {"coordinates": np.flatnonzero(covered).tolist(), "sigma": probe.sigma,
                     "expected": probe.expected, "ratio": ratio, "repeat": probe.repeat,
                     "nondeterministic": True, **evidence})]


def _precision_loss_or_random_f(data: CheckData, earlier: Sequence[Finding]
                                ) -> list[Finding]:
    """`detect_random_f`, then `causes.detect_precision_loss` (one kind, one place)."""
    found = detect_random_f(data, earlier)
    return found + detect_precision_loss(data, (*earlier, *found))


def detect_narrower_dtype(data: CheckData, earlier: Sequence[Finding]) -> list[Finding]:
    """grad returned its array in a binary float less precise than the system (a float64
    array for a ``decimal:30`` check): the failing gaps within that float's rounding
    (`rounding.BINARY_ULPS` of its ulps at the gradient's scale ``|n_i| + max|n|``) are
    that rounding, which the dtype proves with no statistics of the gaps (the values
    alone need `causes.BINARY_MIN_GAPS` gaps of both signs). Larger gaps are left to the
    bug detectors."""
    if data.probes.gradient_dtype is None:
        return []
    name, numbers = data.probes.gradient_dtype
    u_bin = float(np.finfo(np.dtype(name)).eps) / 2
    n = np.abs(data.reference)
    scale = n + float(np.max(n[np.isfinite(n)], initial=0.0))
    failing = data.failing & ~explained(data, earlier) & np.isfinite(data.difference)
    gap = np.abs(data.difference)
    covered = failing & (gap <= BINARY_ULPS * u_bin * scale)
    if not covered.any():
        return []
    idx = np.flatnonzero(covered)
    ulps = float(np.max(gap[idx] / (u_bin * scale[idx])))
    where = ", ".join(where_is(data, int(i)) for i in idx[:SHOWN])
    more = f" and {idx.size - SHOWN} more" if idx.size > SHOWN else ""
    return [Finding("precision_loss", f"grad returns a {name} array for a check in "
                    f"{numbers}: every entry was rounded to {name} (u = {u_bin:.2g}, "
                    f"against u = {data.unit_roundoff:.2g} of {numbers}), whatever grad "
                    f"computed, and the gaps at {idx.size} of {data.failing.size} "
                    f"{data.unit}s ({where}{more}) are within that rounding (at most "
                    f"{ulps:.3g} ulps of {name} at the gradient's scale), so the check cannot "
                    f"see a bug below {name}'s precision there. Return the gradient as numbers "
                    f"of {numbers} (compute it without float(); an object array of its "
                    "numbers).",
                    {"coordinates": idx.tolist(), "dtype": name, "ulps": ulps,
                     "partial": bool(np.any(data.failing & ~covered & ~explained(
                         data, earlier)))})]


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
    "precision_loss": _precision_loss_or_random_f,
    "not_complex_safe": detect_not_complex_safe,
    "localized": detect_localized,
    "mismatch": detect_mismatch,
    "match": detect_match,
}


# kinds that adapters produce (the PyTorch checks: a backward that ignores its incoming
# gradient, a backward that differs between two runs); of these only `nondeterministic`
# also has a generic detector (`detect_nondeterministic`, run before `DETECTORS`)
ADAPTER_KINDS = ("ignores_grad_output", "nondeterministic")


KINDS = (*DETECTORS, *ADAPTER_KINDS)


def diagnose(data: CheckData) -> tuple[Finding, ...]:
    """Every finding for `data`, in the order of `DETECTORS`."""
    found: list[Finding] = [*detect_non_finite(data), *detect_non_finite_reference(data)]
    found.extend(detect_nondeterministic(data, tuple(found)))
    found.extend(detect_narrower_dtype(data, tuple(found)))
    for detector in DETECTORS.values():
        found.extend(detector(data, tuple(found)))
    return tuple(found)
