"""Exact constants multiply arrays array-first, so no mpmath scalar formats an array.

An mpf or mpc on the left of ``constant * array`` makes mpmath try to convert the whole
numpy array, and its conversion formats the array with ``repr()`` (every element) before
numpy takes over: about a quarter of a 30-digit gradient's fixed cost. Nothing in a
derivative needs an element's text, so a gradient formats none.
"""

from __future__ import annotations

import mpmath
import numpy as np
import pytest

from precision_nn.derivatives import gradient
from precision_nn.derivatives.constants import exact_constant
from precision_nn.numbers import number_system


def _count_reprs(monkeypatch, classes) -> list[str]:
    formatted: list[str] = []
    for cls in classes:
        original = cls.__repr__

        def counting(self, original=original):
            formatted.append(type(self).__name__)
            return original(self)

        monkeypatch.setattr(cls, "__repr__", counting)
    return formatted


@pytest.mark.parametrize("method", ["central", "richardson", "complex_step"])
def test_a_multiprecision_gradient_formats_no_number(method, monkeypatch):
    ns = number_system("mpf:30")
    weights = ns.asarray(["0.5", "1.25", "0.75", "2"])
    x = ns.asarray(["0.1", "-0.3", "0.7", "0.2"])

    def f(v):  # accepts one point or a stack, in mpf:30 or mpc:30
        system = ns.complex() if type(v.ravel()[0]).__name__ == "mpc" else ns
        return np.sum(weights * system.exp(system.sin(v)), axis=-1)

    # the element classes of the systems (each system's mpmath context has its own)
    formatted = _count_reprs(monkeypatch, {type(ns.one), type(ns.complex().one)})
    est = gradient(f, x, method=method)
    assert formatted == []
    # and the values are right: d/dx w·exp(sin x) = w·cos x·exp(sin x), in mpf:60
    with mpmath.workdps(60):
        exact = [mpmath.mpf(w) * mpmath.cos(mpmath.mpf(v)) * mpmath.exp(mpmath.sin(mpmath.mpf(v)))
                 for w, v in zip(["0.5", "1.25", "0.75", "2"], ["0.1", "-0.3", "0.7", "0.2"])]
        assert all(abs(e - v) <= err for e, v, err in zip(exact, est.value, est.error))


def test_the_constants_are_the_systems_numbers():
    """The cache hands back each system's own number, converted exactly once."""
    for spec in ("float32", "mpf:30", "decimal:20"):
        ns = number_system(spec)
        assert exact_constant(ns, -3) == ns.scalar(-3)
        assert exact_constant(ns, 12) is exact_constant(ns, 12)
    assert exact_constant(number_system("mpc:30"), 1j) == number_system("mpc:30").scalar(1j)
    with pytest.raises(ValueError, match="integer or 1j"):
        exact_constant(number_system("float64"), 0.5)
