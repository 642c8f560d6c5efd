"""`taylor_test`: the gradient is right when the first-order Taylor remainder is O(h²).

For a twice-differentiable ``f`` and the true gradient ``g``,

    r(h) = |f(x + h·v) - f(x) - h·vᵀg| = h²·|vᵀ∇²f v|/2 + O(h³),

so halving ``h`` divides ``r`` by 4: the observed order ``log2(r(h)/r(h/2))`` is 2. A wrong
gradient leaves a term ``h·|vᵀ(g - ĝ)|`` and the order drops to 1. The test needs no
tolerance and no step choice. Orders measured where the remainder is within
``FLOOR_FACTOR`` times the rounding floor ``u·(|f(x)| + |f(x + hv)|)`` (the rounding of
the two values of f whose difference the remainder is) are not used. Where f rounds by
more (its terms cancel, or it computes below its system's precision) the floor is at
least ``NOISE_FLOOR`` times the noise σ measured near x (`_measured_noise`), and at such
a floor only the h²-free remainders below can decide: too few of them is undecided.

How far the default steps go. A relative gradient error ε adds ``ε·h·|vᵀg|`` to the
remainder ``h²·c`` (``c = |vᵀ∇²f v|/2``); it pulls the order from 2 towards 1 once it is a
fair share of ``h²·c``, i.e. below ``h ≈ ε·|vᵀg|/c``, and it can be seen as long as it
stays above the floor. Steps that stop early (``0.1·s·2^-11``, s = 1 + max|x|) hide every
ε below about ``10^-4``. So the default steps keep halving from ``0.1·s`` until the
remainder has sat on the floor for ``FLOOR_RUN`` steps in a row (for a correct gradient
near ``h ≈ √(u·|f|/c)``, ``≈ √u·s``: about 20 halvings in float64, 45 in decimal:30), or
h falls below ``u·s`` (x + h·v rounds to x), and the verdict reads the last usable orders:
an error ε is detected whenever ``ε·h·|vᵀg|`` exceeds the floor (times ``FLOOR_FACTOR``)
at a step where it is at least a few percent of ``h²·c``.

The order of ``r`` itself moves from 2 to 1 only where ``ε·h·|vᵀg|`` is a fair share of
``h²·c``, which for small ε happens only near the floor. So the test also eliminates the
h² term between consecutive steps (ratio q = h_k/h_{k+1}): with signed remainders
``R(h) = e·h + c·h² + d·h³ + …`` (``e = vᵀ(∇f - g)``),

    D_k = q²·R(h_{k+1}) - R(h_k) = e·h_{k+1}·(q² - q) - d·h_{k+1}³·q²·(q - 1) + …,

which shrinks as h³ for a correct gradient and as h for a wrong one, with rounding at most
``q²·floor_{k+1} + floor_k``. Its orders, judged on the steps where ``|D_k|`` exceeds
``FLOOR_FACTOR`` times that, must stay above ``ELIMINATED_PASS_ORDER`` (midway between 1
and 3): the error is seen once ``e·h`` exceeds both ``d·h³`` and the floor, i.e. whenever
``ε·h·|vᵀg|`` exceeds the floor (times ``FLOOR_FACTOR``) at a step where ``d·h³`` is smaller.

When the test cannot decide. The remainder is usable only between ``FLOOR_FACTOR·floor``
and the top step's ``c·(0.1·s)²``; an order read from two usable remainders is off by at
most about ``(δ_k/r_k + δ_{k+1}/r_{k+1})/ln 2`` for rounding noise ``δ`` of a few floors,
i.e. a few hundredths, but fewer than ``MIN_ORDERS`` orders cannot tell the asymptotic
order from a pre-asymptotic one. In float32 (``u ≈ 6e-8``) a loss with a small curvature
along ``v`` leaves only one or two usable remainders above ``100·floor`` (e.g. 3e-4, 8e-5
over a floor of 2e-7) before rounding takes over. Such a report has ``decided = False``:
it is not a failure (``passed`` stays True, as when every remainder is at the floor) but
says that no verdict was reached; use a wider number system for this check.

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
from precision_nn.numbers import NumberSystem, infer_number_system

__all__ = ["TaylorReport", "taylor_test"]

FIRST_STEP = 0.1  # relative to 1 + max|x|: large enough that h² terms dominate rounding
STEP_COUNT = 12  # the default steps are at least these halvings: 0.1 → 5e-5 relative
FLOOR_RUN = 3  # ... and then go on until this many remainders in a row are at the floor
FLOOR_FACTOR = 100.0  # remainders within 100× the rounding floor carry no order
PASS_ORDER = 1.8  # an observed order at least this close to 2 passes
MIN_ORDERS = 2  # at least this many usable halvings are needed for a verdict
ASYMPTOTIC = 3  # the observed order is the median of the last this-many usable orders
ELIMINATED_PASS_ORDER = 2.0  # the h²-free remainder shrinks as h³ (right) or h (wrong)
# the floor is at least this many times the measured noise σ of one evaluation (a
# remainder is a difference of two noisy values: √2·σ, counted with room)
NOISE_FLOOR = 2.0
# a failing order counts only if the error it needs is within this factor of what the
# floor of the smallest steps allows (`_pre_asymptotic`)
FLOOR_EVIDENCE = 10.0


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
        Order ≈ 2 (≥ 1.8) over at least two halvings, or every remainder at the
        rounding floor (a gradient exact to rounding of a near-linear ``f``); and the
        h²-free remainder not of order ≈ 1 (below 2) over two usable steps. True also
        when the test cannot decide (see ``decided``): no evidence of an error is no
        failure.
    directional_derivative : float
        ``vᵀg``.
    numbers : str
        The number system.
    decided : bool
        False when some remainders lie above the rounding floor's band but fewer than
        two orders can be read from them (the h² regime is shorter than two halvings,
        common in float32): the test reached no verdict, rather than failing.
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

    def __str__(self) -> str:
        verdict = ("UNDECIDED (too few steps above the floor of rounding or f's measured "
                   "noise)" if not self.decided
                   else "PASSED" if self.passed else "FAILED")
        lines = [(f"Taylor test {verdict}: observed order {self.observed_order:.3g} "
                 f"(2 for a correct gradient, 1 for a wrong one), vᵀg = "
                 f"{self.directional_derivative:.6g}, {self.numbers}")]
        if np.isfinite(self.eliminated_order):
            lines.append(f"  with the h² term eliminated between steps: order "
                         f"{self.eliminated_order:.3g} (3 or more for a correct gradient, "
                         "1 for a wrong one)")
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
    rem, zeroth, floor, signed = [], [], [], []
    for k, h in enumerate(hs):
        with ns.context():
            # h·v formed in the system: h·v rounded in float64 would move x by 2^-53·h
            # off the line, an O(h) error the h²-free remainder would read as e·h
            fh = call(f, (flat + ns.scalar(h) * v_ns).reshape(xs.shape), ns)
            signed.append(ns.to_error_float(fh - f0 - ns.scalar(h) * vg)[()])
            rem.append(abs(signed[-1]))
            zeroth.append(ns.magnitude(fh - f0)[()])
        floor.append(max(ns.unit_roundoff * (ns.magnitude(f0) + ns.magnitude(fh))[()],
                         NOISE_FLOOR * noise))
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


def _pre_asymptotic(hs: np.ndarray, rem: np.ndarray, floor: np.ndarray, orders: np.ndarray,
                    eliminated: np.ndarray, e_orders: np.ndarray, q: np.ndarray) -> bool:
    """Whether a failing order comes from steps above f's length scale, not from the
    gradient: the remainders end at the floor from some step h_f on (at least
    ``FLOOR_RUN`` of them), which bounds the gradient's error term by
    ``|e| <= 2·FLOOR_FACTOR·floor_f/h_f`` (``|e·h| <= r + c·h²`` at two consecutive floor
    steps), while the failing orders need an e ``FLOOR_EVIDENCE`` times larger (``r/h`` at
    the last usable step, ``D/(h·(q² − q))`` for the h²-free remainder). A log-sum-exp of
    huge logits is piecewise linear at steps of 1e5 (order 1) and exactly linear below
    its length scale (remainders at the floor): its correct gradient failed."""
    at = rem <= FLOOR_FACTOR * floor
    if at.size < FLOOR_RUN or not at[-FLOOR_RUN:].all():
        return False
    first = at.size - int(np.argmin(at[::-1])) if not at.all() else 0
    if first == 0:
        return False
    bound = 2 * FLOOR_FACTOR * floor[first] / hs[first]
    implied = []
    for k in np.flatnonzero(~np.isnan(orders)):
        implied.append(rem[k + 1] / hs[k + 1])
    for k in np.flatnonzero(~np.isnan(e_orders)):
        implied.append(eliminated[k + 1] / (hs[k + 2] * (q[k + 1] ** 2 - q[k + 1])))
    return bool(implied) and min(implied[-ASYMPTOTIC:]) > FLOOR_EVIDENCE * bound


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
        r <= FLOOR_FACTOR * fl for r, fl in zip(rem[last], floor[last]))


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


def _orders(hs: np.ndarray, values: np.ndarray, usable: np.ndarray
            ) -> tuple[np.ndarray, float, int]:
    """Orders between consecutive usable values, the median of the last ASYMPTOTIC of
    them (the asymptotic order is that of the smallest usable steps), and their count."""
    with np.errstate(divide="ignore", invalid="ignore"):
        orders = np.log(values[:-1] / values[1:]) / np.log(hs[:-1] / hs[1:])
    orders = np.where(usable[:-1] & usable[1:], orders, np.nan)
    good = orders[~np.isnan(orders)]
    observed = float(np.median(good[-ASYMPTOTIC:])) if good.size else float("nan")
    return orders, observed, int(good.size)


def _assemble(hs: np.ndarray, signed: np.ndarray, zeroth: np.ndarray, floor: np.ndarray,
              vg: float, numbers: str, *, noise_limited: bool = False) -> TaylorReport:
    rem = np.abs(signed)
    if not np.isfinite(rem).any():
        raise ValueError("f is not finite at any step x + h·v of the Taylor test (it "
                         f"overflows or leaves its domain for h from {hs[0]:.3g} down to "
                         f"{hs[-1]:.3g}); pass smaller `steps`.")
    usable = rem > FLOOR_FACTOR * floor
    orders, observed, count = _orders(hs, rem, usable)
    # fewer than MIN_ORDERS orders above the floor (but some remainders there): no verdict;
    # every remainder at a floor set by f's measured noise: none either (a gradient error
    # up to 100·σ/h passes unseen there, while at the rounding floor that bound is tight)
    decided = count >= MIN_ORDERS or not (usable.any() or noise_limited)
    passed = observed >= PASS_ORDER if count >= MIN_ORDERS else True
    # the h² term eliminated between consecutive steps (module docstring)
    q = hs[:-1] / hs[1:]
    eliminated = np.abs(q ** 2 * signed[1:] - signed[:-1])
    e_usable = eliminated > FLOOR_FACTOR * (q ** 2 * floor[1:] + floor[:-1])
    e_orders, e_observed, e_count = _orders(hs[:-1], eliminated, e_usable)
    if e_count >= MIN_ORDERS and e_observed < ELIMINATED_PASS_ORDER:
        passed, decided = False, True
    if not passed and _pre_asymptotic(hs, rem, floor, orders, eliminated, e_orders, q):
        passed, decided = True, False
    elif noise_limited and e_count < MIN_ORDERS:
        # at a floor of f's measured noise the order of r itself stays 2 down to that
        # floor whatever a small gradient error adds (c·h² hides e·h there): only the
        # h²-free remainders can decide, and too few of them rise above the noise
        decided = False
    return TaylorReport(hs, rem, zeroth, orders, observed, bool(passed), vg, numbers,
                        eliminated, e_orders, e_observed, bool(decided))
