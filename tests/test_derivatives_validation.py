"""Every error `derivative`, `gradient` and `estimate_from` raise, each by its message."""

import numpy as np
import pytest

from precision_nn.derivatives import derivative, estimate_from, gradient
from precision_nn.numbers import number_system


def test_unknown_method():
    with pytest.raises(ValueError, match=r"`method` must be one of \['backward', 'central', "
                                         r"'complex_step', 'forward', 'richardson'\]; "
                                         r"got 'centered'"):
        derivative(np.exp, 1.0, method="centered")


@pytest.mark.parametrize(("method", "order", "pattern"), [
    ("central", 3, r"`order` must be one of \(2, 4, 6, 8\) for method='central'; got 3"),
    ("forward", 9, r"`order` must be one of \(1, 2, .*8\) for method='forward'; got 9"),
    ("central", True, r"got True"),
    ("richardson", 4, r"for method='richardson' \(its order is fixed\); got 4"),
    ("complex_step", 1, r"for method='complex_step' \(its order is fixed\); got 1"),
])
def test_bad_order(method, order, pattern):
    with pytest.raises(ValueError, match=pattern):
        derivative(np.exp, 1.0, method=method, order=order)


@pytest.mark.parametrize("h", [0.0, -1e-3, float("nan"), float("inf")])
def test_step_must_be_positive_and_finite(h):
    with pytest.raises(ValueError, match=r"`h` must be positive and finite; got .*h=None"):
        derivative(np.exp, 1.0, h=h)


def test_step_must_be_a_real_number():
    with pytest.raises(ValueError, match=r"`h` must be a positive real number of 'float64'"):
        derivative(np.exp, 1.0, h="tiny")


def test_step_below_the_spacing_of_x():
    with pytest.raises(ValueError, match=r"`h` is below the spacing .* x \+ h == x in "
                                         r"'float64'; use a larger `h`"):
        derivative(np.exp, 1e8, h=1e-12)


def test_step_array_of_the_wrong_shape():
    with pytest.raises(ValueError, match=r"`h` must be a scalar or have the shape of `x` "
                                         r"\(3,\); got shape \(2,\)"):
        gradient(lambda v: np.sum(v), np.zeros(3), h=[1e-3, 1e-3])


def test_unrepresentable_x():
    with pytest.raises(ValueError, match=r"`x` cannot be represented in 'float32': .*1e\+300"):
        derivative(np.exp, 1e300, numbers="float32")


def test_non_finite_x():
    with pytest.raises(ValueError, match=r"`x` must be finite; got nan"):
        derivative(np.exp, float("nan"))


def test_x_of_unknown_system_asks_for_numbers():
    with pytest.raises(TypeError, match=r"cannot tell the number system of `x` \(str\).*"
                                        r"Pass `numbers=`"):
        derivative(np.exp, "0.1")


def test_derivative_needs_a_scalar_and_gradient_an_array():
    with pytest.raises(ValueError, match=r"`x` must be a scalar for `derivative`; got shape "
                                         r"\(2,\)\. Use `gradient`"):
        derivative(np.exp, [1.0, 2.0])
    with pytest.raises(ValueError, match=r"`x` must be a non-empty array for `gradient`; got "
                                         r"shape \(\)\. Use `derivative`"):
        gradient(np.exp, 1.0)


def test_f_must_be_callable():
    with pytest.raises(TypeError, match=r"`f` must be callable; got float"):
        derivative(1.0, 1.0)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_f_returning_nan_or_inf(bad):
    with pytest.raises(ValueError, match=r"`f` returned a non-finite value .* leaves the "
                                         r"domain of `f` or `f` overflows"):
        derivative(lambda x: x * bad, 1.0, h=1e-3)


def test_f_leaving_its_domain_with_an_explicit_step():
    with pytest.raises(ValueError, match=r"non-finite value"):
        derivative(np.log, 0.01, h=0.1)


def test_f_returning_a_vector():
    with pytest.raises(ValueError, match=r"`f` must return a scalar for each point; it "
                                         r"returned shape \(2,\)"):
        gradient(lambda v: v * 2, np.array([1.0, 2.0]))


def test_f_returning_binary_floats_for_a_multiprecision_point():
    ns = number_system("mpf:40")
    with pytest.raises(ValueError, match=r"`f` returned a float for points of 'mpf:40'.*"
                                         r"lost the system's precision"):
        derivative(lambda x: float(ns.exp(x)), "0.5", numbers=ns)


def test_f_returning_something_that_is_not_a_number():
    with pytest.raises(ValueError, match=r"`f` returned str values .* not a number of "
                                         r"'float64'"):
        derivative(lambda x: "one", 1.0)


def test_complex_step_without_a_complex_counterpart():
    with pytest.raises(ValueError, match=r"method='complex_step' needs a complex "
                                         r"counterpart: 'decimal:30' has no complex "
                                         r"counterpart.*'mpc:30'"):
        derivative(lambda x: x, "1", numbers="decimal:30", method="complex_step")
    with pytest.raises(ValueError, match=r"'float16' has no complex counterpart"):
        derivative(np.exp, 1.0, numbers="float16", method="complex_step")


def test_complex_step_on_complex_x():
    with pytest.raises(ValueError, match=r"differentiates real functions; `x` is in the "
                                         r"complex system 'complex128'"):
        derivative(np.exp, 1 + 1j, method="complex_step")


def test_complex_step_of_a_function_that_drops_the_imaginary_part():
    with pytest.raises(ValueError, match=r"not complex-step safe .*method='central'"):
        derivative(lambda x: np.abs(x) ** 2, 1.0, method="complex_step")


def test_stack_accepted_then_wrong_shape():
    def f(x):
        if x.ndim == 2 and x.shape[0] > 2:
            return np.zeros(3)
        return np.sum(x**2, axis=-1)

    with pytest.raises(ValueError, match=r"`f` accepted a stack of 2 points but returned "
                                         r"shape \(3,\) for a stack of"):
        gradient(f, np.linspace(0, 1, 5))


def test_estimate_from_validates_like_gradient():
    ns = number_system("float64")
    with pytest.raises(ValueError, match=r"`method` must be one of"):
        estimate_from(lambda s: None, ns, (3,), method="secant")
    with pytest.raises(ValueError, match=r"`h` must be positive and finite"):
        estimate_from(lambda s: None, ns, (3,), h=-1.0)
