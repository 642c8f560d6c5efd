"""Verdicts off the textbook path (issue 9): the small-bug band, mismatches with
structure, non-finite values, no false accusations, a report that reads right, and
evaluations counted where they happen. Each class has cases on different functions."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from precision_nn.gradcheck import check_gradient, taylor_test
from precision_nn.gradcheck.blocks import Blocks
from precision_nn.gradcheck.evidence import CheckData, KinkProbe, Probes
from precision_nn.gradcheck.findings import diagnose
from precision_nn.gradcheck.tolerance import tolerance

sys.path.insert(0, str(Path(__file__).parent))
from correct_functions import cases

BUG_KINDS = {"sign", "scale", "layout", "regularization", "localized", "mismatch", "kink",
             "step_too_large", "step_too_small"}
RNG = np.random.default_rng(2024)


def _lse(z):
    m = np.max(z)
    return m + np.log(np.sum(np.exp(z - m)))


def _lse_grad(z):
    e = np.exp(z - np.max(z))
    return e / np.sum(e)


W6 = np.arange(1.0, 7.0)
FAMILIES = {
    "cubic": (lambda x: np.sum(x ** 3), lambda x: 3 * x ** 2),
    "sin_x": (lambda x: np.sum(np.sin(x) * x), lambda x: np.sin(x) + x * np.cos(x)),
    "logsumexp": (_lse, _lse_grad),
    "weighted_quadratic": (lambda x: np.sum(W6 * x * x) / 2, lambda x: W6 * x),
    "tanh_squared": (lambda x: np.sum(np.tanh(x) ** 2),
                     lambda x: 2 * np.tanh(x) * (1 - np.tanh(x) ** 2)),
}
X6 = np.array([0.31, -1.2, 0.77, 1.9, -0.45, 1.1])


# -- 1. the small-bug band ------------------------------------------------------------------
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_small_bug_sweep_names_scale_at_every_resolved_epsilon(family):
    """grad × (1 + ε), ε = 1e-10 … 1e-1: wherever the tolerance resolves c - 1 the
    finding is `scale` with c = 1 + ε within its stated uncertainty; where it does not,
    the check passes (never precision_loss, never mismatch)."""
    f, g = FAMILIES[family]
    resolved = 0
    for eps in 10.0 ** -np.arange(1, 11):
        report = check_gradient(f, lambda p, e=eps: g(p) * (1 + e), X6)
        if report.passed:
            continue
        assert report.kinds == ("scale",), (eps, report.kinds)
        ev = report.findings[0].evidence
        # c and its σ: 1 + ε within 3σ plus the float64 rounding of 1 + ε itself
        assert abs(ev["factor"] - (1 + eps)) <= 3 * ev["factor_error"] + 4e-16, eps
        assert ev["factor_error"] < eps / 3
        resolved += 1
    assert resolved >= 9  # float64 resolves all but, at most, the smallest ε


@pytest.mark.parametrize("eps", [1e-3, 1e-6, 1e-9])
def test_scale_of_one_block_is_named_for_that_block(eps):
    f, g = FAMILIES["sin_x"]

    def bad(p):
        out = g(p).copy()
        out[3:] *= 1 + eps
        return out

    report = check_gradient(f, bad, X6, shapes={"w": (3,), "b": (3,)})
    assert report.kinds == ("scale",)
    assert "b (shape (3,))" in report.findings[0].message
    assert report.findings[0].evidence["coordinates"] == [3, 4, 5]


def _float32_rounded(g):
    return lambda p: g(p).astype(np.float32).astype(np.float64)


@pytest.mark.parametrize("family", ["sin_x", "logsumexp", "tanh_squared"])
def test_precision_loss_names_float32_only_when_its_rounding_fits(family):
    f, g = FAMILIES[family]
    report = check_gradient(f, _float32_rounded(g), X6)
    assert report.kinds == ("precision_loss",)
    assert report.findings[0].evidence["float"] == "float32"


@pytest.mark.parametrize("family", ["sin_x", "cubic", "tanh_squared"])
def test_float32_is_not_named_for_an_exact_block_or_thousands_of_ulps(family):
    f, g = FAMILIES[family]
    rounded = _float32_rounded(g)

    def half_exact(p):  # the first block exact, the second rounded to float32
        return np.concatenate([g(p)[:3], rounded(p)[3:]])

    report = check_gradient(f, half_exact, X6, shapes=[(3,), (3,)])
    assert "precision_loss" not in report.kinds and not report.passed
    noisy = RNG.choice([-1, 1], 6) * 3000 * 2.0 ** -24  # thousands of float32 ulps
    report = check_gradient(f, lambda p: g(p) * (1 + noisy), X6)
    assert "precision_loss" not in report.kinds
    assert set(report.kinds) <= {"mismatch", "localized"}


@pytest.mark.parametrize("family", ["sin_x", "logsumexp", "weighted_quadratic"])
def test_layer_norm_like_small_systematic_error_is_a_mismatch(family):
    """A gradient off by a small amount that is no constant factor (a forgotten
    eps = 1e-5 in a normalisation) is a mismatch, not float32 precision loss."""
    f, g = FAMILIES[family]
    report = check_gradient(f, lambda p: g(p) + 1e-5 * np.tanh(3 * p), X6)
    assert report.kinds == ("mismatch",)


# -- 2. mismatch with structure -------------------------------------------------------------
def _sinc_problem(n, seed):
    rng = np.random.default_rng(seed)
    c = rng.uniform(0.5, 2.0, n)
    return (lambda p: np.sum(c * np.sin(p) + p ** 2),
            lambda p: c * np.cos(p) + 2 * p, rng.standard_normal(n))


@pytest.mark.parametrize("slip, shapes, expect", [
    (lambda g: g[::-1], None, "in reverse order"),
    (lambda g: np.roll(g, 1), [(3, 4)], "shifted by one place"),
    (lambda g: g.reshape(3, 4)[::-1].ravel(), [(3, 4)], "reverse order along its rows"),
    (lambda g: g.reshape(3, 4)[:, ::-1].ravel(), [(3, 4)], "along its columns"),
])
def test_permutations_are_named_layout(slip, shapes, expect):
    f, g, x = _sinc_problem(12, 5)
    report = check_gradient(f, lambda p: slip(g(p)), x, shapes=shapes)
    assert report.kinds == ("layout",) and expect in report.findings[0].message


def test_transposed_square_block_is_layout():
    f, g, x = _sinc_problem(9, 6)
    report = check_gradient(f, lambda p: g(p).reshape(3, 3).T.ravel(), x, shapes=[(3, 3)])
    assert report.kinds == ("layout",)
    assert "the transpose of the right matrix" in report.findings[0].message


@pytest.mark.parametrize("shapes, layered", [
    ({"layer 1": (4, 3), "layer 2": (2, 5)}, True),   # 2 × (4 + bias): chained layers
    ({"embed": (4, 3), "head": (2, 2)}, False),       # 4 outputs never feed 2 inputs
    ({"a": (12,), "b": (10,)}, False),                # vectors are no layers
])
def test_mismatch_says_which_blocks_agree_and_suggests_backprop_only_for_layers(shapes,
                                                                                layered):
    n = sum(int(np.prod(s)) for s in shapes.values())
    f, g, x = _sinc_problem(n, 7)
    first = int(np.prod(next(iter(shapes.values()))))

    def bad(p):
        out = g(p).copy()
        out[:first] += 0.3 * np.sin(7 * p[:first])  # the first block wrong, no pattern
        out[first] += 0.2  # and one entry of the second
        return out

    report = check_gradient(f, bad, x, shapes=shapes)
    message = report.findings[-1].message
    assert report.kinds[-1] == "mismatch"
    names = list(shapes)
    assert f"{names[0]} ({first} of {first})" in message and f"{names[1]} (1 of" in message
    assert ("backprop" in message) == layered


# -- 3. non-finite values -------------------------------------------------------------------
@pytest.mark.parametrize("value", [np.inf, -np.inf, np.nan])
@pytest.mark.parametrize("family", ["sin_x", "logsumexp", "cubic"])
def test_non_finite_analytic_gradient_fails_naming_the_entries(value, family):
    f, g = FAMILIES[family]

    def bad(p):
        out = g(p).copy()
        out[[1, 4]] = value
        return out

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = check_gradient(f, bad, X6, shapes={"w": (2, 3)})
    assert not report.passed and "mismatch" in report.kinds
    finding = report.findings[0]
    assert finding.evidence["non_finite"] and finding.evidence["coordinates"] == [1, 4]
    assert "w [0, 1]" in finding.message and "w [1, 1]" in finding.message


@pytest.mark.parametrize("what, f, g, x", [
    ("grad", np.sum, lambda p: np.full(p.shape, np.nan), np.array([0.3, 1.0])),
    ("f", lambda p: np.nan * np.sum(p), np.ones_like, np.array([0.3, 1.0])),
    ("x", lambda p: np.sum(np.sin(p)), np.cos, np.array([np.inf, 1.0])),
    ("grad", lambda p: np.sum(p ** 2), lambda p: np.array([2 * p[0], np.inf]),
     np.array([0.5, 2.0])),
])
def test_taylor_test_never_passes_on_non_finite_values(what, f, g, x):
    with pytest.raises(ValueError, match=rf"`{what}(\(x\))?` must be finite for a Taylor "):
        taylor_test(f, g, x)


def test_taylor_test_refuses_steps_where_f_is_never_finite():
    with pytest.raises(ValueError, match="f is not finite at any step"):
        taylor_test(lambda p: np.sum(p) if np.all(p == 1.0) else np.inf,
                    np.ones_like, np.ones(2), steps=[1e-1, 1e-2, 1e-3])


@pytest.mark.parametrize("f, g, x, method", [
    (lambda p: np.sum(np.sqrt(p)), lambda p: 0.5 / np.sqrt(p), np.array([0.02, 3.0]),
     "richardson"),  # Richardson's first step leaves the domain of sqrt
    (lambda p: np.log(np.sum(np.exp(p))), _lse_grad, np.array([709.0, 708.0]),
     "richardson"),  # ... or overflows exp
    (lambda p: np.sum(np.arcsin(p)), lambda p: 1 / np.sqrt(1 - p * p),
     np.array([0.97, 0.1]), "richardson"),  # ... or the domain of arcsin
])
def test_a_reference_that_overflows_falls_back_and_says_so(f, g, x, method):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = check_gradient(f, g, x, method=method)
        wrong = check_gradient(f, lambda p: 1.01 * g(p), x, method=method)
    assert "instead there" in report.reference_name
    assert "central differences" in report.reference_name
    assert report.passed and wrong.kinds == ("scale",)


def test_a_fallback_without_an_error_bar_is_undecided_not_trusted():
    """At exp(709.7) the complex step's error bar overflows and central differences have
    none: the verdict is undecided for a right and a wrong gradient alike."""
    x = np.array([709.7, 1.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for k in (1.0, 1.01):
            report = check_gradient(lambda p: np.sum(np.exp(p)), lambda p, k=k: k * np.exp(p),
                                    x, method="complex_step")
            assert report.undecided and "instead there" in report.reference_name


@pytest.mark.parametrize("f", [lambda p: np.sum(np.log(p - 1.0)),
                               lambda p: np.sum(p) / (p[0] - p[0]),
                               lambda p: np.sum(np.sqrt(p - 5.0))])
def test_f_not_finite_at_x_is_undecided_not_a_bug(f):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = check_gradient(f, np.ones_like, np.array([0.5, 0.7, 0.9]))
    assert report.undecided and report.kinds == ("precision_loss",)
    assert str(report).startswith("Gradient check UNDECIDED")


# -- 4. no false accusations ----------------------------------------------------------------
def test_no_false_accusation_over_correct_functions():
    """120 correct functions cycling through saturated logistic regressions and ReLU
    networks on raw 0-255 inputs, float32 softplus at |z| > 88, noisy f under every
    method, huge logits, internal cancellation and kinks away from x: no bug kind ever.
    (The benchmark `benchmarks/false_accusations.py` runs 960; see its docstring.)"""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        accused = []
        for case in cases(120, seed=11):
            report = check_gradient(case.f, case.grad, case.x, method=case.method)
            if set(report.kinds) & BUG_KINDS:
                accused.append((case.family, report.kinds))
    assert accused == []


# -- 6. a report that reads right -------------------------------------------------------------
def test_table_stays_aligned_for_mixed_rank_shapes():
    f, g, x = _sinc_problem(2 * 3 + 4 + 2 * 2 * 2, 8)
    shapes = {"weight": (2, 3), "bias": (4,), "kernel": (2, 2, 2)}
    report = check_gradient(f, lambda p: 2 * g(p), x, shapes=shapes)
    table = str(report).split("worst coordinates:\n")[1].splitlines()
    header, rows = table[0], table[1:]
    assert header.split()[:2] == ["block", "entry"]
    widths = {len(row) for row in [header, *rows]}
    assert len(widths) == 1  # every row as wide as the header: columns line up
    assert any("[1, 0, 1]" in row for row in rows) or any("[" in row for row in rows)


@pytest.mark.parametrize("shape, entry, label", [
    ((3, 4), 6, "entry block 0 [1, 2]"),
    ((2, 5), 9, "entry block 0 [1, 4]"),
    ((4, 3), 0, "entry block 0 [0, 0]"),
])
def test_one_wrong_entry_is_named_as_an_entry(shape, entry, label):
    n = int(np.prod(shape))
    f, g, x = _sinc_problem(n + 3, 9)

    def bad(p):
        out = g(p).copy()
        out[entry] += 0.25
        return out

    report = check_gradient(f, bad, x, shapes=[shape, (3,)])
    localized = next(fd for fd in report.findings if fd.kind == "localized")
    assert label in localized.message and "column" not in localized.message


@pytest.mark.parametrize("family", ["sin_x", "cubic", "logsumexp"])
def test_directional_mode_speaks_of_directions(family):
    f, g = FAMILIES[family]
    ok = check_gradient(f, g, X6, directions=3)
    assert "direction" in ok.findings[-1].message and "coordinate" not in ok.findings[-1].message
    bad = check_gradient(f, lambda p: g(p) + np.sin(5 * p), X6, directions=3)
    text = " ".join(fd.message for fd in bad.findings)
    assert "direction" in text and "coordinate" not in text
    assert "worst directions:" in str(bad)


@pytest.mark.parametrize("f, g, x", [
    (lambda p: np.sum(np.abs(p - 0.1)), lambda p: np.sign(p - 0.1), np.array([0.5, -1.0])),
    (lambda p: np.sum(np.abs(p) ** 3), lambda p: 3 * p * np.abs(p), np.array([0.4, 1.3])),
    (lambda p: float(np.max(np.real(p))), lambda p: (p == np.max(p)) * 1.0,
     np.array([0.2, 0.9, -0.3])),
])
def test_not_complex_safe_names_the_reference_actually_used(f, g, x):
    report = check_gradient(f, g, x)
    notice = next(fd for fd in report.findings if fd.kind == "not_complex_safe")
    assert report.reference_name in notice.message


def _kink_data(jumps_persist: bool) -> CheckData:
    """One coordinate whose one-sided differences jump by 2 down to the smallest step
    (x on the kink), or only down to 1e-3 (a kink at distance ~1e-3)."""
    steps = 0.125 * 0.25 ** np.arange(8)
    jumps = np.full(8, 2.0) if jumps_persist else np.where(steps > 1e-3, 2.0, steps * 1e-3)
    probe = KinkProbe(np.array([0]), steps[None, :], jumps[None, :],
                      np.full((1, 8), 1e-14))
    a, n = np.array([1.0, 2.0]), np.array([0.0, 2.0])
    err = np.full(2, 1e-12)
    tol = tolerance(a, n, err, unit_roundoff=2.0 ** -53, numbers="float64",
                    reference_name="synthetic")
    return CheckData(a, n, a - n, err, tol, np.zeros(2),
                     Blocks.from_shapes(None, order="C", size=2), probes=Probes(kink=probe))


def test_kink_advice_at_an_exact_kink_and_near_one():
    at = next(fd for fd in diagnose(_kink_data(True)) if fd.kind == "kink")
    assert "no derivative" in at.message and "nearby point" in at.message
    assert "complex" not in at.message and at.evidence["at_kink"]
    near = next(fd for fd in diagnose(_kink_data(False)) if fd.kind == "kink")
    assert "step smaller than" in near.message and not near.evidence["at_kink"]


# -- 7. evaluations counted where they happen ---------------------------------------------------
class _Counting:
    def __init__(self, f, ndim):
        self.f, self.ndim, self.points = f, ndim, 0

    def __call__(self, p):
        shape = np.shape(p)
        self.points += shape[0] if len(shape) == self.ndim + 1 else 1
        return self.f(p)


@pytest.mark.parametrize("f, g, x, kwargs", [
    (lambda p: np.sum(np.sin(p)), np.cos, np.array([0.3, -1.2, 2.0]), {}),
    (lambda p: np.sum(p ** 3, axis=-1), lambda p: 3 * p ** 2, np.array([0.5, 1.0, 2.0, 3.0]),
     {"method": "richardson"}),  # batched: f takes a stack of points
    (lambda p: np.sum(np.abs(p)), lambda p: 2 * np.sign(p), np.array([0.3, -0.7]), {}),
    (lambda p: np.sum(np.exp(p)), lambda p: np.exp(p) * 1.001, np.array([0.1, 0.2, 0.3]),
     {"directions": 2}),
    (lambda p: np.sum(np.sin(p)), np.cos, np.array([0.3, -1.2]),
     {"method": "central", "h": 1e-3}),
])
def test_report_evaluations_equal_the_real_calls(f, g, x, kwargs):
    counted = _Counting(f, x.ndim)
    report = check_gradient(counted, g, x, **kwargs)
    assert counted.points > 0 and report.evaluations == counted.points
