"""The NumberSystem hooks backprop is built on: the sigmoid beside its complement, the
sigmoid residual σ(z) − y, and the affine map and its gradient (arb: in ``arb_mat``).

References are mpmath at 60 digits (the hooks' own formulas are not used), exact integer
arithmetic for the products, and mpmath at 120 digits for arb's matrix versions.
"""

from __future__ import annotations

import mpmath
import numpy as np
import pytest

from precision_nn.activations import ACTIVATIONS
from precision_nn.network import MLP
from precision_nn.numbers import number_system
from precision_nn.numbers.composite import CompositeFunctions
from tests.test_numbers import exact

SYSTEMS = ["float32", "float64", "mpf:30", "decimal:30", "mpfr:30", "arb:30"]
# the widest |x| whose σ(-|x|) is a normal number of the system (float16: see test below)
WIDE = {"float32": "80", "float64": "700"}


def _system(spec):
    if spec.startswith("mpfr"):
        pytest.importorskip("gmpy2")
    if spec.startswith("arb"):
        pytest.importorskip("flint")
    return number_system(spec)


def _points(spec):
    wide = WIDE.get(spec, "800")
    return [f"-{wide}", "-40", "-3.5", "-0.25", "0", "0.25", "3.5", "40", wide]


def _sigma(x):
    return 1 / (1 + mpmath.exp(-x))


def _close(ns, got, want, scale, roundings):
    """|got − want| <= roundings·u·scale; for balls also: the ball contains `want`
    (its midpoint within its radius, read exactly)."""
    value = exact(mpmath.mp, got)
    if ns.is_ball:
        assert abs(value - want) <= exact(mpmath.mp, got.rad()) + mpmath.mpf(10) ** -55
    assert abs(value - want) <= roundings * ns.unit_roundoff * scale, (got, want)


@pytest.mark.parametrize("spec", SYSTEMS)
def test_the_sigmoid_and_its_complement_are_each_accurate_at_saturation(spec):
    """σ(x) and σ(−x) within 4 u relative each (one exp, one add, one quotient, one
    product), also where σ(x) rounds to 1 and 1 − σ(x) would be 0; IEEE's first value
    is `sigmoid` exactly (the same operations)."""
    ns = _system(spec)
    x = ns.asarray(_points(spec))
    with ns.context():
        s, c = ns.sigmoid_with_complement(x)
        plain = ns.sigmoid(x)
    if not ns.object_elements:
        assert np.array_equal(s, plain)
    with mpmath.workdps(60):
        for xi, si, ci in zip(x, s, c):
            xe = exact(mpmath.mp, xi)
            _close(ns, si, _sigma(xe), _sigma(xe), 4)
            _close(ns, ci, _sigma(-xe), _sigma(-xe), 4)


@pytest.mark.parametrize("spec", SYSTEMS)
@pytest.mark.parametrize("target", ["0", "1", "0.25"])
def test_the_sigmoid_residual_keeps_its_digits_where_sigma_minus_y_cancels(spec, target):
    """σ(x) − y within 8 u of (1−y)·σ(x) + y·σ(−x) (the bound derived in
    `CompositeFunctions.sigmoid_residual`): relative accuracy for one-hot targets, where
    σ(40) − 1 = −4e-18 would round to 0 in float64."""
    ns = _system(spec)
    x = ns.asarray(_points(spec))
    y = ns.asarray([target] * len(x))
    with ns.context():
        r = ns.sigmoid_residual(x, y)
    with mpmath.workdps(450):  # σ(800) − 1 = −e^{−800}: 348 zeros after the point
        ye = mpmath.mpf(target)
        for xi, ri in zip(x, r):
            xe = exact(mpmath.mp, xi)
            scale = (1 - ye) * _sigma(xe) + ye * _sigma(-xe)
            _close(ns, ri, _sigma(xe) - ye, scale, 8)


def test_float16_complement_at_its_range():
    ns = number_system("float16")
    x = ns.asarray(["-8", "8"])
    s, c = ns.sigmoid_with_complement(x)
    assert s.dtype == c.dtype == np.float16
    with mpmath.workdps(30):
        for xi, si, ci in zip(x, s, c):
            xe = mpmath.mpf(float(xi))
            assert abs(float(si) - _sigma(xe)) <= 4 * ns.unit_roundoff * _sigma(xe)
            assert abs(float(ci) - _sigma(-xe)) <= 4 * ns.unit_roundoff * _sigma(-xe)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
@pytest.mark.parametrize("spec", ["float64", "mpf:30", "arb:30"])
def test_forward_gives_the_value_and_backprop_the_derivative(name, spec):
    """`Activation.forward` returns `value`'s result (identical in IEEE; the same ball
    value in arb) and its vjp with what it saved is the derivative, against mpmath's
    numerical derivative of the activation written from its definition."""
    ns = _system(spec)
    act = ACTIVATIONS[name]
    z = ns.asarray([["-40", "-1.5", "0.5", "2", "40"]])
    with ns.context():
        value = act.value(ns, z)
        a, saved = act.forward(ns, z)
        grad_a = ns.asarray([["1", "0", "0", "0", "0"]]) if not act.elementwise else \
            ns.asarray([["1"] * 5])
        back = act.vjp(ns, z, a, saved, grad_a)
    if not ns.object_elements:
        assert np.array_equal(value, a)
    defs = {"sigmoid": _sigma, "tanh": mpmath.tanh, "identity": lambda t: t,
            "relu": lambda t: max(t, 0), "erf_logistic": lambda t: (1 + mpmath.erf(t)) / 2}
    with mpmath.workdps(60):
        zs = [exact(mpmath.mp, v) for v in z[0]]
        for k, zk in enumerate(zs):
            assert abs(exact(mpmath.mp, a[0, k]) - exact(mpmath.mp, value[0, k])) <= \
                8 * ns.unit_roundoff * abs(exact(mpmath.mp, value[0, k]))
            if not act.elementwise:  # softmax: ∂a_0/∂z_k by the quotient rule
                e = [mpmath.exp(t - max(zs)) for t in zs]
                total = mpmath.fsum(e)
                want = e[0] / total * ((k == 0) - e[k] / total)
            else:
                want = mpmath.diff(defs[name], zk)
            got = exact(mpmath.mp, back[0, k])
            assert abs(got - want) <= 16 * ns.unit_roundoff * abs(want) + \
                mpmath.mpf(10) ** -50, (name, k, got, want)


def _ints(ns, rng, shape):
    return ns.asarray(rng.integers(-50, 50, shape).astype(object))


def _as_ints(arr):
    def integer(v):
        value = exact(mpmath.mp, v)
        assert mpmath.im(value) == 0
        return int(mpmath.re(value))
    return np.vectorize(integer, otypes=[object])(arr)


@pytest.mark.parametrize("spec", ["arb:30", "acb:30", "float64", "mpf:30"])
def test_affine_and_its_gradient_are_the_exact_integer_results(spec):
    """Integer-valued operands: every product and sum is exact, so each system's hook must
    give the integers (arb's matrix versions, also complex, and the numpy default)."""
    ns = _system(spec)
    rng = np.random.default_rng(3)
    a, w_t, bias = _ints(ns, rng, (5, 3)), _ints(ns, rng, (3, 4)), _ints(ns, rng, (1, 4))
    delta = _ints(ns, rng, (5, 4))
    z = ns.affine(a, w_t, bias)
    g = ns.affine_gradient(delta, a)
    ia, iw, ib, idelta = (_as_ints(v) for v in (a, w_t, bias, delta))
    assert np.array_equal(_as_ints(z), ia @ iw + ib)
    assert np.array_equal(_as_ints(g), np.concatenate(
        [idelta.sum(axis=0)[:, None], idelta.T @ ia], axis=1))
    assert g.shape == (4, 4) and ns.foreign_type(z) is None and ns.foreign_type(g) is None


def test_arb_affine_and_its_gradient_enclose_mpmath_and_round_once():
    """Rounded operands: each ball of arb's affine map and of its gradient (one matrix
    product each, the bias as the first term of a dot product) contains the exact result
    of its operands' midpoints (mpmath at 120 digits; the operands' own radii only widen
    the balls), its midpoint errs by at most 2u relative to Σ|terms| (one rounding, with
    room for arb_dot's), and its radius is at most twice that of the default form
    (product, then numpy's sum of balls): the one product must not loosen the bound."""
    ns = _system("arb:30")
    rng = np.random.default_rng(4)
    with ns.context():
        a = ns.asarray(rng.standard_normal((6, 3))) / 3
        w_t = ns.asarray(rng.standard_normal((3, 2))) / 7
        bias = ns.asarray(rng.standard_normal((1, 2))) / 11
        delta = ns.asarray(rng.standard_normal((6, 2))) / 13
        fast = ns.affine(a, w_t, bias)
        default = CompositeFunctions.affine(ns, a, w_t, bias)
        grad = ns.affine_gradient(delta, a)
        grad_default = CompositeFunctions.affine_gradient(ns, delta, a)
    u = mpmath.mpf(2) ** -ns.prec
    with mpmath.workdps(120):
        mid = np.vectorize(lambda v: exact(mpmath.mp, v.mid()), otypes=[object])
        ma, mw, mb, md = mid(a), mid(w_t), mid(bias), mid(delta)
        ones = np.full((6, 1), mpmath.mpf(1), dtype=object)
        want_z, size_z = ma @ mw + mb, abs(ma) @ abs(mw) + abs(mb)
        both = np.concatenate([ones, ma], axis=1)
        want_g, size_g = md.T @ both, abs(md.T) @ abs(both)
        for got, want, size, other in ((fast, want_z, size_z, default),
                                       (grad, want_g, size_g, grad_default)):
            for ball, w, s, d in zip(got.flat, want.flat, size.flat, other.flat):
                assert abs(exact(mpmath.mp, ball.mid()) - w) <= 2 * u * s
                assert abs(exact(mpmath.mp, ball.mid()) - w) <= exact(mpmath.mp, ball.rad())
                assert ball.rad() <= 2 * d.rad()


def test_arb_gradient_of_a_saturated_cross_entropy_net_encloses_mpmath():
    """The whole backprop through the hooks (canonical cross-entropy; hidden |z| of 2..30,
    most past 5, output |z| up to 13) encloses backprop in mpf at 60 digits, entry by
    entry."""
    ns = _system("arb:30")
    net = MLP([3, 4, 2], numbers="arb:30", init=MLP([3, 4, 2], seed=2).params * 30)
    rng = np.random.default_rng(5)
    X, Y = rng.standard_normal((3, 3)), np.eye(2)[[0, 1, 1]]
    g = net.gradient(X, Y)
    with mpmath.workdps(60):
        ref = net.to("mpf:60").gradient(X, Y)
        for ball, want in zip(g, ref):
            assert abs(exact(mpmath.mp, ball) - want) <= exact(mpmath.mp, ball.rad())
    assert ns.radius(g).max() < 1e-20
