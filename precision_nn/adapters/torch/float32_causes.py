"""What a float32 failure is when the same backward passes in float64 (`confirm`): a
constant factor that exists only in float32, float32's own rounding of a right
backward, or a forward that computes another function in float32.
"""

from __future__ import annotations

import numpy as np

from precision_nn.gradcheck import Finding, GradientReport
from precision_nn.gradcheck.patterns import SCALE_RESOLVED, factor_and_error, measured
from precision_nn.gradcheck.tolerance import ROUNDING_FACTOR

__all__ = ["DECISIVE_SHARE", "FORWARD_ULPS", "SCALE_MIN_ENTRIES", "dtype_dependent",
           "float32_only_scales", "float32_rounding"]

# float32, failing: the wider check clears a failing coordinate only if its tolerance
# there is below this share of the float32 gap |a_i - n_i|: then the wider gradient is
# within gap/4 of the reference and the float32 one is not, so at least 3/4 of the gap
# lies between the two runs of the same backward
DECISIVE_SHARE = 0.25
# the float32 and float64 forwards of the same code differ by rounding: a few ulps of
# each output's largest entry for the networks the check targets (the rounding model's
# k ≲ 50, `gradcheck.tolerance`); beyond 1024 ulps (8 times the backward's whole allowance
# of 128) they compute different functions (a random mask drawn in each dtype differs in
# O(1) of the entries)
FORWARD_ULPS = 1024.0
# a constant ratio between the float32 and float64 runs is named only where it is seen
# at this many entries (beyond float32's rounding there): one or two entries have a
# ratio of their own whatever rounding did
SCALE_MIN_ENTRIES = 3


def _where(report: GradientReport, idx: np.ndarray, shown: int = 4) -> str:
    if report.directional:
        labels = "direction" + "s" * (idx.size > 1) + " " + ", ".join(
            str(int(i)) for i in idx[:shown])
    else:
        labels = ", ".join(report.blocks.label(int(i)) for i in idx[:shown])
    return labels + (f" and {idx.size - shown} more" if idx.size > shown else "")


def float32_rounding(report: GradientReport, wide: GradientReport, idx: np.ndarray,
                     u: float) -> Finding:
    """The float32 backward is off by more than the rounding model allows at `idx`, and
    the same backward in float64 passes: float32's arithmetic, not the formula."""
    a32, a64 = report.analytic, wide.analytic
    moved = float(np.max(np.abs(a32[idx] - a64[idx])))
    top = float(np.max(np.abs(a64), initial=0.0))
    share = moved / top if top > 0 else float("inf")
    return Finding(
        "precision_loss",
        f"float32 rounding, not a wrong backward: at {idx.size} coordinate(s) ({_where(report, idx)}) "
        f"the float32 gradient is off by more than the {ROUNDING_FACTOR:g}-ulp rounding "
        "model allows, but the same backward run in float64 on the same values passes the "
        f"check there (its tolerance below {DECISIVE_SHARE:g} of each float32 gap). The "
        f"float32 run differs from the float64 run by up to {moved:.2g}, {share:.2g} of "
        f"max|g| ({share / u:.0f} float32 ulps of it): float32 arithmetic loses that much "
        "in this backward (cancellation, e.g. 1 - p at a saturated softmax or sigmoid, or "
        "long sums), unless the backward takes another path in float32 (a branch on the "
        "dtype, a float32-only kernel). Training in float32 sees gradients this "
        "inaccurate here; if it "
        "matters, compute the sensitive part in float64 or in a stable form (log_softmax "
        "with nll_loss instead of softmax then log), or check at a less saturated point.",
        {"torch": "float32_rounding", "coordinates": idx.tolist(), "gap": moved,
         "share": share, "float64_tolerance": float(np.max(wide.tolerance[idx]))})


def float32_only_scales(report: GradientReport, wide: GradientReport, idx: np.ndarray,
                        u: float) -> list[Finding]:
    """Blocks (with failing coordinates in `idx`) whose float32 gradient is one constant
    times the float64 run of the same backward, which passes: a factor in float32 only.

    Hypothesis tested: ``a32 = c·a64`` at every entry of the block, within float32's
    rounding of each entry by the check's model (``ROUNDING_FACTOR·u·(|a32_i| +
    max|a32|)``), with ``c - 1`` resolved (beyond ``SCALE_RESOLVED`` of its uncertainty)
    and seen at ``SCALE_MIN_ENTRIES`` entries or more (``|c - 1|·|a64_i|`` beyond the
    rounding there). Rounding of a right backward in float32, however large
    (cancellation in a saturated softmax), gives relative errors that vary from entry to
    entry, never one ratio at several entries; a dtype-dependent constant (``1 + eps``
    with eps from ``torch.finfo(x.dtype)``, a branch on the dtype) gives exactly that.
    """
    a32, a64 = report.analytic, wide.analytic
    blocks, found = report.blocks, []
    tol_all = ROUNDING_FACTOR * u * (np.abs(a32) + float(np.max(np.abs(a32), initial=0.0)))
    for b in range(len(blocks.shapes)):
        span = blocks.index(b)
        block = np.arange(span.start, span.stop)
        if not np.isin(idx, block).any():
            continue
        x, y, tol = a32[span], a64[span], tol_all[span]
        if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
            continue
        d = x - y
        delta, sigma = factor_and_error(d, y, tol)
        if not (np.isfinite(delta) and abs(delta) > SCALE_RESOLVED * sigma):
            continue
        if not np.all(np.abs(d - delta * y) <= tol):
            continue
        if int(np.sum(np.abs(delta * y) > tol)) < SCALE_MIN_ENTRIES:
            continue
        c = 1.0 + delta
        name = blocks.name(b) if blocks.given else "the whole gradient"
        found.append(Finding(
            "scale",
            f"{name}: the float32 backward is {measured(c, sigma)} × the float64 run of "
            f"the same backward at all {block.size} entries, and the float64 check "
            "passes: a constant factor that exists only in float32 (a branch on the "
            "dtype, a constant such as 1 + torch.finfo(x.dtype).eps, a float32-only "
            "kernel), not float32 rounding, whose relative errors differ from entry to "
            "entry. Look for code that depends on the tensor's dtype.",
            {"torch": "float32_scale", "factor": c, "factor_error": sigma,
             "block": b, "region": name, "coordinates": block.tolist()}))
    return found


def dtype_dependent(report: GradientReport, wide: GradientReport, moved: float, *,
                    random: bool) -> Finding:
    """The float32 forward computes another function than its float64 copy (beyond
    `FORWARD_ULPS`), and the float64 check of the same code passes: undecidable.

    The reference differentiates the float64 copy, so at the failing coordinates it is
    the derivative of another function than the one the float32 backward belongs to. A
    gap there shows the two functions differ, not that the backward is wrong (the
    backward of a forward with ``torch.finfo(x.dtype).eps`` inside is exact in each
    dtype, and fails against the other dtype's reference); and the float64 check, where
    both sides run the same code, passes. So the finding is an undecidable
    ``precision_loss`` (the float32 f is off from the f the reference sees by more than
    its rounding) and the report says UNDECIDED, never FAILED on that evidence."""
    cause = ("The code draws random numbers, and a draw in the tensor's own dtype "
             "(torch.rand(shape, dtype=x.dtype)) gives other numbers in float32 than in "
             "float64. Fix: draw in a fixed dtype (torch.rand(shape) > p), or check in "
             "eval() mode." if random else
             "The code depends on the dtype (a branch on x.dtype, a constant such as "
             "torch.finfo(x.dtype).eps), or its forward already loses that many digits in "
             "float32. To check the float32 backward itself, make the forward compute the "
             "same function in both dtypes (an eps of fixed value).")
    return Finding(
        "precision_loss",
        f"undecidable: the float32 forward computes another function than the float64 "
        f"copy the reference differentiates (their outputs differ by up to {moved:.2g} of "
        f"their largest entry, beyond float32 rounding: {FORWARD_ULPS:g} ulps), so the "
        "reference is the derivative of another function and the float32 gaps prove "
        f"nothing about the float32 backward. {cause} The same backward checked in "
        "float64, where both sides run the same code, passes.",
        {"torch": "dtype_dependent", "share": moved, "random": random, "undecidable": True,
         "coordinates": np.flatnonzero(~(np.abs(report.difference) <= report.tolerance)
                                       ).tolist()})
