"""`derivative` and `gradient`: numerical derivatives that report their own error.

Notes
-----
Every method returns ``Estimate(value, error, h, evaluations)``; how `error` is formed:

- ``forward``, ``backward``, ``central``: truncation ``2|C|·|Δ^(p+1) f|/h`` from one extra
  point (the rule's points completed to p+2 consecutive ones), plus rounding
  ``2u Σ|w_j|·max(|f_j|, T)/h``, ``T = max_i |D_i|·|x_i|`` the scale of f's terms (an f
  that cancels to ~0 still rounds by ~u·T; `finite_difference`). With ``h=None`` the step
  minimises ``|c|h^p + ε Σ|w|/h`` with ``c`` measured at a trial step (`steps`).
- ``richardson``: Ridders' tableau error (distance of the kept entry to its parents) plus
  ``2u|value|``.
- ``complex_step``: ``2|D(h₂) − D(h)|`` with ``h₂ ≈ √u·max(|x|, 1)`` decades above ``h``
  (``|D(2h) − D(h)|/3`` for a user step with ``2h ≥ √u``), plus ``8u|value|``; for a
  gradient ``8u·max(|value_i|, 4‖value‖∞)``, since its entries share the final sums whose
  cancellation the rounding follows (`complex_step`). When the two steps disagree far
  beyond rounding, when a central difference of f's real arithmetic disagrees, or when
  ``f(x + ih)`` is not finite, the estimate falls back to ``richardson`` and says so.

Every method then probes f's real arithmetic at one coordinate (`resolution`, and 27
values at three spacings that measure the noise of one evaluation, `noise`; the complex
step measures it only when its cross-check disagrees): an `f` noisier than its number
system (a ``float()`` detour, a Decimal context of fewer digits, internal cancellation as
in ``cosh(x) − 1`` near 0) gets bars that count the measured noise, and a note. An entry
where no derivative is found (a kink, pole or jump closer than any usable step) gets
``error = inf`` and a note; an error estimate is never NaN (ValueError instead). A user
``h`` longer than ``max(|x|, 1)``, or points ``x ± k·h`` that overflow, raise ValueError.

All arithmetic happens in the number system of `x` (or `numbers`), inside its
``context()``; `f` receives points of that system (complex step: of its complex
counterpart) and must return values of it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from precision_nn.derivatives.arguments import check_order, convert_h, resolve_numbers
from precision_nn.derivatives.complex_step import complex_counterpart, complex_step, cross_check
from precision_nn.derivatives.estimate import Estimate
from precision_nn.derivatives.evaluation import Evaluator, NonFiniteValueError
from precision_nn.derivatives.finite_difference import FDResult, finite_difference
from precision_nn.derivatives.point import convert_point
from precision_nn.derivatives.resolution import probe_resolution, reconciled, widened
from precision_nn.derivatives.richardson import richardson
from precision_nn.derivatives.steps import check_steps
from precision_nn.derivatives.taylor_mode import taylor
from precision_nn.numbers import NumberSystem

__all__ = ["METHODS", "derivative", "estimate_from", "gradient"]


@dataclass(frozen=True)
class _Problem:
    """A validated request: how to evaluate, where, and with which options."""

    evaluator_for: Callable[[NumberSystem], Any]
    ns: NumberSystem
    shape: tuple[int, ...]
    order: int
    h: np.ndarray | None


def derivative(f: Callable[[Any], Any], x: Any, *, method: str = "central",
               h: Any = None, order: int = 2,
               numbers: str | NumberSystem | None = None) -> Estimate:
    """The derivative of a scalar function of one variable, with an error estimate.

    Parameters
    ----------
    f : callable
        ``f(x) -> scalar``. It may also accept a 1-D array of points and return one value
        per point; that is detected and used to evaluate in batches.
    x : scalar
        The point; a string (e.g. ``"0.1"``) is converted exactly.
    method : {"central", "forward", "backward", "richardson", "complex_step"}
    h : scalar, optional
        The step (Richardson: the first, largest step). ``None`` chooses it from the
        error model of the method and the number system.
    order : int
        Accuracy order: central 2, 4, 6 or 8; forward/backward 1 to 8 (``order=1`` is
        the classical ``(f(x+h) − f(x))/h``). Richardson and complex step: 2.
    numbers : str or NumberSystem, optional
        The number system to compute in; default: the one `x` belongs to.

    Returns
    -------
    Estimate
        ``value`` in the number system; ``error`` (float) estimates ``|value − f'(x)|``;
        ``h`` the step actually realised, ``(x + h) − x``; ``evaluations`` calls of `f`.

    Raises
    ------
    ValueError
        Unknown method or order, ``h ≤ 0``, an `x` the system cannot represent, `f`
        returning NaN/inf or a non-scalar, complex step without a complex counterpart.

    References
    ----------
    .. [1] B. Fornberg, Math. Comp. 51 (1988) 699-706 (stencil weights).
    .. [2] C. J. F. Ridders, Adv. Eng. Software 4 (1982) 75-76 (extrapolation).
    .. [3] J. R. R. A. Martins et al., ACM TOMS 29 (2003) 245-262 (complex step).

    Examples
    --------
    >>> import numpy as np
    >>> est = derivative(np.exp, 1.0)
    >>> bool(abs(est.value - np.e) <= est.error <= 1e-9)
    True
    >>> est = derivative(np.sin, 0.5, method="complex_step")
    >>> print(f"{abs(est.value - np.cos(0.5)):.0e}", est.error < 1e-15)
    0e+00 True

    In 50 digits, with `f` written against the number system:

    >>> from precision_nn.numbers import number_system
    >>> ns = number_system("mpf:50")
    >>> est = derivative(ns.exp, "1", method="richardson", numbers=ns)
    >>> bool(abs(est.value - ns.exp(ns.one)) < 1e-40), bool(est.error < 1e-40)
    (True, True)
    """
    return _differentiate(f, x, method=method, h=h, order=order, numbers=numbers, scalar=True)


def gradient(f: Callable[[Any], Any], x: Any, *, method: str = "central", h: Any = None,
             order: int = 2, numbers: str | NumberSystem | None = None) -> Estimate:
    """The gradient of a scalar function of an array, with an error estimate per entry.

    Parameters are those of `derivative`, except that `x` is an array (any shape; the
    gradient has the same shape) and `h` may be a scalar or an array of per-entry steps.
    When `f` accepts a stack of points along a new leading axis (``f(X)[k] ==
    f(X[k])``), the perturbed points are evaluated in batches whose size is measured to
    pay (from `evaluation.BATCH_BYTES` of input, doubled while a point gets cheaper, at
    most `evaluation.MAX_BATCH_BYTES`); otherwise one by one. The sizes follow measured
    times, so a stacked `f` that sums in an order depending on the stack's size (batched
    matrix products) may give values that differ in the last bits between runs; the
    stack probe bounds that by 64 units of roundoff of ``|f|`` at a stack of two
    (`evaluation` module notes).

    Examples
    --------
    >>> import numpy as np
    >>> def f(x):  # accepts one point (n,) or a stack (k, n)
    ...     return np.sum(np.sin(x) * x, axis=-1)
    >>> x = np.array([0.3, 1.2, -0.7])
    >>> est = gradient(f, x)
    >>> exact = np.sin(x) + x * np.cos(x)
    >>> bool(np.all(np.abs(est.value - exact) <= est.error)), est.value.shape
    (True, (3,))
    """
    return _differentiate(f, x, method=method, h=h, order=order, numbers=numbers,
                          scalar=False)


def estimate_from(evaluator_for: Callable[[NumberSystem], Any], ns: NumberSystem,
                  shape: tuple[int, ...], *, method: str = "central", h: Any = None,
                  order: int = 2) -> Estimate:
    """Run `method` on evaluators that know how to compute `f` (e.g. a network's
    structure-aware one), with the validation and error estimates of `gradient`.

    Parameters
    ----------
    evaluator_for : callable
        ``evaluator_for(system)`` returns an object with ``ns``, ``x_flat`` (the point,
        flattened, in `system`), ``evaluations``, ``at_point()`` and
        ``at_shifts(coords, values)`` (see `evaluation.Evaluator`). It is called with `ns`,
        or with ``ns.complex()`` for ``method="complex_step"``.
    ns : NumberSystem
        The real system of the point and of the result.
    shape : tuple of int
        The shape of the result (``()`` for a scalar variable).
    method, h, order
        As for `gradient`.
    """
    _check_method(method, order)
    return _validated(evaluator_for, ns, shape, method, h, order)


def _validated(evaluator_for: Callable[[NumberSystem], Any], ns: NumberSystem,
               shape: tuple[int, ...], method: str, h: Any, order: int) -> Estimate:
    """`estimate_from` after `method` and `order` were checked (once, at the entry)."""
    h_arr = None if h is None else convert_h(ns, h, shape)
    problem = _Problem(evaluator_for=evaluator_for, ns=ns, shape=shape, order=order, h=h_arr)
    return _estimate(problem, method)


def _differentiate(f: Any, x: Any, *, method: Any, h: Any, order: Any, numbers: Any,
                   scalar: bool) -> Estimate:
    if not callable(f):
        raise TypeError(f"`f` must be callable; got {type(f).__name__}.")
    if method == "taylor":  # certified: f on first-order ball series (taylor_mode)
        return taylor(f, x, numbers=numbers, scalar=scalar, h=h, order=order)
    _check_method(method, order)
    ns = resolve_numbers(x, numbers)
    x_arr = convert_point(ns, x, scalar)
    x_flat, shape = x_arr.reshape(-1), x_arr.shape

    def evaluator_for(system: NumberSystem) -> Evaluator:
        return Evaluator(f, system, system.asarray(x_flat), shape,
                         require_complex=system.is_complex and not ns.is_complex)

    return _validated(evaluator_for, ns, shape, method, h, order)


# -- the methods ----------------------------------------------------------------------
@dataclass(frozen=True)
class _Outcome:
    """A method's result, the calls of f it made, the method that really produced the
    value (after a fallback) and what the note must add."""

    result: FDResult
    evaluations: int
    method: str
    notes: tuple[str, ...] = ()


def _real_evaluator(problem: _Problem) -> Any:
    ev = problem.evaluator_for(problem.ns)
    if problem.h is not None:
        check_steps(problem.ns, ev.x_flat, problem.h)
    return ev


def _probed(ev: Any, result: FDResult, rule: str, order: int, method: str,
            notes: tuple[str, ...] = (), evaluations: int = 0) -> _Outcome:
    """`result` after the resolution probe on f's real arithmetic (`resolution`). The probe
    floors its rounding bound at f's term scale where the method's own rounding terms do
    (the finite differences); Richardson's tableau error has no such floor, and its probe
    keeps ``κu|f_j|``, whose firing on a cancelling f is what widens its bars there."""
    terms = 0.0 if method == "richardson" else None
    found = probe_resolution(ev, result, rule, order=order, terms=terms)
    if found is not None and found.noise > 0:
        result, notes = widened(result, found, ev.ns.unit_roundoff), (*notes, found.note)
    if found is not None:
        result = reconciled(result, found)
    return _Outcome(result, evaluations + ev.evaluations, method, notes)


def _one_rule(problem: _Problem, method: str) -> _Outcome:
    ev = _real_evaluator(problem)
    result = finite_difference(ev, method=method, order=problem.order, h=problem.h)
    return _probed(ev, result, method, problem.order, method)


def _forward(problem: _Problem) -> _Outcome:
    return _one_rule(problem, "forward")


def _backward(problem: _Problem) -> _Outcome:
    return _one_rule(problem, "backward")


def _central(problem: _Problem) -> _Outcome:
    return _one_rule(problem, "central")


def _richardson(problem: _Problem, notes: tuple[str, ...] = (),
                evaluations: int = 0) -> _Outcome:
    ev = _real_evaluator(problem)
    result = richardson(ev, h=problem.h)
    if result.failed is not None and result.failed.any():
        notes = (*notes, _no_derivative_note(result.failed, problem.shape))
    return _probed(ev, result, "central", 2, "richardson", notes, evaluations)


def _complex_step(problem: _Problem) -> _Outcome:
    ev = problem.evaluator_for(complex_counterpart(problem.ns))
    real = problem.evaluator_for(problem.ns)
    if problem.h is not None:
        check_steps(problem.ns, real.x_flat, problem.h)
    try:
        result = complex_step(ev, problem.ns, h=problem.h)
    except NonFiniteValueError as exc:
        why = (f"complex step: f is not finite at x + ih ({exc}); fell back to Richardson "
               "on f's real arithmetic")
        return _richardson(replace(problem, h=None), (why,), ev.evaluations)
    bad = ~np.isfinite(np.asarray(problem.ns.to_float(result.value), dtype=float))
    if bad.any():  # an evaluator that does not check its values (structure-aware ones)
        why = (f"complex step: f is not finite at x + ih for entry {int(np.flatnonzero(bad)[0])}"
               "; fell back to Richardson on f's real arithmetic")
        return _richardson(replace(problem, h=None), (why,), ev.evaluations)
    if result.failed is not None and result.failed.any():
        i = int(np.flatnonzero(result.failed)[0])
        why = (f"complex step: D(h) and D(h_2) at steps {result.h[i]:.1e} and about √u "
               f"disagree at coordinate {i} by {result.error[i] / 2:.1e}, far beyond "
               "rounding (f's complex arithmetic loses digits, e.g. a library function near "
               "the real axis); fell back to Richardson")
        return _richardson(replace(problem, h=None), (why,), ev.evaluations)
    disagreement = cross_check(real, result)
    if disagreement is not None:
        return _richardson(replace(problem, h=None), (disagreement,),
                           ev.evaluations + real.evaluations)
    return _Outcome(result, ev.evaluations + real.evaluations, "complex_step")


METHODS: dict[str, Callable[[_Problem], _Outcome]] = {
    "forward": _forward,
    "backward": _backward,
    "central": _central,
    "richardson": _richardson,
    "complex_step": _complex_step,
}

_NOTES = {
    "forward": "error = 2|C|·|Δ^(p+1)f|/h + 2u·Σ|w|·max(|f|, T)/h (T = max|D_i|·|x_i|)",
    "backward": "error = 2|C|·|Δ^(p+1)f|/h + 2u·Σ|w|·max(|f|, T)/h (T = max|D_i|·|x_i|)",
    "central": "error = 2|C|·|Δ^(p+1)f|/h + 2u·Σ|w|·max(|f|, T)/h (T = max|D_i|·|x_i|)",
    "richardson": "error = Ridders tableau error + 2u·|value|",
    "complex_step": "error = |D(h_2) - D(h)| (h_2 ≈ √u·max(|x|, 1), or |D(2h) - D(h)|/3 "
                    "for a large h) + 8u·|value| (gradients: 8u·max(|value_i|, "
                    "4·max|value|)); cross-checked against a real difference",
}


def _no_derivative_note(failed: np.ndarray, shape: tuple[int, ...]) -> str:
    where = [int(i) for i in np.flatnonzero(failed)[:5]]
    entries = "" if shape == () else f" at entries {where} (flat)" + \
        (" …" if failed.sum() > 5 else "")
    return ("no derivative found" + entries + ": the central differences never followed "
            "the h² expansion down to the rounding floor (a kink, a pole or a jump closer "
            "than the smallest usable step), so error = inf; try a point farther from it")


def _estimate(problem: _Problem, method: str) -> Estimate:
    outcome = METHODS[method](problem)
    result = outcome.result
    values = np.asarray(problem.ns.to_float(result.value), dtype=float)
    if not np.all(np.isfinite(values)):
        i = int(np.flatnonzero(~np.isfinite(values))[0])
        raise ValueError(
            f"`f` is not finite at the points {outcome.method} needs for entry {i} (NaN or "
            "inf: it overflows, or takes log(0) or 0·inf, there). Make f finite near `x` "
            "(e.g. a loss through log-sum-exp), move `x`, or pass a smaller `h`.")
    if np.any(np.isnan(result.error)):
        i = int(np.flatnonzero(np.isnan(result.error))[0])
        raise ValueError(
            f"the error estimate of entry {i} is undefined (NaN): `h` or `x` lies where "
            "float error estimates overflow or underflow. Pass a smaller `h` (or h=None), "
            "or rescale `x`.")
    if problem.shape == ():
        value, error, h = result.value[0], _error_scalar(result.error), _error_scalar(result.h)
    else:
        value = result.value.reshape(problem.shape)
        error, h = result.error.reshape(problem.shape), result.h.reshape(problem.shape)
    note = "; ".join((_NOTES[outcome.method], *outcome.notes))
    return Estimate(value=value, error=error, h=h, evaluations=outcome.evaluations,
                    method=outcome.method, note=note, numbers=problem.ns)


def _error_scalar(values: np.ndarray) -> float | np.longdouble:
    """The one entry of `values`: a Python float, or a long double beyond float range."""
    return float(values[0]) if values.dtype == np.float64 else values[0]


# -- validation at the entry ----------------------------------------------------------


def _check_method(method: Any, order: Any) -> None:
    if method not in METHODS:
        raise ValueError(f"`method` must be one of {sorted(METHODS)}; got {method!r}.")
    check_order(method, order)
