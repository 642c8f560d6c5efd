"""The complex step's fast paths in `numbers/ieee_complex.py`: exp and log1p of complex
arrays whose imaginary parts are tiny or small (the complex step's) replace cos, sin and
atan2 by one or two terms of their series. Checked against mpmath at 40 digits on each
path and at the bounds between them, against numpy's own complex exp (bitwise, in
complex128, where cos and sin round to 1 and y), and on non-finite, negative and
non-IEEE inputs, which take the general path."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest

from precision_nn.numbers import number_system
from precision_nn.numbers.ieee import _complex_exp, _complex_log1p
from precision_nn.numbers.ieee_complex import _EXP_WORK, _LOG1P_WORK, _full_log1p

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


def _u(dtype) -> float:
    return float(np.finfo(np.dtype(dtype).type(0).real.dtype).eps) / 2


def _imaginary_parts(bound: float, below: float, n: int = 200) -> np.ndarray:
    """|y| spread log-uniformly over (below, bound], both signs, the bound itself included."""
    mags = np.exp(RNG.uniform(np.log(below), np.log(bound), n))
    mags[:4] = [bound, bound, np.nextafter(bound, 0), below * 1.0001]
    return mags * RNG.choice([-1.0, 1.0], n)


@pytest.mark.parametrize("dtype", [np.complex128, np.complex64])
@pytest.mark.parametrize("path", ["tiny", "small"])
def test_exp_on_each_path_and_at_its_bounds_against_mpmath(dtype, path):
    _, tiny, small = _EXP_WORK[np.dtype(dtype)]
    bound, below = (tiny, tiny * 1e-6) if path == "tiny" else (small, tiny)
    y = _imaginary_parts(bound, below)
    z = (RNG.uniform(-20, 20, len(y)) + 1j * y).astype(dtype)
    assert np.max(np.abs(z.imag)) <= bound  # the whole array is on this path
    values = _complex_exp(z)
    re, im = _errors(values, _exact(mpmath.exp, z), _u(dtype))
    if dtype == np.complex128:
        # relative errors in u: fl(e^x) <= 2 (numpy's exp, < 1 ulp); 1 - y²/2 and
        # 1 - y²/6 rounded (<= 1/2, beyond the series' u/8) and each product (<= 1):
        # Re 2 + 1/2 + 1, Im 2 + 1/2 + 1 + 1
        assert re <= 3.5 and im <= 4.5
    else:  # float64 work (errors ~2^-27 u) rounded once, plus the u/32 series bound
        assert re <= 1.05 and im <= 1.05


@pytest.mark.parametrize("dtype", [np.complex128, np.complex64])
def test_exp_just_beyond_the_small_bound_is_numpys(dtype):
    _, _, small = _EXP_WORK[np.dtype(dtype)]
    z = np.array([0.5 + 0.1j, 0.3 + np.nextafter(small, 1) * 1j], dtype=dtype)
    np.testing.assert_array_equal(_complex_exp(z), np.exp(z))


def test_exp_of_non_finite_or_non_ieee_inputs_is_numpys():
    cases = [np.array([np.nan + 1e-20j, 1 + 0j]), np.array([1 + np.nan * 1j]),
             np.array([np.inf + 1e-20j]), np.array([-np.inf + 1e-20j, 2 + 1e-9j]),
             np.array([1 + np.inf * 1j]), np.array([710 + 1e-20j])]
    with np.errstate(all="ignore"):
        for z in cases:
            np.testing.assert_array_equal(_complex_exp(z), np.exp(z))
        long = np.array([1 + 1e-20j], dtype=np.clongdouble)  # no fast path: numpy's
        np.testing.assert_array_equal(_complex_exp(long), np.exp(long))
        assert _complex_exp(np.zeros(0, dtype=np.complex128)).shape == (0,)


@pytest.mark.parametrize("dtype", [np.complex128, np.complex64])
@pytest.mark.parametrize("path", ["tiny", "small"])
def test_log1p_on_each_path_and_at_its_bounds_against_mpmath(dtype, path):
    _, tiny, small = _LOG1P_WORK[np.dtype(dtype)]
    bound, below = (tiny, tiny * 1e-6) if path == "tiny" else (small, tiny)
    x = np.concatenate([np.exp(-RNG.uniform(0, 30, 100)), RNG.uniform(0, 5, 100)])
    x[:3] = [0.0, 1e-30, 1.0]
    t = _imaginary_parts(bound, below, len(x))
    w = (x + 1j * (t * (1 + x)) * (1 - 2 * _u(dtype))).astype(dtype)  # |y/(1+x)| <= bound
    values = _complex_log1p(w)
    assert values.dtype == dtype
    # Re: numpy's log1p (< 1 ulp) plus t²(1/2 - t²/4) (a few roundings of a term >= 0),
    # summed without cancellation; Im: t after the roundings of 1 + x and of y/(1 + x)
    re, im = _errors(values, _exact(lambda v: mpmath.log(1 + v), w), _u(dtype))
    assert re <= 4 and im <= 2.5


@pytest.mark.parametrize("dtype", [np.complex128, np.complex64])
def test_log1p_off_the_fast_paths_is_the_full_formula(dtype):
    _, _, small = _LOG1P_WORK[np.dtype(dtype)]
    cases = [[0.5 + 2 * small * 1j, 0.1 + 1e-9j],  # |t| beyond the small bound
             [-0.25 + 1e-12j, 0.1 + 0j],           # a negative real part may cancel
             [np.nan + 0j, 0.1 + 0j], [0.1 + np.nan * 1j], [0.2 + np.inf * 1j]]
    with np.errstate(all="ignore"):
        for case in cases:
            w = np.array(case, dtype=dtype)
            np.testing.assert_array_equal(_complex_log1p(w), _full_log1p(w))
        # +inf real part: Re = inf, Im = ±0, as log(1 + w) has it
        out = _complex_log1p(np.array([np.inf + 1e-20j, 0.5 + 0j], dtype=dtype))
        assert np.isinf(out.real[0]) and out.imag[0] == 0


def test_log1p_where_its_terms_would_cancel_stays_accurate():
    """w = -t²/2 + it: |1 + w| = 1 + t⁴/8, so log1p(x) + t²/2 would give −t⁴/8; the
    negative real part sends it to the full formula, accurate to a few u of |w|."""
    t = 1e-5
    w = np.array([-t * t / 2 + 1j * t])
    exact = _exact(lambda v: mpmath.log(1 + v), w)[0]
    value = _complex_log1p(w)[0]
    assert abs(value.real - exact.real) <= 4 * 2.0**-53 * abs(w[0])
    assert abs(value.imag - exact.imag) <= 2.5 * 2.0**-53 * abs(exact.imag)
