"""The seed cases replayed (issue item 6): what the user saw, what the check finds, the fix.

Each replay is the plain function ``replay()`` of its module in `studies.seeds`; these tests pin down the user's
symptom, the findings of `check_gradient`, and that the fix passes. Each runs in seconds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import studies
from studies import seeds as seed_cases
from studies.seeds import seed000 as case000
from studies.seeds import seed002 as case002
from studies.seeds import seed003 as case003
from studies.seeds import seed004 as case004


@pytest.fixture(scope="module")
def seed000():
    return case000.replay()


@pytest.fixture(scope="module")
def seed002():
    return case002.replay()


@pytest.fixture(scope="module")
def seed003():
    return case003.replay()


@pytest.fixture(scope="module")
def seed004():
    return case004.replay()


# -- seed 000 -----------------------------------------------------------------------------------
def test_seed000_user_sees_failures(seed000):
    assert seed000.facts["failing_weights"] >= 20  # most hidden weights fail the 0.1 mark
    assert seed000.user_metrics["user"] > case000.DISTANCE


def test_seed000_check_finds_shared_weights_step_and_float(seed000):
    report = seed000.reports["user"]
    assert report.kinds == ("scale", "step_too_large", "precision_loss")
    # the hidden block is w2_0/Σ w2 of the derivative for the shared array
    factor = report.findings[0].evidence["factor"]
    assert factor == pytest.approx(seed000.facts["shared_factor"], rel=1e-6)
    assert report.findings[0].evidence["block"] == 0


def test_seed000_own_weights_show_step_and_precision(seed000):
    assert seed000.reports["own_weights_user_step"].kinds == ("step_too_large",
                                                              "precision_loss")
    assert seed000.reports["own_weights_float_sigmoid"].kinds == ("precision_loss",)
    loss = seed000.reports["own_weights_float_sigmoid"].findings[0]
    assert loss.evidence["ratio"] > 1e9  # float's 1e-17 against Decimal's 1e-28


def test_seed000_fixes_pass(seed000):
    for name in ("fixed", "fixed_shared"):
        report = seed000.reports[name]
        assert report.passed and report.kinds == ("match",)
        assert report.numbers == "decimal:28" and np.max(report.tolerance) < 1e-20


# -- seed 002 -----------------------------------------------------------------------------------
def test_seed002_user_sees_a_large_relative_difference(seed002):
    assert seed002.user_metrics["user"] > 1e-3  # hoped for < 1e-9
    assert seed002.user_metrics["fixed_C"] < 1e-9
    assert seed002.facts["lambda0_difference"] < 1e-9  # without λ the two agree


def test_seed002_check_finds_the_bias_regulariser(seed002):
    report = seed002.reports["user"]
    assert report.kinds == ("regularization",)
    finding = report.findings[0]
    lam, m = case002.LAMBDA, case002.M
    assert finding.evidence["factor"] == pytest.approx(-2 * lam / m)
    assert finding.evidence["block"] == 1 and "column 0" in finding.message


def test_seed002_order_does_not_matter_when_consistent(seed002):
    assert seed002.reports["fixed_C"].kinds == ("match",)
    assert seed002.reports["fixed_F"].kinds == ("match",)
    mixed = seed002.reports["mixed_read_F_write_C"]
    assert mixed.kinds == ("layout",) and "Every block" in mixed.findings[0].message


# -- seed 003 -----------------------------------------------------------------------------------
def test_seed003_user_learns_and_or_separately_not_together(seed003):
    assert seed003.facts["learned"] == {"AND": True, "OR": True, "AND+OR": False}
    assert seed003.facts["fixed_learned"]


def test_seed003_check_findings(seed003):
    assert seed003.reports["user_one_output"].kinds == ("match",)
    assert seed003.reports["user_two_outputs"].kinds == ("mismatch",)
    two_layers = seed003.reports["user_two_layers"]
    assert two_layers.kinds == ("localized", "mismatch")
    assert two_layers.findings[0].evidence["block"] == 0


def test_seed003_fix_passes(seed003):
    for name in ("fixed_one_output", "fixed_two_outputs", "fixed_two_layers"):
        assert seed003.reports[name].kinds == ("match",), name


# -- seed 004 -----------------------------------------------------------------------------------
def test_seed004_user_numbers(seed004):
    facts = seed004.facts
    assert abs(facts["central"] - facts["complex_step"]) < 1e-8 * abs(facts["complex_step"])
    assert abs(facts["backprop"] - facts["central"]) > 0.5 * abs(facts["central"])
    # the fixed backprop and the complex step (t = 1e-20: no cancellation, truncation
    # ~t² = 1e-40) are float64 computations of the same derivative: they agree to
    # backprop's rounding, 256·u as in tests/test_network.py (observed 1.8e-16), not
    # merely to 1e-9, which would let a bug of one part in 10^10 through
    assert facts["fixed"] == pytest.approx(facts["complex_step"], rel=256 * 2.0**-53)


def test_seed004_check_separates_the_two_bugs(seed004):
    assert seed004.reports["user"].kinds == ("mismatch",)
    assert seed004.reports["mean_only"].kinds == ("mismatch",)
    at_a = seed004.reports["at_a_only"]
    assert at_a.kinds == ("scale",)
    assert at_a.findings[0].evidence["factor"] == pytest.approx(case004.M)
    assert "m (= 8, the batch size)" in at_a.findings[0].message
    assert seed004.reports["fixed"].kinds == ("match",)


def test_seed004_the_step_was_not_the_problem(seed004):
    report = seed004.reports["user_central_1e-4"]
    assert report.kinds == ("mismatch",)  # no step finding: the h → 0 limit disagrees too


# -- the study interface ------------------------------------------------------------------------
def test_study_interface(tmp_path):
    cells = seed_cases.grid(quick=True)
    assert [c["key"] for c in cells] == list(seed_cases.CASES)
    rows = seed_cases.run_cell({"key": "seed004"})
    assert {r["scenario"] for r in rows} >= {"user", "fixed"}
    assert all(set(r) == set(rows[0]) for r in rows)
    text = seed_cases.render(rows, tmp_path)
    assert "## seed004" in text and "did not finish" in text


def test_one_module_per_walkthrough_and_seed001_is_seed000():
    docs = Path(__file__).resolve().parent.parent / "docs" / "seeds"
    assert sorted(seed_cases.CASES) == sorted(p.stem for p in docs.glob("seed*.md"))
    assert seed_cases.ALIASES == {"seed001": "seed000"}
    assert studies.load("seed_cases") is seed_cases  # `python -m studies seed_cases`


def test_summary_has_a_reading_per_case_and_names_seed001(tmp_path):
    rows = seed_cases.run_cell({"key": "seed000"})
    text = seed_cases.render(rows, tmp_path)
    assert "**Reading.** Three faults stack up." in text
    assert "Of 5 scenarios, 2 pass." in text  # counted from the rows, not written in
    assert "seed001 asks the same question" in text
