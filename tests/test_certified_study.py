"""The certified study's quick grid: every enclosure contains its reference, the table's
brackets hold the float64 differences' true errors, and render writes its summary."""

from __future__ import annotations

import math

import mpmath
import pytest

from precision_nn.gradcheck import check_gradient
from precision_nn.numbers import number_system
from studies import certified

pytest.importorskip("flint")


def test_quick_grid_encloses_and_brackets(tmp_path):
    rows = [row for cell in certified.grid(True) for row in certified.run_cell(cell)]
    radius = [r for r in rows if r["kind"] == "radius"]
    assert radius and all(r["contains"] for r in radius)
    # proven radii within 100·u of the value (log10: 2), at 15 and 50 digits
    assert all(r["log10_relative_radius"] - r["log10_u"] <= 2.5 for r in radius)
    with mpmath.workdps(60):
        exact = mpmath.diff(certified._squire_trapp_mp, mpmath.mpf("1.5"))
    for r in (r for r in rows if r["kind"] == "fd_table"):
        true = abs(mpmath.mpf(r["estimate"]) - exact)
        assert r["error_lo"] * (1 - 1e-15) <= true <= r["error_hi"] * (1 + 1e-15)
        assert math.isfinite(r["h"])
    seeds = {r["function"]: r for r in rows if r["kind"] == "seed"}
    assert seeds["seed002_user"]["status"] == "proven_wrong"
    assert seeds["seed002_user"]["findings"] == "regularization"
    assert seeds["seed002_fixed"]["status"] == "consistent"
    assert seeds["seed004_user"]["status"] == "proven_wrong"
    assert seeds["seed004_fixed"]["status"] == "consistent"
    # seed 000's fixed Decimal network: proven correct to what 28 digits allow
    assert seeds["seed000_fixed"]["status"] == "consistent"
    summary = certified.render(rows, tmp_path)
    assert "contain the reference" in summary and (tmp_path / "radius_vs_digits.png").exists()


def test_seed000_fixed_gradient_off_beyond_its_28_digit_rounding_is_proven_wrong():
    f, grad, x = certified._seed_problem("seed000_fixed")
    ns = number_system("decimal:28")
    off = ns.scalar("1e-20")  # far beyond the assumed 128·u of decimal:28 (≈ 6e-26)
    with ns.context():
        report = check_gradient(f, lambda p: grad(p) * (ns.one + off), x,
                                method="certified", numbers="arb:30")
    assert report.status == "proven_wrong"


def test_render_survives_a_partial_grid(tmp_path):
    assert "No radius cells finished" in certified.render([], tmp_path)
