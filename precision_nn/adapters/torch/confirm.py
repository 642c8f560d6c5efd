"""A check confirmed in a wider dtype where its own dtype cannot tell a bug from rounding.

A check in dtype D compares the user's backward, run in D, with a float64 reference, and
allows ``128·u_D·(|a_i| + max|a|)`` for the backward's rounding (`gradcheck.tolerance`).
That allowance is what D's arithmetic can do, so there are places where it decides
nothing: the same user code, run on converted copies in the wider dtype W (``CONFIRM_IN``)
and checked there with W's far smaller allowance, decides instead. When the wider check
runs (`needs_confirmation`):

* **bfloat16, float16 → float32**, when the tolerance admits more than ``WIDE_TOLERANCE``
  of the gradient's scale anywhere: bfloat16's 128·2^-8 = 1/2 lets a factor 2 pass,
  float16's 128·2^-11 = 1/16 a backward 5% off (so in practice every check in these
  dtypes is confirmed).
* **float32 → float64** (an allowance 2^29 times smaller) when the float32 check fails,
  to tell a wrong backward from float32's own rounding of a right one (the backward of a
  saturated softmax loses thousands of ulps of max|g| in float32), and when it passes but
  some coordinate passes only thanks to the norm-wise part of the allowance (its gap
  exceeds the reference's bar plus ``128·u·(|a_i| + |n_i|)``) or has a tolerance above
  ``SMALL_SHARE`` of its own value (there a sign error passes: the first layers of a deep
  sigmoid net, whose entries are 1e-7 of the largest, get 76 times their own value).

How the wider check decides (`decide`):

* it fails: its findings name the bug (a dtype-independent bug fails in both; a 1e-5
  relative bug is 10^9 float64 allowances). A float32 check whose float64 check finds
  nothing but precision troubles (``PRECISION_KINDS``: its reference cannot decide
  either, the code rounds to float32 inside) keeps its own report.
* it passes where D failed: D's failure is D's own (`float32_rounding`), if the wider
  tolerance at each failing coordinate is below ``DECISIVE_SHARE`` of D's gap there (so
  the wider check did test that gap and the backward's result moved between the dtypes),
  and the forwards agree within ``FORWARD_ULPS`` ulps of D; forwards that differ by more
  compute other functions in the two dtypes (`dtype_dependent`: a random mask drawn in the
  tensor's dtype, an eps from ``torch.finfo``), which is no rounding of a right backward
  and no evidence against it: the reference differentiates the other function, so the
  report is UNDECIDED. A block whose D run is one
  constant times its W run at every entry (`float32_only_scales`) is named ``scale``
  instead: rounding never gives one ratio at many entries, a factor that exists only in
  D (a branch on the dtype, an eps from ``torch.finfo``) does.
* it passes where D passed: D's report stands, saying so.

A run in W that is no run in W keeps D's report: the user's code raises there (a custom
Function that refuses float64), its backward returns gradients of a narrower dtype than W
(torch casts them back), or its forward returns narrower outputs (it computes in D
whatever it is given).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from precision_nn.adapters.torch.findings import REPEAT_ULPS
from precision_nn.adapters.torch.float32_causes import (
    DECISIVE_SHARE,
    FORWARD_ULPS,
    dtype_dependent,
    float32_only_scales,
    float32_rounding,
)
from precision_nn.gradcheck import GradientReport
from precision_nn.gradcheck.findings import NOTICES, match_finding
from precision_nn.gradcheck.tolerance import REFERENCE_SAFETY, ROUNDING_FACTOR

__all__ = ["CONFIRM_IN", "DECISIVE_SHARE", "FORWARD_ULPS", "NORMWISE_ULPS", "PRECISION_KINDS",
           "SMALL_SHARE", "WIDE_TOLERANCE", "Checked", "Reason", "decide",
           "dtype_dependent", "float32_only_scales", "float32_rounding",
           "needs_confirmation", "without_cancellation"]

# bfloat16/float16: a tolerance that accepts this share of a coordinate's scale cannot
# tell a plain bug from rounding (bfloat16: 128·2^-8 = 1/2, a factor 2 passes; float16:
# 128·2^-11 = 1/16, a backward 5% off passed), nor fit a pattern to name one
WIDE_TOLERANCE = 0.01
CONFIRM_IN = {torch.bfloat16: torch.float32, torch.float16: torch.float32,
              torch.float32: torch.float64}
# float32, passing: a tolerance above this share of max(|a_i|, |n_i|) lets any bug that
# moves the entry by half its value pass (a sign error moves it by twice its value, a
# missing factor 2 by its value); the wider check decides such coordinates
SMALL_SHARE = 0.5
# float32, passing: a gap beyond the element-wise part of the tolerance is float32's
# rounding when cancellation leaves a small entry with errors of the large ones (the
# norm-wise term ``max|a|`` of the tolerance is there for it); up to this many ulps of
# max|a| it is the size of reordered sums of a few hundred terms of that size
# (`findings.REPEAT_ULPS`), so a correct backward stays below it and the check confirms
# only gaps beyond it (a backward of a small net puts 0.02-1.3 ulps there; R_B1-like sign
# errors in entries 1e-7 of the largest are left to `SMALL_SHARE`)
NORMWISE_ULPS = REPEAT_ULPS
# a float64 failure made of these alone names no bug in float32 code (a reference that
# cannot decide there either, code that computes in float32 somewhere whatever it is
# given): the float32 check's own report stands
PRECISION_KINDS = frozenset({"precision_loss", "not_complex_safe", "step_too_small",
                             "step_too_large", "match"})


@dataclass(frozen=True)
class Checked:
    """A check in one dtype with what the decision needs besides its report.

    Attributes
    ----------
    report : GradientReport
    dtype : torch.dtype
    outputs : tuple of Tensor
        The forward's floating outputs at the checked point (detached, in `dtype`).
    random : bool
        Whether the user's code drew random numbers.
    not_in_dtype : str or None
        Why this run does not compute in `dtype` (None: it does).
    """

    report: GradientReport
    dtype: torch.dtype
    outputs: tuple[torch.Tensor, ...]
    random: bool
    not_in_dtype: str | None = None


@dataclass(frozen=True)
class Reason:
    """Why a check is confirmed in the wider dtype: ``kind`` is ``"wide"`` (bfloat16,
    float16), ``"fails"`` or ``"doubtful"`` (float32); ``coordinates`` those concerned."""

    kind: str
    coordinates: np.ndarray
    sentence: str


def not_in_dtype(dtype: torch.dtype, raw: list, outputs: tuple[torch.Tensor, ...]
                 ) -> str | None:
    """Why a run asked for in `dtype` computes in a narrower one (None: it does not)."""
    eps = torch.finfo(dtype).eps
    for what, tensors in (("its backward returns", raw), ("its forward returns", outputs)):
        for t in tensors:
            if isinstance(t, torch.Tensor) and t.is_floating_point() and \
                    torch.finfo(t.dtype).eps > eps:
                return f"{what} {t.dtype} tensors when run in {dtype}"
    return None


# -- when ---------------------------------------------------------------------------------
def needs_confirmation(report: GradientReport, dtype: torch.dtype, u: float
                       ) -> Reason | None:
    """Whether (and why) the check in `dtype` (unit roundoff `u`) is run in
    ``CONFIRM_IN[dtype]`` too."""
    if dtype not in CONFIRM_IN:
        return None
    if dtype != torch.float32:
        share = _widest_share(report)
        if share <= WIDE_TOLERANCE:
            return None
        return Reason("wide", np.arange(report.tolerance.size),
                      f"{report.numbers}'s rounding lets the tolerance accept up to "
                      f"{share:.2g} of the gradient's scale, too wide to tell a bug from "
                      "rounding")
    failing = _failing(report)
    if failing.size:
        return Reason("fails", failing, f"the {report.numbers} check fails at "
                      f"{failing.size} coordinate(s)")
    doubtful = _doubtful(report, u)
    if doubtful.size:
        return Reason("doubtful", doubtful, f"the {report.numbers} check passes, but at "
                      f"{doubtful.size} coordinate(s) only by the norm-wise part of its "
                      f"rounding allowance or with a tolerance above {SMALL_SHARE:g} of "
                      "their value (a sign error there would pass)")
    return None


def _widest_share(report: GradientReport) -> float:
    """The largest ``tol_i / (max(|a_i|, |n_i|) + max_j max(|a_j|, |n_j|))``."""
    a, n = np.abs(report.analytic), np.abs(report.reference)
    scale = np.maximum(a, n) + float(np.max(np.maximum(a, n), initial=0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(scale > 0, report.tolerance / scale, 0.0)
    return float(np.max(share, initial=0.0))


def _failing(report: GradientReport) -> np.ndarray:
    """Coordinates beyond their tolerance (or not comparable), and those a finding calls
    undecidable; none for a check that passed."""
    if report.passed:
        return np.zeros(0, dtype=int)
    suspect = ~(np.abs(report.difference) <= report.tolerance)
    for finding in report.findings:
        if finding.evidence.get("undecidable"):
            suspect[np.asarray(finding.evidence.get("coordinates", []), dtype=int)] = True
    return np.flatnonzero(suspect)


def _doubtful(report: GradientReport, u: float) -> np.ndarray:
    """Coordinates of a passing check a bug could hide in (see the constants):

    * the reference resolves a value (``|n_i| > REFERENCE_SAFETY·e_i``) and the tolerance
      exceeds ``SMALL_SHARE`` of it;
    * not in directional checks (whose tolerance has no element-wise part): the gap
      exceeds the element-wise part of the tolerance, ``REFERENCE_SAFETY·e_i +
      ROUNDING_FACTOR·u·(|a_i| + |n_i|)``, so only the ``max|a|`` term lets it pass, and
      also ``NORMWISE_ULPS·u·max|a|``.
    """
    if not report.passed:
        return np.zeros(0, dtype=int)
    a, n = np.abs(report.analytic), np.abs(report.reference)
    gap, tol = np.abs(report.difference), report.tolerance
    bar = REFERENCE_SAFETY * np.nan_to_num(report.reference_error, nan=np.inf)
    doubtful = (n > bar) & (tol > SMALL_SHARE * n)
    if not report.directional:
        top = float(np.max(a, initial=0.0))
        own = bar + ROUNDING_FACTOR * u * (a + n)
        doubtful |= (gap > own) & (gap > NORMWISE_ULPS * u * top)
    return np.flatnonzero(doubtful)


def without_cancellation(report: GradientReport) -> GradientReport:
    """The report without the generic check's doubts about entries that pass only if
    they cancel larger terms (``cancellation`` findings, `decisions.cancellation_only`).

    The generic check tests that hypothesis by re-evaluating the gradient a few ulps
    from x; here the gradient is the one backward already run (a fixed array), whose
    noise is always 0, so the test cannot run. Those coordinates are what `_doubtful`
    sends to the wider dtype instead (float64 has none: there the norm-wise allowance
    stands, as the tolerance states). A report that failed only by those findings
    passes again, with the ``match`` finding the generic check gives."""
    kept = tuple(f for f in report.findings if not f.evidence.get("cancellation"))
    if len(kept) == len(report.findings):
        return report
    within = bool(np.all(np.abs(report.difference) <= report.tolerance))
    passed = within and all(f.kind in NOTICES for f in kept)
    if passed:
        kept = (*kept, match_finding(report.difference, report.tolerance,
                                     "direction" if report.directional else "coordinate"))
    return replace(report, passed=passed, findings=kept)


# -- how ----------------------------------------------------------------------------------
def decide(narrow: Checked, wider: Checked, reason: Reason) -> GradientReport:
    """The report of the check in ``narrow.dtype``, decided by the one in the wider dtype
    as the module docstring says."""
    why = (f"{reason.sentence}, so the same backward was also checked in "
           f"{wider.report.numbers} on converted copies")
    if wider.not_in_dtype is not None:
        return _noted(narrow.report, f"{why}, but that is no check in "
                      f"{wider.report.numbers}: {wider.not_in_dtype}; this verdict stands")
    if _passes(wider):
        if reason.kind == "fails":
            return _float32_own(narrow, wider, reason, why)
        verdict = "it passes there" + ("" if wider.report.passed else " (but for "
                                       f"{wider.report.numbers}'s own rounding, which "
                                       "float64 confirms)") + (
            " too" if narrow.report.passed else ", so the failure comes from "
            f"{narrow.report.numbers} itself")
        return _noted(narrow.report, f"{why}: {verdict}")
    if reason.kind != "wide" and {f.kind for f in wider.report.findings} <= PRECISION_KINDS:
        return _noted(narrow.report, f"{why}, which cannot decide either: "
                      f"{wider.report.findings[0].message}")
    outcome = "which cannot decide either" if wider.report.undecided else "which fails"
    return replace(wider.report, tolerance_source=f"{why}; this is that check, {outcome}. "
                   f"{wider.report.tolerance_source}")


def _passes(checked: Checked) -> bool:
    """Passed, or failed only by its own dtype's rounding of a correct backward (a float32
    check confirmed in float64, for a bfloat16 check confirmed in float32)."""
    report = checked.report
    return report.passed or any(f.evidence.get("torch") == "float32_rounding"
                                for f in report.findings)


def _noted(report: GradientReport, note: str) -> GradientReport:
    return replace(report, tolerance_source=f"{report.tolerance_source} ({note}.)")


def _float32_own(narrow: Checked, wider: Checked, reason: Reason, why: str
                 ) -> GradientReport:
    """A float32 failure whose float64 check passes: float32's rounding or a forward that
    computes another function in float32, if the float64 check tested those gaps."""
    report, idx = narrow.report, reason.coordinates
    gap = np.abs(report.difference[idx])
    if not np.all(wider.report.tolerance[idx] < DECISIVE_SHARE * gap):
        return _noted(report, f"{why}: it passes there, but its tolerance is not below "
                      f"{DECISIVE_SHARE:g} of the {report.numbers} gap at every failing "
                      "coordinate, so it cannot clear them")
    moved = _forward_gap(narrow.outputs, wider.outputs)
    u = torch.finfo(narrow.dtype).eps / 2
    kept = tuple(f for f in report.findings
                 if f.evidence.get("torch") or f.kind in ("kink", "not_complex_safe"))
    if moved > FORWARD_ULPS * u:
        found = (dtype_dependent(report, wider.report, moved, random=narrow.random),)
    else:
        scaled = float32_only_scales(report, wider.report, idx, u)
        covered = {c for f in scaled for c in f.evidence["coordinates"]}
        rest = np.array([i for i in idx if int(i) not in covered], dtype=int)
        found = (*scaled, *((float32_rounding(report, wider.report, rest, u),)
                            if rest.size else ()))
    return replace(report, passed=False, findings=(*found, *kept),
                   tolerance_source=f"{report.tolerance_source} ({why}: it passes there.)",
                   evaluations=report.evaluations + wider.report.evaluations)


def _forward_gap(narrow: tuple[torch.Tensor, ...], wider: tuple[torch.Tensor, ...]
                 ) -> float:
    """The largest ``max|y_D - y_W| / max|y_W|`` over the outputs (inf: they do not pair
    up)."""
    if len(narrow) != len(wider):
        return float("inf")
    worst = 0.0
    for y, w in zip(narrow, wider):
        if y.shape != w.shape:
            return float("inf")
        w = w.to(torch.complex128 if w.is_complex() else torch.float64)
        diff = float((y.to(w.dtype) - w).abs().max()) if w.numel() else 0.0
        size = float(w.abs().max()) if w.numel() else 0.0
        if diff > 0:
            worst = max(worst, diff / size if size > 0 else float("inf"))
    return worst
