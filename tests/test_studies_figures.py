"""What the figures say beyond their data: notes, labels, floors (drawn on real axes)."""

from __future__ import annotations

import math

import numpy as np

from studies import epsilon_sweep, gradcheck_reliability, method_comparison, output, precision_sweep


def texts(ax) -> list[str]:
    return [t.get_text() for t in ax.texts]


def test_a_zero_rate_bar_says_0_of_n_and_a_missing_one_not_run():
    _fig, ax = output.figure()
    rates = [{"wrong": 0, "trials": 60, "high": 0.06}, {"wrong": 3, "trials": 60, "high": 0.1},
             None]
    gradcheck_reliability._mark_empty_bars(ax, np.arange(3.0), rates, "tab:red")
    assert texts(ax) == ["0 of 60", "not run"]
    assert ax.texts[0].get_position()[1] > 6.0  # above the whisker of its interval


def test_missing_complex_step_is_explained_by_the_system():
    _fig, ax = output.figure()
    epsilon_sweep._note_missing(ax, "float16", ["complex_step"])
    (note,) = texts(ax)
    assert "float16 has no complex\ncounterpart (numpy has no complex32)" in note
    _fig, ax = output.figure()
    epsilon_sweep._note_missing(ax, "float64", ["richardson"])
    assert texts(ax) == ["no richardson: not run in this system"]


def test_u_floors_are_labelled_and_close_ones_share_a_label():
    _fig, ax = output.figure()
    rows = [{"numbers": "float64", "u": 2.0 ** -53}, {"numbers": "decimal:30", "u": 5e-30},
            {"numbers": "mpf:30", "u": 4.9e-32}]
    method_comparison._u_floors(ax, rows)
    assert texts(ax) == ["u: float64", "u: decimal:30, mpf:30"]
    assert len(ax.lines) == 3


def test_ratio_panel_is_symmetric_about_one():
    _fig, ax = output.figure()
    ax.semilogy([10, 20], [0.01, 3.0])
    low, high = precision_sweep._ratio_limits(ax)
    assert math.isclose(math.log10(low), -math.log10(high)) and high >= 10


def test_network_panels_name_their_norm_and_why_no_model():
    assert "‖D − ∇L‖₂/‖∇L‖₂" in epsilon_sweep.NO_MODEL_NOTE
    assert "higher derivatives" in epsilon_sweep.NO_MODEL_NOTE
