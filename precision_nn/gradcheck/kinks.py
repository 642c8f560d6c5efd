"""The ``kink`` cause: one-sided differences whose jump does not shrink with the step,
named only where the kink explains the gap (the analytic value is one of the two
one-sided slopes, or the reference may average them).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from precision_nn.gradcheck.decisions import (
    kink_hits,
    kink_threshold,
    suspects,
    undecidable,
)
from precision_nn.gradcheck.diagnosis import Finding, against_limit, explained, fails
from precision_nn.gradcheck.evidence import CheckData

__all__ = ["detect_kink"]


def detect_kink(data: CheckData, earlier: Sequence[Finding]) -> list[Finding]:
    """Failing coordinates whose one-sided differences jump by a slope that does not
    shrink with the step, and where that kink explains the gap (`_kink_explains`)."""
    probe = data.probes.kink
    if probe is None or probe.indices.size == 0:
        return []
    hit, at, below = kink_hits(probe, kink_threshold(data, probe.indices))
    # a kink matters where the check fails, or where the user's own step straddles it;
    # a nearby kink that the automatic reference stepped around is no finding
    # (and where the reference cannot decide: a kink at x is what widens its error bar)
    relevant = (fails(data) | undecidable(data)) if data.probes.step is None \
        else suspects(data)
    hit &= (relevant & ~explained(data, earlier))[probe.indices]
    how = [_kink_explains(data, probe, r, at[r], below[r]) if hit[r] else None
           for r in range(probe.indices.size)]
    hit &= np.array([h is not None for h in how], dtype=bool)
    if not hit.any():
        return []
    idx = probe.indices[hit]
    rows = np.flatnonzero(hit)
    jump = float(np.max([np.nanmax(np.abs(probe.jumps[r])) for r in rows]))
    labels = ", ".join(data.blocks.label(int(i)) for i in idx[:5])
    h = float(np.max(at[hit]))
    other = all(how[r] == "other_side" for r in rows)
    between = [_between_slopes(data, probe, r, at[r], below[r]) for r in rows]
    at_kink = bool(np.all(np.isnan(below[hit])))
    reading = ("the analytic gradient is the slope on the far side of the kink, while "
               "the reference (which does not cross it) gives the slope at x's side"
               if other else "the analytic gradient lies more than half the jump from the "
               "reference, so it is neither one-sided slope if x sits on the kink (only a "
               "kink a little away from x, which the reference's steps cross unevenly, "
               "fits it); look at the gradient there" if at_kink and not all(between)
               else "the analytic gradient is a one-sided slope there and the "
               "reference's steps may reach across the kink")
    return [Finding("kink", f"At {labels} the forward and backward differences differ by "
                    f"up to {jump:.3g}, and the gap stays put while the step shrinks 16-fold "
                    f"from {h:.3g}: f has a kink (a ReLU-like pre-activation within the step "
                    "of 0), where a two-sided difference averages two slopes; "
                    f"{reading}. {_kink_advice(data, probe, hit, below)}",
                    {"coordinates": idx.tolist(), "h": h, "jump": jump,
                     "at_kink": at_kink, "explains": [how[r] for r in rows],
                     "between_slopes": between})]


def _kink_explains(data: CheckData, probe: Any, r: int, at: float, below: float
                   ) -> str | None:
    """How the kink seen in row `r` of the scan explains its coordinate's gap, or None.

    Hypothesis tested: the analytic gradient is one of the two one-sided slopes s₋, s₊
    (whose difference the scan measures, ``J = s₊ - s₋``), and the gap ``d = a - n``
    against the judged reference (the h → 0 limit, when the user gave a step) comes from
    the kink alone. Three readings fit:

    * ``"agrees"``: nothing fails against the judged reference (only the user's step,
      which the scan started from, crosses the kink; or the reference's bar is wide);
    * ``"other_side"``: ``|d| = |J|`` within the scan's error: the reference is the slope
      at x's side, the analytic gradient the other one;
    * ``"straddles"``: ``|d| ≤ |J|`` (a reference whose steps cross the kink averages the
      two slopes, so it lies between them). Possible only where the reference can cross
      it: an explicit step or a real-arithmetic reference (not the complex step, which
      never leaves the real line's point x), or a kink closer to x than the scan's
      smallest step (there even a complex step may have been replaced by central
      differences, `refine`, whose steps reach it). Not where the automatic reference
      was computed again from a step below the kink (`Probes.restarted`): its steps no
      longer reach it, so a gap beyond its tolerance is not the kink's.

    Anything else (a 1 % bug next to a kink, equal to neither slope, against a complex
    step) is left to the bug detectors.
    """
    gaps = _gap_and_slopes(data, probe, r, at, below)
    if gaps is None:
        return "agrees"
    d, slope_gap, margin = gaps
    if not np.isfinite(slope_gap):
        return None
    i = int(probe.indices[r])
    if abs(d - slope_gap) <= margin:
        return "other_side"
    probe_c = data.probes.complex
    restarted = data.probes.restarted is not None and bool(data.probes.restarted[i])
    one_sided = data.probes.step is None and (restarted or probe_c is not None
                                              and probe_c.safe)
    if (not one_sided or np.isnan(below)) and d <= slope_gap + margin:
        return "straddles"
    return None


def _between_slopes(data: CheckData, probe: Any, r: int, at: float, below: float) -> bool:
    """Whether the analytic value at row `r`'s coordinate may be one of the two one-sided
    slopes of a kink at x: within half the slope gap of the reference, which, from steps
    symmetric about a kink at x, averages the two slopes (``|a - n| ≤ |J|/2`` within the
    scan's error). A gap up to the whole ``|J|`` fits a reference that crossed a kink at a
    distance, not one at x; at x it means the analytic value lies outside both slopes
    (relu + x² at 0 with a₀ = 1.3, slopes 0 and 1)."""
    gaps = _gap_and_slopes(data, probe, r, at, below)
    if gaps is None:
        return True
    d, slope_gap, margin = gaps
    return bool(np.isfinite(slope_gap)) and d <= slope_gap / 2 + margin


def _gap_and_slopes(data: CheckData, probe: Any, r: int, at: float, below: float
                    ) -> tuple[float, float, float] | None:
    """``(|a - n|, |s₊ - s₋|, margin)`` at row `r`'s coordinate against the judged
    reference, the margin being the scan's error plus the coordinate's explain tolerance;
    None where that coordinate does not fail."""
    judged = against_limit(data)
    i = int(probe.indices[r])
    if not judged.failing[i]:
        return None
    slope_gap, error = _slope_gap(data, probe, r, at, below)
    return (abs(float(judged.difference[i])), slope_gap,
            error + float(judged.explain_tolerance[i]))


def _slope_gap(data: CheckData, probe: Any, r: int, at: float, below: float
               ) -> tuple[float, float]:
    """``|s₊ - s₋|`` from the scan of row `r`, and its error.

    Across a kink at distance δ the jump is ``J(h) = J·(1 - δ/h) + c·h`` for h > δ (c
    from f's curvature): both deviations change by a factor 4 between consecutive scan
    steps, so the change ``|J(h) - J(h/4)|`` bounds each within a factor 4/3. The pair of
    steps (from where the kink was seen, above the step below it) that changes least
    gives the estimate ``J(h)`` with error ``2·|J(h) - J(h/4)|`` plus both noise levels.
    """
    steps, jumps, noise = probe.steps[r], np.abs(probe.jumps[r]), probe.noise[r]
    keep = np.isfinite(jumps) & (steps <= at)
    if np.isfinite(below):
        keep &= steps > below
    J, e = jumps[keep], noise[keep]
    if J.size < 2:
        return float("nan"), float("nan")
    change = np.abs(np.diff(J))
    k = int(np.argmin(change))
    return float(J[k]), float(2 * change[k] + e[k] + e[k + 1])


def _kink_advice(data: CheckData, probe: Any, hit: np.ndarray, below: np.ndarray) -> str:
    """What the user can do: at a kink the scan never got below, no derivative exists
    at x (to the check's resolution); else a step below the measured distance works."""
    smallest = float(np.nanmin(probe.steps[hit]))
    if np.all(np.isnan(below[hit])):
        return (f"The jump persists down to the smallest step tried ({smallest:.2g}): the "
                "kink lies within that distance of x, closer than the check can resolve (x "
                "may sit on it, where f has no derivative and any gradient is one of the "
                "one-sided slopes). Check the gradient at a nearby point instead "
                "(e.g. another random initialisation).")
    step = float(np.nanmin(below[hit]))
    complex_ok = data.probes.complex is not None and data.probes.complex.safe
    other = " or method='complex_step', which never crosses it" if complex_ok else ""
    return (f"Below a step of about {step:.2g} f is smooth again: use a step smaller than "
            f"that (h={step / 4:.2g} with method='central'){other}.")
