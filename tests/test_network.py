"""The MLP against independent references: complex-step gradients in mpc:60, and the loss
and its complex step written out again in plain mpmath (no precision_nn code).

Tolerance (one table, keyed by number system): backprop forms each gradient entry from
sums of at most n ≈ m + fan_in products along chains of L layers; a first-order rounding
bound (Higham 2002, §3.1, γ_n = n·u/(1 - n·u)) gives |ĝ - g| ≲ γ_n · Σ|terms|, and the
transcendental functions add a few ulp per layer. For the small nets here n ≤ 16 and
Σ|terms| stays within a few times ‖g‖∞, so the bound ≈ 50·u·‖g‖∞; we allow
``ROUNDING_FACTOR = 256`` (5× headroom) times the unit roundoff of the network's system,
relative to max(‖g‖∞, 1e-3). The reference's own error (~1e-60) is negligible.
"""

from __future__ import annotations

import decimal
import itertools

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from precision_nn import layout
from precision_nn.network import MLP
from precision_nn.numbers import number_system
from tests.reference import REFERENCE_SYSTEM, complex_step_gradient
from tests.test_numbers import exact

ROUNDING_FACTOR = 256
SYSTEMS = ["float32", "float64", "decimal:30", "mpf:50"]
HIDDEN = ["sigmoid", "tanh", "relu", "erf_logistic", "identity"]
HEADS = [("sigmoid", "cross_entropy"), ("softmax", "softmax_cross_entropy"),
         ("identity", "squared_error"), ("tanh", "squared_error"),
         ("erf_logistic", "cross_entropy")]


def _data(n_in: int, n_out: int, m: int, seed: int):
    rng = np.random.default_rng(seed)
    # |z| stays below ~2: saturated outputs make 1 - a cancel in float32 (a real, separate
    # conditioning effect studied in studies/, not a backprop error)
    X = rng.standard_normal((m, n_in)) / 2
    Y = np.eye(n_out)[rng.integers(0, n_out, size=m)]  # one-hot rows lie in [0, 1]
    return X, Y


def _condition(net: MLP, X) -> float:
    """Error amplification of cross-entropy on a non-canonical output (erf_logistic): the
    generic backward path divides by a(1 − a), and a, 1 − a carry absolute rounding ~u, so
    their relative errors grow as 1/min(a, 1 − a). Canonical pairs use (a − y)/m: 1."""
    if net.loss_fn.name != "cross_entropy" or net.output.name == "sigmoid":
        return 1.0
    a = np.real(net.numbers.to_float(net.forward(X)))
    return float(np.max(1 / np.minimum(a, 1 - a)))


def _assert_matches_reference(net: MLP, X, Y) -> float:
    ref = complex_step_gradient(net, X, Y)
    g = number_system(REFERENCE_SYSTEM).real().asarray(net.gradient(X, Y))  # exact
    scale = max(float(np.max(np.abs(ref))), 1e-3)
    err = float(np.max(np.abs(g - ref))) / scale  # formed in 60 digits, not in float64
    bound = ROUNDING_FACTOR * net.numbers.unit_roundoff * _condition(net, X)
    assert err <= bound, (net, err, bound)
    return err


@pytest.mark.parametrize("spec", SYSTEMS)
@pytest.mark.parametrize("l2", ["0", "0.7"], ids=["no_l2", "l2"])
@pytest.mark.parametrize("head", HEADS, ids=["-".join(h) for h in HEADS])
def test_gradient_matches_complex_step_reference(spec, l2, head):
    """Every hidden activation for this head, loss and L2 setting, in `spec`."""
    output, loss = head
    hidden_list = HIDDEN if spec in ("float32", "float64") else HIDDEN[::2]  # object: lighter
    for hidden in hidden_list:
        net = MLP([3, 4, 2], hidden=hidden, output=output, loss=loss, l2=l2, numbers=spec,
                  seed=7)
        X, Y = _data(3, 2, 4, seed=3)
        _assert_matches_reference(net, X, Y)


@settings(max_examples=12, deadline=None)
@given(sizes=st.lists(st.integers(1, 5), min_size=2, max_size=4),
       m=st.integers(1, 6), seed=st.integers(0, 2**16),
       hidden=st.sampled_from(HIDDEN), head=st.sampled_from(HEADS))
def test_random_networks_match_reference(sizes, m, seed, hidden, head):
    """Random shapes, batch sizes, seeds, activations and heads (not one head only)."""
    output, loss = head
    if output == "softmax":
        sizes = [*sizes[:-1], max(2, sizes[-1])]  # a softmax over one output is constant
    net = MLP(sizes, hidden=hidden, output=output, loss=loss, l2="0.05", seed=seed)
    X, Y = _data(sizes[0], sizes[-1], m, seed)
    _assert_matches_reference(net, X, Y)


@pytest.mark.parametrize("hidden", HIDDEN)
def test_complex_step_through_network_is_exact_to_rounding(hidden):
    """Im J(θ + i·h·e_j)/h in complex128 equals the float64 backprop gradient to ~u,
    also at h = 1e-200: no subtractive cancellation anywhere in the network."""
    net = MLP([3, 4, 3], hidden=hidden, output="softmax", loss="softmax_cross_entropy",
              l2="0.1", seed=2)
    X, Y = _data(3, 3, 5, seed=4)
    g = net.gradient(X, Y)
    cnet = net.to("complex128")
    for h in (1e-20, 1e-200):
        stack = np.tile(cnet.params, (net.n_params, 1)) + 1j * h * np.eye(net.n_params)
        cs = np.imag(cnet.loss(X, Y, params=stack)) / h
        assert np.max(np.abs(cs - g)) <= 16 * 2**-53 * np.max(np.abs(g))


@pytest.mark.parametrize("spec", ["float16", "float32"])
def test_low_precision_never_widens(spec):
    """Walk the whole computation: every z, a, delta, gradient and loss keeps the dtype."""
    ns = number_system(spec)
    for hidden, head in itertools.product(HIDDEN, HEADS):
        net = MLP([3, 4, 2], hidden=hidden, output=head[0], loss=head[1], l2=0.5,
                  numbers=spec)
        X, Y = _data(3, 2, 4, seed=1)
        Xs, Ys = ns.asarray(X), ns.asarray(Y)
        z, a = net._forward(Xs, net.params)
        grads = net._backward(z, a, net.unflatten(), Ys)
        arrays = [*z[1:], *a, *grads, net.loss(X, Y), net.forward(X), net.gradient(X, Y),
                  net.params]
        assert all(np.asarray(v).dtype == ns.dtype for v in arrays), (hidden, head)


@pytest.mark.parametrize("spec", ["decimal:30", "mpf:40"])
def test_object_systems_never_touch_floats(spec):
    """Every intermediate of a Decimal / mpf network is an element of its own system."""
    ns = number_system(spec)
    for hidden in HIDDEN:
        net = MLP([2, 3, 2], hidden=hidden, output="softmax", loss="softmax_cross_entropy",
                  l2="0.1", numbers=spec)
        X, Y = _data(2, 2, 3, seed=5)
        Xs, Ys = ns.asarray(X), ns.asarray(Y)
        with ns.context():
            z, a = net._forward(Xs, net.params)
            grads = net._backward(z, a, net.unflatten(), Ys)
        for arr in [*z[1:], *a[1:], *grads]:
            assert ns.foreign_type(arr) is None, (hidden, ns.foreign_type(arr))


# ---------------------------------------------------------------------------------------
# An independent reference for the loss itself. The complex-step reference above
# differentiates MLP.loss, so a loss that is wrong together with its backprop (a 1/m
# missing from both, L2 on the bias in both, a wrong activation in both) would pass it.
# Here the loss is written out again from DESIGN.md with plain mpmath loops, nothing of
# precision_nn but the network's parameters, read exactly.
# ---------------------------------------------------------------------------------------
INDEPENDENT_DIGITS = 110  # > twice the widest system's digits (mpf:50) plus 10


def _mp_activation(ctx, name, z):
    """One layer's activation of the row vector z (softmax needs the whole row)."""
    if name == "softmax":
        e = [ctx.exp(v) for v in z]
        return [v / ctx.fsum(e) for v in e]
    one = {"sigmoid": lambda v: 1 / (1 + ctx.exp(-v)), "tanh": ctx.tanh,
           "relu": lambda v: v if ctx.re(v) > 0 else 0 * v,
           "erf_logistic": lambda v: (1 + ctx.erf(v)) / 2, "identity": lambda v: v}[name]
    return [one(v) for v in z]


def _mp_loss(ctx, net, theta, X, Y):
    """J(θ) of `net`'s architecture from its definition, for exact θ, X, Y in `ctx`."""
    m, J = len(X), 0
    mats, start = [], 0
    for rows, cols in net.shapes:  # C order: row r holds theta[start + r·cols : ...]
        mats.append([theta[start + r * cols: start + (r + 1) * cols] for r in range(rows)])
        start += rows * cols
    for x, y in zip(X, Y, strict=True):
        a = list(x)
        for k, W in enumerate(mats, start=1):
            z = [row[0] + ctx.fsum(w * v for w, v in zip(row[1:], a, strict=True)) for row in W]
            a = _mp_activation(ctx, net.output.name if k == len(mats) else net.hidden.name, z)
        if net.loss_fn.name == "cross_entropy":
            J -= ctx.fsum(t * ctx.log(o) + (1 - t) * ctx.log(1 - o) for o, t in zip(a, y))
        elif net.loss_fn.name == "softmax_cross_entropy":
            J -= ctx.fsum(t * ctx.log(o) for o, t in zip(a, y))
        else:  # squared_error
            J += ctx.fsum((t - o) ** 2 for o, t in zip(a, y)) / 2
    penalty = ctx.fsum(w * w for W in mats for row in W for w in row[1:])
    return J / m + exact(ctx, net.l2) * penalty / (2 * m)


def _exact_inputs(ctx, net, X, Y):
    """θ, X and Y exactly as the network holds them (X and Y rounded into its system)."""
    theta = [exact(ctx, v) for v in net.params]
    X = [[exact(ctx, v) for v in row] for row in net.numbers.asarray(X)]
    Y = [[exact(ctx, v) for v in row] for row in net.numbers.asarray(Y)]
    return theta, X, Y


@pytest.mark.parametrize("spec", SYSTEMS)
@pytest.mark.parametrize("head", HEADS, ids=["-".join(h) for h in HEADS])
def test_loss_matches_an_independent_mpmath_forward_pass(spec, head):
    """Every hidden activation with this head, L2 on: J in `spec` against the definition
    evaluated at 110 digits. Tolerance ROUNDING_FACTOR·u relative to max(|J|, 1): the
    forward pass rounds like backprop's sums (module docstring), and log(1 - a) amplifies
    the error of a by 1/(1 - a) ≲ 10 for |z| ≲ 2."""
    ctx = mpmath.MPContext()
    ctx.dps = INDEPENDENT_DIGITS
    output, loss = head
    for hidden in HIDDEN:
        net = MLP([3, 4, 2], hidden=hidden, output=output, loss=loss, l2="0.7", numbers=spec,
                  seed=11)
        X, Y = _data(3, 2, 4, seed=6)
        reference = _mp_loss(ctx, net, *_exact_inputs(ctx, net, X, Y))
        err = abs(exact(ctx, net.loss(X, Y)) - reference) / max(abs(reference), 1)
        assert err <= ROUNDING_FACTOR * net.numbers.unit_roundoff, (hidden, float(err))


@pytest.mark.parametrize("hidden", HIDDEN)
def test_gradient_matches_complex_step_of_the_independent_loss(hidden):
    """mpf:50 backprop against the complex step (h = 1e-50) of the mpmath loss above: a
    gradient reference sharing no code with MLP, for every hidden activation and head."""
    ctx = mpmath.MPContext()
    ctx.dps = INDEPENDENT_DIGITS
    h = ctx.mpf("1e-50")  # truncation h²·|third derivative| ~ 1e-100, far below mpf:50's u
    for output, loss in HEADS:
        net = MLP([2, 3, 2], hidden=hidden, output=output, loss=loss, l2="0.3",
                  numbers="mpf:50", seed=13)
        X, Y = _data(2, 2, 3, seed=8)
        theta, Xe, Ye = _exact_inputs(ctx, net, X, Y)
        g = net.gradient(X, Y)
        scale = max(max(abs(v) for v in g), 1e-3)
        for i in range(net.n_params):
            step = list(theta)
            step[i] = ctx.mpc(theta[i], h)
            reference = ctx.im(_mp_loss(ctx, net, step, Xe, Ye)) / h
            err = abs(exact(ctx, g[i]) - reference) / scale
            assert err <= ROUNDING_FACTOR * net.numbers.unit_roundoff, (output, loss, i)


def test_decimal_network_is_correct_to_its_own_precision():
    """decimal:30 gradient agrees with the mpc:60 reference far beyond float64."""
    net = MLP([3, 3, 1], hidden="erf_logistic", output="sigmoid", numbers="decimal:30")
    X, Y = _data(3, 1, 4, seed=9)
    err = _assert_matches_reference(net, X, Y)
    assert err < 1e-25


def test_stacked_params_give_one_loss_each():
    net = MLP([2, 3, 1], numbers="mpf:30", l2="0.2")
    X, Y = _data(2, 1, 3, seed=0)
    stack = np.stack([net.params, net.params * 2, net.params * -1])
    losses = net.loss(X, Y, params=stack)
    assert losses.shape == (3,)
    for row, value in zip(stack, losses):
        assert value == net.loss(X, Y, params=row)


def test_to_round_trips_exactly():
    net = MLP([4, 3, 2], numbers="float32", seed=3)
    back = net.to("mpf:50").to("decimal:60").to("float32")
    assert np.array_equal(back.params, net.params)
    assert back.params.dtype == np.float32


class TestCourseraDebugExercise:
    """The Coursera ML exercise 4 check: 3-5-3 network, m = 5, sin-initialised weights.

    Its checker promises a relative difference ‖n - a‖/‖n + a‖ below 1e-9 for central
    differences with EPSILON = 1e-4. Central truncation is h²|J'''|/6 ≈ 1e-9·|J'''|, so
    the relative difference lands near 1e-11 for a correct gradient.
    """

    @staticmethod
    def setup_net(l2="3"):
        net = MLP([3, 5, 3], init="debug", l2=l2)
        X = np.sin(np.arange(1, 5 * 3 + 1)).reshape(5, 3, order="F") / 10
        labels = np.arange(1, 6) % 3  # Octave: y = 1 + mod(1:m, num_labels)', one-hot
        Y = np.eye(3)[labels]
        return net, X, Y

    @pytest.mark.parametrize("l2", ["0", "3"])
    def test_relative_difference_below_1e_9(self, l2):
        net, X, Y = self.setup_net(l2)
        h = 1e-4
        num = np.array([(net.loss(X, Y, params=net.params + h * e) -
                         net.loss(X, Y, params=net.params - h * e)) / (2 * h)
                        for e in np.eye(net.n_params)])
        g = net.gradient(X, Y)
        diff = np.linalg.norm(num - g) / np.linalg.norm(num + g)
        assert diff < 1e-9

    def test_reads_and_writes_matlab_layout(self):
        net, _, _ = self.setup_net()
        # Octave's [Theta1(:); Theta2(:)] for debugInitializeWeights is sin(1..n)/10 per block
        octave = np.concatenate([np.sin(np.arange(1, 21)) / 10, np.sin(np.arange(1, 19)) / 10])
        np.testing.assert_allclose(net.flatten(net.unflatten(), order="F"), octave,
                                   rtol=4e-16, atol=0)
        mats = net.unflatten(octave, order="F")
        np.testing.assert_array_equal(layout.flatten(mats, order="C"), net.params)
        assert mats[0].shape == (5, 4) and mats[0][0, 1] == np.sin(6) / 10


class TestBadInput:
    def setup_method(self):
        self.net = MLP([3, 4, 2])
        self.X, self.Y = _data(3, 2, 4, seed=0)

    def test_wrong_X_shape(self):
        with pytest.raises(ValueError, match=r"`X` must have shape \(m, 3\)"):
            self.net.loss(self.X[:, :2], self.Y)

    def test_wrong_Y_shape(self):
        with pytest.raises(ValueError, match=r"`Y` must have shape \(m, n_out\)"):
            self.net.loss(self.X, self.Y[:, :1])

    @pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
    def test_nonfinite_X(self, bad):
        X = self.X.copy()
        X[1, 2] = bad
        with pytest.raises(ValueError, match=r"`X` must be finite.*index \(1, 2\)"):
            self.net.gradient(X, self.Y)

    @pytest.mark.parametrize("call", ["loss", "gradient", "check_gradient", "forward",
                                      "numerical_gradient"])
    def test_empty_X(self, call):
        args = (np.empty((0, 3)),) if call == "forward" else (np.empty((0, 3)),
                                                              np.empty((0, 2)))
        with pytest.raises(ValueError, match=r"`X` must hold at least one example \(m >= 1; "
                           r"the loss is a mean over examples\); got shape \(0, 3\)"):
            getattr(self.net, call)(*args)

    def test_empty_Y(self):
        with pytest.raises(ValueError, match=r"`Y` must have shape \(m, n_out\) = \(4, 2\)"):
            self.net.loss(self.X, np.empty((0, 2)))

    def test_nonfinite_Y(self):
        Y = self.Y.copy()
        Y[0, 0] = np.nan
        with pytest.raises(ValueError, match="`Y` must be finite"):
            self.net.loss(self.X, Y)

    def test_nonfinite_params(self):
        p = self.net.params.copy()
        p[3] = np.inf
        with pytest.raises(ValueError, match="`params` must be finite"):
            self.net.loss(self.X, self.Y, params=p)

    def test_nonfinite_decimal_params(self):
        net = MLP([1, 1], numbers="decimal:20")
        with pytest.raises(ValueError, match="`params` must be finite"):
            net.loss([[1]], [[1]], params=net.numbers.asarray(["NaN", "1"]))

    def test_wrong_params_length(self):
        with pytest.raises(ValueError, match="`params` must have 26 entries"):
            self.net.loss(self.X, self.Y, params=self.net.params[:-1])

    def test_targets_outside_unit_interval(self):
        with pytest.raises(ValueError, match=r"`Y` must lie in \[0, 1\] for loss"):
            self.net.loss(self.X, self.Y * 2)

    def test_mixed_number_systems(self):
        net = MLP([3, 4, 2], numbers="mpf:30")
        with pytest.raises(TypeError, match="mixing number systems"):
            net.loss(self.X, self.Y, params=net.to("decimal:30").params)
        with pytest.raises(TypeError, match="float64 values.*'float32'"):
            MLP([3, 4, 2], numbers="float32").loss(self.X, self.Y, params=self.net.params)

    @pytest.mark.parametrize("kwargs, match", [
        ({"hidden": "swish"}, "`hidden` must be one of"),
        ({"hidden": "softmax"}, "`hidden` must be elementwise"),
        ({"output": "gelu"}, "`output` must be one of"),
        ({"loss": "hinge"}, "`loss` must be one of"),
        ({"output": "identity"}, "loss 'cross_entropy' needs an output in"),
        ({"l2": -1}, "`l2` must be a finite number >= 0"),
        ({"init": "xavier"}, "`init` must be one of"),
        ({"init": [0.0, 1.0]}, "`init` must have 26 entries"),
        ({"numbers": "float8"}, "unknown number system"),
    ])
    def test_bad_configuration(self, kwargs, match):
        with pytest.raises(ValueError, match=match):
            MLP([3, 4, 2], **kwargs)

    @pytest.mark.parametrize("sizes", [[3], [3, 0, 2], [3, 2.5], "32"])
    def test_bad_layer_sizes(self, sizes):
        with pytest.raises(ValueError, match="`layer_sizes` must be a list"):
            MLP(sizes)

    def test_bad_order(self):
        with pytest.raises(ValueError, match="`order` must be 'C'"):
            self.net.unflatten(order="K")


def test_no_precision_state_leaks_from_network():
    before = (mpmath.mp.prec, decimal.getcontext().prec)
    MLP([2, 2, 1], numbers="decimal:60").gradient([[1, 2]], [[1]])
    MLP([2, 2, 1], numbers="mpf:80").gradient([[1, 2]], [[1]])
    assert (mpmath.mp.prec, decimal.getcontext().prec) == before
