"""Findings: one small detector per kind, each a pure function of a `CheckData`.

The detectors run in the order of `DETECTORS`; each sees the findings made before it.
Bug patterns come first and are tried on *regions* (each disagreeing block, or the one
column or row of a block the disagreement is confined to):

* ``sign`` — ``a = -n`` on the region;
* ``scale`` — ``a = c·n`` with a constant ``c`` (named ``1/m`` when it is one over the
  batch size);
* ``layout`` — ``a`` is ``n`` with the block's entries permuted as by C vs Fortran order
  (the same permutation as a transposed block, since ``G.T.ravel("C") == G.ravel("F")``);
* ``regularization`` — ``a - n = λ·θ`` on its support (a penalty the loss and the
  gradient treat differently);

then the numerical causes, which need the probes `check_gradient` measured: ``kink``,
``step_too_large``, ``step_too_small``, ``precision_loss`` (f noisier than its system;
else an analytic gradient that carries a binary float's rounding at most coordinates; else
a reference whose error bar is too wide to decide, beyond ``u^(1/4)`` of the gradient's
scale), ``not_complex_safe``; and
finally the summaries: ``localized`` and ``mismatch`` for whatever no pattern explains,
``match`` when nothing is wrong. A pattern explains a region when it reproduces the
reference there to the explain tolerance (see `evidence.EXPLAIN_RTOL`); when the user
gave an explicit step, patterns are judged against the h → 0 limit instead (a factor
fitted to a reference with a step error would carry that error).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Any

import numpy as np

from precision_nn.gradcheck.blocks import OTHER_ORDER
from precision_nn.gradcheck.evidence import CheckData
from precision_nn.gradcheck.tolerance import REFERENCE_SAFETY

__all__ = [
    "ADAPTER_KINDS",
    "DETECTORS",
    "KINDS",
    "NOTICES",
    "WIDE_EXPONENT",
    "Finding",
    "Region",
    "diagnose",
    "is_lossy",
    "kink_hits",
    "kink_threshold",
    "regions",
    "smooth_below",
    "suspects",
    "undecidable",
    "undecided",
]

# a factor this close to a simple candidate (1/m, 2, ...) is reported as that candidate
FACTOR_RTOL = 1e-6
# a "constant factor" closer to 1 than this is no bug pattern but a reference that is off
# by more than its error bar (e.g. a noisy f); it is left to the other detectors
SCALE_MIN_DEVIATION = 1e-2
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
# the user's step is rounding-dominated when its modelled rounding is this share of its error
ROUNDING_SHARE = 0.1
# a reference decides only while its error bar (× REFERENCE_SAFETY) stays below u^(1/4) of
# the gradient's scale |n_i| + max|n|: beyond it the tolerance would accept gradients off
# by that share. Correct networks stay below 1/10 of it (Richardson in float32: 1e-3 rel.)
DECIDABLE_EXPONENT = 0.25
# a gradient computed through binary floats (a float() in backprop of a Decimal network)
# errs by some tens of ulps of that float at most, relative to the gradient's scale, at
# most of its coordinates (a wrong term hits a few); rounding several entries leaves at
# least one gap above 1/16 ulp (the largest of k uniform rounding errors in ±½ ulp
# exceeds 1/16 ulp with probability 1 - (1/8)^k)
BINARY_ROUNDING = {"float64": 2.0 ** -53, "float32": 2.0 ** -24}
BINARY_ULPS = 100.0
BINARY_LEAST = 1 / 16
BINARY_SHARE = 0.5


@dataclass(frozen=True)
class Finding:
    """One diagnosis: its kind, a sentence a learner understands, the numbers behind it.

    ``evidence["coordinates"]`` lists the flat indices the finding explains (if any).

    Examples
    --------
    >>> Finding("scale", "The gradient is 0.2 × the reference.", {"factor": 0.2}).kind
    'scale'
    """

    kind: str
    message: str
    evidence: Mapping[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"[{self.kind}] {self.message}"


@dataclass(frozen=True)
class Region:
    """A set of flat indices with a human label (``"block 1, column 0 (bias)"``)."""

    indices: np.ndarray
    label: str
    block: int | None = None


Detector = Callable[[CheckData, Sequence[Finding]], list[Finding]]


# -- regions ----------------------------------------------------------------------------
def regions(data: CheckData) -> list[Region]:
    """The regions to explain: per disagreeing block, the narrowest that holds its failures."""
    failing = data.failing
    out = []
    for b in range(len(data.blocks.shapes)):
        span = data.blocks.index(b)
        fail = failing[span]
        if not fail.any():
            continue
        idx = np.arange(span.start, span.stop)
        out.extend(_narrow(data, b, idx, fail))
        out.append(Region(idx, _block_label(data, b), b))
    return out


def _narrow(data: CheckData, b: int, idx: np.ndarray, fail: np.ndarray) -> list[Region]:
    """The single column (or row) of block `b` the failures are confined to, if any."""
    shape = data.blocks.shapes[b]
    if len(shape) != 2:
        return []
    found = []
    for axis, values in (("column", data.blocks.columns(b)), ("row", data.blocks.rows(b))):
        hit = np.unique(values[fail])
        if hit.size == 1 and shape[1 if axis == "column" else 0] > 1:
            keep = values == hit[0]
            found.append(Region(idx[keep], _line_label(data, b, axis, int(hit[0])), b))
    return found


def _block_label(data: CheckData, b: int) -> str:
    if not data.blocks.given:
        return "the whole gradient"
    return f"{data.blocks.name(b)} (shape {data.blocks.shapes[b]})"


def _line_label(data: CheckData, b: int, axis: str, k: int) -> str:
    name = data.blocks.column_name(b, k) if axis == "column" else None
    note = f" ({name})" if name else ""
    return f"{data.blocks.name(b)}, {axis} {k}{note}"


def _explained(data: CheckData, earlier: Sequence[Finding]) -> np.ndarray:
    mask = np.zeros(data.analytic.shape, dtype=bool)
    for finding in earlier:
        mask[np.asarray(finding.evidence.get("coordinates", []), dtype=int)] = True
    return mask


def _open_regions(data: CheckData, earlier: Sequence[Finding]) -> list[Region]:
    """Regions whose failures no earlier finding explains."""
    done = _explained(data, earlier)
    failing = data.failing
    return [r for r in regions(data) if (failing[r.indices] & ~done[r.indices]).any()]


def _fits(data: CheckData, region: Region, corrected: np.ndarray, slack: float = 1.0) -> bool:
    """Whether `corrected` reproduces the reference on `region`."""
    n = data.reference[region.indices]
    return bool(np.all(np.abs(corrected - n) <= slack * data.explain_tolerance[region.indices]))


# -- factor naming ------------------------------------------------------------------------
def describe_factor(c: float, m: int | None) -> str:
    """`c` as ``"1/m"``, ``"m"``, a small fraction, or its digits.

    Examples
    --------
    >>> describe_factor(0.2, 5), describe_factor(8.0, 8), describe_factor(0.123456789, 4)
    ('1/m (= 0.2, with m = 5 the batch size)', 'm (= 8, the batch size)', '0.123457')
    >>> describe_factor(2.0, None)
    '2'
    """
    if m:
        if abs(c - 1 / m) <= FACTOR_RTOL / m:
            return f"1/m (= {c:.6g}, with m = {m} the batch size)"
        if abs(c - m) <= FACTOR_RTOL * m:
            return f"m (= {c:.6g}, the batch size)"
    frac = Fraction(c).limit_denominator(16)
    if frac != 0 and abs(c - float(frac)) <= FACTOR_RTOL * abs(c):
        return str(frac)
    return f"{c:.6g}"


def _factor(a: np.ndarray, n: np.ndarray, tol: np.ndarray) -> float:
    """Weighted least-squares ``c`` in ``a ≈ c·n``, weights ``1/tol²`` so that reference
    values with wide error bars do not pull the factor (NaN when ``n`` vanishes)."""
    w = 1.0 / np.maximum(tol, np.finfo(float).tiny) ** 2
    w = w / np.max(w)
    nn = float(np.sum(w * n * n))
    return float(np.sum(w * a * n)) / nn if nn > 0 else float("nan")


# -- bug patterns -------------------------------------------------------------------------
def _sign_in(data: CheckData, region: Region) -> Finding | None:
    a = data.analytic[region.indices]
    if not np.any(a != 0) or not _fits(data, region, -a):
        return None
    return _pattern("sign", region, f"{_cap(region.label)}: the analytic gradient has the "
                    "opposite sign of the reference: a minus sign is missing or extra "
                    "(e.g. y - ŷ instead of ŷ - y, or descent direction returned as gradient).",
                    {"factor": -1.0})


def _scale_in(data: CheckData, region: Region) -> Finding | None:
    a, n = data.analytic[region.indices], data.reference[region.indices]
    c = _factor(a, n, data.explain_tolerance[region.indices])
    if not np.isfinite(c) or c == 0 or abs(c + 1) <= FACTOR_RTOL or \
            abs(c - 1) < SCALE_MIN_DEVIATION:
        return None
    if not _fits(data, region, a / c, slack=max(1.0, 1 / abs(c))):
        return None
    name = describe_factor(c, data.batch_size)
    return _pattern("scale", region, f"{_cap(region.label)}: the analytic gradient is "
                    f"{name} × the reference, at every coordinate: a constant factor "
                    "is missing or extra (a 1/m, a ½ of a squared error, a step size).",
                    {"factor": c, "factor_name": name})


def _layout_in(data: CheckData, region: Region) -> Finding | None:
    b = region.block
    shape = data.blocks.shapes[b] if b is not None else ()
    if (b is None or not data.blocks.given or len(shape) != 2 or min(shape) < 2
            or region.indices.size != data.blocks.sizes[b]):
        return None
    a = data.analytic[region.indices]
    order, other = data.blocks.order, OTHER_ORDER[data.blocks.order]
    for slip, corrected in (("written", data.blocks.reread(a, b, written=other)),
                            ("read", data.blocks.unread(a, b, read=other))):
        if _fits(data, region, corrected):
            how = (f"flattened in {other} order while the parameters are laid out in {order}"
                   if slip == "written" else
                   f"laid out in {order} order but the loss reads this block in {other} order")
            return _pattern("layout", region, f"{_cap(region.label)} "
                            f"holds the right numbers in the wrong places: the gradient "
                            f"matrix is {how} (equivalently, built transposed, shape "
                            f"{shape[::-1]}).", {"factor": other, "slip": slip, "how": how})
    return None


def _regularization_in(data: CheckData, region: Region) -> Finding | None:
    d, theta = data.difference[region.indices], data.x[region.indices]
    support = np.abs(d) > data.explain_tolerance[region.indices]
    if support.sum() < 2 or np.ptp(theta[support]) == 0:
        return None
    lam = _factor(d[support], theta[support], data.explain_tolerance[region.indices][support])
    fitted = np.where(support, lam * theta, 0.0)
    if not np.all(np.abs(d - fitted) <= data.explain_tolerance[region.indices]):
        return None
    where = _support_text(data, region, support)
    m = data.batch_size
    per_m = f" (= {lam * m:.6g}/m with m = {m})" if m else ""
    side = ("the analytic gradient adds a penalty term the loss does not have"
            if lam > 0 else "the loss has a penalty term missing from the analytic gradient")
    return _pattern("regularization", region, f"{_cap(region.label)}: the difference a - n is "
                    f"{lam:.6g}·θ{per_m} on {where}: {side} — a regulariser that the cost and "
                    "the gradient treat differently (e.g. the bias counted in one of them).",
                    {"factor": lam, "support": region.indices[support].tolist()})


def _support_text(data: CheckData, region: Region, support: np.ndarray) -> str:
    if region.block is None or not data.blocks.given or len(data.blocks.shapes[region.block]) != 2:
        return f"{int(support.sum())} of its {support.size} coordinates"
    span = data.blocks.index(region.block)
    cols = data.blocks.columns(region.block)[region.indices - span.start]
    if support.all():
        return "all its coordinates"
    named = data.blocks.column_names[region.block] if data.blocks.column_names else ()
    for k, name in named:
        if np.array_equal(support, cols != k):
            return f"every entry except column {k} ({name})"
    if np.array_equal(support, cols != 0):
        return "every entry except column 0"
    return f"{int(support.sum())} of its {support.size} coordinates"


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _pattern(kind: str, region: Region, message: str, extra: dict) -> Finding:
    return Finding(kind, message, {"region": region.label, "block": region.block,
                                   "coordinates": region.indices.tolist(), **extra})


def against_limit(data: CheckData) -> CheckData:
    """The comparison with the h → 0 limit when the user's explicit step was probed.

    Bug patterns are judged against the best reference available: a factor fitted to a
    reference with a large step error would carry that error.
    """
    step = data.probes.step
    if step is None:
        return data
    return replace(data, reference=data.analytic - step.limit_difference,
                   difference=step.limit_difference, tolerance=step.limit_tolerance)


def _failing(data: CheckData) -> np.ndarray:
    """Failing against the reference, or against the h → 0 limit when there is one."""
    if data.probes.step is None:
        return data.failing
    return data.failing | against_limit(data).failing


def _pattern_detector(kind: str, test: Callable[[CheckData, Region], Finding | None]) -> Detector:
    """A detector that tries `test` on every open region and merges a whole-gradient hit."""
    def detect(data: CheckData, earlier: Sequence[Finding]) -> list[Finding]:
        data = against_limit(data)
        found, seen = [], set()
        for region in _open_regions(data, [*earlier]):
            if region.block in seen:
                continue
            finding = test(data, region)
            if finding is not None:
                found.append(finding)
                seen.add(region.block)
        return _merge_whole(data, kind, found)
    detect.__name__ = f"detect_{kind}"
    return detect


def _merge_whole(data: CheckData, kind: str, found: list[Finding]) -> list[Finding]:
    """One finding when every block shows the same pattern with the same parameter."""
    nblocks = len(data.blocks.shapes)
    if len(found) < 2 or len(found) != nblocks:
        return found
    factors = [f.evidence.get("factor") for f in found]
    same = all(_same(factors[0], f) for f in factors[1:])
    whole = sum(len(f.evidence["coordinates"]) for f in found) == data.analytic.size
    if not same or not whole:
        return found
    first = found[0]
    message = first.message.replace(_cap(first.evidence["region"]), "Every block", 1)
    if kind == "layout":
        message = ("Every block holds the right numbers in the wrong places: each gradient "
                   f"matrix is {first.evidence['how']} (equivalently, built transposed).")
    coords = [c for f in found for c in f.evidence["coordinates"]]
    return [Finding(kind, message, {**first.evidence, "region": "every block", "block": None,
                                    "coordinates": coords})]


def _same(p: Any, q: Any) -> bool:
    if isinstance(p, str) or isinstance(q, str):
        return p == q
    return abs(p - q) <= FACTOR_RTOL * max(abs(p), abs(q))


# -- numerical causes -----------------------------------------------------------------------
def undecided(data: CheckData) -> np.ndarray:
    """Coordinates whose verdict hinges on a reference error bar that is too wide.

    Wide: the reference's error estimate exceeds √u relative (``WIDE_EXPONENT``), and the
    gap would fail without it. Close: a failing gap within ``CLOSE_CALL`` error bars.
    """
    d = np.abs(data.difference)
    n = np.abs(data.reference)
    reference_part = REFERENCE_SAFETY * np.nan_to_num(data.reference_error, nan=np.inf)
    rounding_part = np.maximum(data.tolerance - reference_part, 0.0)
    wide = data.reference_error > data.unit_roundoff ** WIDE_EXPONENT * (n + float(np.max(n)))
    close = data.failing & (d <= CLOSE_CALL * reference_part) & (reference_part > rounding_part)
    return (wide & (d > rounding_part)) | close


def suspects(data: CheckData) -> np.ndarray:
    """Coordinates worth a kink scan: failing, undecided, or where the user's step is off."""
    found = data.failing | undecided(data)
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


def detect_kink(data: CheckData, earlier: Sequence[Finding]) -> list[Finding]:
    """Failing coordinates whose one-sided differences jump by a slope that does not
    shrink with the step."""
    probe = data.probes.kink
    if probe is None or probe.indices.size == 0:
        return []
    hit, at, _ = kink_hits(probe, kink_threshold(data, probe.indices))
    # a kink matters where the check fails, or where the user's own step straddles it;
    # a nearby kink that the automatic reference stepped around is no finding
    relevant = _failing(data) if data.probes.step is None else suspects(data)
    hit &= (relevant & ~_explained(data, earlier))[probe.indices]
    if not hit.any():
        return []
    idx = probe.indices[hit]
    rows = np.flatnonzero(hit)
    jump = float(np.max([np.nanmax(np.abs(probe.jumps[r])) for r in rows]))
    labels = ", ".join(data.blocks.label(int(i)) for i in idx[:5])
    h = float(np.max(at[hit]))
    return [Finding("kink", f"At {labels} the forward and backward differences differ by "
                    f"up to {jump:.3g}, and the gap stays put while the step shrinks 16-fold "
                    f"from {h:.3g}: f has a kink (a ReLU-like pre-activation within the step "
                    "of 0), where a two-sided difference averages two slopes; the analytic "
                    "gradient is a one-sided slope there. Use a step smaller than the "
                    "distance to the kink, or the complex step.",
                    {"coordinates": idx.tolist(), "h": h, "jump": jump})]


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
    coords = agrees & off & ~_explained(data, earlier)
    if not coords.any():
        return None
    share = np.median(probe.rounding[coords] / np.maximum(probe.step_error[coords], 1e-300))
    return ("step_too_small" if share >= ROUNDING_SHARE else "step_too_large"), coords


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
                    f"(truncation error, it shrinks with h) at {int(failing.sum())} coordinate(s), "
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
                    f"({probe.limit_name}) agrees with the analytic gradient. Use "
                    "method='auto' or a step near the optimum (≈ u^(1/3) for central).",
                    {"coordinates": np.flatnonzero(failing).tolist(), "h": probe.h,
                     "step_error": err, "rounding": rnd})]


def is_lossy(probe: Any) -> bool:
    """Whether the noise probe shows f noisier than its system allows, at both spacings.

    Rounding noise has the same size at offsets δ and δ/16; a kink between the offsets
    makes fourth differences proportional to the spacing, so its fine measurement falls
    16-fold (below ``NOISE_PERSIST`` of the coarse one) and is not taken for noise.
    """
    if probe is None:
        return False
    floor = NOISE_FACTOR * probe.expected
    return bool(probe.sigma > floor and probe.sigma_fine > floor
                and probe.sigma_fine >= NOISE_PERSIST * probe.sigma)


def undecidable(data: CheckData) -> np.ndarray:
    """Coordinates whose reference error bar exceeds ``u^DECIDABLE_EXPONENT`` of the
    gradient's scale ``|n_i| + max|n|`` (missing estimates count as decidable: the
    tolerance then trusts the reference to √u)."""
    n = np.abs(data.reference)
    err = REFERENCE_SAFETY * np.nan_to_num(data.reference_error, nan=0.0)
    return err > data.unit_roundoff ** DECIDABLE_EXPONENT * (n + float(np.max(n)))


def _binary_rounding(data: CheckData) -> str | None:
    """The binary float whose rounding explains every failing gap, if any (and the
    system is far more precise than it)."""
    failing = data.failing
    if failing.mean() < BINARY_SHARE:
        return None
    n = np.abs(data.reference)
    scale = (n + float(np.max(n)))[failing]
    gap = np.abs(data.difference[failing])
    ulps = gap / scale
    for name, u_bin in BINARY_ROUNDING.items():
        if data.unit_roundoff * BINARY_ULPS < u_bin and \
                BINARY_LEAST * u_bin <= np.max(ulps) <= BINARY_ULPS * u_bin:
            return name
    return None


def _undecidable_finding(data: CheckData, earlier: Sequence[Finding]) -> list[Finding]:
    if data.probes.step is not None or _numerical(earlier):
        return []
    coords = undecidable(data) & ~_explained(data, earlier)
    if not coords.any():
        return []
    n = np.abs(data.reference)
    share = float(np.max((REFERENCE_SAFETY * data.reference_error
                          / (n + float(np.max(n))))[coords]))
    limit = data.unit_roundoff ** DECIDABLE_EXPONENT
    return [Finding("precision_loss", f"The numerical reference cannot decide "
                    f"{int(coords.sum())} coordinate(s): its error bar there is up to "
                    f"{share:.2g} of the gradient's scale, more than u^(1/4) = {limit:.2g}, "
                    "so a gradient off by that much would pass. f cannot be differentiated "
                    "numerically to that accuracy at this point (noise, cancellation or a "
                    f"kink within the steps; reference: {data.reference_name}). Check with "
                    "more digits (numbers=) or at another point.",
                    {"coordinates": np.flatnonzero(coords).tolist(), "undecidable": True,
                     "share": share})]


def _binary_gradient_finding(data: CheckData) -> list[Finding]:
    kind = _binary_rounding(data)
    if kind is None:
        return []
    n = np.abs(data.reference)
    ulps = float(np.max(np.abs(data.difference) / (n + float(np.max(n))))) / \
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
    probe = data.probes.noise
    if not is_lossy(probe):
        if _numerical(earlier) or _explained(data, earlier)[data.failing].any():
            return _undecidable_finding(data, earlier)
        return _binary_gradient_finding(data) or _undecidable_finding(data, earlier)
    ratio = probe.sigma / probe.expected if probe.expected > 0 else float("inf")
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
                    {"coordinates": np.flatnonzero(data.failing).tolist(),
                     "sigma": probe.sigma, "expected": probe.expected, "ratio": ratio})]


def detect_not_complex_safe(data: CheckData, earlier: Sequence[Finding]) -> list[Finding]:
    """f runs on complex input but its imaginary part is not a derivative (or cannot run)."""
    probe = data.probes.complex
    if probe is None or probe.safe or not (probe.ran or probe.requested):
        return []
    return [Finding("not_complex_safe", f"f is not complex-step safe: {probe.reason} The "
                    "reference used Richardson extrapolation instead.",
                    {"ran": probe.ran, "requested": probe.requested})]


# -- summaries ------------------------------------------------------------------------------
def detect_localized(data: CheckData, earlier: Sequence[Finding]) -> list[Finding]:
    """Unexplained failures confined to one block, or one column/row of a block."""
    rest = _failing(data) & ~_explained(data, earlier)
    if not rest.any() or not data.blocks.given or _numerical(earlier):
        return []
    blocks = {data.blocks.locate(int(i))[0] for i in np.flatnonzero(rest)}
    if len(blocks) != 1:
        return []
    b = blocks.pop()
    narrow = _narrow(data, b, np.arange(data.blocks.index(b).start,
                                        data.blocks.index(b).stop), rest[data.blocks.index(b)])
    if not narrow and len(data.blocks.shapes) == 1:
        return []
    where = narrow[0].label if narrow else _block_label(data, b)
    return [Finding("localized", f"Only {where} disagrees; every other coordinate matches. "
                    "Look at the code that computes this part of the gradient (for one "
                    "layer: its delta and the activations it multiplies).",
                    {"block": b, "region": where, "count": int(rest.sum())})]


def detect_mismatch(data: CheckData, earlier: Sequence[Finding]) -> list[Finding]:
    """Failures that no pattern and no numerical cause explains."""
    rest = _failing(data) & ~_explained(data, earlier)
    if not rest.any() or _numerical(earlier):
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
    if any(f.kind not in NOTICES for f in earlier) or _failing(data).any():
        return []
    rel = np.abs(data.difference) / np.maximum(np.abs(data.tolerance), 1e-300)
    share = float(np.max(rel, initial=0))
    return [Finding("match", "The analytic gradient matches the reference at every "
                    f"coordinate within its tolerance (the largest gap is {share:.2g} of its "
                    "tolerance).", {"largest_share_of_tolerance": share})]


def _numerical(earlier: Sequence[Finding]) -> bool:
    """Whether a numerical cause already explains the disagreement as a whole (an
    undecidable reference explains only its own coordinates)."""
    return any(f.kind in _EXPLAINS_ALL and not f.evidence.get("undecidable")
               for f in earlier)


_EXPLAINS_ALL = {"step_too_large", "step_too_small", "precision_loss"}
# findings that inform but do not fail a check (the reference fell back and is sound)
NOTICES = frozenset({"not_complex_safe"})

DETECTORS: dict[str, Detector] = {
    "sign": _pattern_detector("sign", _sign_in),
    "scale": _pattern_detector("scale", _scale_in),
    "layout": _pattern_detector("layout", _layout_in),
    "regularization": _pattern_detector("regularization", _regularization_in),
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
