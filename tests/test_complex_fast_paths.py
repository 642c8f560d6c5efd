"""The complex step's fast paths in `numbers/ieee.py`: exp and log1p of complex arrays
whose imaginary parts are tiny (the complex step's) skip cos, sin and atan2 where those
round to 1, y and y/(1+x). Checked against mpmath at 40 digits, and against numpy's own
complex exp (bitwise, in complex128) and the general path (large imaginary parts)."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest

from precision_nn.numbers import number_system
from precision_nn.numbers.ieee import _complex_exp, _complex_log1p

RNG = np.random.default_rng(11)
N = 400


def _errors(values: np.ndarray, exact: list[complex], u: float) -> tuple[float, float]:
    """Largest relative error of the real and of the imaginary parts, in units of u."""
    re = max(abs(float(v.real) - e.real) / abs(e.real) for v, e in zip(values, exact))
    im = max(abs(float(v.imag) - e.imag) / abs(e.imag) for v, e in zip(values, exact))
    return re / u, im / u


def _exact(fn, z: np.ndarray) -> list[complex]:
    with mpmath.workdps(40):
        return [complex(fn(mpmath.mpc(float(v.real), float(v.imag)))) for v in z]


@pytest.mark.parametrize(("dtype", "scale"), [(np.complex128, 1e-20), (np.complex128, 1e-9),
                                              (np.complex64, 1e-7)])
def test_exp_of_tiny_imaginary_parts_is_correctly_rounded(dtype, scale):
    z = (RNG.normal(size=N) * 8 + 1j * RNG.normal(size=N) * scale).astype(dtype)
    values = _complex_exp(z)
    assert values.dtype == dtype
    u = float(np.finfo(np.real(z).dtype).eps) / 2
    # each part is one rounding of e^x (float64's exp: < 1 ulp) times y: 2u covers both
    re, im = _errors(values, _exact(mpmath.exp, z), u)
    assert re <= 2 and im <= 2
    if dtype == np.complex128:  # numpy's formula with cos y = 1, sin y = y: same bits
        np.testing.assert_array_equal(values, np.exp(z))


def test_exp_takes_numpys_path_off_the_fast_one():
    z = np.array([0.3 + 0.5j, 800 + 1e-20j, np.inf + 0j, 1 + 1e-3j])
    with np.errstate(over="ignore", invalid="ignore"):
        np.testing.assert_array_equal(_complex_exp(z), np.exp(z))
    big = np.array([100 + 1e-9j], dtype=np.complex64)  # e^100 overflows complex64
    with np.errstate(over="ignore"):
        assert np.isinf(_complex_exp(big).real[0])


@pytest.mark.parametrize(("dtype", "scale"), [(np.complex128, 1e-20), (np.complex64, 1e-7)])
def test_log1p_of_tiny_imaginary_parts_keeps_each_part_accurate(dtype, scale):
    w = (np.exp(-np.abs(RNG.normal(size=N) * 8)) +
         1j * RNG.normal(size=N) * scale).astype(dtype)
    u = float(np.finfo(np.real(w).dtype).eps) / 2
    # Im = y / fl(1 + x): two roundings, as atan2(y, fl(1 + x)) had (ieee module notes)
    re, im = _errors(_complex_log1p(w), _exact(lambda v: mpmath.log(1 + v), w), u)
    assert re <= 4 and im <= 2.5


def test_log1p_with_large_imaginary_parts_takes_atan2():
    w = np.array([0.5 + 0.7j, -0.5 + 1e-20j, 2 - 3j])
    values = _complex_log1p(w)
    exact = _exact(lambda v: mpmath.log(1 + v), w)
    re, im = _errors(values, exact, 2.0**-53)
    assert re <= 4 and im <= 4


def test_network_complex_step_uses_them_and_stays_exact():
    """The complex-step gradient of a saturated float64 net against backprop at mpf:40:
    the fast paths change no digit that matters."""
    from precision_nn.network import MLP

    net = MLP([3, 5, 2], seed=3)
    X = np.array([[4.0, -3.0, 2.0], [0.1, 0.2, -0.3]])
    Y = np.array([[1.0, 0.0], [0.0, 1.0]])
    est = net.numerical_gradient(X, Y, method="complex_step")
    exact = net.to("mpf:40").gradient(X, Y)
    ns = number_system("mpf:40")
    true_error = np.abs(ns.to_float(ns.asarray(est.value) - exact))
    assert np.all(true_error <= est.error)
