"""precision_nn: arbitrary-precision numerical analysis of neural-network gradients."""

from precision_nn.numbers import NumberSystem, number_system

__all__ = ["NumberSystem", "number_system"]
