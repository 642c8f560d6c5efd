"""The comparison of the analytic gradient with a numerical reference: differences formed
in the wider of the two systems, the tolerance of every coordinate, and the comparisons
without a reference (f not finite at x, no method succeeded).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from precision_nn.derivatives.complex_step import COMPLEX_STEP_ROUNDINGS, shared_rounding
from precision_nn.gradcheck import probes
from precision_nn.gradcheck.decisions import undecidable, undecided
from precision_nn.gradcheck.evidence import CheckData
from precision_nn.gradcheck.reference import Reference
from precision_nn.gradcheck.setup import Setup
from precision_nn.gradcheck.tolerance import Tolerance, tolerance

__all__ = ["Compared", "compare", "hinges", "no_reference", "undefined_at_x"]


@dataclass(frozen=True)
class Compared:
    data: CheckData
    tol: Tolerance
    reference: Reference


def compare(setup: Setup, analytic: np.ndarray, ref: Reference) -> Compared:
    """The comparison of `analytic` with `ref`, differences formed in the wider system."""
    wide = ref.ns if ref.ns.unit_roundoff <= setup.ns.unit_roundoff else setup.ns
    with wide.context():
        diff = wide.asarray(analytic) - wide.asarray(ref.value)
    a = np.real(setup.ns.to_float(analytic))
    n = np.real(ref.ns.to_float(ref.value))
    d = np.real(wide.to_float(diff))
    # non-finite entries get no say in the tolerance of the others (an inf in `a` would
    # make every tolerance infinite); they fail by themselves, since inf or NaN <= tol is
    # False for their gaps
    tol = tolerance(np.where(np.isfinite(a), a, 0.0), np.where(np.isfinite(n), n, 0.0),
                    ref.error, unit_roundoff=setup.ns.unit_roundoff,
                    numbers=setup.ns.name, reference_name=ref.name,
                    analytic_noise=setup.analytic_noise, underflow=setup.underflow,
                    reference_entry_error=_entry_error(ref, n),
                    analytic_rounding=setup.analytic_rounding,
                    rounding_system=setup.rounding_system)
    x = setup.x_float
    data = CheckData(a, n, d, ref.error, tol, x, setup.blocks, setup.batch_size,
                     setup.ns.unit_roundoff, ref.name)
    return Compared(data, tol, ref)


def _entry_error(ref: Reference, n: np.ndarray) -> np.ndarray:
    """The reference's error bar with its rounding at the size of each entry: for the
    generic complex step, its norm-wise rounding part (`complex_step.shared_rounding`)
    replaced by ``κ·u·|n_i|``; the truncation and whatever else was measured stays. The
    norm-wise part of a widening for f's noise (``ref.shared_noise``) is left out the same
    way. Other references' bars are per entry already."""
    error = np.maximum(ref.error - ref.shared_noise, 0.0) if ref.shared_noise else ref.error
    if not ref.shared_rounding:
        return error
    u = ref.ns.unit_roundoff
    finite = np.where(np.isfinite(n), np.abs(n), 0.0)
    shared = shared_rounding(finite, u)
    own = COMPLEX_STEP_ROUNDINGS * u * finite
    return np.maximum(error - shared, 0.0) + own


def undefined_at_x(setup: Setup, analytic: np.ndarray) -> Compared | None:
    """The comparison when ``f(x)`` itself is inf or NaN (None when it is finite): every
    reference value is NaN, so every coordinate is undecidable, never a bug. Costs the
    one evaluation of f at x that every method needs anyway."""
    value = probes.as_float(setup.ns, probes.call(setup.f, setup.x, setup.ns))
    if np.isfinite(value):
        return None
    return no_reference(setup, analytic, f"none: f(x) = {value} in {setup.ns.name}")


def no_reference(setup: Setup, analytic: np.ndarray, name: str) -> Compared:
    """A comparison without any reference value (all NaN): undecidable everywhere."""
    n = setup.flat.size
    a = np.real(setup.ns.to_float(analytic)).astype(float)
    nan = np.full(n, np.nan)
    tol = tolerance(np.where(np.isfinite(a), a, 0.0), np.zeros(n), nan,
                    unit_roundoff=setup.ns.unit_roundoff, numbers=setup.ns.name,
                    reference_name=name)
    ref = Reference(setup.flat, nan, setup.ns, name, "none", 0)
    data = CheckData(a, nan, nan, nan, tol, setup.x_float, setup.blocks, setup.batch_size,
                     setup.ns.unit_roundoff, name)
    return Compared(data, tol, ref)


def hinges(compared: Compared, u: float) -> bool:
    """Whether the verdict hinges on a reference error bar that is too wide, or the error
    bar is too wide for any verdict (beyond ``u^(1/4)`` of the gradient's scale)."""
    return bool(np.any(undecided(compared.data)) or np.any(undecidable(compared.data)))
