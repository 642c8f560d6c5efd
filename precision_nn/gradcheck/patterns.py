"""Bug patterns, each tried on *regions* (each disagreeing block, or the one column or
row of a block the disagreement is confined to):

* ``sign`` — ``a = -n`` on the region;
* ``scale`` — ``a = c·n`` with a constant ``c`` (named ``1/m`` when it is one over the
  batch size);
* ``layout`` — ``a`` is ``n`` with the block's entries permuted as by C vs Fortran order
  (the same permutation as a transposed block, since ``G.T.ravel("C") == G.ravel("F")``),
  reversed along an axis, or shifted by one place (an off-by-one index);
* ``regularization`` — ``a - n = λ·θ`` on its support (a penalty the loss and the
  gradient treat differently).

A pattern explains a region when, applied, it leaves a residual within each
coordinate's own tolerance at every coordinate of the region (up to the rounding of
the float64 copies, `evidence.EXPLAIN_ROUNDING`); when the user gave an explicit step, patterns are
judged against the h → 0 limit instead (a factor fitted to a reference with a step error
would carry that error).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from fractions import Fraction
from typing import Any

import numpy as np

from precision_nn.gradcheck.blocks import OTHER_ORDER
from precision_nn.gradcheck.decisions import undecidable
from precision_nn.gradcheck.diagnosis import (
    Detector,
    Finding,
    Region,
    against_limit,
    cap,
    explained,
)
from precision_nn.gradcheck.evidence import EXPLAIN_ROUNDING, CheckData

__all__ = ["FACTOR_RTOL", "SCALE_RESOLVED", "block_label", "describe_factor",
           "layout_in", "narrow_regions", "pattern_detector", "regions", "regularization_in",
           "scale_in", "sign_in"]

# a factor this close to a simple candidate (1/m, 2, ...) is reported as that candidate
FACTOR_RTOL = 1e-6


# a constant factor c is a finding only when its distance from 1 exceeds this many of its
# standard uncertainties σ_c (from the tolerances, see `_factor`): three σ of a fitted
# quantity, whatever the size of c - 1 (a missing 1/m and a constant off by 1e-6 alike)
SCALE_RESOLVED = 3.0


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
        out.extend(narrow_regions(data, b, idx, fail))
        out.append(Region(idx, block_label(data, b), b))
    return out


def narrow_regions(data: CheckData, b: int, idx: np.ndarray, fail: np.ndarray) -> list[Region]:
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


def block_label(data: CheckData, b: int) -> str:
    if not data.blocks.given:
        return "the whole gradient"
    return f"{data.blocks.name(b)} (shape {data.blocks.shapes[b]})"


def _line_label(data: CheckData, b: int, axis: str, k: int) -> str:
    name = data.blocks.column_name(b, k) if axis == "column" else None
    note = f" ({name})" if name else ""
    return f"{data.blocks.name(b)}, {axis} {k}{note}"


def _open_regions(data: CheckData, earlier: Sequence[Finding]) -> list[Region]:
    """Regions whose failures no earlier finding explains."""
    done = explained(data, earlier)
    failing = data.failing
    return [r for r in regions(data) if (failing[r.indices] & ~done[r.indices]).any()]


def _fits(data: CheckData, region: Region, corrected: np.ndarray, slack: float = 1.0) -> bool:
    """Whether `corrected` reproduces the reference on `region`."""
    n = data.reference[region.indices]
    return bool(np.all(np.abs(corrected - n) <= slack * data.explain_tolerance[region.indices]))


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
    return _factor_and_error(a, n, tol)[0]


def _factor_and_error(a: np.ndarray, n: np.ndarray, tol: np.ndarray) -> tuple[float, float]:
    """``c`` of `_factor` and its standard uncertainty ``σ_c = 1/√(Σ n_i²/tol_i²)`` (the
    least-squares error of c when each ``a_i`` is uncertain by ``tol_i``)."""
    t = np.maximum(tol, np.finfo(float).tiny)
    w = (t.min() / t) ** 2  # normalised weights 1/tol² (no overflow for tiny tolerances)
    nn = float(np.sum(w * n * n))
    if not nn > 0:
        return float("nan"), float("nan")
    return float(np.sum(w * a * n)) / nn, float(t.min()) / float(np.sqrt(nn))


def measured(value: float, sigma: float) -> str:
    """`value` with as many digits as its uncertainty `sigma` resolves, and ``± sigma``.

    Examples
    --------
    >>> measured(1.0000012345, 2e-9), measured(0.2, 0.0)
    ('1.000001235 (± 2e-09)', '0.2')
    """
    if not np.isfinite(sigma) or sigma <= 0:
        return f"{value:.6g}"
    digits = int(np.clip(np.ceil(np.log10(abs(value) / sigma)) + 1, 3, 17))
    return f"{value:.{digits}g} (± {sigma:.1g})"


def sign_in(data: CheckData, region: Region) -> Finding | None:
    a = data.analytic[region.indices]
    if not np.any(a != 0) or not _fits(data, region, -a):
        return None
    return _pattern("sign", region, f"{cap(region.label)}: the analytic gradient has the "
                    "opposite sign of the reference: a minus sign is missing or extra "
                    "(e.g. y - ŷ instead of ŷ - y, or descent direction returned as gradient).",
                    {"factor": -1.0})


def scale_in(data: CheckData, region: Region) -> Finding | None:
    n, d = data.reference[region.indices], data.difference[region.indices]
    tol = data.tolerance[region.indices]
    # c - 1 and σ_c from the accurately formed gaps a - n = (c - 1)·n and the comparison's
    # own tolerance (the uncertainty of each gap); fitting c to float64 copies of a and n
    # would bury a c - 1 below float64's rounding of the copies
    delta, sigma = _factor_and_error(d, n, tol)
    c = 1.0 + delta
    # c must be resolved from 1 (no scale) and from 0 (a missing gradient, no factor)
    if not np.isfinite(c) or not abs(c) > SCALE_RESOLVED * sigma or \
            abs(c + 1) <= FACTOR_RTOL or not abs(delta) > SCALE_RESOLVED * sigma:
        return None
    # explained only if a - c·n is within max(1, |c|)·tol at every coordinate claimed
    # (a/c within tol of n when c > 1), up to the float64 rounding of forming it
    residual = np.abs(d - delta * n)
    slack = EXPLAIN_ROUNDING * (np.abs(d) + 2 * np.abs(delta * n))
    if not np.all(residual <= max(1.0, abs(c)) * tol + slack):
        return None
    name = describe_factor(c, data.batch_size)
    if name == f"{c:.6g}":
        name = measured(c, sigma)
    near_one = abs(c - 1) < 1e-2
    cause = ("a constant close to 1 differs between the gradient and the loss (an epsilon "
             "added in one place only, a constant rounded to a few digits, a damping "
             "factor)" if near_one else "a constant factor is missing or extra (a 1/m, "
             "a ½ of a squared error, a step size)")
    return _pattern("scale", region, f"{cap(region.label)}: the analytic gradient is "
                    f"{name} × the reference, at every {data.unit}: {cause}.",
                    {"factor": c, "factor_error": sigma, "factor_name": name})


def layout_in(data: CheckData, region: Region) -> Finding | None:
    """The block's entries permuted: C vs F order (a matrix built transposed), reversed
    along an axis, or shifted by one (an off-by-one index)."""
    b = region.block
    if b is None or region.indices.size != data.blocks.sizes[b] or region.indices.size < 2:
        return None
    a = data.analytic[region.indices]
    # a permutation is tested only where it moves values between coordinates whose
    # tolerance decides (a reference error bar beyond u^(1/4) of the scale fits anything)
    blind = undecidable(data)[region.indices]
    for slip, how, corrected in _permutations(data, b, a):
        if np.any(blind & (corrected != a)):
            continue
        if _fits(data, region, corrected):
            return _pattern("layout", region, f"{cap(region.label)} holds the right numbers "
                            f"in the wrong places: the gradient is {how}.",
                            {"factor": slip, "slip": slip, "how": how})
    return None


def _permutations(data: CheckData, b: int, a: np.ndarray):
    """``(slip, how, P(a))`` for the layout slips of block `b`; the gradient has the slip
    when ``P(a)`` is the reference. Each P here is its own inverse or comes with it."""
    blocks = data.blocks
    shape, order = blocks.shapes[b], blocks.order
    if blocks.given and len(shape) == 2 and min(shape) >= 2:
        other = OTHER_ORDER[order]
        twin = (f"built transposed, {shape[::-1]} for {shape}" if shape[0] != shape[1]
                else "the transpose of the right matrix")
        written = (f"flattened in {other} order while the parameters are laid out in "
                   f"{order} (equivalently, {twin})")
        read = (f"laid out in {order} order but the loss reads this block in {other} "
                "order (equivalently, built transposed)")
        yield "written", written, blocks.reread(a, b, written=other)
        yield "read", read, blocks.unread(a, b, read=other)
    grid = np.reshape(a, shape, order=order)
    axes = [("rows", 0), ("columns", 1)] if len(shape) == 2 else [("entries", 0)]
    for name, axis in axes:
        if shape[axis] >= 2:
            how = f"in reverse order along its {name} (an index counted from the wrong end)"
            yield f"reversed_{name}", how, np.flip(grid, axis).ravel(order=order)
    if len(shape) >= 2:
        how = "in reverse order along every axis (the flat vector read backwards)"
        yield "reversed", how, a[::-1]
    for step, where in ((1, "one later"), (-1, "one earlier")):
        how = (f"shifted by one place (each entry {where} in the flat vector: an "
               "off-by-one index)")
        yield f"shift_{step:+d}", how, np.roll(a, -step)


def regularization_in(data: CheckData, region: Region) -> Finding | None:
    d, theta = data.difference[region.indices], data.x[region.indices]
    support = np.abs(d) > data.explain_tolerance[region.indices]
    if support.sum() < 2 or np.ptp(theta[support]) == 0:
        return None
    found = _l1_penalty(data, region)
    if found is not None:
        return found
    lam = _factor(d[support], theta[support], data.explain_tolerance[region.indices][support])
    fitted = np.where(support, lam * theta, 0.0)
    if not np.all(np.abs(d - fitted) <= data.explain_tolerance[region.indices]):
        return None
    if not support.all() and _flipped(data, region, support):
        return _partial_sign(data, region, support, lam)
    where = _support_text(data, region, support)
    support_d = d[support]
    _, lam_sigma = _factor_and_error(support_d, theta[support],
                                     data.explain_tolerance[region.indices][support])
    side = ("the analytic gradient adds a penalty term the loss does not have"
            if lam > 0 else "the loss has a penalty term missing from the analytic gradient")
    return _pattern("regularization", region, f"{cap(region.label)}: the difference a - n is "
                    f"λ·θ with λ = {measured(lam, lam_sigma)} (measured) on {where}: {side} — a regulariser that the cost and "
                    "the gradient treat differently (e.g. the bias counted in one of them).",
                    {"factor": lam, "factor_error": lam_sigma, "support": region.indices[support].tolist()})


def _l1_penalty(data: CheckData, region: Region) -> Finding | None:
    """``a - n = λ·sign(θ)`` at every coordinate of the region: an L1 penalty (``λ·Σ|θ|``)
    that the cost and the gradient treat differently. Hypothesis tested: one λ fits
    every gap within its tolerance, with θ of both signs and gaps that differ from 0 (a
    constant offset fits only one sign; an L2 term λ·θ has gaps that follow |θ|)."""
    idx = region.indices
    d, theta, tol = data.difference[idx], data.x[idx], data.explain_tolerance[idx]
    signs = np.sign(theta)
    if not (np.any(signs > 0) and np.any(signs < 0)) or np.any(signs == 0):
        return None
    lam, lam_sigma = _factor_and_error(d, signs, tol)
    if not (np.isfinite(lam) and abs(lam) > 2 * lam_sigma):
        return None
    if not np.all(np.abs(d - lam * signs) <= tol):
        return None
    side = ("the analytic gradient adds an L1 penalty's λ·sign(θ) the loss does not have"
            if lam > 0 else "the loss has an L1 penalty λ·Σ|θ| whose λ·sign(θ) is missing "
            "from the analytic gradient")
    return _pattern("regularization", region, f"{cap(region.label)}: the difference a - n "
                    f"is λ·sign(θ) with λ = {measured(lam, lam_sigma)} (measured) at every "
                    f"{data.unit}: {side}.",
                    {"factor": lam, "factor_error": lam_sigma, "penalty": "l1",
                     "support": idx.tolist()})


def _flipped(data: CheckData, region: Region, support: np.ndarray) -> bool:
    """Whether ``a = -n`` holds on the support as well (there ``n ∝ θ``, as for the
    gradient of a sum of squares, and the two hypotheses fit the same numbers)."""
    idx = region.indices[support]
    a, n = data.analytic[idx], data.reference[idx]
    return bool(np.any(a != 0) and np.all(np.abs(-a - n) <= data.explain_tolerance[idx]))


def _partial_sign(data: CheckData, region: Region, support: np.ndarray,
                  lam: float) -> Finding:
    """A sign error on part of a region, which also reads as λ·θ there (see `_flipped`)."""
    idx = region.indices[support]
    labels = ", ".join(data.blocks.label(int(i)) for i in idx[:5])
    more = f" and {idx.size - 5} more" if idx.size > 5 else ""
    return _pattern("sign", Region(idx, f"{cap(region.label)}, {idx.size} of its "
                                   f"{support.size} {data.unit}s", region.block),
                    f"{cap(region.label)}: at {idx.size} of its {support.size} "
                    f"{data.unit}s ({labels}{more}) the analytic gradient has the opposite "
                    "sign of the reference, and matches it at the others: a sign that "
                    "depends on a branch (e.g. of x·|x| or a case split) is wrong on one "
                    f"side. (The same numbers also read as a - n = λ·θ with λ = {lam:.3g} "
                    "there, a penalty on exactly those entries, which is less likely.)",
                    {"factor": -1.0, "partial": True})


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


def _pattern(kind: str, region: Region, message: str, extra: dict) -> Finding:
    return Finding(kind, message, {"region": region.label, "block": region.block,
                                   "coordinates": region.indices.tolist(), **extra})


def pattern_detector(kind: str, test: Callable[[CheckData, Region], Finding | None]) -> Detector:
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
    if len(found) < 2 or len(found) != nblocks or len({f.kind for f in found}) != 1:
        return found
    factors = [f.evidence.get("factor") for f in found]
    same = all(_same(factors[0], f) for f in factors[1:])
    whole = sum(len(f.evidence["coordinates"]) for f in found) == data.analytic.size
    if not same or not whole:
        return found
    first = found[0]
    message = first.message.replace(cap(first.evidence["region"]), "Every block", 1)
    if kind == "layout":
        message = ("Every block holds the right numbers in the wrong places: each block's "
                   f"gradient is {first.evidence['how']}.")
    coords = [c for f in found for c in f.evidence["coordinates"]]
    return [Finding(first.kind, message, {**first.evidence, "region": "every block",
                                          "block": None, "coordinates": coords})]


def _same(p: Any, q: Any) -> bool:
    if isinstance(p, str) or isinstance(q, str):
        return p == q
    return abs(p - q) <= FACTOR_RTOL * max(abs(p), abs(q))
