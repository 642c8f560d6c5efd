"""The fused complex-step functions of `numbers/ieee_fused.py` against mpmath at 60 digits:
log(1 + e^w) for Re w <= 0, the sigmoid cross-entropy's entries (and their sums, with rows
of equal real parts evaluated once) and the logistic function, on the tiny and the
small path and at their bounds (Re w at 0 and very negative, underflow of e^w), in
complex128 and complex64, and the general path (the unfused functions, bitwise) for
every input off the fast paths (Re w > 0, NaN, ±inf, large imaginary parts).

Tolerances, in u = 2^-p of the result's parts (module notes of `ieee_fused`):
- complex128: Re log(1 + e^w) within 4u (fl(e^a) 2u carried at condition <= 1, log1p's
  own 2u) plus the series' u/4; Im within 5u (e^a, 1 + E, the quotient, the product);
  the loss entry adds one rounding of c·x or c·Im z and one sum: Re (two terms >= 0)
  within 5.5u, Im within 6.5u of |c·Im z| + |Im f| (the entry's Im may cancel);
- complex64 works in float64 and rounds each part once: u + u/8 (series) + 2^-40;
- where the exact part is below the smallest normal number the gap is bounded by the
  smallest subnormal instead (gradual underflow rounds absolutely there).
"""

from __future__ import annotations

import mpmath
import numpy as np
import pytest

from precision_nn.numbers import number_system
from precision_nn.numbers.base import NumberSystem
from precision_nn.numbers.ieee_complex import complex_exp, complex_log1p
from precision_nn.numbers.ieee_fused import (
    FUSED_PATHS,
    _path,
    complex_log1p_exp,
    complex_sigmoid,
    complex_sigmoid_cross_entropy,
)

RNG = np.random.default_rng(2026)
DTYPES = [np.complex128, np.complex64]
# (Re, Im) tolerances in u per dtype: log1p_exp and the loss entry (module docstring)
LOG1P_EXP_TOL = {np.complex128: (4.25, 5.0), np.complex64: (1.13, 1.13)}
ENTRY_TOL = {np.complex128: (5.5, 6.5), np.complex64: (1.13, 1.13)}


def _u(dtype) -> float:
    return float(np.finfo(np.dtype(dtype).type(0).real.dtype).eps) / 2


def _tiny_normal(dtype) -> tuple[float, float]:
    real = np.finfo(np.dtype(dtype).type(0).real.dtype)
    return float(real.tiny), float(real.smallest_subnormal)


def _gap_in_u(value: float, exact: mpmath.mpf, scale: mpmath.mpf, dtype) -> float:
    """|value − exact| in units of u·scale; below the normal range, of the subnormal."""
    normal, subnormal = _tiny_normal(dtype)
    gap = abs(mpmath.mpf(float(value)) - exact)
    if abs(exact) < normal:
        return 0.0 if gap <= subnormal else float("inf")
    return float(gap / (scale * _u(dtype)))


def _imaginary_parts(bound: float, below: float, n: int) -> np.ndarray:
    """|b| log-uniform over (below, bound], both signs, the bound and 0 included."""
    mags = np.exp(RNG.uniform(np.log(below), np.log(bound), n))
    mags[:3] = [bound, np.nextafter(bound, 0), 0.0]
    return mags * RNG.choice([-1.0, 1.0], n)


def _real_parts_nonpositive(n: int) -> np.ndarray:
    """Re w <= 0 across the range: 0 and −0, near 0, moderate, very negative, e^a
    subnormal (a < −708) and 0 (a < −745)."""
    a = -np.concatenate([np.exp(RNG.uniform(np.log(1e-12), np.log(40), n - 8)),
                         [0.0, 1e-300, 20.0, 300.0, 700.0, 720.0, 744.0, 800.0]])
    a[0] = -0.0
    return a


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("path", ["tiny", "small"])
def test_log1p_exp_on_each_path_against_mpmath(dtype, path):
    tiny, small = FUSED_PATHS[np.dtype(dtype)]
    bound, below = (tiny, tiny * 1e-8) if path == "tiny" else (small, tiny)
    a = _real_parts_nonpositive(160)
    w = (a + 1j * _imaginary_parts(bound, below, len(a))).astype(dtype)
    if dtype == np.complex64:  # keep the float32 range: e^a for a < −104 is 0 there
        w.real = np.maximum(w.real, -110)
    assert _path(w.dtype, w.imag.astype(np.float64)) == path  # the whole array takes it
    values = complex_log1p_exp(w)
    assert values.dtype == dtype
    tol_re, tol_im = LOG1P_EXP_TOL[dtype]
    with mpmath.workdps(60):
        for v, wi in zip(values, w):
            exact = mpmath.log1p(mpmath.exp(mpmath.mpc(float(wi.real), float(wi.imag))))
            assert _gap_in_u(v.real, exact.real, abs(exact.real), dtype) <= tol_re, wi
            if wi.imag != 0:
                assert _gap_in_u(v.imag, exact.imag, abs(exact.imag), dtype) <= tol_im, wi
            else:  # a real w stays real
                assert v.imag == 0


@pytest.mark.parametrize("dtype", DTYPES)
def test_log1p_exp_off_the_fast_paths_is_the_unfused_function(dtype):
    _, small = FUSED_PATHS[np.dtype(dtype)]
    cases = [[-1 + 2 * small * 1j, -0.5 + 1e-9j],   # |Im w| beyond the small bound
             [0.25 + 1e-12j, -0.1 + 0j],            # Re w > 0: outside the hook's domain
             [np.nan - 1e-20j, -0.1 + 0j], [-0.1 + np.nan * 1j], [-0.2 + np.inf * 1j],
             [np.inf + 0j], [-np.inf + 1e-20j, -1 + 0j]]
    with np.errstate(all="ignore"):
        for case in cases:
            w = np.array(case, dtype=dtype)
            np.testing.assert_array_equal(complex_log1p_exp(w),
                                          complex_log1p(complex_exp(w)))
        long = np.array([-1 + 1e-20j], dtype=np.clongdouble)  # no fused path
        np.testing.assert_array_equal(complex_log1p_exp(long),
                                      complex_log1p(complex_exp(long)))
        assert complex_log1p_exp(np.zeros(0, dtype=dtype)).shape == (0,)


@pytest.mark.parametrize("dtype", DTYPES)
def test_log1p_exp_agrees_with_the_unfused_pair_on_the_fast_paths(dtype):
    """Same function, other rounding: within the two tolerances of each other."""
    tiny, small = FUSED_PATHS[np.dtype(dtype)]
    for bound in (tiny, small):
        w = (-np.abs(RNG.normal(size=500) * 5) + 1j * RNG.uniform(-bound, bound, 500)
             ).astype(dtype)
        fused, unfused = complex_log1p_exp(w), complex_log1p(complex_exp(w))
        u = _u(dtype)
        assert np.all(np.abs(fused.real - unfused.real) <= 10 * u * np.abs(unfused.real))
        assert np.all(np.abs(fused.imag - unfused.imag) <= 10 * u * np.abs(unfused.imag))


def _exact_entry(z: complex, y: float) -> tuple[mpmath.mpc, mpmath.mpf]:
    """The entry −y·log σ(z) − (1 − y)·log σ(−z) = y·log1p(e^−z) + (1 − y)·log1p(e^z)
    (principal logs: near the real axis that is the holomorphic continuation), and the
    scale of its imaginary part, |c·Im z| + |Im log(1 + e^−|z|)|."""
    zz = mpmath.mpc(z.real, z.imag)
    value = y * mpmath.log1p(mpmath.exp(-zz)) + (1 - y) * mpmath.log1p(mpmath.exp(zz))
    s = -1 if z.real > 0 else 1
    c = (1 - mpmath.mpf(y)) if z.real > 0 else -mpmath.mpf(y)
    im_f = mpmath.log1p(mpmath.exp(s * zz)).imag
    return value, abs(c * zz.imag) + abs(im_f)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("path", ["tiny", "small"])
def test_loss_entries_on_each_path_against_mpmath(dtype, path):
    tiny, small = FUSED_PATHS[np.dtype(dtype)]
    bound, below = (tiny, tiny * 1e-8) if path == "tiny" else (small, tiny)
    n = 120
    x = np.concatenate([RNG.normal(size=n - 8) * 6, [0.0, -0.0, 1e-300, -1e-300, 40.0,
                                                   -40.0, 90.0, -90.0]])
    z = (x + 1j * _imaginary_parts(bound, below, n)).astype(dtype)
    # one-hot and soft targets in [0, 1], 0 and 1 included
    y = np.concatenate([RNG.integers(0, 2, n // 2), RNG.uniform(0, 1, n - n // 2)])
    y[:4] = [0.0, 1.0, 0.5, 1.0]
    y = y.astype(dtype)
    values = complex_sigmoid_cross_entropy(z[None], y[None])
    assert values is not None and values.dtype == dtype  # the fused path applies
    values = values[0]
    tol_re, tol_im = ENTRY_TOL[dtype]
    with mpmath.workdps(60):
        for v, zi, yi in zip(values, z, y):
            exact, im_scale = _exact_entry(complex(zi), float(yi.real))
            assert _gap_in_u(v.real, exact.real, abs(exact.real), dtype) <= tol_re, (zi, yi)
            if im_scale > 0:
                assert _gap_in_u(v.imag, exact.imag, im_scale, dtype) <= tol_im, (zi, yi)


@pytest.mark.parametrize("dtype", DTYPES)
def test_the_systems_hook_takes_the_fused_entries_and_matches_the_generic_formula(dtype):
    ns = number_system(np.dtype(dtype).name)
    z = (RNG.normal(size=(3, 8, 4)) * 4 + 1j * RNG.normal(size=(3, 8, 4)) * 1e-9
         ).astype(dtype)
    y = np.eye(4)[RNG.integers(0, 4, 8)].astype(dtype)
    fused = ns.sigmoid_cross_entropy(z, y)
    generic = NumberSystem.sigmoid_cross_entropy(ns, z, y)
    np.testing.assert_array_equal(fused, complex_sigmoid_cross_entropy(z, y))
    u = _u(dtype)
    assert np.all(np.abs(fused.real - generic.real) <= 12 * u * np.abs(generic.real))
    scale = np.abs(z.imag) * (1 + np.abs(y.real))  # |c·Im z| + |Im f| <= |Im z|(1 + |y|)
    assert np.all(np.abs(fused.imag - generic.imag) <= 14 * u * scale)


@pytest.mark.parametrize("dtype", DTYPES)
def test_loss_entries_off_the_fast_paths_are_the_generic_formula(dtype):
    ns = number_system(np.dtype(dtype).name)
    _, small = FUSED_PATHS[np.dtype(dtype)]
    y = np.array([1.0, 0.0], dtype=dtype)
    cases = [(np.array([2 + 2 * small * 1j, -1 + 0j], dtype=dtype), y),  # Im z too large
             (np.array([np.nan + 0j, 1 + 0j], dtype=dtype), y),
             (np.array([np.inf + 1e-20j, 1 + 0j], dtype=dtype), y),
             (np.array([1 + np.inf * 1j, 1 + 0j], dtype=dtype), y),
             (np.array([1 + 1e-20j, -1 + 0j], dtype=dtype),
              np.array([1 + 1e-20j, 0], dtype=dtype)),                    # complex target
             (np.array([1 + 1e-20j, -1 + 0j], dtype=dtype), y.real)]      # real dtype
    with np.errstate(all="ignore"):
        for z, t in cases:
            assert complex_sigmoid_cross_entropy(z, t) is None
            np.testing.assert_array_equal(ns.sigmoid_cross_entropy(z, t),
                                          NumberSystem.sigmoid_cross_entropy(ns, z, t))


def test_real_systems_keep_the_generic_formula():
    ns = number_system("float64")
    z, y = np.array([3.0, -2.0, 0.0]), np.array([1.0, 0.0, 0.5])
    np.testing.assert_array_equal(ns.sigmoid_cross_entropy(z, y),
                                  NumberSystem.sigmoid_cross_entropy(ns, z, y))
    np.testing.assert_array_equal(ns.log1p_exp(-np.abs(z)), np.log1p(np.exp(-np.abs(z))))


# -- the logistic function (the hidden layers' sigmoid) -----------------------------------
# complex128: σ(x) as the generic sigmoid (E 2u, 1 + E, the quotient, the product) within
# 5u plus the series' u/4; Im two products more, 7u; complex64: one rounding, u + u/8
SIGMOID_TOL = {np.complex128: (5.25, 7.0), np.complex64: (1.13, 1.13)}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("path", ["tiny", "small"])
def test_sigmoid_on_each_path_against_mpmath(dtype, path):
    tiny, small = FUSED_PATHS[np.dtype(dtype)]
    bound, below = (tiny, tiny * 1e-8) if path == "tiny" else (small, tiny)
    x = np.concatenate([RNG.normal(size=150) * 8, [0.0, -0.0, 1e-300, -1e-300, 36.0, -36.0,
                                                   80.0, -80.0, 700.0, -700.0]])
    if dtype == np.complex64:  # σ(−x) below float32's range rounds to 0 absolutely
        x = np.clip(x, -80, 80)
    z = (x + 1j * _imaginary_parts(bound, below, len(x))).astype(dtype)
    values = complex_sigmoid(z)
    assert values is not None and values.dtype == dtype
    tol_re, tol_im = SIGMOID_TOL[dtype]
    with mpmath.workdps(60):
        for v, zi in zip(values, z):
            exact = 1 / (1 + mpmath.exp(-mpmath.mpc(float(zi.real), float(zi.imag))))
            assert _gap_in_u(v.real, exact.real, abs(exact.real), dtype) <= tol_re, zi
            if zi.imag != 0:
                assert _gap_in_u(v.imag, exact.imag, abs(exact.imag), dtype) <= tol_im, zi


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_off_the_fast_paths_is_the_generic_formula(dtype):
    ns = number_system(np.dtype(dtype).name)
    _, small = FUSED_PATHS[np.dtype(dtype)]
    cases = [[1 + 2 * small * 1j, -1 + 0j], [np.nan + 0j, 1 + 0j], [np.inf + 1e-20j],
             [-np.inf + 1e-20j, 1 + 0j], [1 + np.inf * 1j]]
    with np.errstate(all="ignore"):
        for case in cases:
            z = np.array(case, dtype=dtype)
            assert complex_sigmoid(z) is None
            np.testing.assert_array_equal(ns.sigmoid(z), NumberSystem.sigmoid(ns, z))
    assert complex_sigmoid(np.array([1 + 1e-20j], dtype=np.clongdouble)) is None


# -- shared rows and sums --------------------------------------------------------------------
@pytest.mark.parametrize("path_scale", [1e-12, 1e-6])
def test_rows_with_equal_real_parts_give_the_row_by_row_result_bit_for_bit(path_scale):
    """The complex step's stacks of perturbed outputs: every row the base point's real
    parts, other imaginary parts. Shared evaluation is the same arithmetic: same bits."""
    x0 = RNG.normal(size=(6, 4)) * 5
    z = (np.broadcast_to(x0, (5, 6, 4)) + 1j * RNG.normal(size=(5, 6, 4)) * path_scale
         ).astype(np.complex128)
    y = np.eye(4)[RNG.integers(0, 4, 6)].astype(np.complex128)
    stacked = complex_sigmoid_cross_entropy(z, y)
    alone = np.stack([complex_sigmoid_cross_entropy(row[None], y)[0] for row in z])
    np.testing.assert_array_equal(stacked, alone)
    # the next stack with the same real parts reuses the remembered row; other targets or
    # the other path must not
    for scale, targets in ((path_scale, y), (path_scale, y[::-1].copy()),
                           (1e-12 if path_scale > 1e-9 else 1e-6, y)):
        again = z.real + 1j * RNG.normal(size=z.shape) * scale
        stacked = complex_sigmoid_cross_entropy(again, targets)
        alone = np.stack([complex_sigmoid_cross_entropy(row[None], targets)[0]
                          for row in again])
        np.testing.assert_array_equal(stacked, alone)
    z[3, 2, 1] += 1e-9  # one real part differs: nothing is shared, the rows still agree
    stacked = complex_sigmoid_cross_entropy(z, y)
    alone = np.stack([complex_sigmoid_cross_entropy(row[None], y)[0] for row in z])
    np.testing.assert_array_equal(stacked, alone)


@pytest.mark.parametrize("dtype", DTYPES)
def test_the_summed_entries_match_numpys_sum_of_the_entries(dtype):
    ns = number_system(np.dtype(dtype).name)
    x0 = RNG.normal(size=(8, 3)) * 4
    for z in [(np.broadcast_to(x0, (4, 8, 3)) + 1j * RNG.normal(size=(4, 8, 3)) * 1e-10),
              (RNG.normal(size=(4, 8, 3)) * 4 + 1j * RNG.normal(size=(4, 8, 3)) * 1e-5),
              (x0 + 1j * RNG.normal(size=(8, 3)) * 1e-10)]:
        z = z.astype(dtype)
        y = RNG.uniform(0, 1, (8, 3)).astype(dtype)
        entries = complex_sigmoid_cross_entropy(z, y)
        summed = ns.sigmoid_cross_entropy_sum(z, y)
        assert np.shape(summed) == z.shape[:-2]
        np.testing.assert_array_equal(summed, complex_sigmoid_cross_entropy(z, y, summed=True))
        # 24 entries: each sum's rounding is at most 24u of Σ|parts|, beside the entries'
        reference = np.sum(entries.astype(np.complex128), axis=(-2, -1))
        scale_re = np.sum(np.abs(entries.real.astype(np.float64)), axis=(-2, -1))
        scale_im = np.sum(np.abs(entries.imag.astype(np.float64)), axis=(-2, -1))
        u = _u(dtype)
        assert np.all(np.abs(summed.real - reference.real) <= 25 * u * scale_re)
        assert np.all(np.abs(summed.imag - reference.imag) <= 25 * u * scale_im)
    generic = NumberSystem.sigmoid_cross_entropy_sum(ns, z, y)
    assert abs(summed - generic) <= 50 * _u(dtype) * (scale_re + scale_im)
