"""Verdicts that must not claim more than their evidence shows (red-team review of
2026-12): each test builds its own buggy gradient and fails on the behaviour it guards."""

import warnings

import numpy as np
import pytest

from precision_nn.gradcheck import check_gradient

RNG = np.random.default_rng(20261202)


# -- an explicit step never takes the blame for a bug the h -> 0 limit shows ---------------
def _tanh_cubic(x):
    return np.sum(np.tanh(x) * x ** 3)


def _tanh_cubic_grad(x):
    return (1 - np.tanh(x) ** 2) * x ** 3 + 3 * np.tanh(x) * x ** 2


@pytest.mark.parametrize("h", [1e-11, 0.2])
def test_explicit_step_does_not_hide_a_wrong_coordinate(h):
    x = RNG.uniform(0.5, 1.5, size=7)

    def grad(x):
        g = _tanh_cubic_grad(x)
        g[3] *= -0.5  # one wrong coordinate
        return g

    report = check_gradient(_tanh_cubic, grad, x, method="central", h=h)
    assert not report.passed
    step = [f for f in report.findings if f.kind.startswith("step_too")]
    assert step, report  # the step is really off at the other coordinates
    assert 3 not in step[0].evidence["coordinates"]
    assert "6 of 7" in step[0].message or "at these" in step[0].message
    # the bug is named, against the h -> 0 limit
    bug = [f for f in report.findings if f.kind in ("mismatch", "localized")]
    assert bug and 3 in bug[0].evidence.get("coordinates", bug[0].evidence.get("entries"))


def test_step_finding_on_a_correct_gradient_speaks_of_every_coordinate():
    x = RNG.uniform(0.5, 1.5, size=5)
    report = check_gradient(_tanh_cubic, _tanh_cubic_grad, x, method="central", h=0.2)
    assert report.kinds == ("step_too_large",)
    assert "at every coordinate" in report.findings[0].message


# -- a pattern explains a gap only if its residual is within tolerance everywhere ----------
def _cosh_sum(x):
    return np.sum(np.cosh(x)) + np.sum(x) ** 2 / 4


def _cosh_sum_grad(x):
    return np.sinh(x) + np.sum(x) / 2


def test_one_entry_slightly_off_is_no_whole_gradient_scale():
    x = RNG.normal(size=120)

    def grad(x):
        g = _cosh_sum_grad(x)
        g[40] *= 1 + 3e-10  # far beyond float64's tolerance, far below the old 1e-9 rule
        return g

    report = check_gradient(_cosh_sum, grad, x)
    assert not report.passed
    assert "scale" not in report.kinds, report
    named = [f for f in report.findings if f.kind in ("mismatch", "localized")]
    assert named and 40 in named[0].evidence["coordinates"]


def test_float_inside_a_decimal_gradient_is_no_scale():
    from decimal import Decimal

    from precision_nn.numbers import number_system
    ns = number_system("decimal:30")
    with ns.context():
        x = np.array([Decimal("0.45"), Decimal("-1.3"), Decimal("0.8"), Decimal("2.1")],
                     dtype=object)

    def f(x):
        return sum(v * v * v * v for v in x)

    def grad(x):  # 4·v³ rounded through float64: relative errors of either sign ≈ 1e-16
        return np.array([Decimal(4 * float(v) ** 3) for v in x], dtype=object)

    report = check_gradient(f, grad, x, numbers=ns)
    assert not report.passed
    assert "scale" not in report.kinds, report


def test_a_real_constant_factor_is_still_named():
    x = RNG.normal(size=30)
    report = check_gradient(_cosh_sum, lambda x: _cosh_sum_grad(x) * (1 + 1e-7), x)
    assert report.kinds == ("scale",)
    assert report.findings[0].evidence["factor"] - 1 == pytest.approx(1e-7, rel=1e-3)


# -- a failure real arithmetic cannot resolve is undecidable, never passed ------------------
@pytest.mark.parametrize("rel", ["2e-15", "3e-14"])
def test_longdouble_small_bug_is_never_passed(rel):
    from precision_nn.network import MLP

    X = np.cos(np.arange(1, 16)).reshape(5, 3) / 2
    Y = np.eye(2)[[1, 0, 1, 1, 0]]

    class Slipped(MLP):
        def gradient(self, X, Y, params=None):
            g = super().gradient(X, Y, params).copy()
            g[7] = g[7] * (1 + np.longdouble(rel))
            return g

    report = Slipped([3, 3, 2], seed=4, numbers="longdouble", l2="0.05").check_gradient(X, Y)
    assert not report.passed, report
    claimed = {c for f in report.findings for c in f.evidence.get("coordinates", [])}
    assert 7 in claimed, report
    if report.undecided:
        assert "more digits" in " ".join(f.message for f in report.findings)
    correct = MLP([3, 3, 2], seed=4, numbers="longdouble", l2="0.05").check_gradient(X, Y)
    assert correct.passed, correct


# -- directions: a float named only when per-entry rounding can produce the gaps -----------
def _weighted_cos(c):
    return (lambda x: np.sum(np.cos(x) * c)), (lambda x: -np.sin(x) * c)


def test_directions_do_not_call_a_one_entry_bug_float32_rounding():
    rng = np.random.default_rng(4)
    c, x = rng.normal(size=3000), rng.normal(size=3000)
    f, g = _weighted_cos(c)

    def grad(x):
        out = g(x)
        out[7] *= 1.01  # a 1 % bug at one entry of a pure float64 gradient
        return out

    report = check_gradient(f, grad, x, directions=8, progress=False)
    assert not report.passed
    assert all(fi.evidence.get("float") is None for fi in report.findings), report


def test_directions_still_name_a_gradient_rounded_through_float32():
    rng = np.random.default_rng(12)
    c, x = rng.normal(size=2500), rng.normal(size=2500)
    f, g = _weighted_cos(c)
    report = check_gradient(f, lambda x: g(x).astype(np.float32).astype(float), x,
                            directions=8, progress=False)
    assert [fi.evidence.get("float") for fi in report.findings] == ["float32"], report


# -- one non-finite coordinate does not discard the others -----------------------------------
def test_a_coordinate_at_the_edge_of_the_domain_leaves_the_others_decided():
    # x^1.5 at x = 1e-300: every step of a difference crosses 0 there (NaN beyond)
    x = np.array([2.0, 1e-300, 0.5, 3.0])

    def grad(x):
        g = 1.5 * np.sqrt(x)
        g[3] *= 1.002  # a 0.2 % bug far from the edge
        return g

    with np.errstate(invalid="ignore"):  # f and grad are NaN beyond the edge
        report = check_gradient(lambda x: np.sum(x ** 1.5), grad, x)
    assert not report.passed
    decided = np.isfinite(report.reference)
    assert decided[[0, 2, 3]].all(), report
    named = {c for f in report.findings if f.kind != "precision_loss"
             for c in f.evidence.get("coordinates", [])}
    assert 3 in named, report


# -- huge x: no internal step error; 0-d x: a clear error ------------------------------------
def test_huge_x_gives_a_verdict_not_an_internal_step_error():
    x = np.array([2e150, 5e150])
    # (the step rules of `derivatives` overflow in intermediate ratios at this scale)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        report = check_gradient(lambda x: np.sum(x ** 2),
                                lambda x: 2 * x * np.r_[1, 1 + 1e-5], x)
    assert not report.passed


def test_scalar_x_is_refused_with_a_clear_message():
    with pytest.raises(ValueError, match="at least one dimension.*atleast_1d"):
        check_gradient(np.sin, np.cos, np.float64(0.7))
    with pytest.raises(ValueError, match="at least one dimension"):
        check_gradient(np.sin, np.cos, np.array(0.7))


# -- a kink exactly at x is named; a notice does not turn undecided into failed --------------
def test_kink_exactly_at_x_is_named():
    w = np.array([1.5, -2.0, 0.5, 1.0])
    x = np.array([0.4, 0.0, -1.1, 0.9])
    report = check_gradient(lambda x: np.sum(w * np.maximum(x, 0)), lambda x: w * (x > 0), x)
    assert "kink" in report.kinds, report
    assert 1 in report.findings[report.kinds.index("kink")].evidence["coordinates"]
    assert "say the comparison cannot be trusted" not in report.verdict() or \
        report.verdict().count("1 finding(s)") == 1


def test_kink_closer_than_the_scan_leaves_a_correct_gradient_undecided_not_failed():
    """|x| at x = 1e-13: the kink lies far inside the scan's smallest step, the correct
    gradient (sign x = 1) agrees at every coordinate, so nothing accuses it: the verdict is
    UNDECIDED (the comparison there cannot be trusted), never FAILED, and the kink finding
    does not claim that x sits on the kink."""
    x = np.array([1e-13, 0.5, -0.3])
    report = check_gradient(lambda x: np.sum(np.abs(x)), np.sign, x)
    assert "kink" in report.kinds, report
    assert not report.passed and report.undecided, report
    assert report.verdict().startswith("UNDECIDED: the check cannot decide 1 of 3"), report
    assert "lies within" in report.findings[report.kinds.index("kink")].message
    # a real bug beside the same kink still fails
    buggy = check_gradient(lambda x: np.sum(np.abs(x)), lambda x: np.sign(x) * [1, 2, 1], x)
    assert not buggy.passed and not buggy.undecided, buggy


# -- an enclosure of infinite radius is refused, not called a mismatch -----------------------
def test_arb_gradient_of_infinite_radius_is_refused():
    flint = pytest.importorskip("flint")
    from precision_nn.numbers import number_system
    ns = number_system("arb:30")
    x = ns.asarray(["0.4", "-1.1"])

    def f(x):
        total = 0
        for v in x:
            total = total + v.sin() * v
        return total

    def unbounded(x):  # the midpoints are right, the radius says nothing
        return np.array([flint.arb((v.sin() + v * v.cos()).mid(), float("inf")) for v in x],
                        dtype=object)

    with pytest.raises(ValueError, match="infinite radius"):
        check_gradient(f, unbounded, x)


# -- patterns are not fitted where the tolerance cannot test them ----------------------------
def test_no_layout_is_fitted_through_undecidable_coordinates():
    x = np.array([0.5, 0.5 + 1e-13, -1.0, 0.1])  # max(x) has a near-tie at [0], [1]
    report = check_gradient(lambda x: np.max(x), lambda x: (x == x.min()).astype(float), x)
    assert not report.passed
    assert "layout" not in report.kinds, report
    named = {c for f in report.findings if f.kind in ("mismatch", "localized")
             for c in f.evidence.get("coordinates", [])}
    assert 2 in named, report


def test_a_sign_wrong_on_one_branch_is_a_sign_not_a_penalty():
    x = np.array([0.8, -1.3, 0.4, -0.6, -2.1, 1.7])
    # d/dx x·|x| = 2|x|; the gradient returns 2x, wrong wherever x < 0
    report = check_gradient(lambda x: np.sum(x * np.abs(x)), lambda x: 2 * x, x,
                            method="richardson")
    assert "regularization" not in report.kinds, report
    sign = [f for f in report.findings if f.kind == "sign"]
    assert sign and sorted(sign[0].evidence["coordinates"]) == [1, 3, 4]


# -- smaller misnamings: a float16 rounding is named; noise does not hide a large bug --------
def test_a_float32_gradient_rounded_through_float16_is_named():
    rng = np.random.default_rng(21)
    B = rng.normal(size=(9, 7)).astype(np.float32)
    w = (rng.normal(size=7) * 0.4).astype(np.float32)

    def f(w):
        return np.sum(np.sin(B @ w))

    def grad(w):  # right formula, stored through float16 on the way out
        return (B.T @ np.cos(B @ w)).astype(w.dtype).astype(np.float16).astype(np.float32)

    report = check_gradient(f, grad, w)
    assert [fi.evidence.get("float") for fi in report.findings] == ["float16"], report


def test_noise_in_f_does_not_excuse_a_bug_far_beyond_it():
    rng = np.random.default_rng(22)
    x = rng.normal(size=5)
    jitter = np.random.default_rng(23)

    def f(x):  # f carries relative noise ~1e-11 (far above float64's rounding)
        return np.sum(np.cosh(x)) + 3e-11 * jitter.normal()

    def grad(x):
        g = np.sinh(x)
        g[2] += 2e-3  # a bug 10⁷ times the noise
        return g

    report = check_gradient(f, grad, x)
    assert not report.passed
    noise = [fi for fi in report.findings if fi.kind == "precision_loss"]
    bug = [fi for fi in report.findings if fi.kind in ("mismatch", "localized")]
    assert bug and 2 in bug[0].evidence["coordinates"], report
    assert not noise or 2 not in noise[0].evidence["coordinates"]


# -- a missing term of one size is a term, not float32 rounding -----------------------------
def test_a_missing_l1_term_is_named_not_called_float32_rounding():
    """f = least squares + λ·Σ|w| with the λ·sign(w) term forgotten: every gap is λ = 1e-7,
    within a float32 ulp of the gradient's scale but of one size at every coordinate, which
    roundings of different entries never are. The check names the L1 term (its λ
    measured), never "computes in float32". (np.abs drops the imaginary part, so the
    complex step is called off by the probe's Richardson test first.)"""
    rng = np.random.default_rng(11)
    A, b, w = rng.normal(size=(25, 12)), rng.normal(size=25), rng.normal(size=12)
    lam = 1e-7

    def f(v):
        return 0.5 * np.mean((A @ v - b) ** 2) + lam * np.sum(np.abs(v))

    forgot = check_gradient(f, lambda v: A.T @ (A @ v - b) / len(b), w)
    assert not forgot.passed
    # (the complex-step probe's real test saw the dropped term: a notice, not a cause)
    assert forgot.kinds[0] == "regularization", forgot
    assert set(forgot.kinds) <= {"regularization", "not_complex_safe"}, forgot
    finding = forgot.findings[0]
    assert finding.evidence["penalty"] == "l1"
    assert abs(finding.evidence["factor"] + lam) <= 1e-3 * lam
    right = check_gradient(f, lambda v: A.T @ (A @ v - b) / len(b) + lam * np.sign(v), w)
    assert right.passed, right


def test_curvature_near_a_pole_is_not_noise_that_widens_every_bar():
    """1/x with x = [1e-6, 1, 3]: the noise probe's offsets (~4e-6) reach past the pole,
    so its fourth differences are huge, but they fall ~2000-fold at the fine spacing
    (curvature, not noise). Added to every bar they gave a tolerance of 5e6 and a sign
    error at x = 3 passed."""
    x = np.array([1e-6, 1.0, 3.0])

    def f(v):
        return np.sum(1 / v)

    wrong = check_gradient(f, lambda v: -1 / v**2 * np.array([1, 1, -1]), x)
    assert not wrong.passed
    assert np.flatnonzero(np.abs(wrong.difference) > wrong.tolerance).tolist() == [2]
    assert check_gradient(f, lambda v: -1 / v**2, x).passed


@pytest.mark.parametrize("lam", [1e-8, 1e-9])
def test_an_l1_term_too_small_for_central_differences_still_calls_the_complex_step_off(lam):
    """λ·Σ|w| with λ = 1e-8 or 1e-9 beside a gradient of scale ~0.3: np.abs drops the
    term from Im f, and central differences along the probe's direction (good to ~1e-10
    of the scale) cannot see it, so the complex step agreed with a gradient that forgot
    the term. Richardson along the same direction (~1e-12) sees it: the complex step is
    called off and the forgotten term fails against Richardson; the full gradient passes."""
    rng = np.random.default_rng(4)
    A, w = rng.normal(size=(8, 8)), rng.normal(size=8)

    def f(v):
        return 0.5 * np.sum(np.tanh(A @ v) ** 2) + lam * np.sum(np.abs(v))

    def smooth_part(v):
        t = np.tanh(A @ v)
        return A.T @ (t * (1 - t ** 2))

    forgot = check_gradient(f, smooth_part, w)
    assert not forgot.passed and "not_complex_safe" in forgot.kinds, forgot
    assert "richardson" in forgot.reference_name.lower()
    right = check_gradient(f, lambda v: smooth_part(v) + lam * np.sign(v), w)
    assert right.passed, right


def test_a_complex_safe_function_keeps_the_complex_step_after_the_fine_probe():
    rng = np.random.default_rng(5)
    A, w = rng.normal(size=(8, 8)), rng.normal(size=8)

    def f(v):
        return 0.5 * np.sum(np.tanh(A @ v) ** 2)

    def grad(v):
        t = np.tanh(A @ v)
        return A.T @ (t * (1 - t ** 2))

    report = check_gradient(f, grad, w)
    assert report.passed and report.kinds == ("match",), report
    assert report.reference_name.startswith("complex step")


def test_a_zero_reference_is_undecided_with_an_absolute_bar_not_an_infinite_share():
    """Σ floor(w): the gradient is 0 almost everywhere and the reference 0 with a bar of
    ~1e-13. Relative to a gradient scale of 0 any bar is infinite; the finding used to say
    "up to inf of the gradient's scale". It now states the bar and why no relative
    accuracy exists, and the verdict stays undecided (never a pass on an infinite ratio)."""
    x = np.array([0.3, 1.7, -2.2])
    report = check_gradient(lambda w: np.sum(np.floor(w), axis=-1), np.zeros_like, x)
    assert report.undecided and not report.passed
    (finding,) = [f for f in report.findings if f.kind == "precision_loss"]
    assert "every entry of the reference is 0" in finding.message
    assert " inf " not in finding.message


# -- a bug next to a kink the reference stepped below is a bug, not the kink -----------------
@pytest.mark.parametrize("distance", [1e-2, 1e-3, 1e-4])
def test_a_bug_beside_a_kink_the_reference_restarted_below_is_a_mismatch(distance):
    """|x0 − 0.5 + δ| has a kink δ from x; below it f is smooth, so the restarted
    Richardson reference is good to ~1e-12 while a 1% bug gaps by 1e-2 (closed form:
    1 + 0.1·cos 0.5). The kink cannot explain that: the reference no longer crosses it.
    (A kink closer than the scan's smallest step, ~3e-5 here, is never stepped below:
    there the kink stays a possible reading, with the advice to check at another point.)"""
    x = np.array([0.5, 1.0])

    def f(x):
        return np.abs(x[0] - 0.5 + distance) + 0.1 * np.sum(np.sin(x)) \
            + 3 * np.maximum(x[1] - 1.0 + distance, 0)

    def g(x):
        return np.array([np.sign(x[0] - 0.5 + distance) + 0.1 * np.cos(x[0]),
                         0.1 * np.cos(x[1]) + 3.0])

    assert check_gradient(f, g, x).passed
    report = check_gradient(f, lambda x: g(x) * np.array([1.01, 1.0]), x)
    assert not report.passed and "kink" not in report.kinds, report
    assert "mismatch" in report.kinds or "scale" in report.kinds, report


def test_a_small_scale_bug_in_a_float32_internal_f_is_not_named_a_regulariser():
    """f computes in float32 inside (noise ~6e-7), the gradient is 1.001 × the closed form
    (cos + sin)·exp. The gaps follow θ only loosely (λ = 0.0025 ± 0.0009 on 3 of 4
    coordinates): a regulariser must be resolved from 0 as a scale is from 1, so the
    finding is not `regularization`; the check still fails."""
    x = np.array([0.3, 1.2, -0.7, 2.1])

    def f(x):
        return float(np.sum(np.sin(np.float32(x)) * np.exp(np.float32(x))))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", np.exceptions.ComplexWarning)  # f drops Im
        report = check_gradient(f, lambda x: 1.001 * (np.cos(x) + np.sin(x)) * np.exp(x), x)
    assert not report.passed
    assert "regularization" not in report.kinds, report


# -- a ReLU pre-activation exactly at 0: its flip over a few ulps is no noise allowance ----
def _relu_net_on_its_kink():
    """A [3, 4, 2] ReLU net whose unit 0 has pre-activation exactly 0 on example 0
    (x = e_1, w_00 = -b_0): f has no derivative in w_00 and b_0 at these parameters."""
    from precision_nn.network import MLP

    rng = np.random.default_rng(0)
    X = rng.normal(size=(6, 3))
    Y = np.eye(2)[rng.integers(0, 2, 6)]
    net = MLP([3, 4, 2], hidden="relu", seed=0)
    W1, W2 = (w.copy() for w in net.unflatten())
    X[0] = [1.0, 0.0, 0.0]
    W1[0, 0] = -W1[0, 1]
    return MLP([3, 4, 2], hidden="relu", init=net.flatten([W1, W2])), X, Y


def test_a_bump_at_a_relu_kink_at_x_is_a_mismatch_and_the_correct_gradient_undecided():
    """The gradient noise probe saw backprop's flip between the two one-sided slopes
    (0.0188 and 0.0377, forward and backward differences at h = 1e-7, below) as rounding
    noise of σ ≈ 0.3·jump and widened the tolerance to 0.045: a +0.03 bump passed."""
    net, X, Y = _relu_net_on_its_kink()
    loss = lambda p: net.loss(X, Y, p)
    e = np.zeros(net.params.size)
    e[1] = 1e-7
    right = (loss(net.params + e) - loss(net.params)) / 1e-7
    left = (loss(net.params) - loss(net.params - e)) / 1e-7
    g = net.gradient(X, Y)
    assert abs(right - left) > 0.01 and min(abs(g[1] - right), abs(g[1] - left)) < 1e-6
    bump = np.zeros(net.params.size)
    bump[1] = 0.03  # outside [right, left]: no one-sided slope, a bug
    shapes = [(4, 4), (2, 5)]
    buggy = check_gradient(loss, lambda p: net.gradient(X, Y, p) + bump, net.params,
                           shapes=shapes, batch_size=6)
    assert not buggy.passed and not buggy.undecided, buggy
    assert "mismatch" in buggy.kinds or "localized" in buggy.kinds, buggy
    correct = check_gradient(loss, lambda p: net.gradient(X, Y, p), net.params,
                             shapes=shapes, batch_size=6)
    assert correct.undecided and "kink" in correct.kinds, correct
    assert not {"mismatch", "localized"} & set(correct.kinds), correct
    own = net.check_gradient(X, Y, progress=False)
    assert own.undecided and "kink" in own.kinds, own


def test_a_kink_at_a_distance_is_not_undecided():
    """Undecided covers a kink at x only: one resolved at a distance leaves f
    differentiable at x, and an analytic value from its far side is wrong there."""
    x = np.array([0.4, 1e-3, -1.1])
    far_side = lambda x: np.array([1.0, 0.0, 0.0])  # the slope left of the kink at x_1 = 0
    report = check_gradient(lambda x: np.sum(np.maximum(x, 0)), far_side, x)
    assert not report.passed and not report.undecided, report


# -- float16: a small entry the gradient resolves is judged by a reference that resolves it -
@pytest.mark.parametrize("factor", [-1.0, 3.0])
def test_a_float16_slip_on_a_small_entry_beside_a_large_one_is_caught(factor):
    """f = Σx⁴ at [3, 0.05, 0.5] in float16: ∂f/∂x₁ = 4·0.05³ = 5.0e-4 (closed form),
    computed to 3 digits by the float16 gradient, beside 108. The reference went to
    float32, whose Richardson bar there (~6e-4) and whose rounding bound for the
    gradient (128·u32·108 = 8e-4) both covered the entry: a sign slip passed at 7.6
    relative tolerance. Both are now taken one system further (float64)."""
    x = np.array([3.0, 0.05, 0.5], dtype=np.float16)
    f = lambda x: np.sum(x ** 4)
    grad = lambda x: (4 * x ** 3).astype(x.dtype)

    def slipped(x):
        g = grad(x)
        g[1] = g[1] * factor
        return g

    exact = 4 * x.astype(np.float64) ** 3
    assert abs(float(grad(x)[1]) - exact[1]) < 1e-3 * exact[1]  # float16 resolves it
    correct = check_gradient(f, grad, x)
    assert correct.passed, correct
    buggy = check_gradient(f, slipped, x)
    assert not buggy.passed and not buggy.undecided, buggy
    assert buggy.findings[0].kind in ("sign", "mismatch", "localized", "scale"), buggy


@pytest.mark.parametrize("a0, undecided", [(0.0, True), (1.0, True), (-0.3, False),
                                           (-0.1, False), (1.1, False), (1.3, False)])
def test_at_a_kink_at_x_only_a_one_sided_slope_is_undecided(a0, undecided):
    """relu(x₀) + Σx² at x₀ = 0: the one-sided partials are 0 and 1 (closed form), the
    two-sided reference their mean 0.5. A gradient entry of 0 or 1 is undecidable there;
    one outside [0, 1] is a bug, within the jump of the reference but not within half of
    it (review, 2026-12-03: 1.3 and -0.3 were UNDECIDED)."""
    x = np.array([0.0, 0.7, -0.4, 1.3])
    f = lambda x: np.sum(np.maximum(x, 0.0)) + np.sum(x ** 2)
    grad = lambda x: np.where(x > 0, 1.0, 0.0) + 2 * x + np.array([a0, 0, 0, 0])
    report = check_gradient(f, grad, x)
    assert not report.passed, report
    assert report.undecided == undecided, report


def test_a_correct_float16_softmax_gradient_that_cancels_is_not_accused():
    """Softmax cross-entropy, grad p - y in float16 at [6, -1, -0.5]: entry 0 = p₀ - 1 with
    p₀ ≈ 0.9976 rounds by 4.6e-4 (float16 spaces values near 1 by 4.9e-4) against the
    model's 128·u·(|a₀| + max|a|) = 2.5e-4; once the reference was taken to float64 the
    correct gradient was FAILED as a mismatch (review, 2026-12-03). The same code in
    float64 gives the mpmath values, so the gap is rounding: the measured rounding now
    widens the tolerance too. A sign slip at entry 1 is still caught."""
    import mpmath

    def softmax(z):
        e = np.exp(z - np.max(z))
        return e / np.sum(e)

    f = lambda x: -np.log(softmax(x)[0])
    grad = lambda x: softmax(x) - np.array([1, 0, 0], dtype=x.dtype)
    x = np.array([6.0, -1.0, -0.5], dtype=np.float16)
    with mpmath.workdps(50):
        z = [mpmath.mpf(float(v)) for v in x]
        total = sum(mpmath.exp(v) for v in z)
        truth = [float(mpmath.exp(v) / total - (i == 0)) for i, v in enumerate(z)]
    assert np.allclose(grad(x.astype(np.float64)), truth, rtol=1e-12)
    report = check_gradient(f, grad, x)
    assert report.passed or report.undecided, report

    def slipped(x):
        g = grad(x)
        g[1] = -g[1]
        return g

    buggy = check_gradient(f, slipped, x)
    assert not buggy.passed and not buggy.undecided, buggy


# -- f computed on a grid coarser than every step: a 0 ± 0 must not accuse --------------
def _softmax_ce(x):
    e = np.exp(x - np.max(x))
    return -np.log(e[0] / np.sum(e))


def _softmax_ce_grad(x):
    e = np.exp(x - np.max(x))
    return e / np.sum(e) - np.array([1, 0, 0], dtype=x.dtype)


SATURATED = [(np.float16, [10.0, 0.0, 0.0]), (np.float32, [20.0, 0.0, 0.0]),
             (np.float64, [40.0, 0.0, 0.0])]


@pytest.mark.parametrize("dtype, point", SATURATED)
def test_a_saturated_naive_softmax_loss_does_not_accuse_its_correct_gradient(dtype, point):
    """softmax(x)₀ rounds to 1, so f = -log(softmax(x)₀) is exactly 0 for every step
    along x₁ up to ~2.5 (float64), while ∂f/∂x₁ = 4e-18: Richardson gave 0 ± 0 and the
    check FAILED a correct gradient as a mismatch, in all three dtypes."""
    x = np.array(point, dtype=dtype)
    report = check_gradient(_softmax_ce, _softmax_ce_grad, x)
    assert report.passed or report.undecided, report


@pytest.mark.parametrize("dtype, point", SATURATED)
def test_the_bar_of_a_zero_from_a_grid_covers_the_true_derivative(dtype, point):
    """The derivative itself: its bar bounds the true error (mpmath at 40 digits of the
    same softmax at the same float inputs)."""
    import mpmath

    from precision_nn.derivatives import gradient

    x = np.array(point, dtype=dtype)
    est = gradient(_softmax_ce, x, method="richardson")
    with mpmath.workdps(40):
        e = [mpmath.exp(mpmath.mpf(float(v))) for v in x]
        exact = [float(v / sum(e)) - (i == 0) for i, v in enumerate(e)]
    assert np.all(np.abs(est.value.astype(float) - exact) <= est.error), (est, exact)


def test_a_coordinate_f_does_not_depend_on_still_fails_a_nonzero_gradient():
    """f constant along x₂ over the whole probe (16·max(|x₂|, 1)): the 0 ± 0 stands and a
    gradient that gives x₂ a slope fails there."""
    x = np.array([0.3, -0.7, 0.5])
    f = lambda v: v[0] ** 2 + np.sin(v[1])
    grad = lambda v: np.array([2 * v[0], np.cos(v[1]), 1e-3])
    report = check_gradient(f, grad, x)
    assert not report.passed and not report.undecided, report
    assert 2 in {c for f in report.findings for c in f.evidence.get("coordinates", [])}


def test_a_restart_below_a_kink_far_below_the_spacing_at_x_does_not_crash():
    """float16 at x₀ = 9 (spacing 2^-7): the Richardson restarted below a kink measured
    f's noise at spacings of ~1e-4, below that spacing, and raised "`h` is below the
    spacing" for a call that gave no h. Such spacings give no evidence and are skipped."""
    x = np.array([9.0, -1.0, 1.5], dtype=np.float16)
    report = check_gradient(_softmax_ce, _softmax_ce_grad, x)
    assert report.passed or report.undecided, report
