"""The epsilon sweep and the method comparison at 1000 digits, against closed forms.

Independent references: for exp every difference quotient has a closed-form relative
error, whatever x (the quotient is e^x times a function of h alone):

* forward, (e^(x+h) − e^x)/h = e^x·(e^h − 1)/h: error (e^h − 1)/h − 1 ≈ h/2;
* central-2, e^x·sinh(h)/h: error sinh(h)/h − 1 ≈ h²/6;
* central-4, (8·sinh h − sinh 2h)/(6h) times e^x: error ≈ −h⁴/30;
* complex step, Im e^(x+ih)/h = e^x·sin(h)/h: error 1 − sin(h)/h ≈ h²/6;

evaluated here by mpmath with 60 digits beyond their cancellation. The references of the
measured errors are mpmath at 2100 digits, computed here, not by the study. The model
optimum of central-2 for exp is h* = (3u)^(1/3) with E* = ½·(3u)^(2/3) (`studies.laws`,
C = 1/6 and R = u since f = f′ = f‴). Every assertion on a log10 value fails on a row that
underflowed (log10 0 = −inf) or overflowed (inf), as a float64 row would at 1000 digits.
"""

from __future__ import annotations

import math

import mpmath
import pytest

from studies import epsilon_sweep, method_comparison
from studies.epsilon_laws import laws_table
from studies.problems import problem

HIGH = ("mpf:1000", "arb:1000", "decimal:1000")
X = "0.5"
REFERENCE_DIGITS = 2100  # above the 2·1000 + 20 the study's rule asks for


def exp_at_half():
    """exp at x = 0.5 (exact in every system: 1 − 32/64) and its derivative."""
    point = problem("exp").shifted(-32)
    assert point.x0 == X
    with mpmath.workdps(REFERENCE_DIGITS):
        return point, mpmath.exp(mpmath.mpf(X))


CLOSED_FORMS = {
    "forward": lambda h: mpmath.expm1(h) / h - 1,
    "central2": lambda h: mpmath.sinh(h) / h - 1,
    "central4": lambda h: (8 * mpmath.sinh(h) - mpmath.sinh(2 * h)) / (6 * h) - 1,
    "complex_step": lambda h: 1 - mpmath.sin(h) / h,
}
# steps where truncation exceeds rounding (u/h ≈ 10^-1001+k) by more than 10^100, so the
# measured error is the closed form's to far better than the 0.005 decades asked
TRUNCATION_STEPS = {"forward": -200, "central2": -100, "central4": -100, "complex_step": -100}


def row(numbers: str, method: str, log10_h: float) -> dict:
    point, reference = exp_at_half()
    return epsilon_sweep.measure_step([point], [reference], numbers, method, log10_h,
                                      problem_name="exp")


def closed_form_log10(method: str, log10_h: float) -> float:
    digits = int(-(METHOD_ORDER[method] + 1) * log10_h) + 60
    with mpmath.workdps(digits):
        h = mpmath.mpf(10) ** log10_h
        return float(mpmath.log10(abs(CLOSED_FORMS[method](h))))


METHOD_ORDER = {"forward": 1, "central2": 2, "central4": 4, "complex_step": 2}


# Decimal has no complex counterpart: no complex step there (the grid leaves it out too)
@pytest.mark.parametrize("numbers, method", [
    (numbers, method) for numbers in HIGH for method in CLOSED_FORMS
    if not (method == "complex_step" and numbers == "decimal:1000")])
def test_truncation_arm_is_the_closed_form_at_1000_digits(numbers, method):
    log10_h = TRUNCATION_STEPS[method]
    measured = row(numbers, method, log10_h)
    assert measured["note"] == "" and measured["log10_u"] < -999
    closed = closed_form_log10(method, log10_h)
    assert closed < -200  # 10^-200 … 10^-400: 0 or denormal as floats
    assert measured["log10_error"] == pytest.approx(closed, abs=0.005)
    assert measured["log10_h_used"] == pytest.approx(log10_h, abs=1e-6)
    # the library's bar bounds the error, and by no more than a few hundredfold
    assert measured["log10_error"] <= measured["log10_estimated_error"] \
        <= measured["log10_error"] + 3


@pytest.mark.parametrize("numbers", HIGH)
def test_central_differences_at_the_optimal_step_reach_u_to_the_two_thirds(numbers):
    first = row(numbers, "central2", -10)
    log10_u = first["log10_u"]
    log10_h_star = (math.log10(3) + log10_u) / 3  # h* = (3u)^(1/3)
    log10_e_star = math.log10(0.5) + 2 * (math.log10(3) + log10_u) / 3
    assert log10_e_star == pytest.approx(2 / 3 * log10_u, abs=0.5)  # ~u^(2/3) ≈ 10^-667
    for k in (-1, 0, 1):  # h*/√10, h*, √10·h*
        log10_h = log10_h_star + k / 2
        error = row(numbers, "central2", log10_h)["log10_error"]
        # the model h²/6 + u/h (relative; f = f′ = f‴) is an upper estimate: its rounding
        # adds both values' errors (each ≤ u/2 relative, correctly rounded) with one sign;
        # 0.3 decades above it for the rounding of x ± h, and at most 1000× below it (the
        # rounding error has either sign and can cancel the truncation at one lucky step:
        # measured 0.6 decades below E* at h* in mpf:1000)
        with mpmath.workdps(30):
            h = mpmath.mpf(10) ** log10_h
            model = float(mpmath.log10(h ** 2 / 6 + mpmath.mpf(10) ** log10_u / h))
        assert model - 3 <= error <= model + 0.3
        if k == 0:
            assert model == pytest.approx(log10_e_star, abs=1e-6)


@pytest.mark.parametrize("numbers", ["mpf:1000", "arb:1000"])
def test_complex_step_is_flat_at_u_below_its_truncation(numbers):
    for log10_h in (-600, -900, -1000):  # C·h² ≤ 10^-1200 ≪ u
        measured = row(numbers, "complex_step", log10_h)
        assert measured["log10_error"] <= measured["log10_u"] + math.log10(4)  # ≤ 4u
        assert measured["log10_error"] > measured["log10_u"] - 3  # an error, not 0


@pytest.mark.parametrize("numbers", ["mpf:1000", "decimal:1000"])
def test_richardson_reaches_1e_minus_900_and_its_rounding_grows_as_u_over_h(numbers):
    start = row(numbers, "richardson", 0.0)
    assert start["log10_error"] <= -900  # issue 10's bound at 1000 digits
    assert start["log10_error"] <= start["log10_estimated_error"]
    for log10_h in (-300, -600):
        # rounding ∝ u/h: order −1 in h, 10^(log10 u − log10 h) within 2 decades
        measured = row(numbers, "richardson", log10_h)
        assert measured["log10_error"] == pytest.approx(
            measured["log10_u"] - log10_h, abs=2)


@pytest.mark.parametrize("numbers", ["mpf:1000", "arb:1000"])
def test_a_1000_digit_sweep_fits_the_orders_of_the_v(numbers):
    cell = {"key": f"exp/{numbers}/central2", "problem": "exp", "numbers": numbers,
            "method": "central2", "seed": 0, "per_decade": 0.02}
    rows = epsilon_sweep.run_cell(cell)
    assert len(rows) == 22 and min(r["log10_h"] for r in rows) == pytest.approx(-1003, abs=0.1)
    measured = [r for r in rows if not r["note"]]
    assert len(measured) >= 20 and all(math.isfinite(r["log10_error"]) for r in measured)
    (fitted,) = laws_table(rows)
    assert fitted["truncation_points"] >= 4 and fitted["rounding_points"] >= 10
    assert abs(fitted["truncation_slope"] - 2) <= 0.05  # over ≥ 250 decades of h
    assert abs(fitted["rounding_slope"] + 1) <= 0.05
    assert abs(fitted["log10_h_opt"] - fitted["log10_h_opt_model"]) <= 0.5
    assert fitted["log10_e_opt"] < -660 and fitted["estimate_gross_misses"] == 0


def test_grid_has_a_1000_digit_configuration_and_refuses_more():
    cells = epsilon_sweep.grid(False)
    wide = [c for c in cells if c["numbers"] == "mpf:1000"]
    assert {c["problem"] for c in wide} == {"exp", "sin", "sigmoid"}  # no network there
    assert {c["method"] for c in wide} == set(epsilon_sweep.LABELS)
    assert all(c["per_decade"] <= epsilon_sweep.SPARSE_PER_DECADE for c in wide)
    other = epsilon_sweep.grid(True, numbers=("decimal:1000",), problems=("sin",))
    assert {c["method"] for c in other} == {"forward", "central2", "central4"}
    with pytest.raises(ValueError, match=r"`numbers` takes systems of at most 1000 digits.*"
                                         r"'mpf:1200' with 1200 digits"):
        epsilon_sweep.grid(True, numbers=("mpf:1200",))


@pytest.mark.parametrize("numbers, method, power", [
    ("mpf:1000", "central2", 2 / 3), ("mpf:1000", "complex_step", 1.0),
    ("decimal:1000", "central4", 4 / 5), ("arb:1000", "forward", 1 / 2)])
def test_method_comparison_reaches_each_power_of_u_at_1000_digits(numbers, method, power):
    cell = {"key": "k", "problem": "sigmoid", "numbers": numbers, "method": method,
            "seed": method_comparison.SEED, "layer_sizes": [3, 5, 2], "examples": 8}
    (measured,) = method_comparison.run_cell(cell)
    assert measured["note"] == "" and measured["log10_u"] < -999
    # the automatic step lands near the optimum: error = u^a with a within 0.02 of theory
    # (a factor 10^20 at 1000 digits, the constants of the law included)
    assert measured["log10_error"] / measured["log10_u"] == pytest.approx(power, abs=0.02)
    assert measured["log10_error"] <= measured["log10_estimated_error"]


def test_method_comparison_network_gradient_at_1000_digits_in_arb():
    rows = {}
    for method in ("backprop", "central2"):
        cell = {"key": "k", "problem": "mlp", "numbers": "arb:1000", "method": method,
                "seed": method_comparison.SEED, "layer_sizes": [3, 4, 2], "examples": 5}
        (rows[method],) = method_comparison.run_cell(cell)
    u = rows["backprop"]["log10_u"]
    assert rows["backprop"]["log10_error"] <= u + 2  # backprop: exact to rounding
    assert rows["central2"]["log10_error"] / u == pytest.approx(2 / 3, abs=0.02)
    grid = method_comparison.grid(False)
    wide = {(c["problem"], c["numbers"], c["method"]) for c in grid if "1000" in c["numbers"]}
    assert ("mlp", "decimal:1000", "central2") not in wide  # minutes a call: not run
    assert ("mlp", "mpf:1000", "richardson") not in wide
    assert ("sigmoid", "decimal:1000", "richardson") in wide
