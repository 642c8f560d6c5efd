"""The sigmoid cross-entropy of rank-one updates of one logit matrix, summed
(`numbers/ieee_rank_one.py`, `Loss.from_rank_one`), against mpmath at 60 digits, against
the stacks formed and summed by the generic default, and inside the network's perturbed
losses against full forward passes.

Tolerances, in u = 2^-p of the result's parts, relative to the sum of the entries'
moduli (a sum of m·n entries may cancel, its rounding cannot be relative to itself):
- complex128: each entry within `ieee_fused`'s bounds (Re 5.5u, Im 6.5u of |c·Im z| +
  |Im f|), plus numpy's pairwise float64 sum, ``⌈log2 N⌉·u`` of the N moduli, plus one
  u for the corrections' sum and the final assembly;
- complex64: float64 work (its error ~2^-45 relative) rounded once: ``u + u/8``.
"""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest

from precision_nn.losses import LOSSES
from precision_nn.network import MLP
from precision_nn.numbers import number_system
from precision_nn.numbers.base import NumberSystem
from precision_nn.numbers.composite import STACK_BYTES, rank_one_stacks
from precision_nn.numbers.ieee_fused import FUSED_PATHS, complex_sigmoid_cross_entropy
from precision_nn.numbers.ieee_rank_one import complex_sigmoid_cross_entropy_rank_one
from precision_nn.perturbation import NetworkEvaluator

RNG = np.random.default_rng(20261202)
DTYPES = [np.complex128, np.complex64]
ENTRY_TOL = {np.complex128: (5.5, 6.5), np.complex64: (1.13, 1.13)}


def _u(dtype) -> float:
    return float(np.finfo(np.dtype(dtype).type(0).real.dtype).eps) / 2


def _case(dtype, m=7, n=4, R=6, *, im_scale=1e-20, re_scale=0.0):
    """Base logits with entries near 0 (where small real moves change Re z'), targets
    one-hot and soft, u with imaginary parts of `im_scale` and real parts of `re_scale`."""
    x = RNG.normal(size=(m, n)) * 3
    x.flat[:4] = [0.0, 1e-17, -3e-17, 40.0]
    z = x.astype(dtype)
    y = np.where(RNG.random((m, n)) < 0.5, RNG.integers(0, 2, (m, n)),
                 RNG.uniform(0, 1, (m, n))).astype(dtype)
    u = (RNG.normal(size=(R, m)) * re_scale + 1j * RNG.normal(size=(R, m)) * im_scale)
    u = u.astype(dtype)
    u.real[::2] = 0  # every other perturbation moves imaginary parts only
    v = RNG.normal(size=(R, n)).astype(dtype)
    return z, y, u, v


def _exact_sums(z, y, u, v):
    """Σ of the exact entries of z + u_r ⊗ v_r (from the float parts of the formed z', as
    the fused evaluation forms them), and the moduli sums of their parts."""
    out = []
    with mpmath.workdps(60):
        for r in range(len(u)):
            total, re_scale, im_scale = mpmath.mpc(0), mpmath.mpf(0), mpmath.mpf(0)
            for (a, b), yi in np.ndenumerate(y.real):
                x = float(z.real[a, b]) + float(u.real[r, a]) * float(v.real[r, b])
                eta = float(u.imag[r, a]) * float(v.real[r, b])
                zz = mpmath.mpc(x, eta)
                entry = (yi * mpmath.log1p(mpmath.exp(-zz)) +
                         (1 - mpmath.mpf(float(yi))) * mpmath.log1p(mpmath.exp(zz)))
                total += entry
                re_scale += abs(entry.real)
                im_scale += abs(entry.imag) + 2 * abs(mpmath.mpf(eta))  # ≥ |cη| + |Im f|
            out.append((total, re_scale, im_scale))
    return out


def _within(value, exact, scale, tol, u) -> bool:
    return abs(mpmath.mpf(float(value)) - exact) <= tol * u * scale


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("im_scale, re_scale", [(1e-20, 0.0), (1e-20, 1e-15),
                                                (2e-6, 1e-15), (1e-20, 1e-3)],
                         ids=["tiny", "tiny-moved", "small-moved", "moved-far"])
def test_sums_against_mpmath(dtype, im_scale, re_scale):
    if dtype == np.complex64 and im_scale > 1e-6:
        im_scale = 1e-3  # complex64's small path: |Im| up to 2^-7
    z, y, u, v = _case(dtype, im_scale=im_scale, re_scale=re_scale)
    values = complex_sigmoid_cross_entropy_rank_one(z, y, u, v)
    assert values is not None and values.dtype == dtype and values.shape == (len(u),)
    u_ = _u(dtype)
    tol_re, tol_im = ENTRY_TOL[dtype]
    if dtype == np.complex128:
        extra = math.ceil(math.log2(z.size)) + 1
        tol_re, tol_im = tol_re + extra, tol_im + extra
    for value, (exact, re_scale_, im_scale_) in zip(values, _exact_sums(z, y, u, v)):
        assert _within(value.real, exact.real, re_scale_, tol_re, u_), (value, exact)
        assert _within(value.imag, exact.imag, im_scale_, tol_im, u_), (value, exact)


@pytest.mark.parametrize("dtype", DTYPES)
def test_moved_real_parts_are_corrected_entry_by_entry(dtype):
    """Real moves below half an ulp of most X leave them, change a few (the entries near
    0): the sums agree with the stacks formed and evaluated in full by the fused
    entries, which see every moved real part."""
    z, y, u, v = _case(dtype, m=9, n=5, R=8, im_scale=1e-20,
                       re_scale=1e-17 if dtype == np.complex128 else 1e-8)
    stacks = z + u[:, :, None] * v[:, None, :]
    moved = stacks.real != z.real
    assert 0 < moved.sum() < moved.size // 4  # some entries move, most do not
    fused = complex_sigmoid_cross_entropy_rank_one(z, y, u, v)
    formed = complex_sigmoid_cross_entropy(stacks, y, summed=True)
    u_ = _u(dtype)
    entries = complex_sigmoid_cross_entropy(stacks, y).astype(np.complex128)
    scale_re = np.sum(np.abs(entries.real), axis=(1, 2))
    scale_im = np.sum(np.abs(entries.imag), axis=(1, 2)) + 2 * np.sum(
        np.abs(stacks.imag.astype(np.float64)), axis=(1, 2))
    assert np.all(np.abs(fused.real - formed.real) <= 32 * u_ * scale_re)
    assert np.all(np.abs(fused.imag - formed.imag) <= 32 * u_ * scale_im)
    ns = number_system(np.dtype(dtype).name)
    np.testing.assert_array_equal(ns.sigmoid_cross_entropy_rank_one_sum(z, y, u, v), fused)


@pytest.mark.parametrize("dtype", DTYPES)
def test_the_system_hook_matches_the_generic_default(dtype):
    ns = number_system(np.dtype(dtype).name)
    z, y, u, v = _case(dtype, m=16, n=10, R=40, im_scale=1e-12, re_scale=1e-16)
    fused = ns.sigmoid_cross_entropy_rank_one_sum(z, y, u, v)
    generic = NumberSystem.sigmoid_cross_entropy_rank_one_sum(ns, z, y, u, v)
    stacks = z + u[:, :, None] * v[:, None, :]
    entries = NumberSystem.sigmoid_cross_entropy(ns, stacks, y).astype(np.complex128)
    u_ = _u(dtype)
    assert np.all(np.abs(fused.real - generic.real) <=
                  32 * u_ * np.sum(np.abs(entries.real), axis=(1, 2)))
    assert np.all(np.abs(fused.imag - generic.imag) <=
                  32 * u_ * np.sum(np.abs(entries.imag), axis=(1, 2)))


def test_the_remembered_base_follows_the_base_and_the_targets():
    """One gradient's calls share a base; another base or other targets must not reuse
    its tables."""
    ns = number_system("complex128")
    z, y, u, v = _case(np.complex128, im_scale=1e-20, re_scale=1e-15)
    other = (z.real + 0.5).astype(np.complex128)
    for base, targets in ((z, y), (other, y), (z, y[::-1].copy()), (z, y)):
        fused = complex_sigmoid_cross_entropy_rank_one(base, targets, u, v)
        generic = NumberSystem.sigmoid_cross_entropy_rank_one_sum(ns, base, targets, u, v)
        assert np.all(np.abs(fused - generic) <= 1e-13 * np.abs(generic))


@pytest.mark.parametrize("dtype", DTYPES)
def test_off_the_fast_paths_the_stacks_are_formed(dtype):
    ns = number_system(np.dtype(dtype).name)
    _, small = FUSED_PATHS[np.dtype(dtype)]
    z, y, u, v = _case(dtype, im_scale=1e-20)
    with np.errstate(invalid="ignore"):
        infinite = u * np.inf
    cases = [(z + 1e-20j, y, u, v),                      # a complex base
             (z, y, u, v + 1e-20j),                      # complex weights
             (z, y + 1e-20j, u, v),                      # complex targets
             (z, y, u + 4 * small * 1j, v),              # imaginary parts off the paths
             (np.where(z.real > 1, np.nan, z), y, u, v),  # a non-finite base
             (z, y, infinite, v),
             (z, y.real, u, v),                          # mixed dtypes
             (z[None], y, u, v)]                         # a stack as the base
    with np.errstate(all="ignore"):
        for case in cases:
            assert complex_sigmoid_cross_entropy_rank_one(*case) is None
            np.testing.assert_array_equal(
                ns.sigmoid_cross_entropy_rank_one_sum(*case),
                NumberSystem.sigmoid_cross_entropy_rank_one_sum(ns, *case))


@pytest.mark.parametrize("spec", ["float64", "mpf:20"])
def test_stacks_are_formed_in_pieces_with_the_same_values(spec):
    ns = number_system(spec)
    m, n = 6, 5
    z = ns.asarray(RNG.normal(size=(m, n)))
    rows = STACK_BYTES // (z.dtype.itemsize * m * n)
    R = 2 * rows + 3  # three pieces
    u, v = ns.asarray(RNG.normal(size=(R, m))), ns.asarray(RNG.normal(size=(R, n)))
    calls = []

    def evaluate(stack):
        calls.append(len(stack))
        return np.sum(stack * stack, axis=(1, 2))

    pieces = rank_one_stacks(z, u, v, evaluate)
    whole = evaluate(z + u[:, :, None] * v[:, None, :])
    assert calls[:3] == [rows, rows, 3]
    np.testing.assert_array_equal(pieces, whole)


@pytest.mark.parametrize("loss", ["softmax_cross_entropy", "squared_error", "cross_entropy"])
def test_every_loss_of_rank_one_logits_is_its_loss_of_the_formed_stacks(loss):
    ns = number_system("float64")
    z, y, u, v = (a.real.copy() for a in _case(np.complex128, re_scale=0.1))
    y = np.eye(z.shape[1])[RNG.integers(0, z.shape[1], z.shape[0])]
    stacks = z + u[:, :, None] * v[:, None, :]
    fn = LOSSES[loss]
    np.testing.assert_allclose(fn.from_rank_one(ns, z, y, u, v), fn.from_logits(ns, stacks, y),
                               rtol=1e-14)


# -- inside the network ----------------------------------------------------------------
@pytest.mark.parametrize("spec", ["complex128", "complex64"])
@pytest.mark.parametrize("step", [2.0**-53, 2.0**-26, 2.0**-10])
def test_complex_steps_of_every_weight_match_full_forward_passes(spec, step):
    """A complex step of every weight, and of every weight together with a real move (the
    stacks whose real parts differ from the base), against the loss of the full stack."""
    net = MLP([5, 7, 4], numbers=spec, seed=3)
    ns = net.numbers
    X = ns.asarray(RNG.normal(size=(6, 5)))
    Y = ns.asarray(np.eye(4)[RNG.integers(0, 4, 6)])
    ev = NetworkEvaluator(net, X, Y, net.params)
    coords = np.arange(net.n_params)
    moves = RNG.normal(size=net.n_params) * 1e-3
    for real in (0.0, 1.0):
        values = net.params + ns.asarray(real * moves + 1j * step)
        fast = ev.at_shifts(coords, values)
        stack = np.tile(net.params, (net.n_params, 1))
        stack[coords, coords] = values
        slow = net.loss(X, Y, params=stack)
        u_ = ns.unit_roundoff
        assert np.max(np.abs(fast.real - slow.real)) <= 64 * u_ * np.max(np.abs(slow.real))
        assert np.max(np.abs(fast.imag - slow.imag)) <= 64 * u_ * np.max(np.abs(slow.imag))
