"""`taylor_test`: the gradient is right when the first-order Taylor remainder is O(h²).

For a twice-differentiable ``f`` and the true gradient ``g``,

    r(h) = |f(x + h·v) - f(x) - h·vᵀg| = h²·|vᵀ∇²f v|/2 + O(h³),

so halving ``h`` divides ``r`` by 4: the observed order ``log2(r(h)/r(h/2))`` is 2. A wrong
gradient leaves a term ``h·|vᵀ(g - ĝ)|`` and the order drops to 1. The test needs no
tolerance and no step choice. Values within ``BAND`` times their rounding floor carry no
order: the floor of a remainder is ``u·(|f(x)| + |f(x + hv)|)`` (the rounding of the two
values of f whose difference it is), or, where f rounds by more (its terms cancel, or it
computes below its system's precision), ``NOISE_FLOOR`` times the noise σ measured near x
(`_measured_noise`).

The verdict: the h² term eliminated. The order of ``r`` moves from 2 to 1 only where
``ε·h·|vᵀg|`` (a relative error ε along v) is a fair share of ``h²·c``
(``c = |vᵀ∇²f v|/2``), which for small ε happens only near the floor, and an h³ term
moves it too (order 1.4-1.8 at the largest steps of correct float32 gradients). So the
verdict eliminates the h² term between consecutive steps (ratio q = h_k/h_{k+1}): with
signed remainders ``R(h) = e·h + c·h² + d·h³ + …`` (``e = vᵀ(∇f - g)``),

    D_k = q²·R(h_{k+1}) - R(h_k) = e·h_{k+1}·(q² - q) - d·h_{k+1}³·q²·(q - 1) + …,

which shrinks as h³ for a correct gradient and as h for a wrong one, with rounding at most
``q²·floor_{k+1} + floor_k`` (measured: within 2.5 times that, `ROUNDING_EXCESS`). The
median of its last three orders above ``BAND`` times that bound fails below
``ELIMINATED_PASS_ORDER`` = 2 (midway between 1 and 3), read from at least ``MIN_ORDERS``.
(Before, the band was 100 floors and the order of r decided: in float32 a 3% error's D's,
at 4-80 times their bound and of order 1, were left out and it passed.)

Resolution. The error is seen once ``e·h·(q² - q)`` clears ``BAND`` times D's rounding and
dominates the h³ term (``e·h·(q² - q) >= |d|·h³·q²·(q - 1)/2``, where the order of D falls
below 2) at three consecutive steps: the least such e over the steps taken, with |d| read
from the smallest usable D's, is the report's ``resolution``
(`taylor_verdict.resolution_of`). The smallest |e| is reached near
``h ≈ (floor/|d|)^(1/3)``, so ε scales as ``u^(2/3)``: its median on random smooth f and
MLP losses is 2e-3 in float32, 2e-9 in float64, 1.5e-19 in mpf:30 (and above 1 in
float16: undecided). A pass says no error above the resolution;
on 60 such losses in float32 and float64 and 20 in mpf:30, every error 4 times the
resolution failed and every one a tenth of it passed (at a third, all but one float32
loss, whose r has order ~1 at its largest steps; at 1 times, about half fail).

How far the default steps go. Steps that stop early (``0.1·s·2^-11``, s = 1 + max|x|) hide
every ε below about ``10^-4``. So the default steps keep halving from ``0.1·s`` until the
remainder has sat within its band for ``FLOOR_RUN`` steps in a row (for a correct gradient
near ``h ≈ √(u·|f|/c)``, ``≈ √u·s``: about 20 halvings in float64, 45 in decimal:30), or
h falls below ``u·s`` (x + h·v rounds to x); then every D is within its band too.

When the test cannot decide. A pass is a verdict only when its resolution is at most
``MAX_RESOLUTION`` relative to ``|vᵀg|`` (with fewer than ``MIN_ORDERS`` orders of D the
D's within their band still bound |e| by it), and ``decided = False`` otherwise (float16
nearly always; float32 losses of small curvature along v), with too few orders of D at a
floor of measured noise, or when a lone order of D points to an error. Failing orders from steps above f's length
scale (`taylor_verdict.pre_asymptotic`) are undecided too. Undecided is not a failure
(``passed`` stays True) but says that no verdict was reached; use a wider number system
for this check.

This is the convergence test of the adjoint/PDE-constrained optimisation literature (e.g.
Farrell et al. 2013, dolfin-adjoint's ``taylor_test``).

References
----------
P. E. Farrell, D. A. Ham, S. W. Funke, M. E. Rognes, "Automated derivation of the adjoint
of high-level transient finite element programs", SIAM J. Sci. Comput. 35 (2013).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from precision_nn.gradcheck.decisions import persistent_above
from precision_nn.gradcheck.probes import as_float, call, noise_probe, random_direction
from precision_nn.gradcheck.reference import ROUNDING_NOISE
from precision_nn.gradcheck.setup import _underflow
from precision_nn.gradcheck.taylor_verdict import (
    ASYMPTOTIC,
    BAND,
    ELIMINATED_PASS_ORDER,
    FLOOR_RUN,
    MAX_RESOLUTION,
    MIN_ORDERS,
    error_term,
    near_one,
    orders_of,
    pre_asymptotic,
    resolution_of,
)
from precision_nn.numbers import NumberSystem, infer_number_system

__all__ = ["TaylorReport", "taylor_test"]

FIRST_STEP = 0.1  # relative to 1 + max|x|: large enough that h² terms dominate rounding
STEP_COUNT = 12  # the default steps are at least these halvings: 0.1 → 5e-5 relative
# the floor is at least this many times the measured noise σ of one evaluation (a
# remainder is a difference of two noisy values: √2·σ, counted with room)
NOISE_FLOOR = 2.0


@dataclass(frozen=True)
class TaylorReport:
    """Remainders and observed orders of a Taylor test.

    Attributes
    ----------
    steps : ndarray
        The steps ``h`` (along the unit direction ``v``).
    remainders : ndarray
        ``|f(x + hv) - f(x) - h·vᵀg|``: must shrink as h².
    zeroth_order : ndarray
        ``|f(x + hv) - f(x)|`` for comparison: shrinks as h.
    orders : ndarray
        ``log(r_k/r_{k+1}) / log(h_k/h_{k+1})``, NaN where rounding dominates.
    observed_order : float
        The median of the last three usable orders (NaN when none is usable).
    eliminated : ndarray
        ``|D_k| = |q²·R(h_{k+1}) - R(h_k)|`` (signed remainders R, q = h_k/h_{k+1}): the
        remainder with its h² term removed, ``e·h`` for a gradient error e, else ``O(h³)``.
    eliminated_orders, eliminated_order : ndarray, float
        Its orders (NaN near rounding) and the median of the last three usable ones.
    passed : bool
        False when the h²-free remainder has order below 2 (≈ 1: a gradient error) over
        its last usable steps, read from at least two orders. True otherwise, also when
        the test cannot decide (see ``decided``): no evidence of an error is no failure.
    directional_derivative : float
        ``vᵀg``.
    numbers : str
        The number system.
    decided : bool
        False when the evidence is too thin for a verdict: a pass whose resolution is
        worse than ``MAX_RESOLUTION`` (float16 nearly always, some float32), a pass
        with fewer than two orders of the h²-free remainder at a floor of f's measured
        noise or against a lone order that points to an error, or failing orders from
        steps above f's length scale (`taylor_verdict.pre_asymptotic`).
    resolution : float
        The smallest ``|vᵀ(ĝ − ∇f)|`` these steps would have failed, from the measured
        floor and the h³ coefficient (`taylor_verdict.resolution_of`): a pass says the
        error along v is below it, and says nothing about smaller ones.
    relative_resolution : float
        ``resolution/|vᵀg|``: the smallest relative gradient error along v it could see.
    """

    steps: np.ndarray
    remainders: np.ndarray
    zeroth_order: np.ndarray
    orders: np.ndarray
    observed_order: float
    passed: bool
    directional_derivative: float
    numbers: str
    eliminated: np.ndarray = field(default_factory=lambda: np.zeros(0))
    eliminated_orders: np.ndarray = field(default_factory=lambda: np.zeros(0))
    eliminated_order: float = float("nan")
    decided: bool = True
    resolution: float = float("nan")
    relative_resolution: float = float("nan")

    def __str__(self) -> str:
        verdict = ("UNDECIDED (too few steps above the floor of rounding or f's measured "
                   "noise)" if not self.decided
                   else "PASSED" if self.passed else "FAILED")
        lines = [(f"Taylor test {verdict}: with the h² term eliminated between steps, "
                  f"order {self.eliminated_order:.3g} (3 or more for a correct gradient, "
                  f"1 for a wrong one); vᵀg = {self.directional_derivative:.6g}, "
                  f"{self.numbers}"),
                 (f"  remainder order {self.observed_order:.3g} (2 for a correct gradient, "
                  "1 for a wrong one)")]
        if self.passed:
            lines.append(f"  resolution: an error |vᵀ(g - ∇f)| above "
                         f"{self.resolution:.2g} (relative {self.relative_resolution:.2g})"
                         " would have failed; smaller ones may pass unseen")
        lines += [
                  f"  {'h':>10}  {'|f(x+hv)-f(x)|':>16}  {'remainder':>12}  {'order':>6}"]
        for k, h in enumerate(self.steps):
            order = self.orders[k - 1] if k > 0 else np.nan
            text = "" if np.isnan(order) else f"{order:.2f}"
            lines.append(f"  {h:10.3e}  {self.zeroth_order[k]:16.3e}  "
                         f"{self.remainders[k]:12.3e}  {text:>6}")
        return "\n".join(lines)


def taylor_test(f: Callable[[Any], Any], grad: Callable[[Any], Any], x: Any, *,
                direction: Any = None, steps: Sequence[float] | None = None) -> TaylorReport:
    """Check `grad` by the order at which the first-order Taylor remainder shrinks.

    Parameters
    ----------
    f, grad : callable
        The function and its claimed gradient.
    x : array_like
        The point (its number system is inferred).
    direction : array_like, optional
        The direction ``v`` (normalised); default a seeded random unit vector.
    steps : sequence of float, optional
        Decreasing positive steps; default ``0.1·(1 + max|x|)`` halved until the
        remainder reaches the rounding floor (see the module docstring).

    Examples
    --------
    >>> import numpy as np
    >>> f = lambda x: np.sum(np.sin(x))
    >>> x = np.array([0.3, -1.2, 2.0])
    >>> taylor_test(f, np.cos, x).passed, taylor_test(f, np.sin, x).passed
    (True, False)
    >>> round(taylor_test(f, np.cos, x).observed_order)
    2
    """
    ns = infer_number_system(x)
    xs = ns.asarray(x)
    flat = xs.reshape(-1)
    _require_finite("x", ns, flat, "Pass a point where f is defined.")
    v = _direction(direction, flat.size)
    scale = 1 + float(np.max(np.abs(ns.to_float(flat))))
    hs = _steps(steps) if steps is not None else _default_steps(scale, ns)
    with ns.context():
        g = ns.asarray(np.asarray(grad(xs)).reshape(-1))
        v_ns = ns.asarray(v)
        vg = np.sum(v_ns * g)
    _require_finite("grad(x)", ns, g, "The analytic gradient overflows or divides by "
                    "zero at x: fix it before testing its order.")
    f0 = call(f, xs, ns)
    _require_finite("f(x)", ns, np.array([f0], dtype=object), "f is not finite at x: "
                    "move x into the domain of f.")
    noise = _measured_noise(f, xs, ns)
    underflow = _underflow(ns)
    rem, zeroth, floor, signed = [], [], [], []
    for k, h in enumerate(hs):
        with ns.context():
            # h·v formed in the system: h·v rounded in float64 would move x by 2^-53·h
            # off the line, an O(h) error the h²-free remainder would read as e·h
            fh = call(f, (flat + ns.scalar(h) * v_ns).reshape(xs.shape), ns)
            signed.append(ns.to_error_float(fh - f0 - ns.scalar(h) * vg)[()])
            rem.append(abs(signed[-1]))
            zeroth.append(ns.magnitude(fh - f0)[()])
        # f(x) and f(x + hv) round by u·|f| each, and by half the smallest subnormal each
        # (absolute) in the subnormal range, where u·|f| falls below the grid of values
        floor.append(max(ns.unit_roundoff * (ns.magnitude(f0) + ns.magnitude(fh))[()]
                         + underflow, NOISE_FLOOR * noise))
        if steps is None and k + 1 >= STEP_COUNT and _at_floor(rem, floor):
            hs = hs[:k + 1]
            break
    return _assemble(hs, np.array(signed), np.array(zeroth), np.array(floor),
                     as_float(ns, vg), ns.name, noise_limited=noise > 0)


def _measured_noise(f: Callable[[Any], Any], xs: np.ndarray, ns: NumberSystem) -> float:
    """σ of one evaluation of f near x where it persists at the probe's fine spacing
    (`probes.noise_probe`, `decisions.persistent_above`), else 0.

    The floor ``u·(|f(x)| + |f(x + hv)|)`` assumes f accurate to its own rounding; an f
    whose terms cancel (its value far below them) or that computes below its system's
    precision rounds by more, and remainders at that level are noise with no order: read
    as orders they failed correct gradients (a cancelling f: eliminated order 0.2-1; a
    noisy one: below 0). Fourth differences that fall with the spacing are curvature,
    not noise; noise within ``ROUNDING_NOISE·u·|f|`` is rounding, which the floor holds."""
    try:
        with np.errstate(all="ignore"):  # (an f not finite there gives σ = NaN: no noise)
            probe = noise_probe(f, xs, ns)
    except (TypeError, ValueError, ArithmeticError):  # f refuses the probe's points
        return 0.0
    # a few u·|f| is rounding the floor's FLOOR_FACTOR already covers; beyond
    # ROUNDING_NOISE of it the noise is f's own (as for the check's references)
    return float(probe.sigma) if persistent_above(probe, ROUNDING_NOISE * probe.expected) \
        else 0.0


def _require_finite(what: str, ns: Any, values: np.ndarray, fix: str) -> None:
    """A Taylor test needs finite x, f(x) and grad(x): with NaN every remainder is NaN,
    and NaN never compares below a threshold, so the test would have no evidence at all."""
    bad = ~np.isfinite(np.real(ns.to_float(values)).astype(float))
    if bad.any():
        raise ValueError(f"`{what}` must be finite for a Taylor test; it is not at "
                         f"{int(bad.sum())} of {bad.size} entries (first at flat index "
                         f"{int(np.flatnonzero(bad)[0])}). {fix}")


def _default_steps(scale: float, ns: NumberSystem) -> np.ndarray:
    """``FIRST_STEP·scale`` halved down to ``u·scale`` (the loop stops at the floor), in
    the system's error_dtype so that steps below the float range stay nonzero."""
    count = STEP_COUNT + max(0, int(np.ceil(np.log2(FIRST_STEP) - ns.log2_unit_roundoff)))
    wide = ns.error_dtype.type
    return wide(FIRST_STEP) * wide(scale) * np.exp2(-np.arange(count, dtype=ns.error_dtype))


def _at_floor(rem: list[float], floor: list[float]) -> bool:
    """Whether the last ``FLOOR_RUN`` remainders are all within the floor's band."""
    last = slice(-FLOOR_RUN, None)
    return len(rem) >= FLOOR_RUN and all(
        r <= BAND * fl for r, fl in zip(rem[last], floor[last]))


def _direction(direction: Any, n: int) -> np.ndarray:
    if direction is None:
        return random_direction(n, salt=3)
    v = np.asarray(direction, dtype=float).reshape(-1)
    if v.size != n or not np.all(np.isfinite(v)) or not np.any(v):
        raise ValueError(f"`direction` must be a finite non-zero array with {n} entries "
                         f"(one per entry of x); got shape {np.shape(direction)}.")
    return v / np.linalg.norm(v)


def _steps(steps: Sequence[float]) -> np.ndarray:
    hs = np.asarray(steps, dtype=float)
    if hs.ndim != 1 or hs.size < 3 or np.any(hs <= 0) or np.any(np.diff(hs) >= 0):
        raise ValueError(f"`steps` must be at least 3 positive, strictly decreasing "
                         f"numbers; got {steps!r}.")
    return hs


def _assemble(hs: np.ndarray, signed: np.ndarray, zeroth: np.ndarray, floor: np.ndarray,
              vg: float, numbers: str, *, noise_limited: bool = False) -> TaylorReport:
    rem = np.abs(signed)
    if not np.isfinite(rem).any():
        raise ValueError("f is not finite at any step x + h·v of the Taylor test (it "
                         f"overflows or leaves its domain for h from {hs[0]:.3g} down to "
                         f"{hs[-1]:.3g}); pass smaller `steps`.")
    usable = rem > BAND * floor
    orders, observed, count = orders_of(hs, rem, usable)
    # the h² term eliminated between consecutive steps (module docstring): D_k, its
    # rounding bound q²·floor_{k+1} + floor_k, and the error term it implies per step
    q = hs[:-1] / hs[1:]
    eliminated = np.abs(q ** 2 * signed[1:] - signed[:-1])
    e_floor = q ** 2 * floor[1:] + floor[:-1]
    e_usable = eliminated > BAND * e_floor
    e_orders, e_observed, e_count = orders_of(hs[:-1], eliminated, e_usable)
    resolution = resolution_of(hs, eliminated, e_floor, e_usable, q)
    relative = resolution / abs(vg) if vg != 0 else float("inf")
    if e_count >= MIN_ORDERS:
        # a pass says no error above the resolution: no verdict if that is over 10%
        # (float32 values in the subnormal range: D of order 6.7 and resolution 190%)
        passed = e_observed >= ELIMINATED_PASS_ORDER
        decided = not passed or relative <= MAX_RESOLUTION
    else:
        # too few orders of D to read: the D's within their band bound |e| by
        # `resolution`; a pass means no error above it: a verdict only if that is small,
        # not at a floor of measured noise (σ from a few fourth differences is no bound)
        # and not against a lone order of D that points to an error
        thin = noise_limited or (e_count > 0 and e_observed < ELIMINATED_PASS_ORDER)
        passed, decided = True, relative <= MAX_RESOLUTION and not thin
        if count >= ASYMPTOTIC and near_one(orders) and not noise_limited:
            # a gross error (e·h above c·h²) shows in r itself, whose rounding bound is a
            # fifth of D's: order 1 there fails where D's band has left nothing to read;
            # three orders, since two at the largest steps can sit near 1 by an h³ term
            # (0.69, 1.36 for a float32 error a tenth of the resolution)
            passed, decided = False, True
    implied = (error_term(hs, eliminated, q)[e_usable] if e_usable.any()
               else rem[1:][usable[1:]] / hs[1:][usable[1:]])
    if not passed and pre_asymptotic(hs, e_floor, e_usable, q, implied):
        passed, decided = True, False
    return TaylorReport(hs, rem, zeroth, orders, observed, bool(passed), vg, numbers,
                        eliminated, e_orders, e_observed, bool(decided), float(resolution),
                        float(relative))
