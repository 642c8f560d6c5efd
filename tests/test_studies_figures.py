"""What the figures say beyond their data: notes, labels, floors (drawn on real axes)."""

from __future__ import annotations

import math

import numpy as np

from studies import (
    decades,
    epsilon_figure,
    gradcheck_reliability,
    method_figure,
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
    epsilon_figure.note_missing(ax, "float16", ["complex_step"])
    (note,) = texts(ax)
    assert "float16 has no complex\ncounterpart (numpy has no complex32)" in note
    _fig, ax = output.figure()
    epsilon_figure.note_missing(ax, "float64", ["richardson"])
    assert texts(ax) == ["no richardson: not run in this system"]


def test_accuracy_guides_are_the_powers_of_u_the_methods_reach():
    _fig, ax = output.figure()
    method_figure.exponent_guides(ax)
    assert texts(ax) == ["u^(1/2): forward", "u^(2/3): central-2", "u^(4/5): central-4",
                         "u: every digit"]
    assert [line.get_ydata()[0] for line in ax.lines] == [1 / 2, 2 / 3, 4 / 5, 1.0]


def test_accuracy_power_reads_1000_digit_errors_and_exact_results():
    # u = 1.2e-1001 and an error of 7.8e-668: a = 667.1/1000.9 ≈ 2/3, from log10 values
    # only (both are 0 as floats); an exact result has a = +inf, drawn at EXACT_AT
    row = {"log10_u": -1000.92, "log10_error": -667.11}
    assert abs(method_figure.accuracy_power(row) - 0.6665) < 1e-4
    assert method_figure.accuracy_power({**row, "log10_error": -math.inf}) == math.inf


def test_accuracy_figure_draws_1000_digit_rows(tmp_path):
    rows = [{"problem": name, "numbers": numbers, "log10_u": log10_u, "method": method,
             "log10_error": a * log10_u, "evaluations": evaluations, "seconds": seconds}
            for name in ("sigmoid", "mlp")
            for numbers, log10_u, seconds in (("float64", -15.95, 0.002),
                                              ("mpf:1000", -1000.92, 0.03))
            for method, a, evaluations in (("central2", 2 / 3, 10), ("complex_step", 1.0, 8))]
    png = method_figure.plot_accuracy_cost(rows, tmp_path)
    assert (tmp_path / png).stat().st_size > 10_000


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
    assert "‖D − ∇L‖₂/‖∇L‖₂" in epsilon_figure.NO_MODEL_NOTE
    assert "higher derivatives" in epsilon_figure.NO_MODEL_NOTE
    assert "2020-digit reference" in epsilon_figure.NO_MODEL_NOTE
