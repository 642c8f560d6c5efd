"""The studies' ``--quick`` runs, with their science asserted against theory.

One module-scoped run of the three derivative studies (through the process pool, as
``python -m studies --quick`` does) feeds every test here. Theory, from `studies.laws`:
truncation error ∝ h^p (forward p = 1, central p = 2 and 4), rounding ∝ u/h, the complex
step flat at a few u, and minimum reachable error ∝ u^(p/(p+1)) (complex step ∝ u).
"""

from __future__ import annotations

import base64
import csv
import io
import math
import re
from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import minimize_scalar

from studies import epsilon_sweep, gradcheck_reliability, method_comparison, precision_sweep, runner
from studies.laws import METHODS, fit_slope, fitted_optimum, law, regime_masks
from studies.problems import problem

STUDY_MODULES = (epsilon_sweep, precision_sweep, method_comparison, gradcheck_reliability)
SLOPE_TOLERANCE = 0.15  # issue 5: fitted slopes within ±0.15 of theory
EXPONENT_TOLERANCE = 0.10  # issue 5: precision-sweep exponents within 10 % of theory
FLAT_UNITS = 4  # issue 5: complex-step error flat at ≤ 4u for small h


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("reports")
    runner.run([m.NAME for m in STUDY_MODULES], out=out, quick=True, jobs=2,
               stream=io.StringIO())
    return out


def read_csv(path: Path) -> list[dict]:
    with path.open() as stream:
        return [{k: _number(v) for k, v in row.items()} for row in csv.DictReader(stream)]


def _number(text: str):
    try:
        return float(text)
    except ValueError:
        return text


def documented_columns(module) -> list[str]:
    """The ``name`` entries listed under "Columns of ``results.csv``" in the docstring."""
    section = module.__doc__.split("Columns of ``results.csv``")[1].split("Files:")[0]
    lines = [line for line in section.splitlines() if line.startswith("``")]
    return [name for line in lines for name in re.findall(r"``([^`]+)``", line)]


# -- outputs ----------------------------------------------------------------------------------
@pytest.mark.parametrize("module", STUDY_MODULES, ids=lambda m: m.NAME)
def test_results_csv_has_the_documented_columns_and_no_failed_cell(report, module):
    folder = report / module.NAME
    with (folder / "results.csv").open() as stream:
        header = next(csv.reader(stream))
    assert header == documented_columns(module)
    assert "## Failed cells" not in (folder / "summary.md").read_text()


@pytest.mark.parametrize("module", STUDY_MODULES, ids=lambda m: m.NAME)
def test_every_figure_is_written_twice_and_shown_in_the_index(report, module):
    folder = report / module.NAME
    pngs = sorted(folder.glob("*.png"))
    assert pngs and all(png.with_suffix(".svg").exists() for png in pngs)
    index = (report / "index.md").read_text()
    html = (report / "index.html").read_text()
    page = (folder / "summary.html").read_text()
    for png in pngs:
        assert f"]({module.NAME}/{png.name})" in index
        embedded = 'src="data:image/png;base64,' + base64.b64encode(png.read_bytes()).decode()
        assert embedded in html and embedded in page  # the pages show it on their own
    assert f"## {module.TITLE}" in index and "**Reading.**" in index


# -- epsilon sweep ---------------------------------------------------------------------------
def _laws(report: Path) -> dict[tuple, dict]:
    rows = read_csv(report / "epsilon_sweep" / "fitted_laws.csv")
    return {(r["problem"], r["numbers"], r["method"]): r for r in rows}


@pytest.mark.parametrize("numbers", ["float64", "mpf:30", "mpf:1000"])
@pytest.mark.parametrize("method, theory", [("forward", 1), ("central2", 2)])
def test_truncation_slope_matches_the_order(report, numbers, method, theory):
    fitted = _laws(report)[("exp", numbers, method)]
    assert fitted["truncation_points"] >= 4
    assert abs(fitted["truncation_slope"] - theory) <= SLOPE_TOLERANCE


@pytest.mark.parametrize("numbers", ["float32", "float64", "mpf:30", "mpf:1000"])
@pytest.mark.parametrize("method", ["forward", "central2", "central4"])
def test_rounding_slope_is_minus_one(report, numbers, method):
    fitted = _laws(report)[("exp", numbers, method)]
    if numbers == "float32" and method == "forward":
        # forward's optimum in float32 sits at h ≈ 5e-4 and the rounding regime needs
        # h ≥ 100 ulps ≈ 2e-5: under a decade, so no fit is made (and none claimed)
        assert math.isnan(fitted["rounding_slope"])
        return
    assert fitted["rounding_points"] >= 4
    assert abs(fitted["rounding_slope"] + 1) <= SLOPE_TOLERANCE


@pytest.mark.parametrize("method", ["forward", "central2", "central4"])
def test_rounding_slope_of_the_network_gradient_is_minus_one(report, method):
    fitted = _laws(report)[("mlp", "float64", method)]
    assert fitted["rounding_points"] >= 4
    assert abs(fitted["rounding_slope"] + 1) <= SLOPE_TOLERANCE


@pytest.mark.parametrize("numbers", ["float32", "float64", "mpf:30", "mpf:1000"])
def test_complex_step_error_is_flat_at_a_few_u(report, numbers):
    rows = [r for r in read_csv(report / "epsilon_sweep" / "results.csv")
            if (r["problem"], r["numbers"], r["method"]) == ("exp", numbers, "complex_step")]
    log10_u = rows[0]["log10_u"]
    model = law("complex_step", problem("exp").taylor(5), log10_u)
    # "small h": truncation C·h² below u/30, i.e. every step below √(u/30C)
    top = (log10_u - math.log10(30) - model.log10_C) / 2
    small = [r for r in rows if r["log10_h"] <= top]
    assert len(small) >= 10 and min(r["log10_h"] for r in small) < log10_u  # down below u
    # every error finite (a row underflowed to 0 would read -inf, one lost NaN)
    assert all(math.isfinite(r["log10_error"]) for r in small)
    assert max(r["log10_error"] for r in small) <= math.log10(FLAT_UNITS) + log10_u
    assert _laws(report)[("exp", numbers, "complex_step")]["flat_over_u"] <= FLAT_UNITS


@pytest.mark.parametrize("numbers", ["float32", "float64", "mpf:30", "mpf:1000"])
@pytest.mark.parametrize("method", ["forward", "central2", "central4"])
def test_fitted_optimum_is_near_the_model_optimum(report, numbers, method):
    fitted = _laws(report)[("exp", numbers, method)]
    if not math.isfinite(fitted["log10_h_opt"]):  # a regime too narrow to fit (float32 forward)
        assert fitted["truncation_points"] < 4 or fitted["rounding_points"] < 4
        return
    # The model's rounding term S·u·|f|/h adds the stencil's rounding errors as if they
    # never cancelled: it overestimates the typical rounding error by a small factor c,
    # which moves h* up by c^(1/(p+1)) and E* by c^(p/(p+1)). A factor ~3 either way.
    assert abs(fitted["log10_h_opt"] - fitted["log10_h_opt_model"]) <= 0.5
    assert fitted["log10_e_opt_model"] - math.log10(30) <= fitted["log10_e_opt"] \
        <= fitted["log10_e_opt_model"] + math.log10(2)


# -- precision sweep -------------------------------------------------------------------------
@pytest.mark.parametrize("arithmetic, method, theory", [
    ("binary", "forward", 1 / 2), ("binary", "central2", 2 / 3), ("binary", "central4", 4 / 5),
    ("binary", "complex_step", 1.0),  # Decimal has no complex counterpart
    ("decimal", "forward", 1 / 2), ("decimal", "central2", 2 / 3),
    ("decimal", "central4", 4 / 5)])
def test_minimum_error_exponent_matches_theory(report, arithmetic, method, theory):
    rows = read_csv(report / "precision_sweep" / "exponents.csv")
    fitted = next(r for r in rows if (r["arithmetic"], r["method"]) == (arithmetic, method))
    assert fitted["systems"] >= 3
    assert abs(fitted["error_exponent"] / theory - 1) <= EXPONENT_TOLERANCE
    if method != "complex_step":
        assert abs(fitted["h_exponent"] * (METHODS[method].p + 1) - 1) <= EXPONENT_TOLERANCE
    if arithmetic == "binary":  # mpf to 80 digits and mpfr at 300 and 1000: 990 decades
        assert fitted["families"] == "mpf+mpfr" and fitted["digits"] == "10–1000"
        # E_min scatters by at most ~1.5 decades about the law at each end (the luck of
        # the step grid); over 990 decades of u that moves the slope by under 0.003
        assert abs(fitted["error_exponent"] - theory) <= 0.01
        assert 0 < fitted["error_exponent_se"] <= 0.01


# -- method comparison -----------------------------------------------------------------------
def test_accuracy_ranks_by_order_and_complex_step_reaches_u(report):
    rows = read_csv(report / "method_comparison" / "results.csv")
    for numbers in ("float64", "mpf:30"):
        error = {r["method"]: r["log10_error"] for r in rows
                 if (r["problem"], r["numbers"]) == ("sigmoid", numbers)}
        log10_u = next(r["log10_u"] for r in rows if r["numbers"] == numbers)
        # automatic steps: forward ~ √u, central-2 ~ u^(2/3), complex step ~ u
        assert error["complex_step"] <= math.log10(FLAT_UNITS) + log10_u \
            < error["central2"] < error["forward"]
        backprop = next(r for r in rows if (r["problem"], r["numbers"], r["method"])
                        == ("mlp", numbers, "backprop"))
        assert backprop["log10_error"] <= 2 + log10_u and backprop["evaluations"] == 1


# -- gradient-check reliability --------------------------------------------------------------
def _rates(report: Path) -> dict[tuple, dict]:
    rows = read_csv(report / "gradcheck_reliability" / "rates.csv")
    return {(r["numbers"], r["checker"], r["bug"]): r for r in rows}


@pytest.mark.parametrize("numbers", ["float16", "float32", "float64"])
def test_derived_tolerance_never_alarms_and_catches_gross_bugs(report, numbers):
    rates = _rates(report)
    assert rates[(numbers, "derived", "none")]["wrong"] == 0
    for bug in ("missing_1/m", "sign_flip"):
        assert rates[(numbers, "derived", bug)]["wrong"] == 0
    if numbers != "float16":  # above float16's resolution every planted bug is caught
        for bug in gradcheck_reliability.BUGS[1:]:
            assert rates[(numbers, "derived", bug)]["wrong"] == 0


def test_fixed_tolerances_fail_where_their_arithmetic_cannot_reach(report):
    rates = _rates(report)
    # float16: every recipe's step (1e-4 … 1e-6) is below the spacing next to most weights
    for checker in ("cs231n", "coursera", "torch"):
        assert rates[("float16", checker, "none")]["rate"] == 1.0
    # float32: central differences reach at best u^(2/3) ≈ 1.5e-5, far above 1e-9 and 1e-7
    for checker in ("cs231n", "coursera"):
        assert rates[("float32", checker, "none")]["rate"] == 1.0
    # torch passes |a − n| ≤ atol + rtol·|n| with rtol = 1e-3: an error of one part in a
    # thousand is inside its tolerance by construction
    assert rates[("float64", "torch", "none")]["wrong"] == 0
    assert rates[("float64", "torch", "one_part_in_1000")]["rate"] == 1.0


def test_wilson_interval_matches_its_closed_form():
    low, high = gradcheck_reliability.wilson(0, 10)
    assert low == 0 and math.isclose(high, 1.959964**2 / (10 + 1.959964**2), rel_tol=1e-12)
    low, high = gradcheck_reliability.wilson(5, 10)
    assert math.isclose(low + high, 1.0, rel_tol=1e-12) and 0.2 < low < 0.25


# -- the fitting machinery on manufactured data ----------------------------------------------
def test_fits_recover_the_laws_of_manufactured_errors():
    law_ = law("central2", [1.0, 1.0, 1.0, 1.0, 1.0, 1.0], -16.0)
    x = np.linspace(0, -18, 109)
    rng = np.random.default_rng(0)
    y = np.log10(10.0 ** law_.truncation(x) + 10.0 ** law_.rounding(x)
                 * rng.uniform(0.2, 1.0, x.size))
    truncation, rounding = regime_masks(x, y, model=law_, log10_u=-16.0, x_scale=1.0)
    assert abs(fit_slope(x, y, truncation).slope - 2) < 0.02
    assert abs(fit_slope(x, y, rounding).slope + 1) < 0.1
    assert not np.any(truncation & rounding)


def test_fits_recover_the_laws_far_below_the_float_range():
    """The same manufactured V at u = 10^-1000: every value 0 as a float, none as log10."""
    law_ = law("central2", [1.0, 1.0, 1.0, 1.0, 1.0, 1.0], -1000.0)
    x = np.linspace(0, -1002, 168)
    rng = np.random.default_rng(1)
    y = law_.total(x) + np.log10(rng.uniform(0.2, 1.0, x.size))  # rounding's luck
    truncation, rounding = regime_masks(x, y, model=law_, log10_u=-1000.0, x_scale=1.0)
    trunc, rnd = fit_slope(x, y, truncation), fit_slope(x, y, rounding)
    assert abs(trunc.slope - 2) < 0.01 and abs(rnd.slope + 1) < 0.01
    assert trunc.points >= 20 and rnd.points >= 50
    h_opt, e_opt = fitted_optimum(trunc, rnd)
    assert abs(h_opt - law_.log10_h_opt) < 1 and abs(e_opt - law_.log10_e_opt) < 1


@pytest.mark.parametrize("label", ["forward", "central2", "central4"])
def test_model_optimum_is_the_minimiser(label):
    law_ = law(label, [1.0, 0.5, 2.0, 3.0, 4.0, 5.0], -53 * math.log10(2))
    found = minimize_scalar(lambda t: float(law_.total(t)), bounds=(-12, 0),
                            method="bounded", options={"xatol": 1e-10})
    assert abs(found.x - law_.log10_h_opt) < 1e-4
    assert float(law_.total(law_.log10_h_opt)) == pytest.approx(law_.log10_e_opt, abs=1e-12)


def test_unknown_problem_is_named():
    with pytest.raises(ValueError, match=r"unknown problem 'nope'; valid: \['exp'"):
        problem("nope")


@pytest.mark.parametrize("module", STUDY_MODULES, ids=lambda m: m.NAME)
def test_grid_keys_are_unique_and_quick_is_smaller(module):
    full, quick = module.grid(False), module.grid(True)
    assert len({c["key"] for c in full}) == len(full)
    assert len({c["key"] for c in quick}) == len(quick) < len(full)
