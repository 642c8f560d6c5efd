"""`check_gradient`: the analytic gradient against a numerical reference that knows its error.

How the check proceeds
----------------------
0. The analytic gradient, called twice at x: rounding is a deterministic function of x,
   so a gradient whose two calls differ beyond reordered sums is random
   (``nondeterministic``) and no noise allowance is measured for it; an array of a
   narrower binary float than the system (float64 for ``decimal:30``) is named by its
   dtype.
1. The reference. ``method="auto"`` probes whether `f` is complex-step safe (it runs on
   complex input and ``Im f(x + i·t·v)/t`` agrees at two steps and with central
   differences); then the complex step (exact to rounding: nothing cancels) or else
   Richardson extrapolation. An explicit method is used as given.
2. The tolerance per coordinate, from the reference's error estimate and the rounding
   expected in the analytic gradient (`tolerance`).
3. When the reference's error bar is too wide to decide (it is wider than √u relative and
   the verdict depends on it) or a coordinate fails, the noise of `f` is measured. If `f`
   is noisier than its system allows (precision loss), the reference becomes central
   differences at steps fitted to that noise; otherwise it is re-evaluated in a wider
   system when `f` runs there (``float32`` → ``float64``, ``decimal:N`` →
   ``decimal:2N``, ``mpf:N`` → ``mpf:2N``) *and* its measured noise there is
   ``WIDER_GAIN`` times lower (a function that closes over numbers of the narrower
   system, e.g. ``dec.exp`` of a ``decimal:30`` system, computes no more digits in a
   wider one: Decimal elements carry no precision, so running there proves nothing),
   which also removes the error that `f`'s own conditioning adds to a reference (e.g.
   ``log(1 - a)`` near saturation in float32); a finite-difference reference that is
   still too close to call gives way to the complex step or Richardson. A replacement
   reference is taken only at the coordinates where its own error bar is not wider than
   the one it replaces. An explicit step is instead compared with the h → 0 limit.
4. One-sided differences over shrinking steps at the suspect coordinates (kinks). A
   Richardson reference is restarted below a kink, and cross-checked against central
   differences at the optimal step, which see only a tiny neighbourhood of x (their
   error bars include the measured noise of `f`, ``σ/h``).
5. The findings (`findings.diagnose`) and the report; a reference whose error bar is
   wider than ``u^(1/4)`` of the gradient's scale cannot decide, and the report says so
   (``precision_loss``) instead of passing.

With ``numbers=None`` the system is that of `x`; for Decimal elements, which carry no
precision, it is ``decimal:N`` with N the larger of the thread's context precision and
the most significant digits among the elements of `x`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from precision_nn.gradcheck import probes
from precision_nn.gradcheck.certified import check_certified
from precision_nn.gradcheck.comparison import compare, no_reference, undefined_at_x
from precision_nn.gradcheck.cost import (
    ALL,
    EVALUATIONS_PER_COORDINATE,
    CheckPlan,
    EvaluationClock,
    ProgressMeter,
    estimate_cost,
    expected_evaluations,
    plan_check,
)
from precision_nn.gradcheck.directional import check_directions
from precision_nn.gradcheck.evidence import CheckData
from precision_nn.gradcheck.findings import NOTICES, diagnose, repeat_differs
from precision_nn.gradcheck.measurements import gradient_repeat, measured_rounding
from precision_nn.gradcheck.reference import (
    NoReference,
    Reference,
    reference_method,
    robust_reference,
)
from precision_nn.gradcheck.refine import follow_up
from precision_nn.gradcheck.report import GradientReport, relative_errors
from precision_nn.gradcheck.setup import (
    METHODS,
    Setup,
    gradient_in,
    narrower_dtype,
    returned_gradient,
    validate,
)
from precision_nn.gradcheck.tolerance import Tolerance
from precision_nn.numbers import NumberSystem

__all__ = ["METHODS", "check_gradient", "run_check"]


def check_gradient(f: Callable[[Any], Any], grad: Callable[[Any], Any], x: Any, *,
                   method: str = "auto", h: Any = None,
                   numbers: str | NumberSystem | None = None,
                   shapes: Sequence[Sequence[int]] | Mapping[str, Sequence[int]] | None = None,
                   order: str = "C", directions: int | None = None,
                   batch_size: int | None = None, progress: bool | None = None
                   ) -> GradientReport:
    """Compare ``grad(x)`` with a numerical reference and say why they disagree.

    Parameters
    ----------
    f : callable
        The scalar function (a loss of the parameters), ``f(x) -> scalar`` of `numbers`.
    grad : callable
        The analytic gradient to check, ``grad(x) -> array`` of the shape of `x`.
    x : array_like
        The point (any shape; flattened in `order`).
    method : {"auto", "complex_step", "richardson", "central", "forward", "backward"}
        The reference; ``"auto"`` picks complex step when `f` is safe for it, else
        Richardson.
    h : scalar, optional
        An explicit step for the finite-difference methods (``None``: chosen by the
        error model). With an explicit step the check also computes the h → 0 limit
        to tell a wrong gradient from a wrong step.
    numbers : str or NumberSystem, optional
        The number system (default: that of `x`).
    shapes : sequence of shapes, or mapping of name to shape, optional
        The blocks (e.g. layer matrices) the flat `x` is made of; enables findings
        that name block, row and column, and the layout (C vs F) test. A mapping
        ``{"fc1.weight": (4, 3), "fc1.bias": (4,)}`` names the blocks (concatenated in
        its insertion order) and findings use those names; a sequence calls them
        ``block 0``, ``block 1``, ... A matrix `x` without `shapes` is one block of its
        own shape.
    order : {"C", "F"}
        How each block is flattened in `x`.
    directions : int, optional
        Check ``vᵀg`` against directional derivatives along this many seeded random unit
        vectors instead of every coordinate (O(k) evaluations, for large models).
    batch_size : int, optional
        The number of examples ``m`` the loss averages over, to name a factor ``1/m``.
    progress : bool, optional
        A tqdm progress bar on stderr: None (default) shows it once the check, timed on
        its own first evaluations, is estimated to take longer than
        `gradcheck.cost.PROGRESS_SECONDS` (5 s); True always; False never. Off a terminal
        it refreshes every 30 s (`gradcheck.cost`).

    Returns
    -------
    GradientReport

    Examples
    --------
    >>> import numpy as np
    >>> f = lambda x: np.sum(x ** 3)
    >>> report = check_gradient(f, lambda x: 3 * x ** 2, np.array([0.5, -1.0, 2.0]))
    >>> report.passed, report.kinds
    (True, ('match',))
    >>> report = check_gradient(f, lambda x: x ** 2, np.array([0.5, -1.0, 2.0]))
    >>> report.kinds, round(report.findings[0].evidence["factor"], 6)
    (('scale',), 0.333333)
    """
    if method == "certified":  # a proven verdict in ball arithmetic (gradcheck/certified)
        return check_certified(f, grad, x, numbers=numbers, shapes=shapes, order=order,
                               batch_size=batch_size, h=h, directions=directions)
    return run_check(f, grad, x, method=method, h=h, numbers=numbers, shapes=shapes,
                     order=order, directions=directions, batch_size=batch_size,
                     progress=progress)


def run_check(f: Callable[[Any], Any], grad: Callable[[Any], Any], x: Any, *, method: str,
              h: Any, numbers: Any, shapes: Any, order: str, directions: int | None,
              batch_size: int | None, provider: Any = None,
              column_names: Mapping[int, str] | None = None,
              progress: bool | None = None) -> GradientReport:
    """`check_gradient` with the adapter hooks: `provider(method, ns, h) -> Estimate`
    computes the reference gradient at x (flat in `order`) faster than the generic
    path (a network's structure-aware differences), and `column_names` names single
    columns of every 2-D block (the MLP's ``{0: "bias"}``). The progress bar follows
    the evaluations of `f` (a provider's reference is one call it does not see)."""
    setup = validate(f, grad, x, method=method, h=h, numbers=numbers, shapes=shapes,
                      order=order, directions=directions, batch_size=batch_size,
                      column_names=column_names, progress=progress)
    setup = replace(setup, provider=provider)
    # a provider's reference runs outside f: the bar then counts only f's own calls
    total = 0 if provider is not None else expected_evaluations(setup.x.size, method,
                                                                directions)
    setup.f.meter = ProgressMeter(total, mode=progress)
    try:
        return _run(setup, grad, method=method, h=h, directions=directions)
    finally:
        setup.f.meter.close()


def _run(setup: Setup, grad: Callable[[Any], Any], *, method: str, h: Any,
         directions: Any) -> GradientReport:
    """The stages of `run_check` on a validated setup."""
    provider = setup.provider
    if directions is None and provider is None and setup.x.size > PLANNED_ABOVE:
        plan = _plan(setup, method)  # (an adapter's reference is cheap already)
        if plan.directions is not None:
            report = check_directions(setup, grad, method=method, h=h, k=plan.directions)
            return replace(report, plan=plan.sentence)
    if directions is not None and directions != ALL:
        return check_directions(setup, grad, method=method, h=h, k=directions)
    returned = returned_gradient(grad, setup)
    analytic = gradient_in(setup, returned)
    narrow = narrower_dtype(returned, setup.ns)
    found: dict[str, Any] = {"gradient_dtype": (narrow, setup.ns.name) if narrow else None}
    # grad called twice at x: rounding repeats exactly, so only a gradient that repeats is
    # measured for noise near x (`measurements.with_gradient_noise`) and allowed it; one
    # that does not is reported (`findings.detect_nondeterministic`) and allowed nothing
    found["gradient_repeat"] = repeat = gradient_repeat(grad, setup, analytic)
    if repeat_differs(repeat, np.real(setup.ns.to_float(analytic)),
                      setup.ns.unit_roundoff).any():
        setup = replace(setup, grad=None)
    else:  # a deterministic gradient's rounding, measured by running it wider
        measured = measured_rounding(grad, setup, analytic)
        if measured is not None:
            setup = replace(setup, analytic_rounding=measured[0], rounding_system=measured[1])
    undefined = undefined_at_x(setup, analytic)
    if undefined is not None:  # f is not finite at x: no reference can be formed
        return _report(undefined.data, undefined.tol, undefined.reference, setup, found)
    complex_probe = None
    if method in ("auto", "complex_step"):
        # an adapter's provider may answer from its own complex-step run (None: it cannot)
        own = getattr(provider, "complex_probe", None)
        complex_probe = own(requested=method == "complex_step") if own else None
        complex_probe = complex_probe or probes.complex_probe(
            setup.f, setup.x, setup.ns, requested=method == "complex_step")
    ref_method = reference_method(method, complex_probe)
    try:
        compared = compare(setup, analytic, robust_reference(setup, ref_method, h, setup.ns))
    except NoReference as exc:
        none = no_reference(setup, analytic, f"none: {exc}")
        return _report(none.data, none.tol, none.reference, setup, found)
    extra = follow_up(setup, analytic, compared, method, h, complex_probe)
    return _report(extra.data, extra.tol, extra.reference, setup, found)


# the cost of a full check is planned (one timed evaluation of f, counted) only above this
# many coordinates: below it even Richardson's ~24 evaluations per coordinate of an f of a
# millisecond stay under a minute, and small checks keep their exact evaluation counts
PLANNED_ABOVE = 2_000


def _plan(setup: Setup, method: str) -> CheckPlan:
    """Full or directional by the measured cost of one evaluation of f (gradcheck/cost):
    "auto" is costed as the complex step, the cheapest reference it may choose."""
    clock = EvaluationClock(setup.f, ndim=setup.x.ndim)
    clock(setup.x)
    costed = method if method in EVALUATIONS_PER_COORDINATE else "complex_step"
    cost = estimate_cost(setup.x.size, seconds_per_evaluation=clock.seconds_per_evaluation,
                         method=costed)
    plan = plan_check(cost, directions=None)
    if plan.directions is not None:  # the bar counts the directional check's evaluations
        setup.f.meter.total = expected_evaluations(setup.x.size, method, plan.directions)
    return plan


def _report(data: CheckData, tol: Tolerance, ref: Reference, setup: Setup,
            found: Mapping[str, Any] | None = None) -> GradientReport:
    if found:  # what the entry saw of grad itself: its dtype, a second call at x
        data = replace(data, probes=replace(data.probes, **found))
    findings = diagnose(data)
    passed = not data.failing.any() and all(f.kind in ("match", *NOTICES) for f in findings)
    rel = relative_errors(data.difference, data.analytic, data.reference)
    denom = float(np.linalg.norm(data.analytic + data.reference))
    rel_diff = float(np.linalg.norm(data.difference)) / denom if denom > 0 else 0.0
    return GradientReport(passed=passed, max_relative_error=float(np.max(rel)),
                          relative_difference=rel_diff, relative_error=rel,
                          tolerance=data.tolerance, tolerance_source=tol.source,
                          findings=findings, analytic=data.analytic,
                          reference=data.reference, reference_error=data.reference_error,
                          difference=data.difference, reference_name=ref.name,
                          numbers=setup.ns.name, evaluations=setup.f.evaluations,
                          blocks=setup.blocks)
