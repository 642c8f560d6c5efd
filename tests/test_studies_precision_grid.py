"""precision_sweep's digit list is a parameter of its grid (to extend the sweep later)."""

from __future__ import annotations

import pytest

from studies import precision_sweep


def test_default_grid_sweeps_the_documented_digits():
    systems = {cell["numbers"] for cell in precision_sweep.grid(False)}
    assert systems == {f"mpf:{d}" for d in precision_sweep.MPF_DIGITS} | \
        {f"decimal:{d}" for d in precision_sweep.DECIMAL_DIGITS}


def test_digits_extend_the_grid_and_decimal_gets_no_complex_step():
    cells = precision_sweep.grid(False, digits={"mpf": (300,), "decimal": (300,)})
    assert {c["numbers"] for c in cells} == {"mpf:300", "decimal:300"}
    methods = {(c["numbers"], c["method"]) for c in cells}
    assert ("mpf:300", "complex_step") in methods
    assert ("decimal:300", "complex_step") not in methods  # Decimal has no complex system
    assert len({c["key"] for c in cells}) == len(cells)


def test_bad_digits_are_named():
    with pytest.raises(ValueError, match=r"`digits` maps a family name to positive digit"):
        precision_sweep.grid(True, digits={"mpf": (0,)})
