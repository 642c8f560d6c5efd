"""Numerical causes of a disagreement, from the probes `check_gradient` measured:
``kink``, ``step_too_large``, ``step_too_small``, ``precision_loss`` (f noisier than
its system; else an analytic gradient that carries a binary float's rounding; else a
reference whose error bar is too wide to decide, beyond ``u^(1/4)`` of the gradient's
scale), ``not_complex_safe``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from precision_nn.gradcheck.decisions import (
    DECIDABLE_EXPONENT,
    cancellation_only,
    is_lossy,
    kink_hits,
    kink_threshold,
    suspects,
    undecidable,
)
from precision_nn.gradcheck.diagnosis import (
    Finding,
    against_limit,
    explained,
    fails,
    numerical,
)
from precision_nn.gradcheck.evidence import CheckData
from precision_nn.gradcheck.tolerance import REFERENCE_SAFETY, ROUNDING_FACTOR

__all__ = ["detect_kink", "detect_not_complex_safe", "detect_precision_loss",
           "detect_step_too_large", "detect_step_too_small"]

# the user's step is rounding-dominated when its modelled rounding is this share of its error
ROUNDING_SHARE = 0.1


# a gradient computed through binary floats (a float() in backprop of a Decimal network)
# errs by some tens of ulps of that float at most, relative to the gradient's scale, at
# most of its coordinates (a wrong term hits a few); rounding several entries leaves at
# least one gap above 1/16 ulp (the largest of k uniform rounding errors in ±½ ulp
# exceeds 1/16 ulp with probability 1 - (1/8)^k)
BINARY_ROUNDING = {"float64": 2.0 ** -53, "float32": 2.0 ** -24, "float16": 2.0 ** -11}
BINARY_TYPES = {"float64": np.float64, "float32": np.float32, "float16": np.float16}
# floats so coarse that random gaps of their size also fit other causes (thousands of
# float32 ulps): named only when the gradient was stored through them (`_stored_through`)
STORED_ONLY = {"float16": np.float16}


BINARY_ULPS = 100.0


BINARY_LEAST = 1 / 16


BINARY_SHARE = 0.5
# random signs can be told from a systematic offset only on a few gaps
BINARY_MIN_GAPS = 4
# roundings of k >= 4 different entries all within 1% of one size: for errors uniform in
# ±½ ulp of entries of unequal sizes that has probability below 0.02^3 (a missing term of
# one size, λ·sign θ, gives exactly that)
BINARY_SAME_SIZE = 0.01
# a value stored through float b is within one spacing of b of the value it rounds (half
# of one when rounded to nearest; one allows any faithful rounding, e.g. truncation)
STORED_SPACINGS = 1.0
# the signs of m rounding errors are independent of the entry's sign, of x_i's sign and
# of a constant: agreement with each is Binomial(m, ½), and a count beyond SIGN_Z standard
# deviations √m/2 of m/2 (two-sided p ≈ 1e-3 each) shows a systematic term (c·x³, c·n)
SIGN_Z = 3.29
# fewer gaps than this cannot reject even a term whose sign agrees at every entry
# (m/2 > SIGN_Z·√m/2 needs m > SIGN_Z²): then "random signs" is not shown, only assumed
SIGN_MIN_GAPS = int(np.ceil(SIGN_Z ** 2)) + 1


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
    reading = ("the analytic gradient is the slope on the far side of the kink, while "
               "the reference (which does not cross it) gives the slope at x's side"
               if other else "the analytic gradient is a one-sided slope there and the "
               "reference's steps may reach across the kink")
    return [Finding("kink", f"At {labels} the forward and backward differences differ by "
                    f"up to {jump:.3g}, and the gap stays put while the step shrinks 16-fold "
                    f"from {h:.3g}: f has a kink (a ReLU-like pre-activation within the step "
                    "of 0), where a two-sided difference averages two slopes; "
                    f"{reading}. {_kink_advice(data, probe, hit, below)}",
                    {"coordinates": idx.tolist(), "h": h, "jump": jump,
                     "at_kink": bool(np.all(np.isnan(below[hit]))),
                     "explains": [how[r] for r in rows]})]


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
      differences, `refine`, whose steps reach it).

    Anything else (a 1 % bug next to a kink, equal to neither slope, against a complex
    step) is left to the bug detectors.
    """
    judged = against_limit(data)
    i = int(probe.indices[r])
    if not judged.failing[i]:
        return "agrees"
    slope_gap, error = _slope_gap(data, probe, r, at, below)
    if not np.isfinite(slope_gap):
        return None
    d = abs(float(judged.difference[i]))
    margin = error + float(judged.explain_tolerance[i])
    if abs(d - slope_gap) <= margin:
        return "other_side"
    probe_c = data.probes.complex
    one_sided = data.probes.step is None and probe_c is not None and probe_c.safe
    if (not one_sided or np.isnan(below)) and d <= slope_gap + margin:
        return "straddles"
    return None


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
        return (f"The jump persists down to the smallest step tried ({smallest:.2g}): x "
                "sits on the kink, where f has no derivative and any gradient is one of "
                "the one-sided slopes. Check the gradient at a nearby point instead "
                "(e.g. another random initialisation).")
    step = float(np.nanmin(below[hit]))
    complex_ok = data.probes.complex is not None and data.probes.complex.safe
    other = " or method='complex_step', which never crosses it" if complex_ok else ""
    return (f"Below a step of about {step:.2g} f is smooth again: use a step smaller than "
            f"that (h={step / 4:.2g} with method='central'){other}.")


def _step_verdict(data: CheckData, earlier: Sequence[Finding]
                  ) -> tuple[str, np.ndarray] | None:
    """``("step_too_large" | "step_too_small", coordinates)`` for the coordinates where the
    h → 0 limit agrees with the analytic gradient but the user's step errs beyond it.

    Coordinates an earlier finding explains (a kink, a bug pattern) are left out: across
    a kink the step's error does not shrink with h, so it is not a matter of its size.
    """
    probe = data.probes.step
    if probe is None:
        return None
    agrees = np.abs(probe.limit_difference) <= probe.limit_tolerance
    off = probe.step_error > np.maximum(probe.limit_tolerance, probe.relevant)
    # the finding explains exactly the coordinates where the limit agrees (tested there):
    # those where the step errs, and those that fail only against the step's reference;
    # a coordinate where the limit disagrees too is left for the bug detectors
    coords = agrees & (off | data.failing) & ~explained(data, earlier)
    if not (coords & off).any():
        return None
    share = np.median(probe.rounding[coords & off]
                      / np.maximum(probe.step_error[coords & off], 1e-300))
    return ("step_too_small" if share >= ROUNDING_SHARE else "step_too_large"), coords


def _limit_scope(data: CheckData, coords: np.ndarray) -> str:
    """Where the h → 0 limit was found to agree: every coordinate, or the ones listed
    (the limit disagrees at the others, and the finding makes no claim there)."""
    if coords.all():
        return f"at every {data.unit}"
    idx = np.flatnonzero(coords)
    labels = ", ".join(data.blocks.label(int(i)) if data.unit != "direction"
                       else f"direction {int(i)}" for i in idx[:5])
    more = f" and {idx.size - 5} more" if idx.size > 5 else ""
    return f"at these {idx.size} of {coords.size} {data.unit}s ({labels}{more})"


def detect_step_too_large(data: CheckData, earlier: Sequence[Finding]) -> list[Finding]:
    """The user's step carries a truncation error that explains the gap."""
    verdict = _step_verdict(data, earlier)
    if verdict is None or verdict[0] != "step_too_large":
        return []
    probe, failing = data.probes.step, verdict[1]
    err = float(np.max(probe.step_error[failing]))
    agree = float(np.max(np.abs(probe.limit_difference[failing])))
    return [Finding("step_too_large", f"The step h = {probe.h:.6g} is too large: the "
                    f"{probe.method} difference at that step is off by up to {err:.3g} "
                    f"(truncation error, it shrinks with h) {_limit_scope(data, failing)}, "
                    f"where the h → 0 limit ({probe.limit_name}) agrees with the analytic "
                    f"gradient to {agree:.2g}. Use method='auto' or a step near the optimum.",
                    {"coordinates": np.flatnonzero(failing).tolist(), "h": probe.h,
                     "step_error": err, "limit_agreement": agree})]


def detect_step_too_small(data: CheckData, earlier: Sequence[Finding]) -> list[Finding]:
    """The user's step is so small that rounding in f(x ± h) dominates the difference."""
    verdict = _step_verdict(data, earlier)
    if verdict is None or verdict[0] != "step_too_small":
        return []
    probe, failing = data.probes.step, verdict[1]
    err = float(np.max(probe.step_error[failing]))
    rnd = float(np.max(probe.rounding[failing]))
    return [Finding("step_too_small", f"The step h = {probe.h:.3g} is too small: rounding "
                    f"in f(x ± h) is amplified by 1/h to about {rnd:.3g} (u·|f|/h), and the "
                    f"{probe.method} difference is off by up to {err:.3g}; the h → 0 limit "
                    f"({probe.limit_name}) agrees with the analytic gradient "
                    f"{_limit_scope(data, failing)}. Use "
                    "method='auto' or a step near the optimum (≈ u^(1/3) for central).",
                    {"coordinates": np.flatnonzero(failing).tolist(), "h": probe.h,
                     "step_error": err, "rounding": rnd})]


def _binary_rounding(data: CheckData) -> str | None:
    """The binary float whose rounding explains every failing gap, if any (and the
    system is far more precise than it).

    The hypothesis "the gradient went through that float" is tested before it is named.
    What any rounding shows: both signs among the relative gaps ``d_i/n_i`` (at least
    ``BINARY_MIN_GAPS`` failing gaps to tell), gaps in every block (a block that matches
    exactly did not go through the float), sizes a few ulps of that float at the
    gradient's scale (``BINARY_LEAST`` to ``BINARY_ULPS`` ulps of
    `CheckData.entry_scale`: along a direction, a sum of random-sign errors), never
    thousands, and of different sizes (roundings of different entries do not all come
    out within ``BINARY_SAME_SIZE`` of one magnitude; a missing term λ·sign(θ) does). A
    constant relative offset was already named by ``scale``. Then one of two ways it
    went through the float must be seen (`_stored_through`, `_random_roundings`): the
    gradient was stored in it, or its gaps at many entries have signs that follow
    nothing systematic. A wrong entry seen along random directions, or a smooth extra
    term (1e-7·x³), shows neither. float16, whose ulps are thousands of float32's, is
    named only when stored.
    """
    failing = data.failing
    if failing.mean() < BINARY_SHARE or failing.sum() < BINARY_MIN_GAPS:
        return None
    signs = np.sign(data.difference[failing] * data.reference[failing])
    if not (np.any(signs > 0) and np.any(signs < 0)):
        return None
    blocks = data.blocks
    if any(not failing[blocks.index(b)].any() for b in range(len(blocks.shapes))):
        return None
    gap = np.abs(data.difference[failing])
    if np.max(gap) <= (1 + BINARY_SAME_SIZE) * np.min(gap):
        return None  # one size at every entry: a term (λ·sign θ), not roundings
    ulps = gap / _entry_scale(data)[failing]
    for name, u_bin in BINARY_ROUNDING.items():
        if not (data.unit_roundoff * BINARY_ULPS < u_bin and
                BINARY_LEAST * u_bin <= np.max(ulps) <= BINARY_ULPS * u_bin):
            continue
        if _stored_through(data, name) or \
                (name not in STORED_ONLY and _random_roundings(data)):
            return name
    return None


def _stored_through(data: CheckData, name: str) -> bool:
    """Whether the analytic gradient looks stored through the binary float `name`.

    Hypothesis tested: for a float narrower than the float64 copies, every entry is one
    of its numbers (a float64 result is one with probability 2^-29 per entry for
    float32); for float64 itself (inside a wider system) the copies cannot show that,
    so where the entries themselves were compared (coordinates) every failing gap must
    be within ``STORED_SPACINGS`` spacings of float64 at the entry plus the comparison's
    tolerance (a stored value is the right value rounded once). Along directions with
    float64 neither can be seen: not shown.
    """
    dtype = BINARY_TYPES[name]
    entries = data.entries if data.entries is not None else data.analytic
    if np.finfo(dtype).eps > np.finfo(np.float64).eps:
        return _stored_in(entries[np.isfinite(entries)], dtype)
    if data.entries is not None or data.unit != "coordinate":
        return False
    failing = data.failing
    spacing = np.spacing(np.abs(data.analytic[failing]))
    allowed = STORED_SPACINGS * spacing + data.explain_tolerance[failing]
    return bool(np.all(np.abs(data.difference[failing]) <= allowed))


def _random_roundings(data: CheckData) -> bool:
    """Whether the failing gaps have random signs, as roundings of many entries do.

    Hypothesis tested (coordinates only: along a direction one wrong entry gives gaps
    ``v_k·δ``, random-signed as well): the sign of each gap agrees with the sign of its
    reference entry, of its x_i and of +1 each at about half of the ``m`` failing
    entries (`SIGN_Z`); a term that is a function of x or of the gradient (c·x³, c·n)
    agrees with one of them nearly everywhere. Needs ``SIGN_MIN_GAPS`` gaps.
    """
    if data.entries is not None or data.unit != "coordinate":
        return False
    failing = data.failing
    s = np.sign(data.difference[failing])
    if s.size < SIGN_MIN_GAPS:
        return False
    for probe in (np.ones_like(s), np.sign(data.x[failing]), np.sign(data.reference[failing])):
        used = (probe != 0) & (s != 0)
        m = int(used.sum())
        if m < SIGN_MIN_GAPS:
            return False
        agree = int(np.sum(s[used] == probe[used]))
        if abs(agree - m / 2) > SIGN_Z * np.sqrt(m) / 2:
            return False
    return True


def _stored_in(values: np.ndarray, dtype: Any) -> bool:
    """Whether every (finite) value is exactly one of `dtype`'s numbers."""
    with np.errstate(over="ignore"):
        return bool(np.all(values.astype(dtype).astype(values.dtype) == values))


def _entry_scale(data: CheckData) -> np.ndarray:
    """Per index, how far a rounding of every gradient entry by one relative unit
    reaches (`CheckData.entry_scale`; ``|n_i| + max|n|`` for coordinates)."""
    if data.entry_scale is not None:
        return data.entry_scale
    n = np.abs(data.reference)
    return n + float(np.max(n))


def _undecidable_finding(data: CheckData, earlier: Sequence[Finding]) -> list[Finding]:
    if data.probes.step is not None or numerical(earlier):
        return []
    coords = undecidable(data) & ~explained(data, earlier)
    if not coords.any():
        return []
    n = np.abs(data.reference)
    share = float(np.max((REFERENCE_SAFETY * data.reference_error
                          / (n + float(np.max(n))))[coords]))
    limit = data.unit_roundoff ** DECIDABLE_EXPONENT
    return [Finding("precision_loss", f"The numerical reference cannot decide "
                    f"{int(coords.sum())} {data.unit}(s): its error bar there is up to "
                    f"{share:.2g} of the gradient's scale, more than u^(1/4) = {limit:.2g}, "
                    "so a gradient off by that much would pass. f cannot be differentiated "
                    "numerically to that accuracy at this point (noise, cancellation or a "
                    f"kink within the steps; reference: {data.reference_name}). Check with "
                    "more digits (numbers=) or at another point.",
                    {"coordinates": np.flatnonzero(coords).tolist(), "undecidable": True,
                     "share": share})]


def _unresolved_finding(data: CheckData, earlier: Sequence[Finding]) -> list[Finding]:
    """Coordinates where only the complex step saw a failure and real arithmetic could
    neither confirm nor refute it (`Reference.unresolved`): undecidable, never passed."""
    unresolved = data.probes.unresolved
    if unresolved is None:
        return []
    coords = unresolved & ~explained(data, earlier)
    if not coords.any():
        return []
    idx = np.flatnonzero(coords)
    n = np.abs(data.reference)
    share = float(np.max((np.abs(data.difference) / (n + float(np.max(n))))[coords]))
    labels = ", ".join(data.blocks.label(int(i)) for i in idx[:5])
    more = f" and {idx.size - 5} more" if idx.size > 5 else ""
    return [Finding("precision_loss", f"The check cannot decide {idx.size} {data.unit}(s) "
                    f"({labels}{more}): the complex step puts the analytic gradient off by "
                    f"up to {share:.2g} of the gradient's scale there, but real arithmetic "
                    "(central differences, Richardson) cannot resolve a gap that small, so "
                    "it can neither confirm that failure nor rule out that f's complex "
                    "arithmetic is slightly unfaithful. Check with more digits (numbers=), "
                    "where real arithmetic resolves it.",
                    {"coordinates": idx.tolist(), "undecidable": True, "share": share,
                     "unresolved": True})]


def _binary_gradient_finding(data: CheckData) -> list[Finding]:
    kind = _binary_rounding(data)
    if kind is None:
        return []
    ulps = float(np.max(np.abs(data.difference) / _entry_scale(data))) / \
        BINARY_ROUNDING[kind]
    return [Finding("precision_loss", f"The analytic gradient agrees with the reference "
                    f"only to the precision of {kind}: every gap is within {ulps:.3g} "
                    f"ulps of {kind} of the gradient's scale, far beyond the rounding of "
                    f"this system (u = {data.unit_roundoff:.2g}). The gradient code computes "
                    f"in {kind} somewhere (e.g. a float() or a NumPy float inside backprop).",
                    {"coordinates": np.flatnonzero(data.failing).tolist(), "float": kind,
                     "ulps": ulps})]


def detect_precision_loss(data: CheckData, earlier: Sequence[Finding]) -> list[Finding]:
    """f is noisier than the unit roundoff of its number system allows; or the analytic
    gradient carries the rounding of a binary float; or the reference is too noisy to
    decide some coordinates."""
    found = _precision_loss(data, earlier)
    found += _unresolved_finding(data, [*earlier, *found])
    return found + _cancellation_finding(data, [*earlier, *found])


def _cancellation_finding(data: CheckData, earlier: Sequence[Finding]) -> list[Finding]:
    """Coordinates that pass only if their entries cancel larger terms, which the noise
    of the analytic gradient did not show (`decisions.cancellation_only`): undecidable.
    Asked only when nothing fails (a failure elsewhere is the verdict already)."""
    if data.failing.any() or any(f.kind != "precision_loss" for f in earlier):
        return []
    coords = cancellation_only(data) & ~explained(data, earlier)
    if not coords.any():
        return []
    idx = np.flatnonzero(coords)
    a = np.abs(data.analytic)
    gap = np.abs(data.difference)
    worst = int(idx[np.argmax(gap[idx] / np.maximum(data.tol.entry_part[idx], 1e-300))])
    labels = ", ".join(data.blocks.label(int(i)) for i in idx[:5])
    more = f" and {idx.size - 5} more" if idx.size > 5 else ""
    noise = data.probes.gradient_noise
    largest = None if noise is None else float(np.max(noise[idx]))
    seen = ("moving x by a few ulps leaves these entries unchanged, so no such "
            "cancellation is seen" if largest == 0 else
            f"moving x by a few ulps changes these entries by at most {largest:.2g}, so no "
            "such cancellation is seen" if largest is not None else "the analytic gradient could not be evaluated near "
            "x to look for such cancellation")
    own = data.tol.reference_part[worst] + data.tol.entry_part[worst]
    return [Finding("precision_loss", f"The check cannot decide {idx.size} {data.unit}(s) "
                    f"({labels}{more}): at {data.blocks.label(worst)} the analytic "
                    f"{data.analytic[worst]:.6g} and the reference {data.reference[worst]:.6g} "
                    f"differ by {gap[worst]:.2g} ({gap[worst] / max(a[worst], 1e-300):.2g} "
                    f"relative), more than the {own:.2g} that the reference's error and the "
                    "rounding of an entry of that size allow. If the reference's error "
                    "estimate holds, only a gradient that forms this entry by cancelling "
                    "terms as large as its largest entry "
                    f"({float(np.max(a)):.3g}) rounds that much, but {seen}. A bug of "
                    "this size or an unseen cancellation: the values cannot tell. Compute "
                    "these entries in more digits (numbers=, if grad runs there), or check "
                    "at a point where they are not so small against the largest.",
                    {"coordinates": idx.tolist(), "undecidable": True,
                     "cancellation": True, "worst": worst})]


def _precision_loss(data: CheckData, earlier: Sequence[Finding]) -> list[Finding]:
    probe = data.probes.noise
    if not is_lossy(probe):
        if numerical(earlier) or explained(data, earlier)[data.failing].any():
            return _undecidable_finding(data, earlier)
        return _binary_gradient_finding(data) or _undecidable_finding(data, earlier)
    ratio = probe.sigma / probe.expected if probe.expected > 0 else float("inf")
    covered = _noise_covers(data, probe)
    higher = ""
    if probe.higher is not None and probe.higher_ratio is not None:
        higher = (f" Evaluated in {probe.higher} it is still {probe.higher_ratio:.2g} times "
                  "noisier than that system allows, so the noise does not come from the "
                  "working precision.")
    return [Finding("precision_loss", f"f is noisier than {probe.numbers} allows: offsets of "
                    f"{probe.delta:.2g} show noise of {probe.sigma:.3g}, {ratio:.2g} times "
                    f"u·|f| = {probe.expected:.3g}. Something inside f computes at a lower "
                    "precision (e.g. a float activation inside a Decimal network), which makes "
                    "every finite difference at small steps unreliable." + higher,
                    {"coordinates": np.flatnonzero(covered).tolist(),
                     "sigma": probe.sigma, "expected": probe.expected, "ratio": ratio,
                     "partial": bool(np.any(data.failing & ~covered))})]


def _noise_covers(data: CheckData, probe: Any) -> np.ndarray:
    """The failing coordinates a lower precision inside f can explain in the gradient.

    Hypothesis tested: f and its gradient compute at the lower precision whose rounding
    shows as f's relative noise ``ρ = σ/|f|``; a gradient at that precision errs by up
    to ``ROUNDING_FACTOR·ρ·(|n_i| + max|n|)`` (the rounding model of the tolerance). A
    gap beyond that fails against a reference whose error bar already carries the
    noise (`reference.noisy_reference`): it is named by the bug detectors. With an
    explicit step (judged against the noise-fitted limit) every failure stays covered.
    """
    failing = data.failing
    if data.probes.step is not None:
        return failing
    f_scale = max(probe.expected, probe.terms) / data.unit_roundoff
    rho = probe.sigma / f_scale if f_scale > 0 else np.inf
    n = np.abs(data.reference)
    with np.errstate(over="ignore", invalid="ignore"):
        allowed = ROUNDING_FACTOR * rho * (n + float(np.max(n, initial=0.0)))
    return failing & ~(np.abs(data.difference) > allowed)


def detect_not_complex_safe(data: CheckData, earlier: Sequence[Finding]) -> list[Finding]:
    """f runs on complex input but its imaginary part is not a derivative (or cannot run)."""
    probe = data.probes.complex
    if probe is None or probe.safe or not (probe.ran or probe.requested):
        return []
    return [Finding("not_complex_safe", f"f is not complex-step safe: {probe.reason} The "
                    f"reference used instead: {data.reference_name}.",
                    {"ran": probe.ran, "requested": probe.requested})]
