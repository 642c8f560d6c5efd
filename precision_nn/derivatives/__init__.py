"""Numerical derivatives with error estimates (see `derivative` and `gradient`)."""

from precision_nn.derivatives.estimate import Estimate

__all__ = ["Estimate"]
