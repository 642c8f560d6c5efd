"""`check_network_gradient`: `check_gradient` for an `MLP`, with its blocks and batch size.

The loss handed to the check follows the number system of the point it is called with:
a complex point runs the network converted to the complex counterpart (complex step), a
wider point the network converted to the wider system (re-evaluation when the reference
is too noisy). The blocks are the layer matrices, named ``layer 1``, ``layer 2``, ...
with column 0 named ``bias``, so findings name layer, row and column; ``m = X.shape[0]``
lets the check name a factor ``1/m``. The reference gradient comes from the network's
own structure-aware `MLP.numerical_gradient` (a provider for the check's reference
stage), mapped to the F layout when ``order="F"``. The automatic reference
(``method="auto"``, ``h=None``) is computed in the system's `fast_reference_system` where
it has one (with gmpy2 installed): the network and its data converted, the conversions'
roundings in the error bars, and the reference's name saying where and how it was
computed. It takes the method cheapest there for the accuracy the check needs, not the
one the network's own system would pick: central differences (about 5 loss evaluations
per coordinate with their error bar) at ``1.5·N + CENTRAL_GUARD_DIGITS`` digits, whose
error ~u'^(2/3) lies far below the check's tolerance of ~128·u (`_fast_reference`); only
where their bars are too wide to leave the tolerance unchanged, the method the check
asked for at the fast system's own precision (the complex step in mpfrc:N for mpf:N,
Richardson in mpfr:(N+10) for decimal:N).
"""


from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np

from precision_nn import layout
from precision_nn.certified_network import check_network_certified
from precision_nn.gradcheck import probes
from precision_nn.gradcheck.check import run_check
from precision_nn.gradcheck.reference import METHOD_NAMES
from precision_nn.gradcheck.report import GradientReport
from precision_nn.gradcheck.tolerance import ROUNDING_FACTOR
from precision_nn.numbers import NumberSystem, infer_number_system

__all__ = ["check_network_gradient"]

# the methods `MLP.numerical_gradient` computes for the check's reference stage
_PROVIDED = ("complex_step", "richardson", "central")


def check_network_gradient(net: Any, X: Any, Y: Any, *, method: str = "auto", h: Any = None,
                           numbers: str | NumberSystem | None = None, order: str = "C",
                           directions: int | None = None,
                           progress: bool | None = None) -> GradientReport:
    """Check ``net.gradient(X, Y)`` against a numerical reference of ``net.loss(X, Y)``.

    Parameters are those of `check_gradient`; `numbers` converts the network first, and
    `order` chooses the layout of the flat vector the check perturbs ("F": MATLAB's).

    Examples
    --------
    >>> import numpy as np
    >>> from precision_nn.network import MLP
    >>> net = MLP([2, 3, 1], seed=1)
    >>> X, Y = np.array([[0.1, -0.4], [0.7, 0.2]]), np.array([[1.0], [0.0]])
    >>> check_network_gradient(net, X, Y).kinds
    ('match',)
    """
    if method == "certified":  # proven verdict: structure-aware Taylor-mode reference
        return check_network_certified(net, X, Y, numbers=numbers, order=order, h=h,
                                       directions=directions)
    if numbers is not None:
        net = net.to(numbers)
    if order not in ("C", "F"):
        raise ValueError(f"`order` must be 'C' or 'F'; got {order!r}.")
    X_arr = np.asarray(X, dtype=object if net.numbers.object_elements else None)
    if X_arr.ndim != 2:
        raise ValueError(f"`X` must have shape (m, n_in) with one example per row; "
                         f"got shape {X_arr.shape}.")
    nets: dict[str, Any] = {net.numbers.name: net}
    automatic = method == "auto" and h is None  # the reference the check chooses itself

    def network_for(system: NumberSystem) -> Any:
        if system.name not in nets:
            nets[system.name] = net.to(system)
        return nets[system.name]

    def as_c(p: np.ndarray) -> np.ndarray:
        if order == "C":
            return p
        return layout.flatten(layout.unflatten(p, net.shapes, order="F"), order="C")

    def as_order(p: Any) -> Any:
        if order == "C" or np.ndim(p) == 0:
            return p
        return layout.flatten(layout.unflatten(np.asarray(p), net.shapes, order="C"),
                              order="F")

    def f(p: Any) -> Any:
        target = network_for(infer_number_system(p))
        return target.loss(X, Y, params=as_c(np.asarray(p)))

    def grad(p: Any) -> Any:
        return as_order(net.gradient(X, Y, params=as_c(np.asarray(p))))

    def provider(method: str, system: NumberSystem, step: Any) -> Any:
        if method not in _PROVIDED:
            raise NotImplementedError(method)
        step = step if step is None or np.ndim(step) == 0 else as_c(np.asarray(step))
        est = _fast_reference(network_for(system), X, Y, method) \
            if automatic and step is None else None
        if est is None:
            est = network_for(system).numerical_gradient(X, Y, method=method, h=step)
        extra, pending[0] = pending[0], 0  # the fast probe's evaluations, reported once
        return replace(est, value=as_order(est.value), error=as_order(est.error),
                       h=as_order(est.h), evaluations=est.evaluations + extra)

    pending = [0]
    x = as_order(net.params)

    def complex_probe(*, requested: bool) -> Any:
        found = _probe_in_fast_system(f, x, net.numbers, requested=requested) \
            if automatic else None
        if found is None:
            return None
        pending[0] += found[1]
        return found[0]

    provider.complex_probe = complex_probe  # the check asks its provider first
    names = {f"layer {k + 1}": shape for k, shape in enumerate(net.shapes)}
    return run_check(f, grad, x, method=method, h=h, numbers=net.numbers, shapes=names,
                     order=order, directions=directions, batch_size=X_arr.shape[0],
                     provider=provider, column_names={0: "bias"}, progress=progress)


def _probe_in_fast_system(f: Any, x: np.ndarray, ns: NumberSystem, *,
                          requested: bool) -> tuple[Any, int] | None:
    """The check's complex-step probe of the loss run in ``ns.fast_reference_system()``
    and its complex counterpart (where the automatic reference is computed, and ~10x
    faster than mpmath's complex numbers), with the loss evaluations it took; None when
    `ns` has no fast system or no complex counterpart (the generic probe then says so).
    """
    fast = ns.fast_reference_system()
    if fast is None:
        return None
    try:
        ns.complex()
    except ValueError:
        return None
    calls = [0]

    def counted(point: Any) -> Any:
        calls[0] += int(np.shape(point)[0]) if np.ndim(point) == 2 else 1
        return f(point)

    # (no fine test: the network's loss is the library's own, built from activations and
    # losses whose complex steps are tested against mpmath, with no abs or real-part cast)
    probe = probes.complex_probe(counted, fast.asarray(x), fast, requested=requested,
                                 fine=False)
    where = f"probed in {fast.name} and {fast.complex().name} for {ns.name}"
    return replace(probe, reason=f"{probe.reason} ({where})"), calls[0]


# Inputs rounded into the fast system (a decimal network in binary) move each gradient
# entry by about κ·u_fast·(|g_i| + max|g|), κ the relative condition of the gradient in
# its inputs. The check's tolerance models the analytic gradient's own rounding the same
# way with κ <= ROUNDING_FACTOR (128); the reference's error bar takes the same factor for
# the conversion, at the fast system's unit roundoff (for decimal:N ~1e-10·u, far below).
CONVERSION_CONDITION = ROUNDING_FACTOR


# Central differences at the step the error model picks (h ~ u'^(1/3)) err by ~u'^(2/3)
# of the gradient's scale at the unit roundoff u' of their system: with 1.5·N + guard
# digits that is u·10^(-2·guard/3) relative to this system's u. At 6 guard digits,
# ~1e-4·u (measured on [20,30,10] × 8 at mpf:50 in mpfr:83: bars below
# 4e-5·u·(|g_i| + max|g|)), a millionth of the check's rounding term 128·u.
CENTRAL_GUARD_DIGITS = 6
# The bar of central differences estimates the truncation from a third difference
# measured near x (finite_difference: 2·|C|·|Δ³f|/h), which can understate it where the
# third derivative varies over the stencil: on [20,30,10] × 8 at mpf:50 the true error
# (against backprop at 130 digits) reached 1.8 × that bar at single entries. The
# reference's bars take 8 × it: still ~1e-3·u, far below what the tolerance can notice.
CENTRAL_SAFETY = 8.0
# the wide central reference is used only where all its bars are at most this share of
# u·(|g_i| + max|g|) (1/128 of the check's rounding term: the tolerance barely moves);
# otherwise (a kink or a huge third derivative inside the stencil) the requested method
DECIDING_SHARE = 1.0


def _fast_reference(net: Any, X: Any, Y: Any, method: str) -> Any:
    """The automatic reference of `net` computed in a fast system, in ``net.numbers``
    (None: there is no fast system, or it cannot evaluate the network).

    First central differences at `central_digits` digits; if a bar is wider than
    `DECIDING_SHARE`·u·(|g_i| + max|g|), `method` (the one the check asked for) at the
    fast system's own precision instead.
    """
    ns = net.numbers
    wide = ns.fast_reference_system(digits=central_digits(ns))
    est = None if wide is None else _in_fast_system(net, X, Y, "central", wide,
                                                    safety=CENTRAL_SAFETY)
    if est is not None and _decides(est, ns):
        share = float(np.max(est.error / _scale(est, ns))) / ns.unit_roundoff
        return replace(est, note=(
            f"central differences in {wide.name} cost less than the "
            f"{METHOD_NAMES[method]} for the accuracy this check needs: their error bars, "
            f"{CENTRAL_SAFETY:g} × their own estimate plus the roundings into and out of "
            f"{wide.name}{' and its balls’ radii' if wide.is_ball else ''}, are at most {share:.1e}·u·(|g_i| + max|g|) of {ns.name}; " +
            est.note))
    fast = ns.fast_reference_system()
    return None if fast is None else _in_fast_system(net, X, Y, method, fast)


def central_digits(ns: NumberSystem) -> int:
    """Decimal digits at which central differences err well below the unit roundoff u
    of `ns`: ``1.5·N + CENTRAL_GUARD_DIGITS`` with N = -log10(u).

    Examples
    --------
    >>> from precision_nn.numbers import number_system
    >>> central_digits(number_system("mpf:50")), central_digits(number_system("decimal:28"))
    (83, 47)
    """
    return math.ceil(1.5 * -math.log10(ns.unit_roundoff)) + CENTRAL_GUARD_DIGITS


def _scale(est: Any, ns: NumberSystem) -> np.ndarray:
    magnitude = np.asarray(ns.magnitude(est.value), dtype=ns.error_dtype)
    return magnitude + np.max(magnitude)


def _decides(est: Any, ns: NumberSystem) -> bool:
    """Whether every bar of `est` is at most `DECIDING_SHARE`·u·(|g_i| + max|g|)."""
    bound = ns.error_dtype.type(DECIDING_SHARE * ns.unit_roundoff) * _scale(est, ns)
    error = np.asarray(est.error, dtype=ns.error_dtype)
    return bool(np.all(np.isfinite(error) & (error <= bound)))


def _in_fast_system(net: Any, X: Any, Y: Any, method: str, fast: NumberSystem, *,
                    safety: float = 1.0) -> Any:
    """The structure-aware reference of `net` (in ``net.numbers``) computed in `fast`
    and returned in ``net.numbers``, its error bars holding the conversions; None when
    the fast system cannot evaluate it (the caller then computes in ``net.numbers``).

    The network's parameters and its data *as the network holds them* (X and Y rounded
    to ``net.numbers`` first) are converted, exactly where the fast system holds every
    number of ``net.numbers`` (mpf:N into mpfr:N), else each rounded once. The result is
    rounded back to ``net.numbers``: exact where it holds the fast system's numbers, else
    within its unit roundoff, added to the error bar. The method's own bars are taken
    `safety` times.
    """
    ns = net.numbers
    try:
        with ns.context():
            X_own, Y_own = ns.asarray(X), ns.asarray(Y)
        est = net.to(fast).numerical_gradient(fast.asarray(X_own), fast.asarray(Y_own),
                                              method=method)
    except (ArithmeticError, ValueError, TypeError):
        return None
    with ns.context():
        value = ns.asarray(est.value)
    magnitude = fast.magnitude(est.value).astype(ns.error_dtype)
    error = ns.error_dtype.type(safety) * np.asarray(est.error, dtype=ns.error_dtype)
    if fast.is_ball:  # the balls enclose the rounding of each quotient (and of the inputs)
        error = error + np.asarray(fast.radius(est.value), dtype=ns.error_dtype)
    if not fast.holds_exactly(ns):
        u_in = ns.error_dtype.type(fast.unit_roundoff)
        error = error + CONVERSION_CONDITION * u_in * (magnitude + np.max(magnitude))
    if not ns.holds_exactly(fast):
        error = error + ns.error_dtype.type(ns.unit_roundoff) * magnitude
    note = (f"computed in {fast.name} for {ns.name} (" +
            ("exact conversions" if fast.holds_exactly(ns) and ns.holds_exactly(fast) else
             "conversion roundings in the error bars") + "); " + est.note)
    return replace(est, value=value, error=error, note=note)

