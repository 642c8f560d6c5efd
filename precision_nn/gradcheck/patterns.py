"""Bug patterns, each tried on *regions* (`regions`: each disagreeing block, or the one
column or row of a block the disagreement is confined to):

* ``sign`` — ``a = -n`` on the region, or at exactly its failing entries (a sign slip
  confined to a few entries);
* ``scale`` — ``a = c·n`` with a constant ``c`` (named ``1/m`` when it is one over the
  batch size), fitted only where every reference decides;
* ``layout`` — ``a`` is ``n`` with the block's entries permuted as by C vs Fortran order
  (the same permutation as a transposed block, since ``G.T.ravel("C") == G.ravel("F")``),
  reversed along an axis, or shifted by one place (an off-by-one index), or the whole
  flat gradient of several blocks shifted by one place;
* ``regularization`` — ``a - n = λ·θ`` on its support (a penalty the loss and the
  gradient treat differently).

A pattern explains a region when, applied, it leaves a residual within each
coordinate's own tolerance at every coordinate of the region (up to the rounding of
the float64 copies, `evidence.EXPLAIN_ROUNDING`); when the user gave an explicit step,
patterns are judged against the h → 0 limit instead (a factor fitted to a reference
with a step error would carry that error).
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from precision_nn.gradcheck.blocks import OTHER_ORDER
from precision_nn.gradcheck.decisions import undecidable
from precision_nn.gradcheck.diagnosis import Finding, Region, cap
from precision_nn.gradcheck.evidence import EXPLAIN_ROUNDING, CheckData
from precision_nn.gradcheck.regions import (
    FACTOR_RTOL,
    block_label,
    fits,
    narrow_regions,
    pattern_detector,
    pattern_finding,
    regions,
)

__all__ = ["FACTOR_RTOL", "SCALE_RESOLVED", "block_label", "describe_factor",
           "factor_and_error", "layout_in", "measured", "narrow_regions", "pattern_detector",
           "regions", "regularization_in", "scale_in", "sign_in"]

# a constant factor c is a finding only when its distance from 1 exceeds this many of its
# standard uncertainties σ_c (from the tolerances, see `_factor`): three σ of a fitted
# quantity, whatever the size of c - 1 (a missing 1/m and a constant off by 1e-6 alike)
SCALE_RESOLVED = 3.0


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
    return factor_and_error(a, n, tol)[0]


def factor_and_error(a: np.ndarray, n: np.ndarray, tol: np.ndarray) -> tuple[float, float]:
    """``c`` of `_factor` and its standard uncertainty ``σ_c = 1/√(Σ n_i²/tol_i²)`` (the
    least-squares error of c when each ``a_i`` is uncertain by ``tol_i``)."""
    t = np.maximum(tol, np.finfo(float).tiny)
    w = (t.min() / t) ** 2  # normalised weights 1/tol² (no overflow for tiny tolerances)
    # c and σ_c are unchanged when a, n and tol are divided by one scale s = max|n|:
    # squares of values near 1e200 (or 1e-200) would overflow (underflow to 0) otherwise
    s = float(np.max(np.abs(n), initial=0.0))
    if not (s > 0 and np.isfinite(s)):
        return float("nan"), float("nan")
    a, n = a / s, n / s
    nn = float(np.sum(w * n * n))
    if not nn > 0:
        return float("nan"), float("nan")
    return float(np.sum(w * a * n)) / nn, float(t.min()) / s / float(np.sqrt(nn))


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
    """``a = -n`` on the whole region, or on exactly its failing entries (`_flipped_entries`)."""
    a = data.analytic[region.indices]
    if not np.any(a != 0):
        return None
    if not fits(data, region, -a):
        return _flipped_entries(data, region)
    return pattern_finding("sign", region, f"{cap(region.label)}: the analytic gradient has the "
                    "opposite sign of the reference: a minus sign is missing or extra "
                    "(e.g. y - ŷ instead of ŷ - y, or descent direction returned as gradient).",
                    {"factor": -1.0})


def _flipped_entries(data: CheckData, region: Region) -> Finding | None:
    """A sign flipped at some entries of the region only.

    Hypothesis tested: at every failing entry of the region ``-a`` reproduces the
    reference within the entry's tolerance (so ``|a_i| = |n_i|``, both far from 0: the
    gap ``2|n_i|`` fails), and every other entry matches. An unrelated bug gives
    ``a_i = -n_i`` to within a tolerance of ~1e-13 relative only by coincidence.
    """
    idx = region.indices
    failing = data.failing[idx]
    if not failing.any() or failing.all():
        return None
    flipped = idx[failing]
    a, n = data.analytic[flipped], data.reference[flipped]
    if not np.all(np.abs(-a - n) <= data.explain_tolerance[flipped]):
        return None
    labels = ", ".join(data.blocks.label(int(i)) for i in flipped[:5])
    more = f" and {flipped.size - 5} more" if flipped.size > 5 else ""
    b = region.block
    owner = block_label(data, b) if b is not None else region.label
    size = data.blocks.sizes[b] if b is not None else idx.size
    where = (labels if flipped.size == 1 else
             f"{flipped.size} of its {size} {data.unit}s ({labels}{more})")
    return pattern_finding("sign", Region(flipped, f"{owner}, {where}", b),
                    f"{cap(owner)}: the analytic gradient has the opposite sign of the "
                    f"reference at {where} (analytic {a[0]:.6g} vs reference {n[0]:.6g}) "
                    "and matches it at every other entry: a sign slip confined to "
                    f"{'this entry' if flipped.size == 1 else 'these entries'} (a term "
                    "written with the wrong sign for one index or one case, or a sign that "
                    "depends on a branch).",
                    {"factor": -1.0, "partial": True})


def scale_in(data: CheckData, region: Region) -> Finding | None:
    # a factor is fitted only where no reference's error bar is infinite (exp(709.7),
    # where the estimates overflow): such a reference decides nothing, and the check is
    # undecidable there (`decisions.undecidable`); the user's step's bar in step mode
    # is not the judged one, so that test is not asked whole here
    if np.any(np.isinf(data.reference_error[region.indices])):
        return None
    n, d = data.reference[region.indices], data.difference[region.indices]
    tol = data.tolerance[region.indices]
    # c - 1 and σ_c from the accurately formed gaps a - n = (c - 1)·n and the comparison's
    # own tolerance (the uncertainty of each gap); fitting c to float64 copies of a and n
    # would bury a c - 1 below float64's rounding of the copies
    delta, sigma = factor_and_error(d, n, tol)
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
    return pattern_finding("scale", region, f"{cap(region.label)}: the analytic gradient is "
                    f"{name} × the reference, at every {data.unit}: {cause}.",
                    {"factor": c, "factor_error": sigma, "factor_name": name})


def layout_in(data: CheckData, region: Region) -> Finding | None:
    """The block's entries permuted: C vs F order (a matrix built transposed), reversed
    along an axis, or shifted by one (an off-by-one index); or the whole flat gradient
    shifted by one across its blocks (`_whole_shift`)."""
    whole = _whole_shift(data)
    if whole is not None:
        return whole
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
        if fits(data, region, corrected):
            return pattern_finding("layout", region, f"{cap(region.label)} holds the right numbers "
                            f"in the wrong places: the gradient is {how}.",
                            {"factor": slip, "slip": slip, "how": how})
    return None


def _whole_shift(data: CheckData) -> Finding | None:
    """The flat gradient of several blocks shifted by one place as a whole (``np.roll``
    of the concatenated vector, or an index off by one in the loop that fills it).

    Hypothesis tested: undoing the shift reproduces the reference within tolerance at
    every coordinate (each block alone then fails its own shift at the entry that
    crossed a block boundary), where every moved value is decided.
    """
    blocks = data.blocks
    if not blocks.given or len(blocks.shapes) < 2:
        return None
    a = data.analytic
    everything = Region(np.arange(a.size), "the whole gradient")
    blind = undecidable(data)
    for step, where in ((1, "one later"), (-1, "one earlier")):
        corrected = np.roll(a, -step)
        if np.any(blind & (corrected != a)) or not fits(data, everything, corrected):
            continue
        how = (f"shifted by one place across its blocks (each entry {where} in the flat "
               "vector, the last one wrapped around: an off-by-one index where the blocks "
               "are concatenated or filled)")
        return pattern_finding("layout", everything, f"The whole gradient holds the right numbers "
                        f"in the wrong places: it is {how}.",
                        {"factor": f"whole_shift_{step:+d}", "slip": f"whole_shift_{step:+d}",
                         "how": how})
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
    _, lam_sigma = factor_and_error(support_d, theta[support],
                                     data.explain_tolerance[region.indices][support])
    # λ must be resolved from 0 as a scale's c - 1 is (`SCALE_RESOLVED` of its σ): a gap
    # that only loosely follows θ (a 1.001 scale in a float32-internal f gave λ = 0.0025
    # ± 0.0009 on 3 of 4 coordinates) is no evidence of a regulariser
    if not abs(lam) > SCALE_RESOLVED * lam_sigma:
        return None
    side = ("the analytic gradient adds a penalty term the loss does not have"
            if lam > 0 else "the loss has a penalty term missing from the analytic gradient")
    return pattern_finding("regularization", region, f"{cap(region.label)}: the difference a - n is "
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
    lam, lam_sigma = factor_and_error(d, signs, tol)
    if not (np.isfinite(lam) and abs(lam) > 2 * lam_sigma):
        return None
    if not np.all(np.abs(d - lam * signs) <= tol):
        return None
    side = ("the analytic gradient adds an L1 penalty's λ·sign(θ) the loss does not have"
            if lam > 0 else "the loss has an L1 penalty λ·Σ|θ| whose λ·sign(θ) is missing "
            "from the analytic gradient")
    return pattern_finding("regularization", region, f"{cap(region.label)}: the difference a - n "
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
    return pattern_finding("sign", Region(idx, f"{cap(region.label)}, {idx.size} of its "
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


