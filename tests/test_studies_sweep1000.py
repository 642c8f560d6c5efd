"""The precision sweep at 1000 digits: rows beyond the float range, checked against closed
forms and the 2020-digit reference; the fitted exponent over 990 decades; resume.

Independent references: the truncation error of central differences of exp at x = 1 has
the closed form sinh(h)/h − 1 (the quotient is e·sinh(h)/h exactly), evaluated here by
mpmath with 60 digits beyond its cancellation; the complex step's floor is u; the exponent theory is p/(p+1).
"""

from __future__ import annotations

import csv
import importlib.util
import io
import logging
import math
import re

import mpmath
import numpy as np
import pytest
from scipy import stats

from studies import decades, output, precision_sweep, problems, runner
from studies.laws import METHODS, optimum_log10
from studies.precision_reading import reading
from studies.problems import problem, problem_derivatives
from studies.rows import arithmetic

HIGH = ("mpf:1000", "mpfr:1000", "arb:1000", "decimal:1000")


def cell(numbers: str, method: str, *, name: str = "exp", per_decade: int = 1) -> dict:
    return {"key": f"{name}/{numbers}/{method}", "problem": name, "numbers": numbers,
            "method": method, "per_decade": per_decade}


@pytest.mark.parametrize("numbers", HIGH)
def test_1000_digit_rows_match_the_closed_form_truncation(numbers):
    rows = precision_sweep.run_cell(cell(numbers, "central2"))
    sweep = [r for r in rows if r["choice"] == "sweep"]
    assert len(sweep) == 5 and all(r["note"] == "" for r in rows)
    assert rows[0]["log10_u"] < -999 and rows[0]["digits"] == 1000
    log_h_star, log_e_star = optimum_log10("central2", problem_derivatives(problem("exp")),
                                           rows[0]["log10_u"])
    # the two largest steps, 100·h* and 10·h*: truncation dominates rounding there by
    # 5·10^5 and 500 (T/R = 1/p at h*, times 10^(3k)), so the measured error is the closed
    # form to log10(1 + 1/500) < 0.001 decades; 0.005 allows for the model's round u
    for row, decades_above in zip(sweep[:2], (2, 1)):
        assert row["log10_h"] == pytest.approx(log_h_star + decades_above, abs=1e-9)
        # sinh(h)/h − 1 ≈ h²/6 cancels 2·|log10 h| digits: evaluate with 60 more than that
        with mpmath.workdps(int(-2 * row["log10_h_used"]) + 60):
            h = mpmath.mpf(10) ** row["log10_h_used"]
            closed = float(mpmath.log10(mpmath.sinh(h) / h - 1))
        assert row["log10_error"] == pytest.approx(closed, abs=0.005)
        assert closed < -600  # 10^-600: zero as a float
    # the best of the band is near the model's optimum E*, at most 3× above it (the model
    # is an upper estimate) and up to 10^-3 below it (the rounding errors of the two
    # values can cancel at one lucky step: decimal:1000 gives 10^-2.05 here)
    best = min(r["log10_error"] for r in sweep)
    assert log_e_star - 3 <= best <= log_e_star + 0.5
    # the library's error bar bounds the true error at every step and for h=None
    assert all(r["log10_estimated_error"] >= r["log10_error"] for r in rows)


@pytest.mark.parametrize("numbers", ["mpf:1000", "arb:1000"])
def test_1000_digit_complex_step_reaches_a_few_u(numbers):
    rows = precision_sweep.run_cell(cell(numbers, "complex_step"))
    u = rows[0]["log10_u"]
    errors = [r["log10_error"] for r in rows]
    assert all(math.isfinite(e) for e in errors)
    assert min(errors) <= u + math.log10(4)  # flat at ≤ 4u (issue 5's FLAT_UNITS)


def test_a_sweep_to_1000_digits_fits_two_thirds_for_central_differences():
    digits = {"mpf": (10, 30, 100), "mpfr": (300, 1000)}
    cells = [c for c in precision_sweep.grid(True, digits=digits)
             if c["method"] in ("forward", "central2")]
    rows = [row for c in cells for row in precision_sweep.run_cell(c)]
    minima = precision_sweep.minimum_table(rows)
    exponents = precision_sweep.exponents_table(minima)
    for method, theory in (("forward", 1 / 2), ("central2", 2 / 3)):
        fit = next(e for e in exponents if e["method"] == method)
        assert (fit["arithmetic"], fit["families"], fit["digits"], fit["systems"]) == \
            ("binary", "mpf+mpfr", "10–1000", 5)
        # E_min scatters ≤ ~1.5 decades about the law (the step grid's luck) over 990
        # decades of u: the slope moves by < 0.003; the standard error says the same
        assert abs(fit["error_exponent"] - theory) <= 0.01
        assert fit["error_exponent_se"] <= 0.01
        assert abs(fit["error_exponent"] - theory) <= 5 * fit["error_exponent_se"] + 0.002
    # the reading quotes these fits and judges the ratio to the model on both sides of 200
    text = reading(exponents, minima, precision_sweep.THEORY)
    central = next(e for e in exponents if e["method"] == "central2")["error_exponent"]
    assert "From 10 to 1000 digits" in text and f"central2 {central:.3f} (1 fit" in text
    assert "with no drift: the model holds at 1000 digits" in text
    # a model whose constants failed beyond 200 digits would show, and be said
    shifted = [{**m, "log10_e_min": m["log10_e_min"] + (1.0 if m["digits"] > 200 else 0)}
               for m in minima]
    said = re.search(r"a drift of \+(\d\.\d) decades in the median",
                     reading(exponents, shifted, precision_sweep.THEORY))
    assert said and 0.5 < float(said.group(1)) <= 1.5  # 1 decade, on a baseline within ±0.5


def test_mpf_and_mpfr_of_the_same_digits_give_the_same_rows():
    """Why one binary exponent is fitted through mpf (≤ 200 digits) and mpfr (beyond)."""
    assert arithmetic("mpf:300") == arithmetic("mpfr:300") == "binary"
    assert arithmetic("arb:300") == "binary balls" and arithmetic("decimal:300") == "decimal"
    a = precision_sweep.run_cell(cell("mpf:300", "central2"))
    b = precision_sweep.run_cell(cell("mpfr:300", "central2"))
    for x, y in zip(a, b, strict=True):
        assert x["log10_u"] == y["log10_u"] and x["log10_h_used"] == y["log10_h_used"]
        # both round correctly to the same 2^-997: equal up to a rare last-bit difference
        # in a transcendental (which would move an error near the optimum by ≤ 0.3 decades)
        assert x["log10_error"] == pytest.approx(y["log10_error"], abs=0.3)


def test_resume_reuses_1000_digit_rows_unchanged(tmp_path, monkeypatch):
    quick = {**precision_sweep.QUICK, "digits": {"mpfr": (300, 1000), "decimal": (10,)},
             "labels": ("central2", "complex_step")}
    monkeypatch.setattr(precision_sweep, "QUICK", quick)
    # the figure is tested in test_studies_figures; a blank one keeps this test at seconds
    monkeypatch.setattr(precision_sweep, "plot_minima", _blank_figure)
    (first,) = runner.run(["precision_sweep"], out=tmp_path, quick=True, jobs=1,
                          stream=io.StringIO())
    csv_path = tmp_path / "precision_sweep" / "results.csv"
    written = csv_path.read_text()
    exponents = (tmp_path / "precision_sweep" / "exponents.csv").read_text()
    (second,) = runner.run(["precision_sweep"], out=tmp_path, quick=True, jobs=1,
                           resume=True, stream=io.StringIO())
    assert first.computed == 5 and (second.computed, second.reused) == (0, 5)
    assert csv_path.read_text() == written  # NaN steps of auto rows and -1000 survive
    assert (tmp_path / "precision_sweep" / "exponents.csv").read_text() == exponents
    with csv_path.open() as stream:
        rows = list(csv.DictReader(stream))
    assert min(float(r["log10_error"]) for r in rows) < -999
    assert {r["log10_h"] for r in rows if r["choice"] == "auto"} == {"nan"}


def _blank_figure(name: str, minima: list[dict], out) -> str:
    fig, _ax = output.figure(width=1, height=1)
    return output.save_figure(fig, out, f"min_error_vs_digits_{name}")


def test_a_family_without_its_package_is_left_out_with_a_warning(monkeypatch, caplog):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "flint" else real(name, *a))
    with caplog.at_level(logging.WARNING, logger="studies.precision_sweep"):
        cells = precision_sweep.grid(True, digits={"arb": (30,), "mpf": (30,)})
    assert {c["numbers"] for c in cells} == {"mpf:30"}
    assert "leaves out arb: it needs the optional package python-flint" in caplog.text
    with pytest.raises(ValueError, match="nope"):  # an unknown family is not skipped
        precision_sweep.grid(True, digits={"nope": (30,)})


# -- references and log10 quantities --------------------------------------------------------
def test_references_carry_twice_the_largest_precision_plus_20():
    assert problems.REFERENCE_DPS == problems.reference_dps(problems.MAX_DIGITS) == 2020
    assert max(c for counts in precision_sweep.DIGITS.values() for c in counts) \
        <= problems.MAX_DIGITS


def test_relative_errors_are_resolved_far_below_a_1000_digit_u():
    exact = problem("sin").exact_derivative()  # cos(0.75) at 2020 digits
    with mpmath.workdps(problems.REFERENCE_DPS):
        for k in (400, 1001, 1500):
            value = exact * (1 + mpmath.mpf(10) ** -k)
            assert problems.log10_relative_error(value, exact) == pytest.approx(-k, abs=1e-9)
        assert problems.log10_relative_error(exact, exact) == -math.inf
    assert problems.relative_error(exact * 2, exact) == pytest.approx(1.0)


def test_log10_of_long_doubles_beyond_the_float_range():
    tiny = np.exp2(np.longdouble(-3325))  # a 1000-digit u
    assert decades.log10_of(tiny) == pytest.approx(-3325 * math.log10(2), abs=1e-9)
    assert decades.log10_of(np.clongdouble(complex(0, 1)) * tiny) == pytest.approx(
        -3325 * math.log10(2), abs=1e-9)
    assert decades.log10_of(0.0) == -math.inf and math.isnan(decades.log10_of(None))


def test_fmt_log10_reads_as_scientific_notation():
    assert decades.fmt_log10(math.log10(6.3e-300) - 369) == "6.3e-669"
    assert decades.fmt_log10(math.log10(9.96)) == "1.0e+1"  # rounding carries
    assert decades.fmt_log10(-math.inf) == "0" and decades.fmt_log10(math.nan) == "–"


def test_line_fit_matches_scipy_linregress_slope_and_standard_error():
    rng = np.random.default_rng(3)
    x = -np.array([10.0, 30, 100, 300, 1000])
    y = 2 / 3 * x + rng.normal(scale=0.5, size=x.size)
    fit, ref = decades.line_fit(list(x) + [math.nan], list(y) + [1.0]), stats.linregress(x, y)
    assert fit.points == 5
    assert fit.slope == pytest.approx(ref.slope, rel=1e-12)
    assert fit.stderr == pytest.approx(ref.stderr, rel=1e-9)
    assert math.isnan(decades.line_fit([1, 2], [1, 2]).slope)  # under three points


@pytest.mark.parametrize("label", ["forward", "central2", "central4", "complex_step"])
@pytest.mark.parametrize("u", [2.0 ** -24, 1e-50, 1e-200])
def test_log10_optimum_is_the_closed_form_where_floats_hold_it(label, u):
    """The log10 law against its closed form evaluated in plain floats (independent code):
    h* = (S·u·|f|/(p·C))^(1/(p+1)) and E* = (p+1)·C·h*^p with C = c_p·|f^(p+1)|/|f'|;
    the complex step (S = 0) has no h* and E* = u."""
    derivatives = problem_derivatives(problem("sigmoid"))
    spec = METHODS[label]
    C = float(spec.taylor) * derivatives[spec.p + 1] / derivatives[1]
    log_h, log_e = optimum_log10(label, derivatives, math.log10(u))
    if label == "complex_step":
        assert math.isnan(log_h) and log_e == pytest.approx(math.log10(u), abs=1e-12)
        return
    h = (float(spec.weight_sum) * u * derivatives[0] / derivatives[1]
         / (spec.p * C)) ** (1 / (spec.p + 1))
    assert log_h == pytest.approx(math.log10(h), abs=1e-9)
    assert log_e == pytest.approx(math.log10((spec.p + 1) * C * h ** spec.p), abs=1e-9)
