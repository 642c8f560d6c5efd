"""f that cancels (its value far below its terms) is no evidence of a lower precision.

At a point where ``f = Σ terms`` cancels to (nearly) 0, one evaluation rounds by
~u·Σ|terms| while ``u·|f|`` is ~0: noise that cancellation explains must not be called
``precision_loss``, must not call the complex step off, and must not hide a systematic
gap (a scale bug) from the pattern detectors. A true lower precision (float32 inside a
float64 f) must still be named. The gradients are closed forms (independent references).
"""

from __future__ import annotations

import numpy as np
import pytest

from precision_nn.derivatives import gradient
from precision_nn.gradcheck import check_gradient
from precision_nn.gradcheck.decisions import cancels, is_lossy, with_terms
from precision_nn.gradcheck.evidence import NoiseProbe
from precision_nn.gradcheck.probes import noise_probe
from precision_nn.numbers import number_system
from tests.cancelling_functions import CANCELLING

# the kinds that accuse the gradient code (a pass, precision_loss or "undecidable" do not)
BUG_KINDS = {"sign", "scale", "layout", "regularization", "localized", "mismatch", "kink",
             "step_too_large", "step_too_small"}



@pytest.mark.parametrize("name", CANCELLING)
@pytest.mark.parametrize("method", ["auto", "complex_step"])
def test_a_correct_gradient_of_a_cancelling_f_passes(name, method):
    f, g, x = CANCELLING[name]
    assert abs(f(x)) <= 1e-14  # it does cancel: |f| is a few ulps of its O(1) terms at most
    r = check_gradient(f, g, x, method=method)
    assert r.passed, (name, r.kinds)
    assert "precision_loss" not in r.kinds
    assert "noisier than float64 allows" not in r.reference_name


@pytest.mark.parametrize("name", CANCELLING)
@pytest.mark.parametrize("eps", [1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-9])
def test_a_scale_bug_in_a_cancelling_f_is_named_scale(name, eps):
    # the complex step (or Richardson) at these points is accurate to ~1e-14 relative, so
    # a relative bug of 1e-9 is 1e5 of its error bar: a decidable gap, named by its pattern
    f, g, x = CANCELLING[name]
    r = check_gradient(f, lambda x: g(x) * (1 + eps), x)
    assert not r.passed
    assert "scale" in r.kinds, (name, eps, r.kinds)
    assert "precision_loss" not in r.kinds


@pytest.mark.parametrize("name", CANCELLING)
def test_the_complex_step_is_not_called_off_where_f_cancels(name):
    # its real cross-check allows the rounding of f's terms, not only u·|f| = 0
    f, g, x = CANCELLING[name]
    d = gradient(f, x, method="complex_step")
    assert "disagrees" not in d.note and "Richardson" not in d.note, d.note
    # closed form; the bar must hold it, and be tight (≤ 1e-13: 8u of terms ≤ 8)
    assert np.all(np.abs(d.value - g(x)) <= d.error)
    assert np.max(d.error) < 1e-13


@pytest.mark.filterwarnings("ignore::numpy.exceptions.ComplexWarning")
def test_a_float32_f_inside_a_float64_check_is_still_precision_loss():
    # not cancelling: f ~ 3, its float32 rounding ~1e-7 is 1e9 times u·|f| and 1e8 times
    # u times the terms the gradient shows (≤ 1·(1 + 2))
    x = np.array([0.3, 0.5, 1.1, 1.4, 2.0, 0.8])
    f = lambda x: np.float64(np.sum(np.sin(np.asarray(x, dtype=np.float32))))
    r = check_gradient(f, np.cos, x)
    assert "precision_loss" in r.kinds, r.kinds


def _probe(sigma, expected, terms=0.0):
    return NoiseProbe(sigma, expected, 1e-6, "float64", sigma_fine=sigma, terms=terms)


def test_noise_within_the_terms_rounding_is_cancellation_not_loss():
    # σ = 1e-16 while u·|f| = 1e-25: noisier than |f| allows, within u·terms (u·1.2)
    u = 2.0 ** -53
    probe = with_terms(_probe(1e-16, 1e-25), np.array([0.9, -0.4]), np.array([0.3, 2.0]), u)
    assert probe.terms == pytest.approx(u * 0.4 * 3.0)
    assert not is_lossy(probe) and cancels(probe)
    # 1e-8 is 1e8 times that: a lower precision, which cancellation cannot explain
    loud = with_terms(_probe(1e-8, 1e-25), np.array([0.9, -0.4]), np.array([0.3, 2.0]), u)
    assert is_lossy(loud) and not cancels(loud)
    # nothing measured about the terms: only u·|f| counts (the former rule)
    assert is_lossy(_probe(1e-16, 1e-25)) and not cancels(_probe(1e-16, 1e-25))


@pytest.mark.filterwarnings("ignore::numpy.exceptions.ComplexWarning")
def test_a_float32_staircase_that_aliases_with_the_noise_grid_is_no_bug():
    # at this x, f's float32 value moves by exactly 2 of its ulps per offset of the first
    # noise grid, so its fourth differences there are exactly 0; before the second,
    # incommensurate grid the staircase went unseen, Richardson restarted "below kinks"
    # onto f(x + h) == f(x − h) and reported 0 ± 2e-8 against a correct 0.17: `mismatch`
    x = np.array([0.3, 0.5, 1.1, 1.4, 2.0, 0.8])
    f = lambda x: np.float64(np.sum(np.sin(np.asarray(x, dtype=np.float32))))
    r = check_gradient(f, np.cos, x)
    assert not set(r.kinds) & BUG_KINDS, r.kinds
    # the staircase is seen: σ ~ float32's rounding of |f| ≈ 4, ~1e9 times float64's
    probe = noise_probe(f, x, number_system("float64"))
    assert probe.sigma > 1e6 * probe.expected
