"""`taylor_test` on f that rounds by more than u·|f|: its floor is the measured noise.

An f whose large terms cancel (its value far below them), or one that carries noise above
its system's rounding, leaves remainders at ~u·terms or ~σ, far above the assumed floor
u·(|f(x)| + |f(x + hv)|); read as orders they failed correct gradients (before: all 30
cancelling cases and 25 of 30 noisy ones of the corpus below). The floor is now at least
twice the noise σ that `probes.noise_probe` measures and that persists at its fine
spacing. Gradients are the corpus's closed forms; a wrong one must still fail.
"""

from __future__ import annotations

import numpy as np
import pytest

from precision_nn.gradcheck import taylor_test
from tests.correct_functions import cancellation, noisy


@pytest.mark.parametrize("family", [cancellation, noisy], ids=["cancellation", "noisy"])
def test_correct_gradients_of_rounding_heavy_f_are_not_failed(family):
    failed = []
    for seed in range(10):
        case = family(np.random.default_rng(seed))
        report = taylor_test(case.f, case.grad, case.x)
        if report.decided and not report.passed:
            failed.append((seed, case.family, report.eliminated_order))
    assert not failed, failed


@pytest.mark.parametrize("family", [cancellation, noisy], ids=["cancellation", "noisy"])
def test_a_wrong_gradient_still_fails_above_the_noise(family):
    """A 1% error on every entry fails wherever it rises above the noise floor (the order
    drops to 1), and where every remainder stays within its band over the noise (huge
    cancelling terms) the test says undecided: never a pass."""
    for seed in range(5):
        case = family(np.random.default_rng(seed))
        report = taylor_test(case.f, lambda p, g=case.grad: 1.01 * g(p), case.x)
        assert not (report.decided and report.passed), (seed, str(report).splitlines()[0])


def test_steps_above_the_length_scale_do_not_fail_a_correct_gradient():
    """log-sum-exp of logits ~1e2..1e7: at steps of 0.1·max|x| the max switches (order
    1, pre-asymptotic), below the length scale f is linear and the remainders sit at the
    floor. Before: 11 of these 30 correct cases failed. The floor bounds the error term
    far below what the order-1 remainders would need, so they are not the gradient's.
    (Seed 21 still fails: below its length scale the remainders sit at ~300 times the
    assumed floor u·|f| at |x| ~ 1e5, and their orders are erratic; a known limitation.)"""
    from tests.correct_functions import huge_logits

    failed = []
    for seed in range(30):
        case = huge_logits(np.random.default_rng(seed))
        report = taylor_test(case.f, case.grad, case.x)
        if report.decided and not report.passed:
            failed.append(seed)
    assert failed in ([], [21]), failed
    for seed in range(10):  # a 1% error keeps e·h above the floor at every step: it fails
        case = huge_logits(np.random.default_rng(seed))
        report = taylor_test(case.f, lambda p, g=case.grad: 1.01 * g(p), case.x)
        assert report.decided and not report.passed, (seed, str(report).splitlines()[0])
