"""Finite-difference weights, exact, against the published tables and the defining moments."""

from fractions import Fraction as F

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from precision_nn.derivatives import fornberg_weights, stencil

# Fornberg (1988), Math. Comp. 51, Table 1: first derivative, centered, accuracy 2..8
# (offsets -p/2..p/2; the zero weight at the centre is dropped by `stencil`).
CENTRAL_TABLE = {
    2: [F(-1, 2), F(1, 2)],
    4: [F(1, 12), F(-2, 3), F(2, 3), F(-1, 12)],
    6: [F(-1, 60), F(3, 20), F(-3, 4), F(3, 4), F(-3, 20), F(1, 60)],
    8: [F(1, 280), F(-4, 105), F(1, 5), F(-4, 5), F(4, 5), F(-1, 5), F(4, 105), F(-1, 280)],
}
# Fornberg (1988), Table 3: first derivative, one-sided at offsets 0..p
FORWARD_TABLE = {
    1: [F(-1), F(1)],
    2: [F(-3, 2), F(2), F(-1, 2)],
    3: [F(-11, 6), F(3), F(-3, 2), F(1, 3)],
    4: [F(-25, 12), F(4), F(-3), F(4, 3), F(-1, 4)],
    5: [F(-137, 60), F(5), F(-5), F(10, 3), F(-5, 4), F(1, 5)],
    6: [F(-49, 20), F(6), F(-15, 2), F(20, 3), F(-15, 4), F(6, 5), F(-1, 6)],
    7: [F(-363, 140), F(7), F(-21, 2), F(35, 3), F(-35, 4), F(21, 5), F(-7, 6), F(1, 7)],
    8: [F(-761, 280), F(8), F(-14), F(56, 3), F(-35, 2), F(56, 5), F(-14, 3), F(8, 7),
        F(-1, 8)],
}
# Table 1 again, second derivative (exercises the recursion beyond the first row)
SECOND_DERIVATIVE_TABLE = {
    (-1, 0, 1): [F(1), F(-2), F(1)],
    (-2, -1, 0, 1, 2): [F(-1, 12), F(4, 3), F(-5, 2), F(4, 3), F(-1, 12)],
}


@pytest.mark.parametrize("order", sorted(CENTRAL_TABLE), ids=lambda p: f"p{p}")
def test_central_weights_match_fornberg_table_1(order):
    rule = stencil("central", order)
    assert list(rule.weights) == CENTRAL_TABLE[order]
    assert list(rule.offsets) == [s for s in range(-order // 2, order // 2 + 1) if s != 0]


@pytest.mark.parametrize("order", sorted(FORWARD_TABLE), ids=lambda p: f"p{p}")
def test_one_sided_weights_match_fornberg_table_3(order):
    assert list(stencil("forward", order).weights) == FORWARD_TABLE[order]
    assert list(stencil("forward", order).offsets) == list(range(order + 1))
    # backward = forward mirrored: f'(x) ≈ -Σ w_j f(x - j h)/h
    backward = stencil("backward", order)
    assert list(backward.offsets) == [-s for s in range(order, -1, -1)]
    assert list(backward.weights) == [-w for w in reversed(FORWARD_TABLE[order])]


@pytest.mark.parametrize("nodes", sorted(SECOND_DERIVATIVE_TABLE), ids=str)
def test_second_derivative_weights_match_table(nodes):
    assert list(fornberg_weights(nodes, 2)) == SECOND_DERIVATIVE_TABLE[nodes]


@pytest.mark.parametrize(("method", "order", "constant"), [
    # Taylor: (f(x+h) - f(x-h))/2h = f' + h²f'''/6; 5-point: f' - h⁴f⁽⁵⁾/30;
    # forward (f(x+h) - f(x))/h = f' + h f''/2
    ("central", 2, F(1, 6)), ("central", 4, F(-1, 30)), ("forward", 1, F(1, 2)),
    ("backward", 1, F(-1, 2)),
])
def test_truncation_constant_is_the_taylor_coefficient(method, order, constant):
    assert stencil(method, order).truncation_constant == constant


@settings(max_examples=40, deadline=None)
@given(st.lists(st.fractions(min_value=-4, max_value=4, max_denominator=16),
                min_size=2, max_size=7, unique=True),
       st.integers(min_value=1, max_value=3))
def test_weights_reproduce_derivatives_of_monomials_exactly(nodes, m):
    """On any grid the weights of the m-th derivative satisfy the moment conditions
    Σ w_j s_j^k = k! δ_km for k < n: they differentiate polynomials of degree < n exactly."""
    if m >= len(nodes):
        m = len(nodes) - 1
    weights = fornberg_weights(nodes, m)
    for k in range(len(nodes)):
        moment = sum(w * s**k for w, s in zip(weights, nodes))
        assert moment == (F(1) * _factorial(m) if k == m else 0)


def _factorial(m: int) -> int:
    return 1 if m <= 1 else m * _factorial(m - 1)


def test_unknown_stencil_names_the_allowed_orders():
    with pytest.raises(ValueError, match=r"no 'central' stencil of order 3; orders are \(2, 4"):
        stencil("central", 3)


def test_fornberg_needs_distinct_nodes():
    with pytest.raises(ValueError, match="distinct nodes"):
        fornberg_weights([0, 1, 1])
