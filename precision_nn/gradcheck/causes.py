"""Numerical causes of a disagreement, from the probes `check_gradient` measured:
``kink`` (`kinks`), ``step_too_large``, ``step_too_small``, ``precision_loss`` (f
noisier than its system; else an analytic gradient that carries a binary float's
rounding, `rounding`; else a reference whose error bar is too wide to decide, beyond
``u^(1/4)`` of the gradient's scale), ``not_complex_safe``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from precision_nn.gradcheck.decisions import (
    DECIDABLE_EXPONENT,
    cancellation_only,
    is_lossy,
    undecidable,
)
from precision_nn.gradcheck.diagnosis import Finding, explained, numerical
from precision_nn.gradcheck.evidence import CheckData
from precision_nn.gradcheck.kinks import detect_kink
from precision_nn.gradcheck.rounding import binary_gradient_finding
from precision_nn.gradcheck.tolerance import REFERENCE_SAFETY, ROUNDING_FACTOR

__all__ = ["detect_kink", "detect_not_complex_safe", "detect_precision_loss",
           "detect_step_too_large", "detect_step_too_small"]

# the user's step is rounding-dominated when its modelled rounding is this share of its error
ROUNDING_SHARE = 0.1


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


def _undecidable_finding(data: CheckData, earlier: Sequence[Finding]) -> list[Finding]:
    if data.probes.step is not None or numerical(earlier):
        return []
    coords = undecidable(data) & ~explained(data, earlier)
    if not coords.any():
        return []
    n = np.abs(data.reference)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = float(np.max((REFERENCE_SAFETY * data.reference_error
                              / (n + float(np.max(n))))[coords]))
    limit = data.unit_roundoff ** DECIDABLE_EXPONENT
    if float(np.max(n)) > 0 or not np.isfinite(np.max(data.reference_error[coords])):
        size = (f"up to {share:.2g} of the gradient's scale, more than u^(1/4) = "
                f"{limit:.2g}, so a gradient off by that much would pass")
    else:  # every reference entry is 0: a bar of any size is infinite relative to that
        bar = float(np.max(REFERENCE_SAFETY * data.reference_error[coords]))
        size = (f"up to {bar:.2g} while every entry of the reference is 0, so no relative "
                "accuracy can be stated (a gradient within that of 0 looks the same)")
    return [Finding("precision_loss", f"The numerical reference cannot decide "
                    f"{int(coords.sum())} {data.unit}(s): its error bar there is {size}. "
                    "f cannot be differentiated "
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
    own = data.tol.entry_part[worst]
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
    # f that differs between calls at x is random, not lower in precision (findings)
    if not is_lossy(probe) or probe.nondeterministic:
        if numerical(earlier) or explained(data, earlier)[data.failing].any():
            return _undecidable_finding(data, earlier)
        return binary_gradient_finding(data) or _undecidable_finding(data, earlier)
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
    lead = ("undecidable whether f is complex-step safe, so the complex step is not used"
            if not probe.verified else "f is not complex-step safe")
    return [Finding("not_complex_safe", f"{lead}: {probe.reason} The reference used "
                    f"instead: {data.reference_name}.",
                    {"ran": probe.ran, "requested": probe.requested,
                     "verified": probe.verified})]
