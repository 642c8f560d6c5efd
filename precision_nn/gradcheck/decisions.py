"""The decision rules that steer the follow-up probes: when a reference is too uncertain
to decide, which coordinates deserve a kink scan, whether f is noisier than its system.

`check_gradient`'s refinement loop (`refine`) asks these questions of a `CheckData`;
the detectors (`causes`) read the same answers, so the two never disagree.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from precision_nn.gradcheck.evidence import CheckData
from precision_nn.gradcheck.tolerance import REFERENCE_SAFETY

__all__ = ["CLOSE_CALL", "DECIDABLE_EXPONENT", "KINK_KEEP", "NOISE_FACTOR", "NOISE_PERSIST",
           "WIDE_EXPONENT", "cancellation_only", "cancels", "is_lossy", "kink_hits", "kink_threshold",
           "persistent_above", "smooth_below", "suspects", "undecidable", "undecided",
           "with_terms"]

# across a kink the one-sided differences keep at least this share of their gap over a
# 16-fold shrinking of the step (h, h/4, h/16); a smooth f would keep 1/16 of it
KINK_KEEP = 0.5


# f is "noisier than its number system allows" beyond this many times u·|f|: sums of
# positive terms stay within a few u·|f|, so 10⁴ leaves room for cancelling sums while
# a float inside a 28-digit Decimal function shows ~10¹¹ and float32 inside float64 ~10⁸
NOISE_FACTOR = 1e4


# rounding noise keeps at least this share of its size at 16-fold finer offsets (estimates
# from five fourth differences scatter by a factor ~2); a kink's share falls to 1/16
NOISE_PERSIST = 1 / 6


# the reference's error bar is "too wide to decide" above this power of u, relative
WIDE_EXPONENT = 0.5


# a failing coordinate within this many error bars of its tolerance is too close to call
CLOSE_CALL = 10.0


# a reference decides only while its error bar (× REFERENCE_SAFETY) stays below u^(1/4) of
# the gradient's scale |n_i| + max|n|: beyond it the tolerance would accept gradients off
# by that share. Correct networks stay below 1/10 of it (Richardson in float32: 1e-3 rel.)
DECIDABLE_EXPONENT = 0.25


def undecided(data: CheckData) -> np.ndarray:
    """Coordinates whose verdict hinges on a reference error bar that is too wide.

    Wide: the reference's error estimate exceeds √u relative (``WIDE_EXPONENT``), and the
    gap would fail without it. Close: a failing gap within ``CLOSE_CALL`` error bars.
    """
    d = np.abs(data.difference)
    n = np.abs(data.reference)
    with np.errstate(over="ignore"):  # an error bar near the float maximum counts as inf
        reference_part = REFERENCE_SAFETY * np.nan_to_num(data.reference_error, nan=np.inf)
    rounding_part = np.maximum(data.tolerance - reference_part, 0.0)
    wide = data.reference_error > data.unit_roundoff ** WIDE_EXPONENT * (n + float(np.max(n)))
    close = data.failing & (d <= CLOSE_CALL * reference_part) & (reference_part > rounding_part)
    return (wide & (d > rounding_part)) | close


def unresolved_entries(data: CheckData) -> np.ndarray:
    """Coordinates where the reference's part of the tolerance allows half the entry or
    more while the analytic gradient's own rounding allowance stays below that: a slip
    of the entry's size (its sign, a factor 2) could pass, not for want of precision in
    the gradient but in the reference.

    The norm-wise tolerance accepts such an entry (it is small beside max|n|), and with
    a model rounding part ``128·u·(|a_i| + max|a|)`` it does so for every small entry
    alike; but where the rounding part is itself below the entry (measured in a wider
    system, `measurements.wider_rounding`), the gradient is known to resolve the entry
    and only a more precise reference can judge it.
    """
    with np.errstate(over="ignore"):
        reference_part = REFERENCE_SAFETY * np.nan_to_num(data.reference_error, nan=np.inf)
    rounding_part = np.maximum(data.tolerance - reference_part, 0.0)
    entry = np.maximum(np.abs(data.reference), np.abs(data.analytic))
    return (reference_part >= entry / 2) & (rounding_part < entry / 2)


def suspects(data: CheckData) -> np.ndarray:
    """Coordinates worth a kink scan: failing, undecided, undecidable (a kink at x widens
    the reference's error bar, and a gradient that jumps within a few ulps of x widens
    the tolerance as well), or where the user's step is off."""
    found = data.failing | undecided(data) | undecidable(data)
    step = data.probes.step
    if step is not None:
        found |= step.step_error > np.maximum(step.limit_tolerance, step.relevant)
    return found


def kink_threshold(data: CheckData, indices: np.ndarray) -> np.ndarray:
    """The smallest jump of slope that counts: √u relative to the gradient's size (the
    reference's error bar is no yardstick here, since a kink is what widens it)."""
    a = np.abs(data.analytic)
    return np.sqrt(data.unit_roundoff) * (a[indices] + float(np.max(a)))


def smooth_below(probe: Any, threshold: np.ndarray) -> np.ndarray:
    """Per probed coordinate: the largest scan step below which f looks smooth.

    Smooth means every jump at that step and below stays within ``2·c·h`` plus twice the
    noise or `threshold`, with ``c = |J|/h`` read at the smallest step (``J ≈ h·f''``).
    NaN where every step looks smooth (nothing to step around) or none does.
    """
    out = np.full(probe.indices.size, np.nan)
    for r in range(probe.indices.size):
        valid = np.isfinite(probe.jumps[r])
        J, h = np.abs(probe.jumps[r][valid]), probe.steps[r][valid]
        if J.size < 2:  # f not finite at the scan's points: nothing to read
            continue
        allowance = 2 * np.maximum(probe.noise[r][valid], threshold[r])
        smooth = J <= 2 * (J[-1] / h[-1]) * h + allowance
        rough = np.flatnonzero(~smooth)
        if rough.size and rough[-1] + 1 < J.size:
            out[r] = h[rough[-1] + 1]
    return out


def kink_hits(probe: Any, tolerance: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per probed coordinate: (kink seen, step where seen, a step below every kink seen).

    Smooth ``f`` gives jumps ``J(h) ≈ c·h`` with ``c = |f''|`` read off the smallest scan
    steps. A kink is seen where two consecutive steps (h, h/4) show significant jumps
    within a factor ``1/KINK_KEEP`` of each other that exceed ``2·c·h`` — or, for a kink
    closer than the smallest steps, where three consecutive steps do so regardless of
    ``c``. The step below the kink is the first after which every jump has fallen under
    ``KINK_KEEP`` times the kink's (NaN when the scan never got below it).
    """
    k = probe.indices.size
    hit, at, below = np.zeros(k, bool), np.full(k, np.nan), np.full(k, np.nan)
    for r in range(k):
        J, h = np.abs(probe.jumps[r]), probe.steps[r]
        valid = np.isfinite(J)
        J, h = J[valid], h[valid]
        if J.size < 2:
            continue
        sig = J > np.maximum(tolerance[r], probe.noise[r][valid])
        curvature = float(np.median(J[-2:] / h[-2:]))
        for s in range(J.size - 1):
            width = 3 if s + 2 < J.size and sig[s:s + 3].all() and \
                J[s:s + 3].min() >= KINK_KEEP * J[s:s + 3].max() else 2
            window = J[s:s + width]
            excess = width == 3 or np.all(window > 2 * curvature * h[s:s + width])
            if sig[s:s + width].all() and window.min() >= KINK_KEEP * window.max() and excess:
                hit[r], at[r] = True, h[s]
                quiet = J < KINK_KEEP * window.min()
                after = [t for t in range(s + width, J.size) if quiet[t:].all()]
                if after:
                    below[r] = h[after[0]]
                break
    return hit, at, below


def with_terms(probe: Any, reference: np.ndarray, x: np.ndarray, unit_roundoff: float) -> Any:
    """`probe` with ``terms = u·max_i |n_i|·(1 + |x_i|)`` (`n` the reference gradient).

    ``u·|f|`` bounds the rounding of one evaluation only when f does not cancel: a sum of
    O(1) terms that cancels to 0 rounds by ~u·Σ|terms| while ``u·|f| = 0``. The terms are
    invisible from outside f, but every term that depends on x_i changes by about
    ``|∂f/∂x_i|·(1 + |x_i|)`` when x_i moves by its own scale, so f has terms at least
    that large (Σ sin(x_i) at ±0.3, ±1.1, ±2.0: 1.25 against Σ|sin x_i| = 4.2). Noise
    within `NOISE_FACTOR` of ``u·terms`` may be cancellation; NaN entries are skipped.
    """
    if probe is None:
        return None
    n = np.abs(np.asarray(reference, dtype=float)).ravel()
    scale = np.abs(np.asarray(x, dtype=float)).ravel()
    if n.size != scale.size:
        return probe
    size = n * (1 + scale)
    size = size[np.isfinite(size)]
    top = float(np.max(size)) if size.size else 0.0
    return replace(probe, terms=unit_roundoff * top)


def persistent_above(probe: Any, floor: float) -> bool:
    """σ above `floor` at both spacings, the fine one keeping its share (rounding noise)."""
    return bool(probe.sigma > floor and probe.sigma_fine > floor
                and probe.sigma_fine >= NOISE_PERSIST * probe.sigma)


def is_lossy(probe: Any) -> bool:
    """Whether the noise probe shows f noisier than its system allows, at both spacings.

    Rounding noise has the same size at offsets δ and δ/16; a kink between the offsets
    makes fourth differences proportional to the spacing, so its fine measurement falls
    16-fold (below ``NOISE_PERSIST`` of the coarse one) and is not taken for noise.
    "Allows" counts the rounding of f's terms (`with_terms`), not only ``u·|f|``: noise
    that cancellation can explain is no evidence of a lower precision (`cancels`).
    """
    if probe is None:
        return False
    floor = NOISE_FACTOR * max(probe.expected, probe.terms)
    return persistent_above(probe, floor)


def cancels(probe: Any) -> bool:
    """Whether f is noisier than ``u·max|f|`` allows but within what cancelling terms of
    the size its gradient shows allow: f cancels or computes in a lower precision, and
    these values cannot tell which."""
    if probe is None or is_lossy(probe):
        return False
    return persistent_above(probe, NOISE_FACTOR * probe.expected)


def undecidable(data: CheckData) -> np.ndarray:
    """Coordinates whose reference error bar exceeds ``u^DECIDABLE_EXPONENT`` of the
    gradient's scale ``|n_i| + max|n|`` (missing estimates count as decidable: the
    tolerance then trusts the reference to √u)."""
    n = np.abs(data.reference)
    with np.errstate(over="ignore"):  # an error bar near the float maximum counts as inf
        err = REFERENCE_SAFETY * np.nan_to_num(data.reference_error, nan=0.0)
    limit = data.unit_roundoff ** DECIDABLE_EXPONENT
    # the scale summed after scaling: |n_i| + max|n| overflows near the float64 maximum
    # (and an infinite error bar decides nothing whatever the scale)
    return np.isinf(err) | (err > limit * n + limit * float(np.max(n)))


def cancellation_only(data: CheckData) -> np.ndarray:
    """Coordinates that pass only on the hypothesis that their entry cancels terms as
    large as the gradient's largest entry.

    The rounding model allows ``ROUNDING_FACTOR·u·(|a_i| + max|a|)``: the ``max|a|`` term
    is there for an entry that results from cancellation (`tolerance`), and the complex
    step's error bar has the same norm-wise term for its own sums. A gap beyond the
    tolerance of an entry that cancels nothing (`Tolerance.entry_part`: the reference's
    bar with its rounding at the entry's size, plus ``ROUNDING_FACTOR·u·|a_i|`` or 8 ×
    the measured noise of the analytic gradient) needs that hypothesis, and a bug of the
    gap's size passes with it. The hypothesis is tested by the noise of
    the analytic gradient when x moves by a few ulps: a sum that cancels terms depending
    on x rounds differently at every such move, by about ``u`` times its terms
    (`refine.follow_up` measures it for these coordinates, and the entry part grows to
    cover what it shows). What remains here was not seen to cancel: undecidable, never
    passed. Not asked of directions (their scale is a sum over every entry), nor of a
    comparison with the user's step (judged against its own limit)."""
    entry = data.tol.entry_part
    if entry is None or data.unit != "coordinate" or data.probes.step is not None:
        return np.zeros(data.difference.shape, dtype=bool)
    return ~data.failing & (np.abs(data.difference) > entry)
