"""precision_nn: arbitrary-precision numerical analysis of neural-network gradients.

>>> import numpy as np
>>> import precision_nn as pnn
>>> float(pnn.derivative(np.exp, 0.0, method="complex_step").value)
1.0
"""

from precision_nn.derivatives import Estimate, derivative, gradient
from precision_nn.gradcheck import Finding, GradientReport, check_gradient, taylor_test
from precision_nn.network import MLP
from precision_nn.numbers import NumberSystem, number_system

__all__ = ["MLP", "Estimate", "Finding", "GradientReport", "NumberSystem", "check_gradient",
           "derivative", "gradient", "number_system", "taylor_test"]
