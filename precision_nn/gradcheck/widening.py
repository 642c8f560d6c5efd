"""The reference re-evaluated in wider systems: once when its error bar is too wide to
decide (or to confirm a failure beyond f's conditioning), and further while it still
cannot resolve entries the analytic gradient resolves; always only where `f` is
`WIDER_GAIN` times less noisy in the wider system."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from precision_nn.gradcheck import probes
from precision_nn.gradcheck.comparison import Compared, compare
from precision_nn.gradcheck.decisions import unresolved_entries
from precision_nn.gradcheck.measurements import WIDER_GAIN, more_precise, with_wider_noise
from precision_nn.gradcheck.reference import Reference, prefer, reference, with_noise
from precision_nn.gradcheck.setup import Setup
from precision_nn.numbers import NumberSystem, number_system

__all__ = ["MAX_WIDENINGS", "widen", "widen_further"]


def widen(setup: Setup, analytic: np.ndarray, compared: Compared, why: str,
          noise: Any) -> tuple[Compared, Any]:
    """The same reference method in a wider system, when `f` runs there and is more
    precise there (its noise measured at the same offsets is ``WIDER_GAIN`` times lower).

    Returns the comparison and the noise probe completed by the wider measurement.
    """
    if setup.ns.wider() is None:
        return compared, noise
    noise = with_wider_noise(setup, noise)
    if not more_precise(noise):
        return compared, noise
    wider = number_system(noise.higher)
    method = compared.reference.method
    if method == "complex_step":
        method = method if _has_complex(wider) else "richardson"
    merged = prefer(compared.reference, _in_wider(setup, method, wider, noise, why))
    return (compared if merged is None else compare(setup, analytic, merged)), noise


def widen_further(setup: Setup, analytic: np.ndarray, compared: Compared,
                  noise: Any) -> Compared:
    """A reference already re-evaluated in a wider system, once more in the next one,
    while it still cannot resolve entries the analytic gradient resolves
    (`decisions.unresolved_entries`) and `f` is `WIDER_GAIN` times less noisy there than
    in the system it was re-evaluated in.

    float16's reference goes to float32 when its own bar is too wide; but float32's
    Richardson bar, ~1e-3 beside an entry of 108, still covers an entry of 5e-4 that
    the gradient computes to 4 digits, and a sign slip there passed. Each step costs one
    reference; the chain ends where the family has no wider system (float64).
    """
    for _ in range(MAX_WIDENINGS):
        ref = compared.reference
        wider = ref.ns.wider() if ref.ns.name != setup.ns.name else None
        if wider is None or noise is None or noise.higher_sigma is None or \
                not unresolved_entries(compared.data).any():
            return compared
        xw = probes.runs_in(setup.f, setup.x, wider)
        if xw is None:
            return compared
        high = probes.noise_probe(setup.f, xw, wider, delta=noise.delta)
        level = max(noise.higher_sigma, ref.ns.unit_roundoff * noise.expected /
                    setup.ns.unit_roundoff)
        if high.sigma * WIDER_GAIN > level:
            return compared
        why = f"{ref.ns.name}'s error bars still covered entries the gradient resolves"
        merged = prefer(ref, _in_wider(setup, ref.method, wider, noise, why, beyond=ref.ns))
        if merged is None:
            return compared
        compared = compare(setup, analytic, merged)
        noise = replace(noise, higher_sigma=high.sigma)
    return compared


# re-evaluations beyond the first wider system (float16 -> float32 -> float64)
MAX_WIDENINGS = 2


def _has_complex(ns: NumberSystem) -> bool:
    """Whether `ns` has a complex counterpart (the complex step can run there)."""
    try:
        ns.complex()
    except ValueError:
        return False
    return True


def _in_wider(setup: Setup, method: str, wider: NumberSystem, noise: Any, why: str, *,
              beyond: NumberSystem | None = None) -> Reference:
    """`method`'s reference in `wider`, with f's measured noise, named for why it was
    re-evaluated beyond `beyond` (default: the check's own system)."""
    ref = with_noise(reference(setup, method, None, wider), noise)
    below = setup.ns if beyond is None else beyond
    return replace(ref, name=f"{ref.name} (re-evaluated beyond {below.name}: {why})")
