"""Measurements of f and grad near x that the check's follow-ups act on: the noise of f
(in its system and in the next wider one), the noise of the analytic gradient, and the
kink scan at suspect coordinates."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from precision_nn.gradcheck import probes
from precision_nn.gradcheck.comparison import Compared
from precision_nn.gradcheck.setup import Setup, analytic_gradient, gradient_in, narrower_dtype
from precision_nn.gradcheck.tolerance import MEASURED_SAFETY, ROUNDING_FACTOR

__all__ = ["WIDER_GAIN", "gradient_repeat", "kink_scan", "measured_rounding", "more_precise",
           "noise_near", "wider_rounding", "with_gradient_noise", "with_wider_noise"]

# a wider system serves the reference only when f's noise measured there is at least this
# many times below its noise (or rounding u·|f|) in the system of the check: two more digits
WIDER_GAIN = 100.0


def with_gradient_noise(setup: Setup) -> Setup:
    """`setup` with the measured noise of the analytic gradient (every later comparison
    allows for it); unchanged when grad cannot be evaluated near x or was measured."""
    if setup.grad is None or setup.analytic_noise is not None:
        return setup
    try:
        noise = probes.gradient_noise(setup.grad, setup.flat, setup.x.shape, setup.order,
                                      setup.ns)
    except Exception:  # noqa: BLE001 - a grad that fails near x gives no noise measure
        return setup
    return replace(setup, analytic_noise=noise)


def gradient_repeat(grad: Any, setup: Setup, analytic: np.ndarray) -> np.ndarray | None:
    """``|grad(x) − grad(x)|`` per coordinate (flat, float64) from a second call of grad at
    the same x, formed in the system: 0 where the two calls agree (also an inf or a NaN in
    both), inf where only one is finite. None when the second call fails.

    Rounding is a deterministic function of x, so a gradient that only rounds returns the
    same numbers twice; the noise probe of grad (`with_gradient_noise`), which reads the
    scatter of grad over a few ulps of x as rounding, is sound only for such a gradient.
    """
    try:
        second = analytic_gradient(grad, setup)
    except Exception:  # noqa: BLE001 - a grad that fails when called again gives no repeat
        return None
    ns = setup.ns
    a = np.real(ns.to_float(analytic)).astype(float)
    b = np.real(ns.to_float(second)).astype(float)
    both = np.isfinite(a) & np.isfinite(b)
    same = (a == b) | (np.isnan(a) & np.isnan(b))
    gap = np.where(same, 0.0, np.inf)
    if both.any():
        with ns.context():
            diff = ns.asarray(second)[both] - ns.asarray(analytic)[both]
        gap[both] = np.abs(np.real(ns.to_float(diff)).astype(float))
    return gap


def measured_rounding(grad: Any, setup: Setup, analytic: np.ndarray
                      ) -> tuple[np.ndarray, str] | None:
    """`wider_rounding` in the next wider system, and in the one after it (at most
    `ROUNDING_WIDENINGS` steps) while entries stay unresolved there: the wider run's own
    rounding bound, ``ROUNDING_FACTOR·u'·(|a'_i| + max|a'|)``, allows half the entry or
    more in the tolerance (``MEASURED_SAFETY`` times the measurement) while the measured
    gap ``|a_i − a'_i|`` does not. float32's bound beside an entry of 108 is 8e-4, above
    an entry of 5e-4 that a float16 gradient computes to 3 digits; float64's is 1e-12.
    Returns the measurement and the name of the system it ran in."""
    wider, found = setup.ns.wider(), None
    a = np.abs(np.real(setup.ns.to_float(analytic))).astype(float)
    for _ in range(ROUNDING_WIDENINGS):
        if wider is None:
            break
        measured = wider_rounding(grad, setup, analytic, wider)
        if measured is None:
            break
        found = (measured, wider.name)
        gap, model = measured
        # the wider bound allows half the entry (a slip of the entry's size would pass)
        # while the gap itself does not: a wider run would resolve it
        if not np.any((MEASURED_SAFETY * (gap + model) >= a / 2)
                      & (MEASURED_SAFETY * gap < a / 2)):
            break
        wider = wider.wider()
    return None if found is None else (found[0][0] + found[0][1], found[1])


# systems beyond the gradient's own that `measured_rounding` may run it in
ROUNDING_WIDENINGS = 2


def wider_rounding(grad: Any, setup: Setup, analytic: np.ndarray,
                   wider: Any = None) -> tuple[np.ndarray, np.ndarray] | None:
    """The analytic gradient's own rounding at x, measured: ``|grad(x) − grad(x')|`` per
    coordinate (flat, float64), x' = x converted exactly into `wider` (default: the next
    wider system), and the model's bound of the wider run's own rounding
    (`ROUNDING_FACTOR`·u'·(|a'_i| + max|a'|), u' the wider system's unit roundoff): the
    measurement is their sum.

    Hypothesis tested: the gradient's error at x is rounding only, and the same code run
    on x' computes the same formula with less of it. A wrong formula is wrong in both
    runs, so their difference holds none of the bug, only the narrower run's rounding
    (with the wider run's, bounded by the model). It is taken only where it proves
    itself: grad must return a binary float array at the wider system's precision (its
    dtype shows what it held; an object array of Decimal or mpmath numbers shows
    nothing, and such systems keep the model), of the right size and finite, and not
    the narrow values again in every entry (a grad that casts x or its result back to
    the narrower float computed nothing more: then None). None also when there is no
    wider system or the wider call fails.
    """
    wider = setup.ns.wider() if wider is None else wider
    if wider is None:
        return None
    try:
        xw = wider.asarray(setup.x)
        with wider.context():
            returned = np.asarray(grad(xw))
        if returned.dtype.kind not in "fc" or narrower_dtype(returned, wider) is not None:
            return None
        other = gradient_in(replace(setup, ns=wider, x=xw), returned)
    except Exception:  # noqa: BLE001 - a grad that fails in the wider system measures nothing
        return None
    with wider.context():
        diff = other - wider.asarray(analytic)
    gap = np.abs(np.real(wider.to_float(diff))).astype(float)
    size = np.abs(np.real(wider.to_float(other))).astype(float)
    if not (np.all(np.isfinite(gap)) and np.all(np.isfinite(size)) and np.any(gap > 0)):
        return None
    return gap, ROUNDING_FACTOR * wider.unit_roundoff * (size + np.max(size))


def more_precise(noise: Any) -> bool:
    """Whether f measured in the wider system is ``WIDER_GAIN`` times less noisy there
    than in its own (whose level is its measured noise or its rounding ``u·|f|``)."""
    if noise is None or noise.higher is None or noise.higher_sigma is None:
        return False
    return noise.higher_sigma * WIDER_GAIN <= max(noise.sigma, noise.expected)


def noise_near(setup: Setup):
    """The noise of f in its system, and in the wider one when it exceeds rounding."""
    probe = probes.noise_probe(setup.f, setup.x, setup.ns)
    if probe.sigma <= probe.expected:
        return probe
    return with_wider_noise(setup, probe)


def with_wider_noise(setup: Setup, probe: Any) -> Any:
    """`probe` with f's noise in the next wider system at the same offsets (if f runs
    there and it was not measured yet)."""
    wider = setup.ns.wider()
    if probe is None or wider is None or probe.higher is not None:
        return probe
    xw = probes.runs_in(setup.f, setup.x, wider)
    if xw is None:
        return probe
    high = probes.noise_probe(setup.f, xw, wider, delta=probe.delta)
    ratio = high.sigma / high.expected if high.expected > 0 else float("inf")
    return replace(probe, higher=wider.name, higher_ratio=ratio, higher_sigma=high.sigma)


def kink_scan(setup: Setup, compared: Compared, h: Any, suspect: np.ndarray, sigma: float):
    """The kink scan at the suspect coordinates, largest gaps first."""
    data = compared.data
    order = np.argsort(-np.where(suspect, np.abs(data.difference), -1.0), kind="stable")
    # the indices refer to the flat vector in `order`
    return probes.kink_probe(setup.at, setup.flat, setup.ns,
                             order[: int(np.sum(suspect))], None if h is None else float(h),
                             sigma=sigma)
