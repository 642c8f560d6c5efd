"""The numerical reference: computing it (generic path or an adapter's provider), with
its fallbacks, and merging a better one into it (`comparison` sets it against the
analytic gradient).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from precision_nn.derivatives import derivative, gradient
from precision_nn.gradcheck import probes
from precision_nn.gradcheck.decisions import persistent_above
from precision_nn.gradcheck.setup import Setup
from precision_nn.numbers import NumberSystem

__all__ = [
    "METHOD_NAMES",
    "NoReference",
    "Reference",
    "limit_reference",
    "noisy_reference",
    "prefer",
    "reference",
    "reference_method",
    "robust_reference",
    "with_noise",
]

METHOD_NAMES = {"complex_step": "complex step", "richardson": "Richardson extrapolation",
          "central": "central differences", "forward": "forward differences",
          "backward": "backward differences"}


@dataclass(frozen=True)
class Reference:
    value: np.ndarray  # flat, in `ns`
    error: np.ndarray  # flat float
    ns: NumberSystem
    name: str
    method: str
    evaluations: int
    h: float | None = None
    steps: np.ndarray | None = None  # flat float: the step used per coordinate
    # flat bool: where the reference alone said "fails" and no independent estimate could
    # confirm or refute it (its error bar was widened to the disagreement): undecidable
    unresolved: np.ndarray | None = None
    # whether `error` is the generic complex step's bar, whose rounding part is norm-wise
    # (`complex_step.shared_rounding`): `comparison.compare` then forms its entry-sized counterpart
    shared_rounding: bool = False
    # the norm-wise part of a widening for f's noise (`with_noise`: relative noise times
    # the largest entry), which, like the shared rounding, assumes the entries cancel
    # terms as large as the largest: `comparison.compare` leaves it out of the entry part
    shared_noise: float = 0.0
    # flat bool: coordinates recomputed from a first step below a kink (`refine`)
    restarted: np.ndarray | None = None


def reference_method(method: str, probe: Any) -> str:
    if method in ("auto", "complex_step"):
        return "complex_step" if probe is not None and probe.safe else "richardson"
    return method


def reference(setup: Setup, method: str, h: Any, ns: NumberSystem) -> Reference:
    """The numerical gradient of ``setup.f`` at ``setup.x`` in `ns` by `method`."""
    est = _provided(setup, method, h, ns)
    # an adapter's provider may compute in another system than the check's (it says which)
    system = getattr(setup.provider, "numbers_name", None) if est is not None else None
    generic = est is None
    if est is None:
        est = gradient(setup.f, ns.asarray(setup.x), method=method, h=h, numbers=ns)
    value = np.ravel(np.asarray(est.value), order=setup.order)
    if ns.is_complex or value.dtype.kind == "c":
        value = ns.real().asarray(np.real(value) if value.dtype != object else
                                  ns.real_part(value))
    error = np.ravel(np.asarray(est.error, dtype=float), order=setup.order)
    steps = np.ravel(np.broadcast_to(np.asarray(est.h, dtype=float), np.shape(est.error)),
                     order=setup.order)
    used = None if h is None else float(np.max(steps))
    step = "" if used is None else f" at h = {used:.6g}"
    # the derivative may have replaced the method itself (a complex step that disagreed
    # with f's real arithmetic or overflowed becomes Richardson): name what was used
    actual = est.method if est.method in METHOD_NAMES else method
    if system is None:  # a provider's faster system, if it used one
        system = (ns.real() if est.numbers is None else est.numbers.real()).name
    name = f"{METHOD_NAMES[actual]}{step} in {system}"
    if system != ns.real().name:
        name += f" for {ns.real().name}"
    if actual != method:
        name += f" (the {METHOD_NAMES[method]} was called off: {_fallback_reason(est.note)})"
    return Reference(value, error, ns.real(), name, actual, int(est.evaluations), used, steps,
                     shared_rounding=generic and actual == "complex_step")


def _fallback_reason(note: str) -> str:
    """The part of a derivative's note that says why its method was replaced."""
    reasons = [part.strip() for part in note.split(";") if "fell back" in part
               or "disagree" in part or "not finite" in part]
    return "; ".join(reasons) if reasons else note


# where a method cannot give a finite gradient (overflow, e.g. exp of inputs near 700 in
# float64, or an error raised inside f at complex arguments), the next one is tried
FALLBACKS = {"complex_step": ("richardson", "central"), "richardson": ("central",),
             "central": ("richardson",), "forward": ("central",), "backward": ("central",)}
# what a method may raise when f overflows or cannot run on its points
_NUMERICAL_FAILURES = (ArithmeticError, ValueError, TypeError)


def robust_reference(setup: Setup, method: str, h: Any, ns: NumberSystem) -> Reference:
    """`reference`, falling back along `FALLBACKS` (automatic steps only) at coordinates
    where `method` gives no finite value or error bar, or for all when it raises; the
    reference's name says which method was replaced, where and why. Coordinates where
    no method gives a finite value keep a NaN value (the findings say f is not finite)."""
    try:
        ref, why = reference(setup, method, h, ns), ""
    except _NUMERICAL_FAILURES as exc:
        ref, why = None, f"{METHOD_NAMES[method]} failed: {type(exc).__name__}: {exc}"
    original, used = ref, []
    for alt in FALLBACKS[method] if h is None else ():
        bad = None if ref is None else ~_finite(ref)
        if bad is not None and not bad.any():
            break
        if bad is not None and not why:
            why = _why_not_finite(ref, bad)
        try:
            other = reference(setup, alt, None, ns)
        except _NUMERICAL_FAILURES:
            continue
        if not _finite(other).any():
            continue
        ref = other if ref is None else _patch(ref, other, bad)
        used.append(METHOD_NAMES[alt])
    if h is None and (ref is None or not _finite(ref).all()):
        ref, why = _per_coordinate(setup, method, ns, ref, why)
    if ref is None:
        raise NoReference(f"no numerical reference could be computed at x ({why})")
    base = original.name if original is not None else METHOD_NAMES[method]
    if used:
        ref = replace(ref, name=f"{base} ({why}; {' then '.join(used)} instead there)")
    elif why:
        ref = replace(ref, name=f"{base} ({why}; no other method gave a finite value there)")
    return ref


def _why_not_finite(ref: Reference, bad: np.ndarray) -> str:
    """Why `ref` is no reference at `bad`: no finite value there, or a finite value whose
    error bar is infinite (the complex step of exp at 709 in float64 is right, but its
    error estimate overflows): a value is no evidence without its bar, and the name
    must not say the method gave no value."""
    value = np.isfinite(np.real(ref.ns.to_float(ref.value)))
    parts = [f"no finite value at {int(k)} coordinate(s)" if unbounded is False else
             f"a finite value with an infinite error bar (no bound on it; e.g. an error "
             f"estimate that overflows near the largest {ref.ns.name}) at {int(k)} "
             "coordinate(s)"
             for unbounded, k in ((False, np.sum(bad & ~value)), (True, np.sum(bad & value)))
             if k]
    return f"{METHOD_NAMES[ref.method]} gave {' and '.join(parts)}"


def _per_coordinate(setup: Setup, method: str, ns: NumberSystem, ref: Reference | None,
                    why: str) -> tuple[Reference | None, str]:
    """`ref` completed one coordinate at a time where no whole-gradient method gave a
    finite value: a derivative routine that raises when f is not finite at one of its
    points (a step of sqrt at x = 1e-300 that crosses 0) would otherwise discard every
    other coordinate. Each coordinate is a 1-D derivative along its own axis, by `method`
    and then its fallbacks (the real ones); where none is finite the value stays NaN
    (undecidable there)."""
    bad = np.ones(setup.flat.size, dtype=bool) if ref is None else ~_finite(ref)
    flat = ns.asarray(setup.flat)
    value = flat.copy() if ref is None else ref.value.copy()
    error = np.full(flat.size, np.inf) if ref is None else ref.error.copy()
    if ref is None:
        value[:] = ns.asarray([np.nan])[0]
    done = 0
    for i in np.flatnonzero(bad):
        def along(t: Any, i: int = int(i)) -> Any:
            point = flat.copy()
            point[i] = t
            return setup.at(point)

        # real methods only: the point is built by assignment into a real array, where a
        # complex argument would lose its imaginary part
        for m in (k for k in (method, *FALLBACKS[method]) if k != "complex_step"):
            try:
                est = derivative(along, flat[i], method=m, numbers=ns)
            except _NUMERICAL_FAILURES:
                continue
            v = probes.as_float(ns, est.value)
            if np.isfinite(v) and np.isfinite(float(est.error)):
                value[i], error[i] = est.value, float(est.error)
                done += 1
                break
    if done == 0:
        return ref, why
    note = (f"{why}; " if why else "") + (f"coordinate by coordinate at {done} of "
                                          f"{int(bad.sum())} coordinate(s)")
    if ref is None:
        return Reference(value, error, ns.real(), METHOD_NAMES[method], method, 0), note
    return replace(ref, value=value, error=error, steps=None), note


class NoReference(ValueError):
    """No method gave a reference at x (the check reports every coordinate undecidable)."""


def _finite(ref: Reference) -> np.ndarray:
    value = np.real(ref.ns.to_float(ref.value))
    return np.isfinite(value) & ~np.isinf(ref.error)


def _patch(ref: Reference, other: Reference, bad: np.ndarray) -> Reference:
    """`ref` with `other`'s values and error bars at `bad`."""
    if bad.all():
        return replace(other, error=np.where(np.isnan(other.error), np.inf, other.error))
    value = ref.value.copy()
    value[bad] = other.ns.asarray(other.value)[bad]
    # a fallback without an error estimate there decides nothing (its value may be far
    # off at the edge of the range where the first method failed)
    error = np.where(bad, np.where(np.isnan(other.error), np.inf, other.error), ref.error)
    steps = None if ref.steps is None or other.steps is None else \
        np.where(bad, other.steps, ref.steps)
    return replace(ref, value=value, error=error, steps=steps)


def _provided(setup: Setup, method: str, h: Any, ns: NumberSystem) -> Any:
    """The adapter's reference for `method` in `ns` (None: use the generic path, also
    when the provider cannot do this method)."""
    if setup.provider is None:
        return None
    try:
        est = setup.provider(method, ns, h)
    except NotImplementedError:
        return None
    setup.f.provided += int(est.evaluations)  # the provider's own loss evaluations
    return est


def noisy_reference(setup: Setup, noise: Any) -> Reference:
    """Central differences at steps fitted to the measured noise σ of `f`.

    With noise σ and a third derivative of the size ``|f|/s³`` the central difference
    errs by ``h²·|f|/(6s³) + σ/h``, smallest near ``h = (3σ/|f|)^(1/3)·s``; the error
    estimate is the method's own (truncation from h and 2h) plus ``σ/h`` for the noise,
    which the number system's unit roundoff does not account for.
    """
    ns = setup.ns
    x = np.abs(np.real(ns.to_float(setup.x)))
    # |f| or, where f cancels, the size of its terms (`decisions.with_terms`): a third
    # derivative of size |f|/s³ with |f| ~ 0 would put the step far below the optimum
    f_scale = max(max(noise.expected, noise.terms) / ns.unit_roundoff, 1e-300)
    steps = (3 * noise.sigma / f_scale) ** (1 / 3) * (1 + x)
    ref = reference(setup, "central", steps, ns)
    noise_error = noise.sigma / np.ravel(steps, order=setup.order)
    return replace(ref, error=ref.error + noise_error, h=None,
                   name=f"central differences at steps fitted to the measured noise of f "
                   f"(σ = {noise.sigma:.2g}, h ≈ {float(np.median(steps)):.2g}) in {ns.name}")


def limit_reference(setup: Setup, complex_probe: Any) -> Reference:
    """The h → 0 limit: the auto reference (complex step if safe, else Richardson)."""
    if complex_probe is None:
        complex_probe = probes.complex_probe(setup.f, setup.x, setup.ns, requested=False)
    return robust_reference(setup, reference_method("auto", complex_probe), None, setup.ns)


# how much a finite-difference method amplifies noise σ of f, in units of σ/h (h its
# smallest step): a central difference (f₊ - f₋)/2h carries √2·σ/2h ≈ 0.7·σ/h; Richardson's
# tableau over steps h·2^k weights its smallest-step difference by Π 4^j/(4^j - 1) ≈ 1.45
# and the others less, in all below 2·σ/h (ratio 2, Ridders' tableau)
NOISE_GAIN = {"central": 1.0, "forward": 1.5, "backward": 1.5, "richardson": 2.0}


# rounding alone leaves f noisier than u·|f| by a small factor (a sum of a few terms
# rounds each one); beyond this many times u·|f| the noise is f's own
ROUNDING_NOISE = 8.0


def with_noise(ref: Reference, noise: Any) -> Reference:
    """`ref` (a finite-difference reference) with ``gain·σ/h`` added to its error bars, σ
    the measured noise of f in the reference's system (nothing when it was not measured
    or is no larger than rounding, which the method's own estimate already holds)."""
    sigma = _sigma_in(noise, ref.ns.name)
    rounding = max(noise.expected, noise.terms) if noise is not None else 0.0
    if sigma > 0 and ref.method == "complex_step" and rounding > 0:
        # noise proportional to f (a summation order that changes per call) multiplies
        # Im f(x + i·t·v) too: the derivative carries the same relative noise σ/|f|, |f|
        # the size of f's terms where f cancels (σ/u·|f| would then be ~1/u, while the
        # imaginary parts carry no cancellation of f's value)
        n = np.abs(np.real(ref.ns.to_float(ref.value))).astype(float)
        relative = sigma * ref.ns.unit_roundoff / rounding
        shared = relative * float(np.nanmax(n))
        return replace(ref, error=ref.error + relative * n + shared,
                       shared_noise=ref.shared_noise + shared)
    gain = NOISE_GAIN.get(ref.method)
    if sigma == 0 or ref.steps is None or gain is None:
        return ref
    return replace(ref, error=ref.error + gain * sigma / np.maximum(ref.steps, 1e-300))


def _sigma_in(noise: Any, name: str) -> float:
    """The measured noise of f in system `name` where it exceeds that system's rounding
    u·|f| (the methods' own error estimates hold rounding already), else 0."""
    if noise is None:
        return 0.0
    if noise.numbers == name:
        # noise persists at the fine spacing; fourth differences that fall with it are
        # f's curvature (a pole near x: 1/x at 1e-6), which the methods' own truncation
        # estimates hold, not noise to add to every bar
        return float(noise.sigma) if persistent_above(noise, ROUNDING_NOISE *
                                                      noise.expected) else 0.0
    if noise.higher == name and noise.higher_sigma is not None:
        return float(noise.higher_sigma) if (noise.higher_ratio or 0) > ROUNDING_NOISE \
            else 0.0
    return 0.0


def prefer(original: Reference, candidate: Reference) -> Reference | None:
    """`candidate` wherever its error bar is not wider than `original`'s (None: nowhere).

    A re-evaluation must not replace a reference that knew its value better, nor widen
    the tolerance with its own uncertainty. The values are merged in the candidate's
    system (a wider one holds the narrower one's numbers exactly).
    """
    old = np.where(np.isfinite(original.error), original.error, np.inf)
    take = np.isfinite(candidate.error) & (candidate.error <= old)
    if not take.any():
        return None
    if take.all():
        return candidate
    ns = candidate.ns
    value = np.where(take, candidate.value, ns.asarray(original.value))
    error = np.where(take, candidate.error, original.error)
    name = (f"{candidate.name} at {int(take.sum())} of {take.size} coordinates, "
            f"{original.name} at the others (whose error bars were narrower)")
    return replace(candidate, value=ns.asarray(value), error=error, name=name,
                   shared_rounding=False)
