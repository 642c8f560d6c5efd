"""Unit tests of the gradient check: detectors on synthetic arrays, blocks, tolerance,
report, validation messages, directional mode and the network entry point."""

from __future__ import annotations

import decimal

import mpmath
import numpy as np
import pytest

from precision_nn.gradcheck import (
    KINDS,
    check_gradient,
    check_network_gradient,
)
from precision_nn.gradcheck.blocks import Blocks
from precision_nn.gradcheck.evidence import (
    CheckData,
    ComplexProbe,
    KinkProbe,
    NoiseProbe,
    Probes,
    StepProbe,
)
from precision_nn.gradcheck.findings import DETECTORS, describe_factor, diagnose
from precision_nn.gradcheck.tolerance import REFERENCE_SAFETY, ROUNDING_FACTOR, tolerance
from precision_nn.network import MLP
from precision_nn.numbers import number_system

U64 = 2.0 ** -53
SHAPES = [(3, 4), (2, 4)]
RNG = np.random.default_rng(7)
REFERENCE = RNG.standard_normal(20)
THETA = RNG.standard_normal(20)


def synthetic(analytic, reference=REFERENCE, *, shapes=SHAPES, x=THETA, error=1e-12,
              batch_size=None, probes=None, order="C") -> CheckData:
    """A CheckData as check_gradient would build it, from plain arrays."""
    analytic, reference = np.asarray(analytic, float), np.asarray(reference, float)
    err = np.full(analytic.shape, error)
    tol = tolerance(analytic, reference, err, unit_roundoff=U64, numbers="float64",
                    reference_name="synthetic")
    blocks = Blocks.from_shapes(shapes, order=order, size=analytic.size)
    return CheckData(analytic, reference, analytic - reference, err, tol, np.asarray(x, float),
                     blocks, batch_size, U64, "synthetic", probes or Probes())


def kinds(data: CheckData) -> tuple[str, ...]:
    return tuple(f.kind for f in diagnose(data))


# -- detectors on synthetic arrays -----------------------------------------------------------
def test_every_kind_has_a_detector():
    assert set(DETECTORS) <= set(KINDS) and len(DETECTORS) == 12
    # the PyTorch adapter's kinds are valid kinds without a generic detector
    assert set(KINDS) - set(DETECTORS) == {"ignores_grad_output", "nondeterministic"}


def test_match_within_tolerance():
    assert kinds(synthetic(REFERENCE * (1 + 1e-14))) == ("match",)


def test_scale_whole_and_named_as_one_over_m():
    found = diagnose(synthetic(REFERENCE / 5, batch_size=5))
    assert [f.kind for f in found] == ["scale"]
    assert "1/m" in found[0].message and found[0].evidence["factor"] == pytest.approx(0.2)


def test_scale_of_one_block_only():
    a = REFERENCE.copy()
    a[12:] *= 3
    found = diagnose(synthetic(a))
    assert [f.kind for f in found] == ["scale"] and found[0].evidence["block"] == 1


def test_scale_close_to_one_is_named_with_its_uncertainty():
    found = diagnose(synthetic(REFERENCE * 1.001))
    assert [f.kind for f in found] == ["scale"]
    assert found[0].evidence["factor"] == pytest.approx(1.001, rel=1e-12)
    assert "1.001" in found[0].message and "±" in found[0].message


def test_sign_whole_gradient():
    assert kinds(synthetic(-REFERENCE)) == ("sign",)


def test_layout_block_in_fortran_order():
    a = REFERENCE.copy()
    a[:12] = REFERENCE[:12].reshape(3, 4).ravel(order="F")
    found = diagnose(synthetic(a))
    assert [f.kind for f in found] == ["layout"] and found[0].evidence["block"] == 0


def test_layout_every_block_when_params_are_fortran():
    a = np.concatenate([REFERENCE[:12].reshape(3, 4).ravel(order="F"),
                        REFERENCE[12:].reshape(2, 4).ravel(order="F")])
    found = diagnose(synthetic(a))
    assert [f.kind for f in found] == ["layout"] and found[0].message.startswith("Every block")


def test_regularization_on_the_bias_column():
    a = REFERENCE.copy()
    bias = np.arange(12, 20, 4)  # column 0 of block 1 in C order
    a[bias] += 0.6 * THETA[bias]
    found = diagnose(synthetic(a, batch_size=5))
    assert [f.kind for f in found] == ["regularization"]
    assert found[0].evidence["factor"] == pytest.approx(0.6)
    # the measured λ, not rewritten as a multiple of 1/m
    assert "column 0" in found[0].message and "λ = 0.6" in found[0].message
    assert "/m" not in found[0].message


def test_localized_unexplained_column():
    a = REFERENCE.copy()
    a[[1, 5, 9]] = [0.3, -2.0, 7.0]  # column 1 of block 0, no pattern
    found = diagnose(synthetic(a))
    assert [f.kind for f in found] == ["localized", "mismatch"]
    assert "block 0, column 1" in found[0].message


def test_mismatch_without_shapes_is_not_localized():
    a = REFERENCE + RNG.standard_normal(20)
    assert kinds(synthetic(a, shapes=None)) == ("mismatch",)


def _step_probe(step_error, rounding, limit_difference=None):
    limit_difference = np.zeros(20) if limit_difference is None else limit_difference
    return StepProbe("central", 0.5, "complex step", limit_difference, np.full(20, 1e-12),
                     np.full(20, step_error), np.full(20, rounding), np.full(20, 1e-8))


def test_step_too_large_from_the_probe():
    data = synthetic(REFERENCE + 1e-3, error=1e-6,
                     probes=Probes(step=_step_probe(1e-3, 1e-15)))
    assert kinds(data) == ("step_too_large",)


def test_step_too_small_from_the_probe():
    data = synthetic(REFERENCE + 1e-3, error=1e-6,
                     probes=Probes(step=_step_probe(1e-3, 1e-3)))
    assert kinds(data) == ("step_too_small",)


def test_step_finding_needs_the_limit_to_agree():
    probe = _step_probe(1e-3, 1e-15, limit_difference=np.full(20, 0.1))
    data = synthetic(REFERENCE + 0.1, probes=Probes(step=probe))
    assert "step_too_large" not in kinds(data)


def test_precision_loss_from_the_probe_and_not_from_a_kink():
    lossy = NoiseProbe(1e-17, 1e-28, 1e-9, "decimal:28", sigma_fine=2e-17)
    kinky = NoiseProbe(1e-7, 1e-16, 1e-6, "float64", sigma_fine=1e-7 / 16)
    assert "precision_loss" in kinds(synthetic(REFERENCE + 1e-3, probes=Probes(noise=lossy)))
    assert "precision_loss" not in kinds(synthetic(REFERENCE + 1e-3,
                                                   probes=Probes(noise=kinky)))


def test_kink_from_a_scan_that_does_not_shrink():
    steps = 1e-2 * 0.25 ** np.arange(5)
    jumps = np.array([2.0, 1.9, 1.8, 0.2 * steps[3], 0.2 * steps[4]])
    probe = KinkProbe(np.array([3]), steps[None], jumps[None], np.full((1, 5), 1e-14))
    a = REFERENCE.copy()
    a[3] += 1.0
    assert kinds(synthetic(a, probes=Probes(kink=probe)))[0] == "kink"
    smooth = KinkProbe(np.array([3]), steps[None], (0.5 * steps)[None], np.full((1, 5), 1e-14))
    assert "kink" not in kinds(synthetic(a, probes=Probes(kink=smooth)))


def test_not_complex_safe_is_a_notice():
    probe = ComplexProbe(True, False, "it drops the imaginary part.")
    assert kinds(synthetic(REFERENCE, probes=Probes(complex=probe))) == \
        ("not_complex_safe", "match")


def test_describe_factor():
    assert describe_factor(4.0, 4).startswith("m (")
    assert describe_factor(0.75, None) == "3/4"


# -- blocks and tolerance ---------------------------------------------------------------------
def test_blocks_locate_in_fortran_order():
    b = Blocks.from_shapes([(2, 3)], order="F", size=6)
    assert [b.locate(i)[1:] for i in range(3)] == [(0, 0), (1, 0), (0, 1)]
    G = np.arange(6.0).reshape(2, 3)
    assert np.array_equal(b.reread(G.ravel("C"), 0, written="C"), G.ravel("F"))


def test_tolerance_adds_reference_error_and_rounding():
    a = np.array([1.0, -3.0])
    t = tolerance(a, a, np.array([1e-10, 0.0]), unit_roundoff=U64, numbers="float64",
                  reference_name="r")
    rounding = ROUNDING_FACTOR * U64 * (np.abs(a) + 3.0)
    assert np.allclose(t.values, REFERENCE_SAFETY * np.array([1e-10, 0.0]) + rounding)
    assert "4 × the reference's own error estimate" in t.source


def test_tolerance_without_estimate_says_so():
    t = tolerance(np.ones(2), np.ones(2), np.array([np.nan, 1e-9]), unit_roundoff=U64,
                  numbers="float64", reference_name="r")
    assert "without an error estimate" in t.source and np.all(np.isfinite(t.values))


# The rounding term of the tolerance is at most ROUNDING_FACTOR·u·2·max|a|; the reference
# part is REFERENCE_SAFETY × an error bar that, for a complex step or a Richardson table
# run down to the system's own rounding, is below a few hundred u·max|a| (observed whole
# tolerances: 384 u·max|a| with the complex step, 575 with Richardson in decimal:30).
# So 8·ROUNDING_FACTOR·u·max|a| = 1024 u·max|a|
# bounds a tolerance formed in the system itself. One resting on an error bar of float64
# size (1e-16·max|a|) exceeds it by 10^10 in decimal:30, yet stays below √u ≈ 2e-15.
TOLERANCE_IN_U = 8 * ROUNDING_FACTOR


@pytest.mark.parametrize("spec", ["float32", "float64", "decimal:30", "mpf:40"])
def test_tolerance_follows_the_number_system(spec):
    """The same correct cubic passes in every system with a tolerance of its own u, and a
    gradient wrong by twice that tolerance bound in one coordinate fails."""
    ns = number_system(spec)
    x = ns.asarray(["0.5", "-1.25", "2"])
    f, grad = (lambda v: np.sum(v * v * v)), (lambda v: 3 * v * v)
    with ns.context():
        report = check_gradient(f, grad, x)
    assert report.passed
    largest = 12  # max |3x²|
    assert np.max(report.tolerance) <= TOLERANCE_IN_U * ns.unit_roundoff * largest
    bug = ns.asarray([2 * TOLERANCE_IN_U * ns.unit_roundoff * largest, 0, 0])
    with ns.context():
        wrong = check_gradient(f, lambda v: grad(v) + bug, x)
    assert not wrong.passed and wrong.kinds == ("mismatch",)


# -- report -----------------------------------------------------------------------------------
def _failing_report():
    net = MLP([3, 4, 2], seed=3)
    X, Y = np.random.default_rng(0).standard_normal((5, 3)), np.eye(2)[[0, 1, 1, 0, 1]]
    return check_gradient(lambda p: net.loss(X, Y, params=p),
                          lambda p: net.gradient(X, Y, params=p) * len(X), net.params,
                          shapes=net.shapes, batch_size=len(X))


def test_report_text_is_a_diagnosis_not_a_dump():
    report = _failing_report()
    text = str(report)
    assert text.startswith("Gradient check FAILED")
    assert "tolerance: per coordinate" in text and "[scale]" in text
    assert "block  row  column" in text
    assert len(text.splitlines()) < 20


def test_verdict_when_only_a_finding_fails_the_check():
    """float32 inside float64: the fitted reference agrees with the float32-accurate
    gradient within its (noise-widened) tolerance, and the check still fails."""
    f = lambda x: np.sum(np.sin(x.astype(np.float32)).astype(np.float64))
    report = check_gradient(f, np.cos, np.array([0.3, 1.1, -0.4]), method="richardson")
    assert report.kinds == ("precision_loss",) and not report.passed
    assert report.verdict() == ("FAILED: all 3 coordinates within tolerance, but 1 "
                                "finding(s) say the comparison cannot be trusted")


def test_report_markdown_and_worst():
    report = _failing_report()
    md = report.to_markdown()
    assert "| block | row | column |" in md and "- **scale**:" in md
    worst = report.worst(3)
    assert len(worst) == 3 and worst[0].label.startswith("block")
    shares = [abs(c.difference) / c.tolerance for c in worst]
    assert shares == sorted(shares, reverse=True)


def test_report_fields():
    report = _failing_report()
    a, n = report.analytic, report.reference
    assert report.relative_difference == pytest.approx(np.linalg.norm(a - n) /
                                                       np.linalg.norm(a + n))
    assert report.max_relative_error == pytest.approx(np.max(report.relative_error))
    assert report.kinds == ("scale",) and not report.passed


def test_matrix_x_is_one_block():
    W = RNG.standard_normal((3, 4))
    report = check_gradient(lambda w: np.sum(np.sin(w)), lambda w: np.cos(w).T.reshape(3, 4), W)
    assert report.kinds == ("layout",) and report.blocks.shapes == ((3, 4),)
    assert report.worst(1)[0].label.startswith("block 0 [")


def test_worst_validates_k():
    with pytest.raises(ValueError, match="`k` must be a non-negative integer"):
        _failing_report().worst(-1)


# -- validation -------------------------------------------------------------------------------
X = np.array([1.0, 2.0])


@pytest.mark.parametrize("kwargs, error, match", [
    ({"method": "secant"}, ValueError, "`method` must be one of"),
    ({"order": "K"}, ValueError, "`order` must be 'C'"),
    ({"h": 1e-3}, ValueError, "`h` is only used by methods"),
    ({"directions": 0}, ValueError, "`directions` must be a positive integer"),
    ({"batch_size": 2.5}, ValueError, "`batch_size` must be a positive integer"),
    ({"shapes": [(3, 1)]}, ValueError, "`shapes` .* must have positive sizes adding up"),
    ({"shapes": [3]}, ValueError, "`shapes` must be a sequence of shapes"),
    ({"numbers": "float7"}, ValueError, "unknown number system"),
    ({"numbers": "complex128"}, ValueError, "`x` must be real"),
])
def test_validation_messages(kwargs, error, match):
    with pytest.raises(error, match=match):
        check_gradient(lambda x: np.sum(x * x), lambda x: 2 * x, X, **kwargs)


def test_f_and_grad_must_be_callable():
    with pytest.raises(TypeError, match="`f` must be callable"):
        check_gradient(1.0, lambda x: x, X)
    with pytest.raises(TypeError, match="`grad` must be callable"):
        check_gradient(lambda x: x, None, X)


def test_grad_of_wrong_size():
    with pytest.raises(ValueError, match=r"`grad\(x\)` must have one entry per entry of x"):
        check_gradient(lambda x: np.sum(x * x), lambda x: np.ones(3), X)


def test_empty_x():
    with pytest.raises(ValueError, match="`x` must have at least one entry"):
        check_gradient(lambda x: 0.0, lambda x: x, np.array([]))


def test_x_without_a_number_system():
    with pytest.raises(TypeError, match="cannot tell the number system of `x`"):
        check_gradient(lambda x: 0.0, lambda x: x, np.array(["a"], dtype=object))


def test_network_entry_validates_order_and_X():
    net = MLP([2, 1])
    with pytest.raises(ValueError, match="`order` must be 'C' or 'F'"):
        check_network_gradient(net, np.zeros((1, 2)), np.zeros((1, 1)), order="A")
    with pytest.raises(ValueError, match=r"`X` must have shape \(m, n_in\)"):
        check_network_gradient(net, np.zeros(2), np.zeros((1, 1)))


# -- directional mode, network entry, state ---------------------------------------------------
def test_directional_mode_uses_k_directions():
    x = RNG.standard_normal(50)
    report = check_gradient(lambda v: np.sum(np.sin(v)), np.cos, x, directions=3)
    assert report.directional and report.analytic.size == 3 and report.passed
    assert "direction" in str(report)
    bad = check_gradient(lambda v: np.sum(np.sin(v)), np.sin, x, directions=3)
    assert not bad.passed and bad.kinds == ("mismatch",)


@pytest.mark.parametrize("pairs", [1, 50])
def test_directions_see_swapped_entries(pairs):
    """Two entries swapped make ``a - g = c·(e_i - e_j)``, orthogonal to half of all ±1
    directions (Rademacher rows would miss one pair with probability 2^-8 at 8
    directions); continuous directions see it along every direction, also among 20,000
    coordinates and for many pairs at once."""
    n = 20_000
    w = np.linspace(0.5, 1.5, n)
    x = np.random.default_rng(3).normal(size=n) / 4

    def swapped(v):
        g = w * np.exp(v)
        g[:2 * pairs:2], g[1:2 * pairs:2] = g[1:2 * pairs:2].copy(), g[:2 * pairs:2].copy()
        return g

    f = lambda v: np.sum(w * np.exp(v), axis=-1)
    assert check_gradient(f, lambda v: w * np.exp(v), x, directions=8).passed
    report = check_gradient(f, swapped, x, directions=8)
    assert not report.passed and report.directional
    assert np.all(np.abs(report.difference) > report.tolerance), report.difference


@pytest.mark.parametrize("order", ["C", "F"])
def test_network_entry_in_both_layouts(order):
    net = MLP([3, 4, 2], seed=1)
    X, Y = RNG.standard_normal((4, 3)), np.eye(2)[[0, 1, 0, 1]]
    report = check_network_gradient(net, X, Y, order=order)
    assert report.kinds == ("match",) and report.blocks.order == order
    assert report.reference_name.startswith("complex step")


def test_mlp_method_delegates_to_the_check():
    net = MLP([2, 3, 1], hidden="relu", seed=2)
    X, Y = np.array([[0.3, -0.2], [0.1, 0.4]]), np.array([[1.0], [0.0]])
    report = net.check_gradient(X, Y, directions=2)
    assert report.passed and report.directional


def test_network_entry_converts_numbers():
    net = MLP([2, 2, 1], seed=4)
    X, Y = np.array([[0.2, -0.1]]), np.array([[1.0]])
    report = check_network_gradient(net, X, Y, numbers="mpf:25")
    assert report.numbers == "mpf:25" and report.passed
    # the tolerance of mpf:25 itself (see TOLERANCE_IN_U), not of the float64 network
    largest = float(np.max(np.abs(report.analytic)))
    assert np.max(report.tolerance) <= TOLERANCE_IN_U * number_system("mpf:25").unit_roundoff \
        * largest


def test_float32_reference_is_confirmed_in_float64_when_it_fails():
    """A failure in float32 is re-evaluated in float64 before it is reported."""
    x = np.array([0.25, -0.5, 1.5], dtype=np.float32)
    report = check_gradient(lambda v: np.sum(v * v), lambda v: 3 * v, x)
    assert "float64" in report.reference_name and not report.passed


def test_wide_error_bar_is_re_evaluated_in_a_wider_system():
    """(x - 3000)² in float32: the float32 reference is too noisy to decide; float64 is not."""
    x = np.array([0.3, -1.2, 2.5], dtype=np.float32)
    c = np.float32(3e3)
    report = check_gradient(lambda v: np.sum((v - c) ** 2), lambda v: 2 * (v - c), x,
                            method="richardson")
    assert report.passed
    assert "float64 (re-evaluated beyond float32: its error bar was too wide" in \
        report.reference_name


def test_ieee_values_of_another_width_are_rounded_into_the_system():
    def f(v):  # computes in the double-width type of v
        return np.sum(v.astype(np.complex128 if np.iscomplexobj(v) else np.float64) ** 2)

    x = np.array([0.5, 1.5], dtype=np.float32)
    report = check_gradient(f, lambda v: 2 * v, x)
    assert report.kinds == ("match",) and report.numbers == "float32"


def test_object_system_refuses_a_binary_float_from_f():
    dec = number_system("decimal:20")
    with pytest.raises((TypeError, ValueError), match="float"):
        check_gradient(lambda v: float(np.sum(v * v)), lambda v: 2 * v, dec.asarray(["1", "2"]))


def test_no_precision_state_leaks():
    prec, dps = decimal.getcontext().prec, mpmath.mp.dps
    dec = number_system("decimal:40")
    check_gradient(lambda v: np.sum(v * v), lambda v: 2 * v, dec.asarray(["1", "3"]))
    assert decimal.getcontext().prec == prec and mpmath.mp.dps == dps


# -- a function that computes fewer digits than the wider system (review of decimal:30) ------
DEC30 = number_system("decimal:30")
X30 = DEC30.asarray(["0.3", "-0.7", "1.1"])


def _exp30(v):  # closes over decimal:30: 30 digits in any context
    return np.sum(DEC30.exp(v))


def test_wrong_gradient_of_a_30_digit_function_fails():
    """Re-evaluated in decimal:60 the 30-digit f is noise at 60-digit steps; the check must
    not take that reference, and its tolerance must stay at the 30-digit level."""
    wrong = check_gradient(_exp30, lambda v: DEC30.exp(v) + DEC30.asarray(["0.5", "0", "0"]),
                           X30, numbers="decimal:30")
    assert not wrong.passed and wrong.kinds == ("mismatch",)
    assert np.max(wrong.tolerance) < 1e-20
    assert "decimal:60" not in wrong.reference_name
    right = check_gradient(_exp30, DEC30.exp, X30, numbers="decimal:30")
    assert right.passed and np.max(right.tolerance) < 1e-20


def test_a_wider_system_is_used_when_f_is_more_precise_there():
    """decimal:28 for a 30-digit f: 100 times less noisy in decimal:56, so it is used."""
    wrong = check_gradient(_exp30, lambda v: DEC30.exp(v) + DEC30.asarray(["0.5", "0", "0"]),
                           X30, numbers="decimal:28")
    assert not wrong.passed and wrong.kinds == ("mismatch",)
    assert np.max(wrong.tolerance) < 1e-20


def _decimal30_network():
    net = MLP([2, 2, 1], numbers="decimal:30", seed=1)
    X, Y = [["0.3", "-0.2"]], [[1]]
    return net, (lambda p: net.loss(X, Y, params=p)), \
        (lambda p: net.gradient(X, Y, params=p))


@pytest.mark.parametrize("numbers", [None, "decimal:30"])
def test_decimal30_network_with_a_wrong_entry_or_a_float_gradient_fails(numbers):
    net, loss, grad = _decimal30_network()
    ns = net.numbers
    wrong = check_gradient(loss, lambda p: grad(p) + ns.asarray([0] * 8 + ["0.5"]),
                           net.params, numbers=numbers)
    assert not wrong.passed and wrong.kinds == ("mismatch",)
    assert np.max(wrong.tolerance) < 1e-20 and wrong.numbers == "decimal:30"
    floatish = check_gradient(loss, lambda p: ns.asarray(ns.to_float(grad(p))), net.params,
                              numbers=numbers)
    assert not floatish.passed and floatish.kinds == ("precision_loss",)
    assert floatish.findings[0].evidence["float"] == "float64"
    assert check_gradient(loss, grad, net.params, numbers=numbers).kinds == ("match",)


def test_binary_rounding_is_not_blamed_for_one_wrong_coordinate():
    a = REFERENCE.copy()
    a[7] *= 1 + 1e-5
    assert kinds(synthetic(a)) == ("localized", "mismatch")


def test_noise_probe_of_a_30_digit_function_is_its_rounding():
    """The offsets are exact multiples of one step of the system: no float64 spacing error
    (2^-53·δ·f' ≈ 1e-25) is read as noise."""
    from precision_nn.gradcheck.probes import noise_probe

    probe = noise_probe(_exp30, X30, DEC30)
    assert probe.sigma <= 10 * probe.expected


def test_a_reference_too_uncertain_to_decide_is_reported_not_passed():
    """An error bar of 10% of the gradient: the tolerance would pass anything near it."""
    data = synthetic(REFERENCE + 0.01, error=0.1 * float(np.max(np.abs(REFERENCE))))
    assert not data.failing.any()
    found = diagnose(data)
    assert [f.kind for f in found] == ["precision_loss"]
    assert found[0].evidence["undecidable"] and "cannot decide 20 coordinate" in found[0].message


def test_decimal_precision_is_inferred_from_the_digits_of_x():
    from precision_nn.numbers import infer_number_system as infer_numbers

    net = _decimal30_network()[0]
    assert infer_numbers(net.params).name == "decimal:30"
    assert infer_numbers(DEC30.asarray(["0.5"])).name == f"decimal:{decimal.getcontext().prec}"


def test_an_ill_conditioned_reference_reports_instead_of_passing():
    """(x - 3e10)² in float64 has no wider system: Richardson's error bar is 5e-4 of the
    gradient, so a gradient 3e-4 off used to pass; now the report says it cannot decide."""
    x = np.array([0.3, -1.2, 2.5])
    report = check_gradient(lambda v: np.sum((v - 3e10) ** 2),
                            lambda v: 2 * (v - 3e10) * (1 + 3e-4), x, method="richardson")
    assert not report.passed and report.kinds == ("precision_loss",)
    assert report.findings[0].evidence["undecidable"]


def test_the_directional_report_states_the_one_coordinate_bug_it_can_miss_and_is_right():
    """The bound of `one_coordinate_bounds` at the worst coordinate is what it says: half
    of it passes there, twice of it fails (sin: closed-form gradient cos)."""
    from precision_nn.gradcheck.directional import directions_matrix, one_coordinate_bounds

    rng = np.random.default_rng(5)
    x = rng.normal(size=2000)

    def f(v):
        return np.sum(np.sin(v), axis=-1)

    report = check_gradient(f, np.cos, x, directions=8)
    assert report.passed and "can pass at the worst coordinate" in report.tolerance_source
    bound = one_coordinate_bounds(directions_matrix(8, x.size), report.tolerance)
    j = int(np.argmax(bound))
    assert f"({j})" in report.tolerance_source

    def bumped(size):
        return lambda v: np.cos(v) + size * (np.arange(v.size) == j)

    assert check_gradient(f, bumped(0.5 * bound[j]), x, directions=8).passed
    assert not check_gradient(f, bumped(2 * bound[j]), x, directions=8).passed
