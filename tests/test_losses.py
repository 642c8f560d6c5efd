"""Stable losses at saturation against mpmath, in every number system.

A confident output (a logit gap of 20 in float16, 110 in float32, 760 in float64, or a
sigmoid logit of ±40) rounds the probability to 0 or 1, and the textbook forms
``−y log a − (1−y) log(1−a)`` and ``−Σ y log a`` then give NaN (0·log 0), inf, or 0 for a
loss of 1e-330. The stable forms of `precision_nn.losses` are evaluated from the logits
and must be within a few ulps of the exact loss, and their backprop rules (∂J/∂z) within a
few ulps of the exact σ(z) − y and softmax(z)·Σy − y, entry by entry (relative to the
terms each entry is the difference of, which at saturation is the entry itself).

The reference is the textbook definition in mpmath at 2N + 20 digits plus the digits the
cancellation at saturation costs it (log σ(z) of z = 760 needs 330 more digits), on exactly
the values the system holds.

``python -m tests.test_losses`` prints the worst errors observed, in ulps.
"""

from __future__ import annotations

import math
import sys
from typing import Any

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from precision_nn.losses import LOSSES
from precision_nn.network import MLP
from precision_nn.numbers import NumberSystem, number_system
from tests.reference import complex_step_gradient
from tests.test_numbers import error_in_ulps, exact

SYSTEMS = ["float16", "float32", "float64", "decimal:30", "mpf:30", "mpfr:30", "arb:30"]
# The stable forms sum at most n ≈ 4 terms per example (each >= 0, so no cancellation),
# each from one exp and one log1p (<= 1 ulp each in every system, tests/test_numbers.py)
# and a subtraction of logits: a first-order bound of ~3 ulps for one example; 4 ulps.
# A system whose loss is off by more than that has lost the stable form.
LOSS_ULPS = 4.0
# ∂J/∂z entries: σ(−|z|) = e/(1+e) from one exp, one add and one divide, then one
# subtraction of y (<= 3 ulps); the softmax top entry adds a sum of n - 1 terms: 4 ulps.
DELTA_ULPS = 4.0

CE = LOSSES["cross_entropy"]
SOFTMAX = LOSSES["softmax_cross_entropy"]


def _reference(ns: NumberSystem, z: np.ndarray) -> Any:
    """An mpmath context at 2N + 20 digits plus the digits that the widest gap between
    logits cancels (log(1 + e^-gap) of the definition loses gap·log10(e) digits; the gap
    between z and -z is 2|z|)."""
    ref = mpmath.MPContext()
    largest = max(abs(float(np.real(ns.to_float(v)))) for v in np.ravel(z))
    ref.dps = 2 * ns.digits + 20 + math.ceil(2 * largest * math.log10(math.e))
    return ref


def _exact_rows(ref: Any, values: np.ndarray) -> list[list[Any]]:
    return [[exact(ref, v) for v in row] for row in values]


# Each entry of ∂J/∂z is a difference of two exact quantities, which no algorithm can
# resolve below the rounding of its terms: the references also return that "scale", the
# sum of the magnitudes of the two terms, as the stable rules form them (σ(z) − y as
# (1 − y) − σ(−z) for z > 0; the top softmax entry as Σ_{j≠t} y_j − Σy·(1 − a_t)). At
# saturation the larger term vanishes exactly (y = 1, or a one-hot top class), so the
# scale is the entry itself and the test is entrywise relative.
def _sigmoid_ce_reference(ref: Any, z: list, y: list) -> tuple[Any, list, list]:
    """J = −(1/m) Σ [y log σ(z) + (1−y) log(1 − σ(z))], ∂J/∂z = (σ(z) − y)/m, scales."""
    m = len(z)
    sigma = [[1 / (1 + ref.exp(-v)) for v in row] for row in z]
    J = -ref.fsum(t * ref.log(s) + (1 - t) * ref.log(1 - s)
                  for srow, trow in zip(sigma, y) for s, t in zip(srow, trow)) / m
    delta = [[(s - t) / m for s, t in zip(srow, trow)] for srow, trow in zip(sigma, y)]
    scale = [[((1 - t) + (1 - s) if v > 0 else s + t) / m
              for v, s, t in zip(zrow, srow, trow)]
             for zrow, srow, trow in zip(z, sigma, y)]
    return J, delta, scale


def _softmax_ce_reference(ref: Any, z: list, y: list) -> tuple[Any, list, list]:
    """J = −(1/m) Σ y log softmax(z), ∂J/∂z = (softmax(z)·Σy − y)/m, scales."""
    m, J, delta, scale = len(z), 0, [], []
    for zrow, trow in zip(z, y):
        total = ref.fsum(ref.exp(v) for v in zrow)
        a = [ref.exp(v) / total for v in zrow]
        J -= ref.fsum(t * ref.log(p) for p, t in zip(a, trow))
        top, weight = zrow.index(max(zrow)), ref.fsum(trow)
        delta.append([(p * weight - t) / m for p, t in zip(a, trow)])
        scale.append([(weight - t + weight * (1 - p) if k == top else p * weight + t) / m
                      for k, (p, t) in enumerate(zip(a, trow))])
    return J / m, delta, scale


REFERENCES = {"cross_entropy": _sigmoid_ce_reference,
              "softmax_cross_entropy": _softmax_ce_reference}


def _errors(ns: NumberSystem, name: str, z_text: list, y_text: list) -> tuple[float, float]:
    """Worst errors of the stable loss and of its ∂J/∂z against the reference, in ulps
    divided by β/2 (1 for binary systems, 5 for decimal): a relative error k·u is at most
    k·β/2 ulps, since an ulp of a value just above a power of β is β times smaller
    relative to it than just below the next (Decimal's wobbling precision, Higham §2.1)."""
    loss = LOSSES[name]
    z, y = ns.asarray(z_text), ns.asarray(y_text)
    with ns.context():
        J = loss.from_logits(ns, z, y)
        delta = loss.logit_delta(ns, z, None, y)
    ref = _reference(ns, z)
    J_ref, delta_ref, scale = REFERENCES[name](ref, _exact_rows(ref, z), _exact_rows(ref, y))
    assert ns.isfinite(np.asarray([J], dtype=object if ns.object_elements else None)).all()
    loss_err = error_in_ulps(ns, J, J_ref, ref)
    u = ref.mpf(ns.unit_roundoff)
    delta_err = max(min(error_in_ulps(ns, d, d_ref, ref),
                        float(abs(exact(ref, d) - d_ref) / (2 * u * s)) if s else math.inf)
                    for drow, rrow, srow in zip(delta, delta_ref, scale)
                    for d, d_ref, s in zip(drow, rrow, srow))
    wobble = ns.radix / 2
    return loss_err / wobble, delta_err / wobble


# Saturated cases: (loss, logits per example, targets). Softmax rows put the target on the
# top class (confident and correct: the loss is ~e^-gap), on a low class (confident and
# wrong: ~gap), or split it (soft targets that do not sum to 1).
def _softmax_cases(gap: int) -> list[tuple[str, list, list]]:
    return [("softmax_cross_entropy", [[gap, 0, -1]], [[1, 0, 0]]),
            ("softmax_cross_entropy", [[0, gap, gap - 3]], [[0, 1, 0]]),
            ("softmax_cross_entropy", [[gap, 0, 1]], [[0, 0, 1]]),
            ("softmax_cross_entropy", [[-gap, 0, 2], [gap, gap, 0]], [["0.25", 0, "0.5"],
                                                                      [1, 0, 0]])]


def _sigmoid_cases(z: int) -> list[tuple[str, list, list]]:
    return [("cross_entropy", [[z, -z]], [[0, 1]]), ("cross_entropy", [[z, -z]], [[1, 0]]),
            ("cross_entropy", [[-z], [z]], [["0.25"], ["0.75"]])]


SATURATED = [*_softmax_cases(20), *_softmax_cases(110), *_softmax_cases(760),
             *_sigmoid_cases(40), *_sigmoid_cases(110), *_sigmoid_cases(760)]


@pytest.mark.parametrize("spec", SYSTEMS)
@pytest.mark.parametrize(("name", "z", "y"), SATURATED,
                         ids=[f"{c[0]}-{c[1]}-{c[2]}" for c in SATURATED])
def test_saturated_losses_are_finite_and_accurate(spec: str, name: str, z: list,
                                                  y: list) -> None:
    ns = number_system(spec)
    loss_err, delta_err = _errors(ns, name, z, y)
    assert loss_err <= LOSS_ULPS, (spec, loss_err)
    assert delta_err <= DELTA_ULPS, (spec, delta_err)


@pytest.mark.parametrize(("spec", "gap"), [("float16", 20), ("float32", 110),
                                           ("float64", 760), ("decimal:30", 80),
                                           ("mpf:30", 80)])
def test_the_textbook_form_fails_where_the_stable_one_holds(spec: str, gap: int) -> None:
    """The saturated points really saturate: −Σ y log softmax(z) from the outputs gives NaN
    (0·log 0, the IEEE formats, where e^-gap underflows) or loses the whole value (1 rounds
    up from 1 − e^-gap, the wide systems); the stable form does not."""
    ns = number_system(spec)
    z, y = ns.asarray([[gap, 0, -1]]), ns.asarray([[1, 0, 0]])
    with ns.context(), np.errstate(divide="ignore", invalid="ignore"):
        a = ns.exp(z - ns.scalar(gap))
        a = a / np.sum(a, axis=-1, keepdims=True)
        naive = -np.sum(y * ns.log(a))
    ref = _reference(ns, z)
    J_ref, _, _ = _softmax_ce_reference(ref, _exact_rows(ref, z), _exact_rows(ref, y))
    broken = not ns.isfinite(np.asarray([naive], dtype=object)).all() or \
        error_in_ulps(ns, naive, J_ref, ref) > 1000 * LOSS_ULPS
    assert broken, naive
    assert _errors(ns, "softmax_cross_entropy", [[gap, 0, -1]], [[1, 0, 0]])[0] <= LOSS_ULPS


def test_outputs_of_zero_and_one_give_no_nan_in_the_form_from_outputs() -> None:
    """Cross-entropy on a non-canonical output is formed from a: 0·log 0 counts as 0."""
    ns = number_system("float64")
    a, y = ns.asarray([[1.0, 0.0, 0.5]]), ns.asarray([[1, 0, 1]])
    assert SOFTMAX.value(ns, a, y) == pytest.approx(math.log(2))
    assert CE.value(ns, ns.asarray([[1.0, 0.0]]), ns.asarray([[1, 0]])) == 0


def test_sigmoid_cross_entropy_at_z_40_y_0_is_40() -> None:
    # the textbook form: -log(1 - σ(40)) = -log(0) = inf in float64
    ns = number_system("float64")
    J = CE.from_logits(ns, ns.asarray([[40]]), ns.asarray([[0]]))
    assert J == 40.0  # 40 + log1p(e^-40) = 40 + 4.2e-18 rounds to 40


# random logits of every scale, also beyond saturation, and targets in [0, 1]
logit_rows = st.lists(st.floats(-1.0, 1.0), min_size=2, max_size=4)


@settings(max_examples=25, deadline=None)
@given(rows=st.lists(logit_rows, min_size=1, max_size=3), scale=st.sampled_from(
    [1, 30, 300, 700]), targets=st.lists(st.sampled_from(["0", "1", "0.25", "0.5"]),
                                         min_size=12, max_size=12),
       spec=st.sampled_from(SYSTEMS), name=st.sampled_from(sorted(REFERENCES)))
def test_random_logits_at_every_scale(rows, scale, targets, spec, name) -> None:
    ns = number_system(spec)
    if ns.name == "float16":
        scale = min(scale, 300)  # e^{|z|} stays within the reference's cancellation budget
    width = len(rows[0])
    z = [[str(round(v * scale, 2)) for v in row[:width] + [0.0] * (width - len(row))]
         for row in rows]
    y = [[targets[(i * width + k) % len(targets)] for k in range(width)]
         for i in range(len(z))]
    loss_err, delta_err = _errors(ns, name, z, y)
    # Decimal logits round into the system, and so may their differences z_t − z_k: a
    # relative rounding u of a gap g makes e^-g off by g·u relative, which no algorithm
    # working in the system avoids (the conditioning of exp; Blanchard, Higham & Higham,
    # "Accurately computing the log-sum-exp and softmax functions", IMA J. Numer. Anal.
    # 41, 2021, Thm 2.2). So the random cases allow the largest gap in ulps on top; the
    # saturated cases above have gaps exact in every system and get no such allowance.
    values = np.real(ns.to_float(ns.asarray(z)))
    gap = float(np.max(np.max(values, axis=-1) - np.min(values, axis=-1)))
    if name == "cross_entropy":
        gap = 0.0  # sigmoid: e^-|z| of the held z itself, no rounded difference
    assert loss_err <= LOSS_ULPS + gap and delta_err <= DELTA_ULPS + gap, (loss_err,
                                                                          delta_err, gap)


# ---------------------------------------------------------------------------------------
# The complex step of the stable loss stays exact: saturated networks against backprop
# ---------------------------------------------------------------------------------------


def _saturated_net(spec: str, output: str, loss: str, scale: int) -> tuple[MLP, Any, Any]:
    net = MLP([2, 3, 3], hidden="tanh", output=output, loss=loss, numbers="float64", seed=5)
    # output weights scaled up: logits of size ~scale, so the outputs saturate
    params = net.params.copy()
    start = net.shapes[0][0] * net.shapes[0][1]
    params[start:] *= scale
    net = MLP([2, 3, 3], hidden="tanh", output=output, loss=loss, numbers=spec,
              init=number_system(spec).asarray(params))
    rng = np.random.default_rng(1)
    X = rng.standard_normal((4, 2))
    Y = np.eye(3)[rng.integers(0, 3, 4)]
    return net, X, Y


@pytest.mark.parametrize("spec", ["float64", "mpf:30"])
@pytest.mark.parametrize(("output", "loss"), [("softmax", "softmax_cross_entropy"),
                                              ("sigmoid", "cross_entropy")])
@pytest.mark.parametrize("scale", [30, 300])
def test_saturated_backprop_matches_the_complex_step_reference(spec, output, loss, scale):
    """Backprop of a network with outputs saturated to 1e-13 .. 1e-130 against the complex
    step (h = 1e-40) of the stable loss in mpc:60: entrywise to 16·u of the entry plus 16·u
    of ‖g‖∞ times the condition of the output layer (|z|: the logits carry a relative
    rounding of u, which σ and softmax turn into an absolute error of u·|z| in ∂J/∂z)."""
    net, X, Y = _saturated_net(spec, output, loss, scale)
    ref = complex_step_gradient(net, X, Y)
    wide = number_system("mpc:60").real()
    g = wide.asarray(net.gradient(X, Y))
    logits = float(np.max(np.abs(net.numbers.to_float(net._forward(
        net.numbers.asarray(X), net.params)[0][-1]))))
    u = net.numbers.unit_roundoff
    bound = 16 * u * (np.abs(ref) + logits * float(np.max(np.abs(ref))))
    assert np.all(np.abs(g - ref) <= bound), float(np.max(np.abs(g - ref) / bound))


@pytest.mark.parametrize(("output", "loss"), [("softmax", "softmax_cross_entropy"),
                                              ("sigmoid", "cross_entropy")])
def test_complex_step_of_a_saturated_complex128_network_is_exact(output, loss):
    """Im J(θ + i·h·e_j)/h at h = 1e-200 in complex128 equals float64 backprop to ~u
    also at saturation: no branch sees the imaginary part, nothing cancels."""
    net, X, Y = _saturated_net("float64", output, loss, 300)
    g = net.gradient(X, Y)
    cnet = net.to("complex128")
    h = 1e-200
    stack = np.tile(cnet.params, (net.n_params, 1)) + 1j * h * np.eye(net.n_params)
    losses = cnet.loss(X, Y, params=stack)
    assert np.all(np.isfinite(losses))
    cs = np.imag(losses) / h
    assert np.max(np.abs(cs - g)) <= 64 * 2**-53 * np.max(np.abs(g))


@pytest.mark.parametrize("spec", SYSTEMS)
def test_saturated_network_loss_is_finite(spec):
    net, X, Y = _saturated_net(spec, "softmax", "softmax_cross_entropy", 300)
    J = net.loss(X, Y)
    assert np.all(net.numbers.isfinite(np.asarray([J], dtype=object)
                                       if net.numbers.object_elements else np.asarray(J)))


# ---------------------------------------------------------------------------------------
# python -m tests.test_losses: worst errors at the saturated points, in ulps
# ---------------------------------------------------------------------------------------


def _textbook(ns: NumberSystem, name: str, z: np.ndarray, y: np.ndarray) -> Any:
    """The forms from the outputs, as the losses were before: a = σ(z) or softmax(z), then
    −Σ [y log a + (1−y) log(1−a)] or −Σ y log a, with 0·log 0 as NaN."""
    with ns.context(), np.errstate(all="ignore"):
        if name == "cross_entropy":
            a = ns.one / (ns.one + ns.exp(-z))
            terms = y * ns.log(a) + (ns.one - y) * ns.log(ns.one - a)
        else:
            e = ns.exp(z - np.max(z, axis=-1, keepdims=True))
            terms = y * ns.log(e / np.sum(e, axis=-1, keepdims=True))
        return -np.sum(terms) / z.shape[0]


def _observed() -> None:
    for spec in SYSTEMS:
        ns = number_system(spec)
        worst: dict[str, list[float]] = {}
        for name, z, y in SATURATED:
            loss_err, delta_err = _errors(ns, name, z, y)
            try:
                old = _textbook(ns, name, ns.asarray(z), ns.asarray(y))
                ok = ns.isfinite(np.asarray([old], dtype=object)).all()
                ref = _reference(ns, ns.asarray(z))
                J_ref = REFERENCES[name](ref, _exact_rows(ref, ns.asarray(z)),
                                         _exact_rows(ref, ns.asarray(y)))[0]
                old_err = error_in_ulps(ns, old, J_ref, ref) if ok else math.inf
            except (ValueError, ArithmeticError):  # Decimal traps 0·log 0 and exp overflow
                old_err = math.inf
            row = worst.setdefault(name, [0.0, 0.0, 0.0, 0])
            row[0], row[1] = max(row[0], loss_err), max(row[1], delta_err)
            row[2] = max(row[2], old_err if math.isfinite(old_err) else 0.0)
            row[3] += not math.isfinite(old_err)
        print(f"{spec:11s} " + "  ".join(
            f"{name}: stable loss {v[0]:.3f} ulp, dJ/dz {v[1]:.3f} ulp; textbook: "
            f"{v[3]} non-finite, worst finite {v[2]:.3g} ulp" for name, v in worst.items()))


if __name__ == "__main__":
    _observed()
    sys.exit(0)
