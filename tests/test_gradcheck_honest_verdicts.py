"""Verdicts that must not claim more than their evidence shows (red-team review of
2026-12): each test builds its own buggy gradient and fails on the behaviour it guards."""

import numpy as np
import pytest

from precision_nn.gradcheck import check_gradient

RNG = np.random.default_rng(20261202)


# -- an explicit step never takes the blame for a bug the h -> 0 limit shows ---------------
def _tanh_cubic(x):
    return np.sum(np.tanh(x) * x ** 3)


def _tanh_cubic_grad(x):
    return (1 - np.tanh(x) ** 2) * x ** 3 + 3 * np.tanh(x) * x ** 2


@pytest.mark.parametrize("h", [1e-11, 0.2])
def test_explicit_step_does_not_hide_a_wrong_coordinate(h):
    x = RNG.uniform(0.5, 1.5, size=7)

    def grad(x):
        g = _tanh_cubic_grad(x)
        g[3] *= -0.5  # one wrong coordinate
        return g

    report = check_gradient(_tanh_cubic, grad, x, method="central", h=h)
    assert not report.passed
    step = [f for f in report.findings if f.kind.startswith("step_too")]
    assert step, report  # the step is really off at the other coordinates
    assert 3 not in step[0].evidence["coordinates"]
    assert "6 of 7" in step[0].message or "at these" in step[0].message
    # the bug is named, against the h -> 0 limit
    bug = [f for f in report.findings if f.kind in ("mismatch", "localized")]
    assert bug and 3 in bug[0].evidence.get("coordinates", bug[0].evidence.get("entries"))


def test_step_finding_on_a_correct_gradient_speaks_of_every_coordinate():
    x = RNG.uniform(0.5, 1.5, size=5)
    report = check_gradient(_tanh_cubic, _tanh_cubic_grad, x, method="central", h=0.2)
    assert report.kinds == ("step_too_large",)
    assert "at every coordinate" in report.findings[0].message
