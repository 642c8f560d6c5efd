"""What the figures say beyond their data: notes, labels, floors (drawn on real axes)."""

from __future__ import annotations

import numpy as np

from studies import (
    decades,
    epsilon_sweep,
    gradcheck_reliability,
    method_comparison,
    output,
    precision_figure,
)


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
    # the panel holds log10(E_min/E_model): symmetric about 0 decades, at least ±1
    assert precision_figure.ratio_limits((-2.0, 0.48)) == (-2.0, 2.0)
    assert precision_figure.ratio_limits((-0.3, 0.2)) == (-1.0, 1.0)


def test_decade_axis_labels_log10_values_as_powers_of_ten_at_round_strides():
    _fig, ax = output.figure()
    ax.plot([10, 1000], [-1001.0, 0.0])  # log10 values: 10^-1001 is 0 as a float
    decades.decade_axis(ax, "y")
    ticks = ax.yaxis.get_major_locator().tick_values(*ax.get_ylim())
    assert list(ticks) == [-1000, -800, -600, -400, -200, 0]  # stride 200, ≤ 8 ticks
    assert ax.yaxis.get_major_formatter()(-800, 0) == "$10^{-800}$"


def test_sweep_figure_draws_minima_far_below_the_float_range(tmp_path):
    minima = [{"problem": "exp", "numbers": f"mpfr:{d}", "family": "mpfr",
               "arithmetic": "binary", "digits": d, "log10_u": -d, "method": "central2",
               "log10_e_min": -2 * d / 3 - 1, "log10_h_opt": -d / 3,
               "log10_e_model": -2 * d / 3, "log10_h_model": -d / 3} for d in (300, 1000)]
    png = precision_figure.plot_minima("exp", minima, tmp_path)
    assert (tmp_path / png).stat().st_size > 10_000 and (tmp_path / png).with_suffix(".svg").exists()


def test_network_panels_name_their_norm_and_why_no_model():
    assert "‖D − ∇L‖₂/‖∇L‖₂" in epsilon_sweep.NO_MODEL_NOTE
    assert "higher derivatives" in epsilon_sweep.NO_MODEL_NOTE
