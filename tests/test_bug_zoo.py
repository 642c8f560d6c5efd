"""The bug zoo: every finding kind shown by at least two buggy gradients on different functions.

Functions: a quadratic form, L2-regularised logistic regression, a small hand-written
two-layer network with its own backprop, sums of ReLUs, a hinge loss, and precision_nn's
MLP. Each buggy gradient is a bug people write (the seeds and the usual suspects); each
test checks the kind of the finding and, where the finding carries one, its number.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from precision_nn.gradcheck import check_gradient, check_network_gradient
from precision_nn.network import MLP
from precision_nn.numbers import number_system

RNG = np.random.default_rng(2024)

# -- a quadratic form -----------------------------------------------------------------------
A = RNG.standard_normal((5, 5))
A = A @ A.T + np.eye(5)
B = RNG.standard_normal(5)
X5 = RNG.standard_normal(5)


def quad(x):
    return 0.5 * x @ A @ x - B @ x


def quad_grad(x):
    return A @ x - B


# -- logistic regression with L2 on the weights (not on the bias, column 0) --------------------
M = 7
FEATURES = np.hstack([np.ones((M, 1)), RNG.standard_normal((M, 3))])
LABELS = (RNG.random(M) > 0.5).astype(float)
W4 = RNG.standard_normal(4)
LAM = 0.8


def logreg(w, lam=LAM):
    z = FEATURES @ w
    # log σ(z) and log(1 - σ(z)) written with exp/log only (complex-step safe)
    data = np.sum(LABELS * np.log(1 + np.exp(-z)) + (1 - LABELS) * np.log(1 + np.exp(z))) / M
    return data + lam / (2 * M) * np.sum(w[1:] ** 2)


def logreg_grad(w, lam=LAM, *, mean=True, reg=None, bias_reg=False):
    p = 1 / (1 + np.exp(-FEATURES @ w))
    g = FEATURES.T @ (p - LABELS)
    g = g / M if mean else g
    reg_w = (lam / M if reg is None else reg) * w
    if not bias_reg:
        reg_w[0] = 0.0
    return g + reg_w


# -- a hand-written 2-layer network: tanh hidden, sigmoid output, squared error ----------------
N_IN, N_HID, N_OUT, M2 = 3, 4, 2, 5
SHAPES2 = [(N_HID, N_IN + 1), (N_OUT, N_HID + 1)]
X2 = RNG.standard_normal((M2, N_IN))
Y2 = RNG.random((M2, N_OUT))
P2 = RNG.standard_normal(sum(r * c for r, c in SHAPES2)) * 0.7


def _mats(p):
    n1 = SHAPES2[0][0] * SHAPES2[0][1]
    return p[:n1].reshape(SHAPES2[0]), p[n1:].reshape(SHAPES2[1])


def _forward2(p):
    W1, W2 = _mats(p)
    a0 = np.hstack([np.ones((M2, 1)), X2])
    z1 = a0 @ W1.T
    a1 = np.hstack([np.ones((M2, 1)), np.tanh(z1)])
    z2 = a1 @ W2.T
    return a0, z1, a1, z2, 1 / (1 + np.exp(-z2))


def net2(p):
    *_, out = _forward2(p)
    return 0.5 * np.sum((out - Y2) ** 2) / M2


def net2_grad(p, *, bug=None):
    _W1, W2 = _mats(p)
    a0, z1, a1, _z2, out = _forward2(p)
    d2 = (Y2 - out) if bug == "sign" else (out - Y2)
    # the derivative of the sigmoid at a (σ(a)(1-σ(a))) instead of at z: g'(a) for g'(z)
    s = 1 / (1 + np.exp(-out)) if bug == "g_of_a" else out
    d2 = d2 * s * (1 - s)
    d1 = (d2 @ W2[:, 1:]) * (1 - np.tanh(z1) ** 2)
    if bug == "chain":
        d1 = d2 @ W2[:, 1:]  # the tanh' factor of the chain rule forgotten
    G1, G2 = d1.T @ a0 / M2, d2.T @ a1 / M2
    if bug == "half":
        G1, G2 = G1 / 2, G2 / 2
    if bug == "transposed":
        return np.concatenate([(a0.T @ d1 / M2).ravel(), G2.ravel()])  # G1 built as (in+1, hid)
    if bug == "hidden_bias":
        G1[:, 0] = 0.0  # the bias gradient of the hidden layer forgotten
    if bug == "output_sign":
        G2 = -G2
    return np.concatenate([G1.ravel(), G2.ravel()])


# -- precision_nn's MLP -----------------------------------------------------------------------
def _mlp(numbers="float64", hidden="sigmoid", l2="0"):
    net = MLP([3, 4, 2], hidden=hidden, l2=l2, numbers=numbers, seed=5)
    X = np.random.default_rng(1).standard_normal((4, 3)) / 2
    Y = np.eye(2)[[0, 1, 1, 0]]
    return net, X, Y


def _check_mlp(net, X, Y, grad, **options):
    f = lambda p: net.loss(X, Y, params=p)
    return check_gradient(f, grad, net.params, shapes=net.shapes, batch_size=len(X), **options)


def _kinds(report):
    return set(report.kinds)


# =============================================================================================
# match
# =============================================================================================
@pytest.mark.parametrize("case", ["quad", "logreg", "net2", "mlp"])
def test_match_on_correct_gradients(case):
    if case == "quad":
        report = check_gradient(quad, quad_grad, X5)
    elif case == "logreg":
        report = check_gradient(logreg, logreg_grad, W4)
    elif case == "net2":
        report = check_gradient(net2, net2_grad, P2, shapes=SHAPES2)
    else:
        net, X, Y = _mlp()
        report = check_network_gradient(net, X, Y)
    assert report.kinds == ("match",) and report.passed


# =============================================================================================
# scale
# =============================================================================================
def test_scale_missing_one_over_m_in_logistic_regression():
    report = check_gradient(lambda w: logreg(w, 0.0), lambda w: logreg_grad(w, 0.0, mean=False),
                            W4, batch_size=M)
    assert report.kinds == ("scale",) and not report.passed
    finding = report.findings[0]
    assert finding.evidence["factor"] == pytest.approx(M)
    assert "m (= 7, the batch size)" in finding.message


def test_scale_half_in_a_two_layer_network():
    report = check_gradient(net2, lambda p: net2_grad(p, bug="half"), P2, shapes=SHAPES2)
    assert report.kinds == ("scale",)
    assert report.findings[0].evidence["factor"] == pytest.approx(0.5)
    assert report.findings[0].message.startswith("Every block")


def test_scale_of_one_layer_of_the_mlp():
    net, X, Y = _mlp()
    n0 = net.shapes[0][0] * net.shapes[0][1]

    def grad(p):
        g = net.gradient(X, Y, params=p).copy()
        g[:n0] *= len(X)  # layer 1 forgot its 1/m
        return g

    report = _check_mlp(net, X, Y, grad)
    assert report.kinds == ("scale",)
    assert report.findings[0].evidence["block"] == 0
    assert report.findings[0].evidence["factor"] == pytest.approx(4)


# =============================================================================================
# sign
# =============================================================================================
def test_sign_of_a_quadratic_form():
    report = check_gradient(quad, lambda x: B - A @ x, X5)
    assert report.kinds == ("sign",)


def test_sign_of_the_output_delta_in_a_two_layer_network():
    report = check_gradient(net2, lambda p: net2_grad(p, bug="sign"), P2, shapes=SHAPES2)
    assert report.kinds == ("sign",) and report.findings[0].message.startswith("Every block")


def test_sign_of_one_block():
    report = check_gradient(net2, lambda p: net2_grad(p, bug="output_sign"), P2,
                            shapes=SHAPES2)
    assert report.kinds == ("sign",) and report.findings[0].evidence["block"] == 1


# =============================================================================================
# layout
# =============================================================================================
def test_layout_fortran_order_gradient_of_the_mlp():
    net, X, Y = _mlp()
    grad = lambda p: net.flatten(net.unflatten(net.gradient(X, Y, params=p)), order="F")
    report = _check_mlp(net, X, Y, grad)
    assert report.kinds == ("layout",)
    assert "Every block" in report.findings[0].message
    assert "flattened in F order" in report.findings[0].message


def test_layout_transposed_block_in_a_two_layer_network():
    report = check_gradient(net2, lambda p: net2_grad(p, bug="transposed"), P2,
                            shapes=SHAPES2)
    assert report.kinds == ("layout",)
    assert report.findings[0].evidence["block"] == 0


def test_layout_needs_shapes():
    report = check_gradient(net2, lambda p: net2_grad(p, bug="transposed"), P2)
    assert "layout" not in report.kinds and not report.passed


# =============================================================================================
# localized
# =============================================================================================
def test_localized_forgotten_hidden_bias_gradient():
    report = check_gradient(net2, lambda p: net2_grad(p, bug="hidden_bias"), P2,
                            shapes=SHAPES2)
    assert report.kinds == ("localized", "mismatch")
    assert "block 0, column 0" in report.findings[0].message


def test_localized_wrong_hidden_layer_of_the_mlp():
    net, X, Y = _mlp(hidden="tanh")
    n0 = net.shapes[0][0] * net.shapes[0][1]
    sigmoid_net = MLP([3, 4, 2], hidden="sigmoid", numbers="float64", seed=5)

    def grad(p):  # the hidden layer differentiated as if it were a sigmoid layer
        g = net.gradient(X, Y, params=p).copy()
        g[:n0] = sigmoid_net.gradient(X, Y, params=p)[:n0]
        return g

    report = _check_mlp(net, X, Y, grad)
    assert report.kinds == ("localized", "mismatch")
    assert report.findings[0].evidence["block"] == 0


# =============================================================================================
# regularization
# =============================================================================================
def test_regularization_lambda_without_one_over_m():
    report = check_gradient(logreg, lambda w: logreg_grad(w, reg=LAM), W4, shapes=[(1, 4)],
                            batch_size=M)
    assert report.kinds == ("regularization",)
    finding = report.findings[0]
    assert finding.evidence["factor"] == pytest.approx(LAM - LAM / M)
    assert "every entry except column 0" in finding.message


def test_regularization_bias_regularised_in_the_mlp_gradient():
    net, X, Y = _mlp(l2="0.6")
    mats = lambda p: net.unflatten(p)

    def grad(p):
        g = net.unflatten(net.gradient(X, Y, params=p))
        for G, W in zip(g, mats(p)):
            G[:, 0] = G[:, 0] + 0.6 / len(X) * W[:, 0]
        return net.flatten(g)

    report = _check_mlp(net, X, Y, grad)
    assert set(report.kinds) == {"regularization"}
    assert all(f.evidence["factor"] == pytest.approx(0.15) for f in report.findings)
    assert all("column 0" in f.message for f in report.findings)


# =============================================================================================
# kink
# =============================================================================================
RELU_WEIGHTS = np.array([1.0, 2.0, 3.0, 4.0])


def relus(x):
    return np.sum(np.maximum(x, 0) * RELU_WEIGHTS)


def relus_grad(x):
    return (x > 0) * RELU_WEIGHTS


def hinge(w):
    s = 2 * LABELS - 1  # labels {0, 1} as ±1
    return np.sum(np.maximum(1 - s * (FEATURES @ w), 0)) / M


def hinge_grad(w):
    s = 2 * LABELS - 1
    margins = 1 - s * (FEATURES @ w)
    return -(FEATURES.T @ (s * (margins > 0))) / M


def test_kink_of_relus_within_the_step():
    x = np.array([1e-5, -0.5, 0.3, -2e-5])
    report = check_gradient(relus, relus_grad, x, method="central", h=1e-3)
    assert report.kinds == ("kink",)
    assert set(report.findings[0].evidence["coordinates"]) == {0, 3}


def test_kink_of_a_hinge_loss_at_the_margin():
    w = W4.copy()
    s = 2 * LABELS - 1
    # move the bias so that example 0 sits 1e-6 from its margin
    w[0] += (1 - s[0] * (FEATURES[0] @ w) - 1e-6) / s[0]
    report = check_gradient(hinge, hinge_grad, w, method="central", h=1e-3)
    assert "kink" in report.kinds and not report.passed


def test_kink_of_the_automatic_reference_is_stepped_around():
    x = np.array([1e-5, -0.5, 0.3, -2e-5])
    dec = number_system("decimal:30")  # no complex step: Richardson straddles the kink
    report = check_gradient(lambda v: np.sum(np.maximum(v, dec.zero) * dec.asarray(RELU_WEIGHTS)),
                            lambda v: dec.asarray((dec.to_float(v) > 0) * RELU_WEIGHTS),
                            dec.asarray(x))
    assert report.kinds == ("match",)


# =============================================================================================
# step_too_large / step_too_small
# =============================================================================================
def sinx(x):
    return np.sum(np.sin(x) * x)


def sinx_grad(x):
    return np.sin(x) + x * np.cos(x)


def test_step_too_large_for_sin():
    report = check_gradient(sinx, sinx_grad, X5, method="central", h=0.5)
    assert report.kinds == ("step_too_large",) and not report.passed
    assert "h → 0 limit" in report.findings[0].message


def test_step_too_large_forward_differences_on_logistic_regression():
    report = check_gradient(logreg, logreg_grad, W4, method="forward", h=0.1)
    assert report.kinds == ("step_too_large",)


def test_step_too_small_float64():
    report = check_gradient(sinx, sinx_grad, X5, method="central", h=1e-14)
    assert report.kinds == ("step_too_small",)


def test_step_too_small_float32_quadratic():
    x32 = X5.astype(np.float32)
    A32, B32 = A.astype(np.float32), B.astype(np.float32)
    report = check_gradient(lambda x: np.float32(0.5) * x @ A32 @ x - B32 @ x,
                            lambda x: A32 @ x - B32, x32, method="central", h=1e-6)
    assert report.kinds == ("step_too_small",)


# =============================================================================================
# precision_loss
# =============================================================================================
@pytest.mark.filterwarnings("ignore::numpy.exceptions.ComplexWarning")  # the probe's complex x
def test_precision_loss_float32_inside_float64():
    f = lambda x: np.sum(np.sin(x.astype(np.float32)).astype(np.float64) * x)
    report = check_gradient(f, sinx_grad, X5)
    assert "precision_loss" in report.kinds and not report.passed


def test_precision_loss_float_exp_inside_mpf():
    ns = number_system("mpf:30")
    ctx = ns.ctx

    def f(x):  # exp through a Python float: 16 digits in a 30-digit function
        return np.sum(np.array([ctx.mpf(math.exp(float(v))) for v in x], dtype=object) * x)

    def grad(x):
        e = ns.exp(x)
        return e * x + e

    report = check_gradient(f, grad, ns.asarray(["0.3", "-0.7", "1.1"]))
    assert "precision_loss" in report.kinds and not report.passed
    finding = report.findings[report.kinds.index("precision_loss")]
    assert finding.evidence["ratio"] > 1e10  # float's 1e-16 against mpf:30's 1e-31


# =============================================================================================
# not_complex_safe
# =============================================================================================
def l1_quad(x):
    return quad(x) + 0.3 * np.sum(np.abs(x))


def l1_quad_grad(x):
    return quad_grad(x) + 0.3 * np.sign(x)


def test_not_complex_safe_abs_with_complex_step_requested():
    report = check_gradient(l1_quad, l1_quad_grad, X5, method="complex_step")
    assert report.kinds == ("not_complex_safe", "match") and report.passed
    assert "Richardson" in report.findings[0].message


def test_not_complex_safe_conjugate_in_logistic_regression():
    f = lambda w: logreg(np.conj(w))
    report = check_gradient(f, logreg_grad, W4)
    assert report.kinds == ("not_complex_safe", "match")


def test_decimal_cannot_do_complex_step():
    dec = number_system("decimal:20")
    report = check_gradient(lambda v: np.sum(v * v), lambda v: 2 * v, dec.asarray(["1", "2"]),
                            method="complex_step")
    assert report.kinds[0] == "not_complex_safe" and "Decimal" in report.findings[0].message


# =============================================================================================
# mismatch
# =============================================================================================
def test_mismatch_g_prime_at_a_instead_of_z():
    report = check_gradient(net2, lambda p: net2_grad(p, bug="g_of_a"), P2, shapes=SHAPES2)
    assert "mismatch" in report.kinds and not report.passed


def test_mismatch_missing_chain_rule_factor():
    report = check_gradient(net2, lambda p: net2_grad(p, bug="chain"), P2, shapes=SHAPES2)
    assert report.kinds == ("localized", "mismatch")


def test_mismatch_wrong_logistic_regression_gradient():
    report = check_gradient(logreg, lambda w: FEATURES.T @ (FEATURES @ w - LABELS) / M, W4)
    assert report.kinds == ("mismatch",)


# =============================================================================================
# directional mode finds the patterns that survive projection
# =============================================================================================
def test_directional_scale_and_match():
    good = check_gradient(net2, net2_grad, P2, directions=4)
    bad = check_gradient(net2, lambda p: net2_grad(p, bug="half"), P2, directions=4)
    assert good.kinds == ("match",) and good.directional
    assert bad.kinds == ("scale",) and bad.findings[0].evidence["factor"] == pytest.approx(0.5)


def test_directional_regularization():
    f = lambda x: quad(x) + 0.35 * np.sum(x ** 2)
    report = check_gradient(f, lambda x: quad_grad(x) + 1.4 * x, X5, directions=5)
    assert report.kinds == ("regularization",)
    assert report.findings[0].evidence["factor"] == pytest.approx(0.7)
