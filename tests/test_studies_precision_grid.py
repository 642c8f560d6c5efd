"""precision_sweep's grid: its digit list is a parameter, up to the references' limit."""

from __future__ import annotations

import pytest

from studies import precision_sweep


def test_default_grid_sweeps_the_documented_digits_up_to_1000():
    systems = {cell["numbers"] for cell in precision_sweep.grid(False)}
    assert systems == {f"{family}:{d}" for family, counts in precision_sweep.DIGITS.items()
                       for d in counts}
    assert {"mpfr:1000", "arb:1000", "decimal:1000"} <= systems


def test_digits_extend_the_grid_and_decimal_gets_no_complex_step():
    cells = precision_sweep.grid(False, digits={"mpf": (300,), "decimal": (300,)})
    assert {c["numbers"] for c in cells} == {"mpf:300", "decimal:300"}
    methods = {(c["numbers"], c["method"]) for c in cells}
    assert ("mpf:300", "complex_step") in methods
    assert ("decimal:300", "complex_step") not in methods  # Decimal has no complex system
    assert len({c["key"] for c in cells}) == len(cells)


def test_bad_digits_are_named():
    with pytest.raises(ValueError, match=r"`digits` maps a family name to digit counts from 1 "
                                         r"to 1000 .*got 'mpf': \(0,\)"):
        precision_sweep.grid(True, digits={"mpf": (0,)})


def test_digits_beyond_the_references_are_refused_with_the_fix():
    with pytest.raises(ValueError, match=r"references carry 2020 digits; raise "
                                         r"studies.problems.MAX_DIGITS"):
        precision_sweep.grid(True, digits={"mpfr": (1001,)})
