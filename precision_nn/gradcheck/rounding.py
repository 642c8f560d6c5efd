"""Whether an analytic gradient carries the rounding of a binary float (a float() or a
NumPy float inside backprop of a more precise system): the hypothesis, its tests, and
the ``precision_loss`` finding that names the float.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from precision_nn.gradcheck.diagnosis import Finding
from precision_nn.gradcheck.evidence import CheckData

__all__ = ["BINARY_ROUNDING", "binary_gradient_finding", "binary_rounding", "entry_scale"]

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


def binary_rounding(data: CheckData) -> str | None:
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
    ulps = gap / entry_scale(data)[failing]
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


def entry_scale(data: CheckData) -> np.ndarray:
    """Per index, how far a rounding of every gradient entry by one relative unit
    reaches (`CheckData.entry_scale`; ``|n_i| + max|n|`` for coordinates)."""
    if data.entry_scale is not None:
        return data.entry_scale
    n = np.abs(data.reference)
    return n + float(np.max(n))


def binary_gradient_finding(data: CheckData) -> list[Finding]:
    kind = binary_rounding(data)
    if kind is None:
        return []
    ulps = float(np.max(np.abs(data.difference) / entry_scale(data))) / \
        BINARY_ROUNDING[kind]
    return [Finding("precision_loss", f"The analytic gradient agrees with the reference "
                    f"only to the precision of {kind}: every gap is within {ulps:.3g} "
                    f"ulps of {kind} of the gradient's scale, far beyond the rounding of "
                    f"this system (u = {data.unit_roundoff:.2g}). The gradient code computes "
                    f"in {kind} somewhere (e.g. a float() or a NumPy float inside backprop).",
                    {"coordinates": np.flatnonzero(data.failing).tolist(), "float": kind,
                     "ulps": ulps})]
