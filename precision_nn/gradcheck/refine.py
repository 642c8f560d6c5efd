"""The refinement loop: the follow-up probes a comparison calls for, and the better
reference they lead to.

The noise of `f` is measured first when something fails or cannot be decided; then an
explicit step gets its h → 0 limit beside it, a noisy `f` a noise-fitted reference,
otherwise a wider system (when `f` is more precise there: `widening`) or a better
method; finally one-sided scans at the suspect coordinates find kinks, below which
Richardson restarts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from precision_nn.derivatives import derivative
from precision_nn.gradcheck import probes
from precision_nn.gradcheck.comparison import Compared, compare, hinges
from precision_nn.gradcheck.decisions import (
    WIDE_EXPONENT,
    cancellation_only,
    cancels,
    is_lossy,
    kink_threshold,
    smooth_below,
    suspects,
    with_terms,
)
from precision_nn.gradcheck.evidence import Probes, StepProbe
from precision_nn.gradcheck.measurements import (
    kink_scan,
    noise_near,
    with_gradient_noise,
)
from precision_nn.gradcheck.reference import (
    Reference,
    limit_reference,
    noisy_reference,
    prefer,
    reference,
    with_noise,
)
from precision_nn.gradcheck.setup import STEP_METHODS, Setup
from precision_nn.gradcheck.tolerance import REFERENCE_SAFETY
from precision_nn.gradcheck.widening import widen, widen_further
from precision_nn.numbers import NumberSystem

__all__ = ["follow_up"]


def follow_up(setup: Setup, analytic: np.ndarray, compared: Compared, method: str, h: Any,
              complex_probe: Any) -> Compared:
    """Noise, h → 0 limit, wider system and kink probes, as the comparison requires.

    The noise of `f` is measured first: when it exceeds what the number system allows,
    every later reference (the h → 0 limit, a replacement for a reference whose error
    bar is too wide) uses central differences at steps fitted to the measured noise.
    A comparison that passes only if some entries cancel larger terms
    (`cancellation_only`) is refined in the same way: a reference from a wider system
    and the noise of the analytic gradient decide it where they can.
    """
    noise = step_probe = kink = None
    doubtful = hinges(compared, setup.ns.unit_roundoff) or compared.data.failing.any()
    if not doubtful and cancellation_only(compared.data).any():
        # the cheap test first: the analytic gradient's noise near x (a few calls of
        # grad) shows most cancellation; only what it leaves needs the probes of f
        setup = with_gradient_noise(setup)
        compared = compare(setup, analytic, compared.reference)
    if doubtful or cancellation_only(compared.data).any():
        noise = with_terms(noise_near(setup), compared.data.reference,
                           np.real(setup.ns.to_float(setup.flat)), setup.ns.unit_roundoff)
        setup = with_gradient_noise(setup)
        ref = compared.reference
        # f noisier than rounding: the reference's error bar must say so
        compared = compare(setup, analytic,
                           with_noise(ref, noise))
        compared, step_probe, noise = _settle_reference(
            setup, analytic, compared, method, h, complex_probe, noise)
    suspect = suspects(replace(compared.data, probes=Probes(step=step_probe)))
    if suspect.any():
        kink = kink_scan(setup, compared, h, suspect, 0.0 if noise is None else noise.sigma)
        if h is None:
            compared = _restart_below_kinks(setup, analytic, compared, kink)
            compared = _cross_check(setup, analytic, compared, noise)
    found = Probes(step=step_probe, noise=noise, kink=kink, complex=complex_probe,
                   gradient_noise=setup.analytic_noise,
                   unresolved=compared.reference.unresolved,
                   restarted=compared.reference.restarted)
    compared = _say_cancels(compared, noise)
    return replace(compared, data=replace(compared.data, probes=found))


def _say_cancels(compared: Compared, noise: Any) -> Compared:
    """The reference's name says so when f is noisier than ``u·|f|`` but within the
    rounding of terms of the size its gradient shows (`decisions.cancels`): that noise is
    no evidence of a lower precision, and the values cannot tell the two apart."""
    if not cancels(noise):
        return compared
    ref = compared.reference
    name = (f"{ref.name}; f's noise σ = {noise.sigma:.2g} exceeds u·|f| = "
            f"{noise.expected:.2g} but not u × the size of its terms (≥ "
            f"{noise.terms:.2g}): f cancels or computes in lower precision, undecidable "
            "which from these values")
    return replace(compared, reference=replace(ref, name=name))


def _settle_reference(setup: Setup, analytic: np.ndarray, compared: Compared, method: str,
                      h: Any, complex_probe: Any, noise: Any
                      ) -> tuple[Compared, StepProbe | None, Any]:
    """The reference that decides: an explicit step gets its h → 0 limit beside it; a
    noisy f a noise-fitted reference; otherwise a wider system, or a better method.
    Also returns the noise probe (completed by the wider measurement, if one was made).

    The noise-fitted reference replaces the original outright: the original's error bars
    assume rounding at the system's unit roundoff, which the measured noise disproves.
    """
    u = setup.ns.unit_roundoff
    lossy = is_lossy(noise)
    if method in STEP_METHODS and h is not None:
        limit = noisy_reference(setup, noise) if lossy else \
            limit_reference(setup, complex_probe)
        return compared, _step_probe(setup, analytic, compared, limit), noise
    if lossy:
        compared = compare(setup, analytic, noisy_reference(setup, noise))
        return compared, None, noise
    why = ("its error bar was too wide to decide" if hinges(compared, u)
           else "to confirm a failure beyond the conditioning of f"
           if compared.data.failing.any() else
           "some entries passed only if they cancel larger terms")
    compared, noise = widen(setup, analytic, compared, why, noise)
    compared = widen_further(setup, analytic, compared, noise)
    if hinges(compared, u) and compared.reference.method in STEP_METHODS:
        compared = _better_method(setup, analytic, compared, complex_probe, noise)
    return compared, None, noise


def _restart_below_kinks(setup: Setup, analytic: np.ndarray, compared: Compared,
                         kink: Any) -> Compared:
    """Richardson again at coordinates where f is not smooth over its first steps,
    from a first step below the non-smooth point.

    Richardson's first steps (up to 1/8 of the scale of x) may straddle ReLU kinks near
    x; its tableau then extrapolates a mixture of slopes and its error estimate can miss
    it. Below the nearest kink f is smooth again and the extrapolation is sound.
    """
    ref = compared.reference
    below = smooth_below(kink, kink_threshold(compared.data, kink.indices))
    todo = np.isfinite(below)
    if not todo.any() or ref.method != "richardson":
        return compared
    value, error = ref.value.copy(), ref.error.copy()
    restarted = np.zeros(error.shape, dtype=bool)
    restarted[kink.indices[todo]] = True
    for i, step in zip(kink.indices[todo], below[todo]):
        along, xi = _along(setup, ref.ns, int(i))
        est = derivative(along, xi, method="richardson", h=step / 2, numbers=ref.ns)
        value[i], error[i] = est.value, float(est.error)
    name = f"{ref.name}; restarted below a kink at {int(todo.sum())} coordinate(s)"
    return compare(setup, analytic, replace(ref, value=value, error=error, name=name,
                                            restarted=restarted))


def _along(setup: Setup, ns: NumberSystem, i: int) -> tuple[Callable[[Any], Any], Any]:
    """``t ↦ f(x with coordinate i set to t)`` in `ns`, and ``x_i`` (flat index in order)."""
    flat = ns.asarray(setup.flat)

    def along(t: Any) -> Any:
        point = flat.copy()
        point[i] = t
        return setup.at(point)

    return along, flat[i]


def _cross_check(setup: Setup, analytic: np.ndarray, compared: Compared,
                 noise: Any) -> Compared:
    """Richardson or the complex step against central differences at the error-model
    step, once something fails.

    Richardson trusts its tableau over steps up to 1/8 of the scale of x; where f is not
    smooth on that scale (ReLU kinks of other examples) the tableau can settle on a
    wrong value with a small error estimate. The complex step trusts f's complex
    arithmetic; an ``abs`` or a library function that loses the imaginary part where it
    is small (``log1p(exp(-|z|))`` at ``z = -15``) passes the safety probe yet leaves an
    error far beyond its error bar. Central differences at the optimal step (≈ u^(1/3))
    use only real arithmetic and a tiny neighbourhood. Where the two disagree beyond
    their error bars, the central value is kept: with its own error bar when Richardson
    (real arithmetic too, other steps) confirms it there, else with the disagreement as
    its error. (One or two batched gradients: O(n) evaluations however many fail.)

    The central error bars include the measured noise of `f` in the reference's system,
    ``σ/h``: a step below the resolution of `f` (f computing fewer digits than the
    system holds) gives differences of 0 whose own error model sees only ``u·|f|/h``.
    """
    ref = compared.reference
    if ref.method == "complex_step" and compared.data.failing.any():
        return _confirm_complex_step(setup, analytic, compared, noise)
    if ref.method != "richardson" or not compared.data.failing.any():
        return compared
    central = _try_reference(setup, "central", ref.ns, noise)
    if central is None:
        return compared
    gap = _gap(ref.ns, central, ref)
    # every coordinate, not only the failing ones: a fooled tableau may also pass a wrong
    # gradient thanks to its error bar, or pull a fitted factor off
    replace_at = gap > REFERENCE_SAFETY * (central.error + ref.error)
    if not replace_at.any():
        return compared
    value, error = ref.value.copy(), ref.error.copy()
    # the two estimates disagree by `gap`: the central value is kept, but no more trusted
    # than that disagreement (its own error estimate cannot see a kink either)
    value[replace_at] = central.value[replace_at]
    error[replace_at] = np.maximum(central.error, gap)[replace_at]
    name = (f"{ref.name}; central differences at the optimal step at "
            f"{int(replace_at.sum())} coordinate(s) where Richardson's steps were not smooth")
    # central differences may reach a kink a restart stepped below: no longer restarted
    restarted = None if ref.restarted is None else ref.restarted & ~replace_at
    return compare(setup, analytic, replace(ref, value=value, error=error, name=name,
                                            restarted=restarted))


def _confirm_complex_step(setup: Setup, analytic: np.ndarray, compared: Compared,
                          noise: Any) -> Compared:
    """A failure seen only through f's complex arithmetic is confirmed in real arithmetic.

    The complex step is exact to rounding only when f's complex evaluation is faithful;
    an ``abs`` or a special function that loses the small imaginary part (e.g.
    ``log1p(exp(-|z|))``) passes the safety probe yet errs far beyond its error bar. So
    the better of two real estimates r (central differences at the optimal step,
    Richardson; the smaller error bar) is formed at every coordinate. Where the complex
    step and r disagree beyond both error bars, r replaces it; at failing coordinates
    where the analytic gradient agrees with r within r's error bar, the complex step
    alone says the gradient is wrong, and its error bar is widened to
    ``|n - r| + err(r)``: the check then decides only what real arithmetic confirms
    (Richardson resolves ~1e-12 relative on smooth float64 functions, so bugs down to
    that size are still seen). Such a coordinate is neither passed nor failed: it is
    marked `Reference.unresolved`, and the check says it is undecidable there (real
    arithmetic cannot tell a gap seen only through complex arithmetic from a bug of
    that size; more digits can). An abs() inside a stable softplus drops terms like
    exp(-28) from Im f: 1e-13 relative, far below what the safety probe can see.
    """
    ref, ns = compared.reference, compared.reference.ns
    real = [r for r in (_try_reference(setup, m, ns, noise) for m in ("central", "richardson"))
            if r is not None]
    fitted = _noise_fitted(setup, ns, noise)
    if fitted is not None:
        real.append(fitted)
    if len(real) < 2:
        real = real * 2  # one real estimate (or none) is all there is
    if not real:
        return compared
    best = np.argmin(np.stack([np.nan_to_num(r.error, nan=np.inf) for r in real]), axis=0)
    r_err = np.choose(best, [r.error for r in real])
    r_value = np.choose(best, [r.value for r in real])
    gap = _gap(ns, ref, replace(real[0], value=ns.asarray(r_value)))
    with ns.context():
        a_gap = np.abs(np.real(ns.to_float(ns.asarray(analytic) - ns.asarray(r_value))))
    wrong = gap > REFERENCE_SAFETY * (r_err + ref.error)
    unconfirmed = compared.data.failing & (a_gap <= REFERENCE_SAFETY * r_err)
    if not (wrong.any() or unconfirmed.any()):
        return compared
    value, error = ref.value.copy(), ref.error.copy()
    value[wrong] = ns.asarray(r_value)[wrong]
    error = np.where(wrong, r_err, np.where(unconfirmed, np.maximum(error, gap + r_err),
                                            error))
    unresolved = unconfirmed & ~wrong
    name = (f"{ref.name}; checked in real arithmetic (central differences, Richardson): "
            f"replaced at {int(wrong.sum())} and widened to what real arithmetic confirms "
            f"at {int(unresolved.sum())} coordinate(s)")
    return compare(setup, analytic, replace(ref, value=value, error=error, name=name,
                                            unresolved=unresolved if unresolved.any()
                                            else None))


def _noise_fitted(setup: Setup, ns: NumberSystem, noise: Any) -> Reference | None:
    """Central differences at steps fitted to f's measured noise (`noisy_reference`), a
    third real estimate: where f cancels to ~0 the automatic steps, fitted to u·|f|, are
    far too small (their rounding ~u·terms/h), while σ and the size of f's terms set the
    right one. None when no noise was measured in `ns`."""
    if noise is None or noise.numbers != ns.name or ns.name != setup.ns.name \
            or not noise.sigma > 0:
        return None
    try:
        fine = noisy_reference(setup, noise)
        steps = np.reshape(fine.steps, setup.x.shape, order=setup.order)
        coarse = reference(setup, "central", 2 * steps, ns)
    except (ArithmeticError, ValueError, TypeError):
        return None
    # its own bar, from the measured σ: truncation c·h² read off D(2h) − D(h) = 3c·h²
    # (counted twice), plus the noise σ/h of D(h) and the share of it in that difference
    # (2σ/h in all). The derivative's resolution probe would instead carry the noise
    # relative to |f| at x (~0 where f cancels) onto |f| at x ± h: bars 1e6 too wide
    truncation = 2 * _gap(ns, coarse, fine) / 3
    error = truncation + 2 * noise.sigma / np.maximum(fine.steps, 1e-300)
    return replace(fine, error=error)


def _try_reference(setup: Setup, method: str, ns: NumberSystem, noise: Any
                   ) -> Reference | None:
    """`method`'s reference with the measured noise in its error bars (None when the
    method cannot run at x, e.g. no representable step)."""
    try:
        return with_noise(reference(setup, method, None, ns), noise)
    except (ArithmeticError, ValueError, TypeError):
        return None


def _gap(ns: NumberSystem, p: Reference, q: Reference) -> np.ndarray:
    with ns.context():
        return np.abs(np.real(ns.to_float(ns.asarray(p.value) - ns.asarray(q.value))))


def _better_method(setup: Setup, analytic: np.ndarray, compared: Compared,
                   complex_probe: Any, noise: Any) -> Compared:
    """A finite-difference reference (automatic step) too close to call: the complex
    step or Richardson in the same system decides instead."""
    better = with_noise(limit_reference(setup, complex_probe), noise)
    name = (f"{better.name} (instead of {compared.reference.name}, whose error bars were "
            "too close to call)")
    merged = prefer(compared.reference, replace(better, name=name))
    return compared if merged is None else compare(setup, analytic, merged)


def _step_probe(setup: Setup, analytic: np.ndarray, compared: Compared,
                limit: Reference) -> StepProbe:
    """The user's explicit step against the h → 0 limit."""
    lim = compare(setup, analytic, limit)
    ns = setup.ns
    with ns.context():
        gap = ns.asarray(compared.reference.value) - ns.asarray(limit.value)
    step_error = np.abs(np.real(ns.to_float(gap)))
    h = compared.reference.h
    f0 = abs(probes.as_float(ns, probes.call(setup.f, setup.x, ns)))
    # (f(x+h) - f(x-h))/2h: each value carries about u·|f| of rounding, 2·u·|f|/(2h) in
    # all; the one-sided (f(x+h) - f(x))/h carries about twice that
    rounding = np.full(step_error.shape, 2 * ns.unit_roundoff * f0 / h)
    n = np.abs(lim.data.reference)
    relevant = ns.unit_roundoff ** WIDE_EXPONENT * (n + float(np.max(n)))
    return StepProbe(compared.reference.method, h, limit.name, lim.data.difference,
                     lim.tol.values, step_error, rounding, relevant)


