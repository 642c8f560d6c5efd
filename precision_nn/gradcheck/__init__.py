"""Gradient checks that say why: tolerances from error estimates, findings for usual bugs.

`check_gradient` compares an analytic gradient with a numerical reference whose own
error is known and diagnoses a disagreement (`Finding` kinds in `KINDS`); `taylor_test`
checks that the first-order Taylor remainder shrinks as h², with no tolerance at all.
"""

from precision_nn.gradcheck.check import METHODS, check_gradient
from precision_nn.gradcheck.findings import KINDS, Finding
from precision_nn.gradcheck.network_check import check_network_gradient
from precision_nn.gradcheck.report import GradientReport
from precision_nn.gradcheck.taylor import TaylorReport, taylor_test

__all__ = [
           "KINDS",
           "METHODS",
           "Finding",
           "GradientReport",
           "TaylorReport",
           "check_gradient",
           "check_network_gradient",
           "taylor_test",
]
