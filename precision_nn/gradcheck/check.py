"""`check_gradient`: the analytic gradient against a numerical reference that knows its error.

How the check proceeds
----------------------
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
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from precision_nn.derivatives import derivative, gradient
from precision_nn.gradcheck import probes
from precision_nn.gradcheck.blocks import Blocks
from precision_nn.gradcheck.evidence import CheckData, Probes, StepProbe
from precision_nn.gradcheck.findings import (
    NOTICES,
    WIDE_EXPONENT,
    diagnose,
    is_lossy,
    kink_threshold,
    smooth_below,
    suspects,
    undecidable,
    undecided,
)
from precision_nn.gradcheck.report import GradientReport, relative_errors
from precision_nn.gradcheck.tolerance import REFERENCE_SAFETY, Tolerance, tolerance
from precision_nn.numbers import NumberSystem, infer_number_system, number_system

__all__ = ["METHODS", "check_gradient"]

_STEP_METHODS = ("central", "forward", "backward")
METHODS = ("auto", "complex_step", "richardson", *_STEP_METHODS)
_ORDERS = ("C", "F")
# a wider system serves the reference only when f's noise measured there is at least this
# many times below its noise (or rounding u·|f|) in the system of the check: two more digits
WIDER_GAIN = 100.0
_NAMES = {"complex_step": "complex step", "richardson": "Richardson extrapolation",
          "central": "central differences", "forward": "forward differences",
          "backward": "backward differences"}


@dataclass(frozen=True)
class _Setup:
    f: Callable[[Any], Any]
    x: np.ndarray  # in ns, the caller's shape
    ns: NumberSystem
    blocks: Blocks
    order: str
    batch_size: int | None
    # optional: provider(method, ns, h) -> Estimate of the gradient at x (flat in `order`)
    provider: Callable[[str, NumberSystem, Any], Any] | None = None


@dataclass(frozen=True)
class _Reference:
    value: np.ndarray  # flat, in `ns`
    error: np.ndarray  # flat float
    ns: NumberSystem
    name: str
    method: str
    evaluations: int
    h: float | None = None
    steps: np.ndarray | None = None  # flat float: the step used per coordinate


@dataclass(frozen=True)
class _Compared:
    data: CheckData
    tol: Tolerance
    reference: _Reference


def check_gradient(f: Callable[[Any], Any], grad: Callable[[Any], Any], x: Any, *,
                   method: str = "auto", h: Any = None,
                   numbers: str | NumberSystem | None = None,
                   shapes: Sequence[Sequence[int]] | Mapping[str, Sequence[int]] | None = None,
                   order: str = "C", directions: int | None = None,
                   batch_size: int | None = None) -> GradientReport:
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
    return run_check(f, grad, x, method=method, h=h, numbers=numbers, shapes=shapes,
                     order=order, directions=directions, batch_size=batch_size)


def run_check(f: Callable[[Any], Any], grad: Callable[[Any], Any], x: Any, *, method: str,
              h: Any, numbers: Any, shapes: Any, order: str, directions: int | None,
              batch_size: int | None, provider: Any = None,
              column_names: Mapping[int, str] | None = None) -> GradientReport:
    """`check_gradient` with the adapter hooks: `provider(method, ns, h) -> Estimate`
    computes the reference gradient at x (flat in `order`) faster than the generic
    path (a network's structure-aware differences), and `column_names` names single
    columns of every 2-D block (the MLP's ``{0: "bias"}``)."""
    setup = _validate(f, grad, x, method=method, h=h, numbers=numbers, shapes=shapes,
                      order=order, directions=directions, batch_size=batch_size,
                      column_names=column_names)
    setup = replace(setup, provider=provider)
    if directions is not None:
        from precision_nn.gradcheck.directional import check_directions

        return check_directions(setup, grad, method=method, h=h, k=directions)
    analytic = _analytic(grad, setup)
    complex_probe = None
    if method in ("auto", "complex_step"):
        complex_probe = probes.complex_probe(f, setup.x, setup.ns,
                                             requested=method == "complex_step")
    ref_method = _reference_method(method, complex_probe)
    compared = _compare(setup, analytic, reference(setup, ref_method, h, setup.ns))
    extra, evaluations = _follow_up(setup, analytic, compared, method, h, complex_probe)
    return _report(extra.data, extra.tol, extra.reference, setup, evaluations)


# -- validation -------------------------------------------------------------------------
def _validate(f: Any, grad: Any, x: Any, *, method: Any, h: Any, numbers: Any, shapes: Any,
              order: Any, directions: Any, batch_size: Any,
              column_names: Mapping[int, str] | None = None) -> _Setup:
    for name, fn in (("f", f), ("grad", grad)):
        if not callable(fn):
            raise TypeError(f"`{name}` must be callable; got {type(fn).__name__}.")
    if method not in METHODS:
        raise ValueError(f"`method` must be one of {list(METHODS)}; got {method!r}.")
    if order not in _ORDERS:
        raise ValueError(f"`order` must be 'C' (row-major) or 'F' (column-major, MATLAB); "
                         f"got {order!r}.")
    if h is not None and method not in _STEP_METHODS:
        raise ValueError(f"`h` is only used by methods {list(_STEP_METHODS)}; got h={h!r} "
                         f"with method={method!r}. Drop `h` or pick one of those methods.")
    for name, value in (("directions", directions), ("batch_size", batch_size)):
        if value is not None and (isinstance(value, bool) or not isinstance(
                value, (int, np.integer)) or value < 1):
            raise ValueError(f"`{name}` must be a positive integer or None; got {value!r}.")
    ns = _numbers(x, numbers)
    try:
        arr = ns.asarray(x)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"`x` cannot be represented in {ns.name!r}: {exc}") from exc
    if arr.size == 0:
        raise ValueError("`x` must have at least one entry; got an empty array.")
    if ns.is_complex:
        raise ValueError(f"`x` must be real; got the complex system {ns.name!r}. Pass "
                         "numbers= with its real counterpart.")
    if shapes is None and arr.ndim >= 2:
        shapes = [arr.shape]  # a matrix x is one block: findings name its rows and columns
    return _Setup(f, arr, ns, _blocks(shapes, order, arr.size, column_names), order,
                  None if batch_size is None else int(batch_size))


def _numbers(x: Any, numbers: Any) -> NumberSystem:
    if numbers is not None:
        return number_system(numbers)
    try:
        return infer_number_system(x)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"cannot tell the number system of `x`: {exc} Pass `numbers=` "
                        "(e.g. numbers='decimal:30').") from exc


def _blocks(shapes: Any, order: str, size: int, column_names: Any = None) -> Blocks:
    if shapes is None:
        return Blocks.from_shapes(None, order=order, size=size)
    listed = list(shapes.values()) if isinstance(shapes, Mapping) else shapes
    try:
        dims = [tuple(int(d) for d in s) for s in listed]
    except TypeError as exc:
        raise ValueError(f"`shapes` must be a sequence of shapes like [(5, 4), (3, 6)] or a "
                         f"mapping like {{'fc1.weight': (5, 4)}}; got {shapes!r}.") from exc
    total = sum(int(np.prod(s, dtype=np.int64)) for s in dims)
    if total != size or any(d < 1 for s in dims for d in s):
        raise ValueError(f"`shapes` {dims} must have positive sizes adding up to x.size = "
                         f"{size}; they add up to {total}.")
    if isinstance(shapes, Mapping):
        return Blocks.from_shapes(dict(zip(shapes, dims)), order=order, size=size,
                                  column_names=column_names)
    return Blocks.from_shapes(dims, order=order, size=size, column_names=column_names)


def _analytic(grad: Callable[[Any], Any], setup: _Setup) -> np.ndarray:
    """``grad(x)`` flattened in `order`, converted exactly into the system."""
    with setup.ns.context():
        g = grad(setup.x)
    g = np.asarray(g)
    if g.size != setup.x.size:
        raise ValueError(f"`grad(x)` must have one entry per entry of x ({setup.x.size}); "
                         f"got shape {g.shape}.")
    g = g.reshape(setup.x.shape) if g.shape != setup.x.shape else g
    flat = np.ravel(g, order=setup.order)
    return setup.ns.asarray(np.real(flat) if flat.dtype.kind == "c" else flat)


# -- the reference ------------------------------------------------------------------------
def _reference_method(method: str, probe: Any) -> str:
    if method in ("auto", "complex_step"):
        return "complex_step" if probe is not None and probe.safe else "richardson"
    return method


def reference(setup: _Setup, method: str, h: Any, ns: NumberSystem) -> _Reference:
    """The numerical gradient of ``setup.f`` at ``setup.x`` in `ns` by `method`."""
    est = _provided(setup, method, h, ns)
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
    return _Reference(value, error, ns.real(), f"{_NAMES[method]}{step} in {ns.real().name}",
                      method, int(est.evaluations), used, steps)


def _provided(setup: _Setup, method: str, h: Any, ns: NumberSystem) -> Any:
    """The adapter's reference for `method` in `ns` (None: use the generic path, also
    when the provider cannot do this method)."""
    if setup.provider is None:
        return None
    try:
        return setup.provider(method, ns, h)
    except NotImplementedError:
        return None


def _compare(setup: _Setup, analytic: np.ndarray, ref: _Reference) -> _Compared:
    """The comparison of `analytic` with `ref`, differences formed in the wider system."""
    wide = ref.ns if ref.ns.unit_roundoff <= setup.ns.unit_roundoff else setup.ns
    with wide.context():
        diff = wide.asarray(analytic) - wide.asarray(ref.value)
    a = np.real(setup.ns.to_float(analytic))
    n = np.real(ref.ns.to_float(ref.value))
    d = np.real(wide.to_float(diff))
    tol = tolerance(a, n, ref.error, unit_roundoff=setup.ns.unit_roundoff,
                    numbers=setup.ns.name, reference_name=ref.name)
    x = np.ravel(np.real(setup.ns.to_float(setup.x)), order=setup.order)
    data = CheckData(a, n, d, ref.error, tol.values, x, setup.blocks, setup.batch_size,
                     setup.ns.unit_roundoff, ref.name)
    return _Compared(data, tol, ref)


def _undecided(compared: _Compared, u: float) -> bool:
    """Whether the verdict hinges on a reference error bar that is too wide, or the error
    bar is too wide for any verdict (beyond ``u^(1/4)`` of the gradient's scale)."""
    return bool(np.any(undecided(compared.data)) or np.any(undecidable(compared.data)))


# -- follow-up probes -----------------------------------------------------------------------
def _follow_up(setup: _Setup, analytic: np.ndarray, compared: _Compared, method: str, h: Any,
               complex_probe: Any) -> tuple[_Compared, int]:
    """Noise, h → 0 limit, wider system and kink probes, as the comparison requires.

    The noise of `f` is measured first: when it exceeds what the number system allows,
    every later reference (the h → 0 limit, a replacement for a reference whose error
    bar is too wide) uses central differences at steps fitted to the measured noise.
    """
    evaluations = compared.reference.evaluations
    noise = step_probe = kink = None
    if _undecided(compared, setup.ns.unit_roundoff) or compared.data.failing.any():
        noise = _noise(setup)
        evaluations += probes.NOISE_OFFSETS * (1 if noise.higher is None else 2)
        compared, step_probe, noise, n_eval = _settle_reference(
            setup, analytic, compared, method, h, complex_probe, noise)
        evaluations += n_eval
    suspect = suspects(replace(compared.data, probes=Probes(step=step_probe)))
    if suspect.any():
        kink = _kink(setup, compared, h, suspect, 0.0 if noise is None else noise.sigma)
        evaluations += 2 * int(np.sum(np.isfinite(kink.steps))) + 1
        if h is None:
            compared, n_eval = _restart_below_kinks(setup, analytic, compared, kink)
            evaluations += n_eval
            compared, n_eval = _cross_check(setup, analytic, compared, noise)
            evaluations += n_eval
    found = Probes(step=step_probe, noise=noise, kink=kink, complex=complex_probe)
    return replace(compared, data=replace(compared.data, probes=found)), evaluations


def _settle_reference(setup: _Setup, analytic: np.ndarray, compared: _Compared, method: str,
                      h: Any, complex_probe: Any, noise: Any
                      ) -> tuple[_Compared, StepProbe | None, Any, int]:
    """The reference that decides: an explicit step gets its h → 0 limit beside it; a
    noisy f a noise-fitted reference; otherwise a wider system, or a better method.
    Also returns the noise probe (completed by the wider measurement, if one was made).

    The noise-fitted reference replaces the original outright: the original's error bars
    assume rounding at the system's unit roundoff, which the measured noise disproves.
    """
    u = setup.ns.unit_roundoff
    lossy = is_lossy(noise)
    if method in _STEP_METHODS and h is not None:
        limit = _noisy_reference(setup, noise) if lossy else \
            _limit_reference(setup, complex_probe)
        return compared, _step_probe(setup, analytic, compared, limit), noise, \
            limit.evaluations + 1
    if lossy:
        compared = _compare(setup, analytic, _noisy_reference(setup, noise))
        return compared, None, noise, compared.reference.evaluations
    why = ("its error bar was too wide to decide" if _undecided(compared, u)
           else "to confirm a failure beyond the conditioning of f")
    compared, noise, evaluations = _widen(setup, analytic, compared, why, noise)
    if _undecided(compared, u) and compared.reference.method in _STEP_METHODS:
        compared, n_eval = _better_method(setup, analytic, compared, complex_probe)
        evaluations += n_eval
    return compared, None, noise, evaluations


def _noisy_reference(setup: _Setup, noise: Any) -> _Reference:
    """Central differences at steps fitted to the measured noise σ of `f`.

    With noise σ and a third derivative of the size ``|f|/s³`` the central difference
    errs by ``h²·|f|/(6s³) + σ/h``, smallest near ``h = (3σ/|f|)^(1/3)·s``; the error
    estimate is the method's own (truncation from h and 2h) plus ``σ/h`` for the noise,
    which the number system's unit roundoff does not account for.
    """
    ns = setup.ns
    x = np.abs(np.real(ns.to_float(setup.x)))
    f_scale = max(noise.expected / ns.unit_roundoff, 1e-300)
    steps = (3 * noise.sigma / f_scale) ** (1 / 3) * (1 + x)
    ref = reference(setup, "central", steps, ns)
    noise_error = noise.sigma / np.ravel(steps, order=setup.order)
    return replace(ref, error=ref.error + noise_error, h=None,
                   name=f"central differences at steps fitted to the measured noise of f "
                   f"(σ = {noise.sigma:.2g}, h ≈ {float(np.median(steps)):.2g}) in {ns.name}")


def _limit_reference(setup: _Setup, complex_probe: Any) -> _Reference:
    """The h → 0 limit: the auto reference (complex step if safe, else Richardson)."""
    if complex_probe is None:
        complex_probe = probes.complex_probe(setup.f, setup.x, setup.ns, requested=False)
    return reference(setup, _reference_method("auto", complex_probe), None, setup.ns)


def _restart_below_kinks(setup: _Setup, analytic: np.ndarray, compared: _Compared,
                         kink: Any) -> tuple[_Compared, int]:
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
        return compared, 0
    value, error, evaluations = ref.value.copy(), ref.error.copy(), 0
    for i, step in zip(kink.indices[todo], below[todo]):
        along, xi = _along(setup, ref.ns, int(i))
        est = derivative(along, xi, method="richardson", h=step / 2, numbers=ref.ns)
        value[i], error[i] = est.value, float(est.error)
        evaluations += int(est.evaluations)
    name = f"{ref.name}; restarted below a kink at {int(todo.sum())} coordinate(s)"
    return _compare(setup, analytic, replace(ref, value=value, error=error, name=name)), \
        evaluations


def _along(setup: _Setup, ns: NumberSystem, i: int) -> tuple[Callable[[Any], Any], Any]:
    """``t ↦ f(x with coordinate i set to t)`` in `ns`, and ``x_i`` (flat index in order)."""
    flat = ns.asarray(np.ravel(setup.x, order=setup.order))

    def along(t: Any) -> Any:
        point = flat.copy()
        point[i] = t
        return setup.f(np.reshape(point, setup.x.shape, order=setup.order))

    return along, flat[i]


def _cross_check(setup: _Setup, analytic: np.ndarray, compared: _Compared,
                 noise: Any) -> tuple[_Compared, int]:
    """Richardson against central differences at the error-model step, once something fails.

    Richardson trusts its tableau over steps up to 1/8 of the scale of x; where f is not
    smooth on that scale (ReLU kinks of other examples) the tableau can settle on a
    wrong value with a small error estimate. Central differences at the optimal step
    (≈ u^(1/3)) look only at a tiny neighbourhood. Where the two disagree beyond their
    error bars, the smaller-step estimate is kept, with the disagreement as its error.
    (One batched central gradient: O(n) evaluations however many coordinates fail.)

    The central error bars include the measured noise of `f` in the reference's system,
    ``σ/h``: a step below the resolution of `f` (f computing fewer digits than the
    system holds) gives differences of 0 whose own error model sees only ``u·|f|/h``.
    """
    ref = compared.reference
    if ref.method != "richardson" or not compared.data.failing.any():
        return compared, 0
    central = _with_noise(reference(setup, "central", None, ref.ns), noise)
    with ref.ns.context():
        gap = np.abs(np.real(ref.ns.to_float(central.value - ref.value)))
    # every coordinate, not only the failing ones: a fooled tableau may also pass a wrong
    # gradient thanks to its error bar, or pull a fitted factor off
    replace_at = gap > REFERENCE_SAFETY * (central.error + ref.error)
    if not replace_at.any():
        return compared, central.evaluations
    value, error = ref.value.copy(), ref.error.copy()
    # the two estimates disagree by `gap`: the central value is kept, but no more trusted
    # than that disagreement (its own error estimate cannot see a kink either)
    value[replace_at] = central.value[replace_at]
    error[replace_at] = np.maximum(central.error, gap)[replace_at]
    name = (f"{ref.name}; central differences at the optimal step at "
            f"{int(replace_at.sum())} coordinate(s) where Richardson's steps were not smooth")
    return _compare(setup, analytic, replace(ref, value=value, error=error, name=name)), \
        central.evaluations


def _better_method(setup: _Setup, analytic: np.ndarray, compared: _Compared,
                   complex_probe: Any) -> tuple[_Compared, int]:
    """A finite-difference reference (automatic step) too close to call: the complex
    step or Richardson in the same system decides instead."""
    better = _limit_reference(setup, complex_probe)
    name = (f"{better.name} (instead of {compared.reference.name}, whose error bars were "
            "too close to call)")
    merged = _prefer(compared.reference, replace(better, name=name))
    if merged is None:
        return compared, better.evaluations
    return _compare(setup, analytic, merged), better.evaluations


def _widen(setup: _Setup, analytic: np.ndarray, compared: _Compared, why: str,
           noise: Any) -> tuple[_Compared, Any, int]:
    """The same reference method in a wider system, when `f` runs there and is more
    precise there (its noise measured at the same offsets is ``WIDER_GAIN`` times lower).

    Returns the comparison, the noise probe completed by the wider measurement, and the
    evaluations spent.
    """
    if probes.wider_system(setup.ns) is None:
        return compared, noise, 0
    noise, evaluations = _measure_higher(setup, noise)
    if not _more_precise(noise):
        return compared, noise, evaluations
    wider = number_system(noise.higher)
    method = compared.reference.method
    if method == "complex_step":
        method = "richardson" if wider.name.startswith("decimal") else method
    ref = _with_noise(reference(setup, method, None, wider), noise)
    ref = replace(ref, name=f"{ref.name} (re-evaluated beyond {setup.ns.name}: {why})")
    merged = _prefer(compared.reference, ref)
    if merged is None:
        return compared, noise, evaluations + ref.evaluations
    return _compare(setup, analytic, merged), noise, evaluations + ref.evaluations


def _more_precise(noise: Any) -> bool:
    """Whether f measured in the wider system is ``WIDER_GAIN`` times less noisy there
    than in its own (whose level is its measured noise or its rounding ``u·|f|``)."""
    if noise is None or noise.higher is None or noise.higher_sigma is None:
        return False
    return noise.higher_sigma * WIDER_GAIN <= max(noise.sigma, noise.expected)


def _with_noise(ref: _Reference, noise: Any) -> _Reference:
    """`ref` (a finite-difference reference) with ``σ/h`` added to its error bars, σ the
    measured noise of f in the reference's system (nothing when it was not measured)."""
    sigma = _sigma_in(noise, ref.ns.name)
    if sigma == 0 or ref.steps is None or ref.method == "complex_step":
        return ref
    return replace(ref, error=ref.error + sigma / np.maximum(ref.steps, 1e-300))


def _sigma_in(noise: Any, name: str) -> float:
    if noise is None:
        return 0.0
    if noise.numbers == name:
        return float(noise.sigma)
    if noise.higher == name and noise.higher_sigma is not None:
        return float(noise.higher_sigma)
    return 0.0


def _prefer(original: _Reference, candidate: _Reference) -> _Reference | None:
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
    return replace(candidate, value=ns.asarray(value), error=error, name=name)


def _step_probe(setup: _Setup, analytic: np.ndarray, compared: _Compared,
                limit: _Reference) -> StepProbe:
    """The user's explicit step against the h → 0 limit."""
    lim = _compare(setup, analytic, limit)
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


def _noise(setup: _Setup):
    """The noise of f in its system, and in the wider one when it exceeds rounding."""
    probe = probes.noise_probe(setup.f, setup.x, setup.ns)
    if probe.sigma <= probe.expected:
        return probe
    return _measure_higher(setup, probe)[0]


def _measure_higher(setup: _Setup, probe: Any) -> tuple[Any, int]:
    """`probe` with f's noise in the next wider system at the same offsets (if f runs
    there and it was not measured yet), and the evaluations spent."""
    wider = probes.wider_system(setup.ns)
    if probe is None or wider is None or probe.higher is not None:
        return probe, 0
    xw = probes.runs_in(setup.f, setup.x, wider)
    if xw is None:
        return probe, 1
    high = probes.noise_probe(setup.f, xw, wider, delta=probe.delta)
    ratio = high.sigma / high.expected if high.expected > 0 else float("inf")
    return replace(probe, higher=wider.name, higher_ratio=ratio, higher_sigma=high.sigma), \
        1 + probes.NOISE_OFFSETS


def _kink(setup: _Setup, compared: _Compared, h: Any, suspect: np.ndarray, sigma: float):
    """The kink scan at the suspect coordinates, largest gaps first."""
    data = compared.data
    order = np.argsort(-np.where(suspect, np.abs(data.difference), -1.0), kind="stable")
    flat_view = _FlatView(setup)  # the indices refer to the flat vector in `order`
    return probes.kink_probe(flat_view.f, flat_view.x, setup.ns,
                             order[: int(np.sum(suspect))], None if h is None else float(h),
                             sigma=sigma)


class _FlatView:
    """`f` as a function of the flat vector in `order` (what the indices refer to)."""

    def __init__(self, setup: _Setup):
        self.setup = setup
        self.x = np.ravel(setup.x, order=setup.order)

    def f(self, flat: np.ndarray) -> Any:
        return self.setup.f(np.reshape(flat, self.setup.x.shape, order=self.setup.order))


# -- the report -------------------------------------------------------------------------------
def _report(data: CheckData, tol: Tolerance, ref: _Reference, setup: _Setup,
            evaluations: int) -> GradientReport:
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
                          numbers=setup.ns.name, evaluations=evaluations,
                          blocks=setup.blocks)
