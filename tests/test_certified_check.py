"""check_gradient(..., method="certified"): a zoo of buggy gradients proven wrong, their
correct versions proven consistent, kinks where nothing is proven — and what each
verdict says it proved and assumed."""

from __future__ import annotations

import numpy as np
import pytest

from precision_nn.gradcheck import check_gradient
from precision_nn.gradcheck.certified import CertifiedReport, check_certified
from precision_nn.numbers import number_system

flint = pytest.importorskip("flint")

NS = number_system("arb:30")
RNG = np.random.default_rng(7)


def _q(values):  # exact rationals as strings: the same problem in every precision
    return np.vectorize(lambda v: f"{round(v * 64)}/64")(values)


# -- functions written against the number system, each with its correct gradient ---------------
A = NS.asarray(_q(RNG.standard_normal((4, 4))))  # not symmetric: ∇ = (A + Aᵀ)x/2 − b
B = NS.asarray(_q(RNG.standard_normal(4)))
FEAT = NS.asarray(np.hstack([np.ones((6, 1)), _q(RNG.standard_normal((6, 2)))]))
LAB = NS.asarray((RNG.random(6) > 0.5).astype(int))
LAM = NS.scalar("0.3")
W1 = NS.asarray(_q(RNG.standard_normal((3, 2))))


def quad(x):
    return x @ (A @ x) / 2 - B @ x


def quad_grad(x):
    return (A @ x + A.T @ x) / 2 - B


def logreg(w):
    z = FEAT @ w
    data = np.sum(LAB * NS.softplus(-z) + (1 - LAB) * NS.softplus(z)) / 6
    return data + LAM / 12 * np.sum(w[1:] * w[1:])


def logreg_grad(w, *, mean=True, bias_reg=False, lam_over=6):
    g = FEAT.T @ (NS.sigmoid(FEAT @ w) - LAB)
    g = g / 6 if mean else g
    reg = LAM / lam_over * w
    if not bias_reg:
        reg[0] = NS.zero
    return g + reg


def tanh_sum(x):
    return np.sum(NS.tanh(x) * x)


def tanh_sum_grad(x):
    t = NS.tanh(x)
    return t + x * (1 - t * t)


def two_layer(v):
    # f(v) = sum(tanh(W1 v) ** 2) / 2
    return np.sum(NS.tanh(W1 @ v) ** 2) / 2


def two_layer_grad(v, *, at_a=False, transpose=False):
    z = W1 @ v
    a = NS.tanh(z)
    slope = 1 - (NS.tanh(a) ** 2 if at_a else a * a)  # the bug: g'(a) instead of g'(z)
    back = a * slope
    return (W1.T @ back) if not transpose else np.reshape(W1, (2, 3))[:, :3] @ back


POINTS = {
    "quad": NS.asarray(_q(RNG.standard_normal(4))),
    "logreg": NS.asarray(_q(RNG.standard_normal(3))),
    "tanh_sum": NS.asarray(["0.5", "-1.25", "2", "0.001"]),
    "two_layer": NS.asarray(["0.75", "-0.5"]),
}
FUNCTIONS = {"quad": quad, "logreg": logreg, "tanh_sum": tanh_sum, "two_layer": two_layer}
CORRECT = {"quad": quad_grad, "logreg": logreg_grad, "tanh_sum": tanh_sum_grad,
           "two_layer": two_layer_grad}

BUGS = {  # name: (function, buggy gradient) — each a bug people write
    "quadratic, A x for an asymmetric A": ("quad", lambda x: A @ x - B),
    "quadratic, missing ½ (factor 2)": ("quad", lambda x: A @ x + A.T @ x - B),
    "quadratic, sign of the linear term": ("quad", lambda x: (A @ x + A.T @ x) / 2 + B),
    "logreg, missing 1/m": ("logreg", lambda w: logreg_grad(w, mean=False)),
    "logreg, L2 on the bias": ("logreg", lambda w: logreg_grad(w, bias_reg=True)),
    "logreg, λ/(2m) instead of λ/m": ("logreg", lambda w: logreg_grad(w, lam_over=12)),
    "logreg, whole gradient negated": ("logreg", lambda w: -logreg_grad(w)),
    "tanh, missing square in 1 - tanh²": ("tanh_sum", lambda x: NS.tanh(x) + x * (
        1 - NS.tanh(x))),
    "tanh, product rule half forgotten": ("tanh_sum", lambda x: 1 - NS.tanh(x) ** 2),
    "two-layer, g'(a) for g'(z)": ("two_layer", lambda v: two_layer_grad(v, at_a=True)),
    "two-layer, off by one part in 10^20": ("two_layer", lambda v: two_layer_grad(v) * (
        1 + NS.scalar("1e-20"))),
    "tanh, one entry off by 1e-25": ("tanh_sum", lambda x: tanh_sum_grad(x) + np.array(
        [NS.zero, NS.zero, NS.scalar("1e-25"), NS.zero], dtype=object)),
}


@pytest.mark.parametrize("bug", sorted(BUGS))
def test_every_buggy_gradient_in_the_zoo_is_proven_wrong(bug):
    name, grad = BUGS[bug]
    report = check_gradient(FUNCTIONS[name], grad, POINTS[name], method="certified",
                            numbers=NS)
    assert isinstance(report, CertifiedReport)
    assert report.status == "proven_wrong" and not report.passed, str(report)
    assert report.wrong and str(report).startswith("Gradient check PROVEN WRONG at entries")
    assert "proven:" in str(report) and "assumed:" in str(report)
    assert "nothing about the analytic gradient" in report.assumed  # balls: no assumption


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_every_correct_gradient_is_proven_consistent(name):
    report = check_gradient(FUNCTIONS[name], CORRECT[name], POINTS[name],
                            method="certified", numbers=NS)
    assert report.status == "consistent" and report.passed, str(report)
    assert report.kinds == ("match",)
    assert "CONSISTENT: |a − ∂f| ≤ r at every entry, proven" in report.verdict()
    # the proven bound: |a − ∂f| ≤ r_i, a few radii of arb:30 (u = 2^-103 ≈ 1e-31)
    scale = np.max(np.abs(report.reference))
    assert np.all(report.bound <= 1e-27 * scale)


def test_a_float64_gradient_is_judged_with_its_rounding_stated_as_an_assumption():
    x = np.array([0.5, -1.25, 2.0, 0.001])
    right = lambda v: np.tanh(x) + x * (1 - np.tanh(x) ** 2)
    report = check_gradient(tanh_sum, right, x, method="certified", numbers=NS)
    assert report.status == "consistent"
    assert "given in float64" in report.assumed and "u = 1.1e-16" in report.assumed
    wrong = lambda v: right(v) * (1 + 1e-9)
    report = check_gradient(tanh_sum, wrong, x, method="certified", numbers=NS)
    assert report.status == "proven_wrong" and report.wrong == (0, 1, 2, 3)


def test_at_a_kink_nothing_is_proven_and_the_entry_is_named():
    def relu_sum(x):
        return np.sum(np.where(NS.real_part(x) > 0, x, NS.zero) * x)

    def relu_grad(x):
        return 2 * np.where(NS.real_part(x) > 0, x, NS.zero)

    report = check_certified(relu_sum, relu_grad, ["1", "0", "-2"], numbers=NS)
    assert report.status == "cannot_prove" and not report.passed
    assert report.unprovable == (1,) and report.kinds == ("kink",)
    assert "CANNOT PROVE at entries 1" in report.verdict()
    assert "cannot decide 0 > 0" in report.findings[0].message
    # away from the kink the same pair is proven consistent
    assert check_certified(relu_sum, relu_grad, ["1", "0.5", "-2"], numbers=NS).passed


def test_a_wrong_entry_is_proven_even_where_others_cannot_be():
    def relu_sum(x):
        return np.sum(np.where(NS.real_part(x) > 0, x, NS.zero) * x)

    report = check_certified(relu_sum, lambda x: 3 * np.where(NS.real_part(x) > 0, x,
                                                              NS.zero), ["1", "0", "-2"],
                             numbers=NS)
    assert report.status == "proven_wrong" and report.wrong == (0,)
    assert 1 in report.unprovable


def test_blocks_name_the_wrong_entries():
    report = check_certified(quad, lambda x: A @ x - B, POINTS["quad"], numbers=NS,
                             shapes=[(2, 2)])
    assert report.status == "proven_wrong" and report.wrong == (0, 1, 2, 3)
    assert report.verdict().endswith(", ".join(report.blocks.label(i) for i in range(4)))


def test_the_usual_findings_explain_a_proven_bug():
    report = check_gradient(tanh_sum, lambda x: tanh_sum_grad(x) / 4, POINTS["tanh_sum"],
                            method="certified", numbers=NS)
    assert report.status == "proven_wrong" and report.kinds[0] == "scale", report.kinds
    assert abs(report.findings[0].evidence["factor"] - 0.25) < 1e-12


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"numbers": "mpf:30"}, r"needs a real ball system.*'mpf:30'.*numbers='arb:N'"),
    ({"numbers": "acb:30"}, r"needs a real ball system.*'acb:30'"),
    ({"numbers": NS, "h": "0.1"}, r"`h` is not used by method='certified'"),
    ({"numbers": NS, "directions": 3}, r"`directions` cannot be combined"),
    ({"numbers": NS, "order": "X"}, r"`order` must be 'C' or 'F'"),
])
def test_certified_validation_names_the_fix(kwargs, match):
    with pytest.raises(ValueError, match=match):
        check_gradient(tanh_sum, tanh_sum_grad, ["0.5", "1"], method="certified", **kwargs)


def test_a_gradient_of_the_wrong_size_is_refused():
    with pytest.raises(ValueError, match=r"`grad\(x\)` must have one entry per entry of x"):
        check_certified(tanh_sum, lambda x: x[:1], ["0.5", "1"], numbers=NS)


def test_proofs_hold_beyond_the_float_range_at_1000_digits():
    # u = 2^-3325 and radii ~1e-1000 underflow a float: the verdict is decided in balls
    ns = number_system("arb:1000")

    def f(x):
        return np.sum(ns.tanh(x) * x)

    def good(x):
        return ns.tanh(x) + x * (1 - ns.tanh(x) ** 2)

    x = ["0.5", "-1"]
    assert check_certified(f, good, x, numbers=ns).status == "consistent"
    off = check_certified(f, lambda v: good(v) * (1 + ns.scalar("1e-900")), x, numbers=ns)
    assert off.status == "proven_wrong" and off.wrong == (0, 1)
    mpf = number_system("mpf:1000")  # given in mpf:1000: its rounding 2^-3325 is assumed
    report = check_certified(f, lambda v: mpf.asarray(good(ns.asarray(x))), x, numbers=ns)
    assert report.status == "consistent" and "u = 2^-332" in report.assumed
