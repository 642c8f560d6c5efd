"""mpfr:N / mpfrc:N (gmpy2) beyond the shared number-system tests of test_numbers.py: the
precision of arithmetic, the optional import, and the network against mpmath references at
twice the digits (forward pass, loss, gradient, also saturated; the complex step in
mpfrc). Function accuracy of every function is in test_numbers.py (0.5 ulp: MPFR rounds
correctly), run there for mpfr, mpfr:50, mpfr:200, mpfrc and mpfrc:50.
"""

from __future__ import annotations

import subprocess
import sys
from fractions import Fraction

import mpmath
import numpy as np
import pytest

from precision_nn.network import MLP
from precision_nn.numbers import infer_number_system, number_system
from tests.reference import complex_step_gradient
from tests.test_numbers import exact, fraction_of, round_to_binary

gmpy2 = pytest.importorskip("gmpy2")  # the extra `mpfr`; `make test` installs it

# backprop's rounding bound of tests/test_network.py (256·u relative to ‖g‖∞)
ROUNDING_FACTOR = 256


def test_precision_is_that_of_mpf() -> None:
    for digits in (1, 15, 50, 333):
        ns, twin = number_system(f"mpfr:{digits}"), number_system(f"mpf:{digits}")
        assert ns.bits == twin.ctx.prec and ns.unit_roundoff == twin.unit_roundoff
        assert ns.name == f"mpfr:{digits}" and ns.complex().name == f"mpfrc:{digits}"
        assert ns.wider().name == f"mpfr:{2 * digits}" and not ns.is_ball
        assert ns.log2_unit_roundoff == -ns.bits


def test_arithmetic_inside_the_context_rounds_at_the_systems_precision() -> None:
    ns = number_system("mpfr:50")
    x = ns.scalar("0.1")
    with ns.context():
        product = x * ns.scalar(3)
        quotient = ns.one / ns.scalar(3)
    assert product.precision == quotient.precision == ns.bits
    assert fraction_of(product) == round_to_binary(3 * fraction_of(x), ns.bits)
    assert fraction_of(quotient) == round_to_binary(Fraction(1, 3), ns.bits)
    # outside, gmpy2 rounds to the thread's context (53 bits by default), as Decimal does
    assert (x * ns.scalar(3)).precision == gmpy2.get_context().precision


@pytest.mark.parametrize("spec", ["mpfr:30", "mpfrc:30"])
def test_radix_powers_are_exact(spec: str) -> None:
    ns = number_system(spec)
    powers = ns.radix_powers(np.array([-500, -1, 0, 3, 400]))
    assert ns.owns(powers)
    expected = [Fraction(2) ** e for e in (-500, -1, 0, 3, 400)]
    assert [fraction_of(v.real) for v in powers] == expected


def test_strings_and_floats_round_once() -> None:
    ns = number_system("mpfr:30")
    assert fraction_of(ns.scalar("0.1")) == round_to_binary(Fraction(1, 10), ns.bits)
    assert fraction_of(ns.scalar(0.1)) == Fraction(0.1)  # 53 bits fit: exact
    assert fraction_of(ns.scalar("1/3")) == round_to_binary(Fraction(1, 3), ns.bits)
    z = number_system("mpfrc:30").scalar("0.1-2e-3j")
    assert fraction_of(z.imag) == round_to_binary(Fraction(-2, 1000), ns.bits)


def test_conversions_between_systems_are_exact() -> None:
    x = number_system("mpfr:40").asarray(["0.1", "-1/3"])
    for spec in ("mpf:40", "mpf:80", "decimal:60"):
        back = number_system("mpfr:40").asarray(number_system(spec).asarray(x))
        assert [fraction_of(v) for v in back] == [fraction_of(v) for v in x], spec


def test_elements_of_another_precision_are_foreign() -> None:
    ns = number_system("mpfr:30")
    other = number_system("mpfr:40").asarray(["0.5"])
    assert ns.foreign_type(other) == "mpfr of another precision"
    assert ns.foreign_type(np.array([0.5], dtype=object)) == "float"
    assert infer_number_system(other).name == "mpfr:40"
    with pytest.raises(TypeError, match=r"mixes mpfr and float elements"):
        infer_number_system(np.array([*other, 0.5], dtype=object))
    odd = np.array([gmpy2.mpfr("0.5", 101)], dtype=object)  # no N digits give 101 bits
    with pytest.raises(TypeError, match="cannot infer a number system from elements of type"):
        infer_number_system(odd)


@pytest.mark.parametrize(("fname", "text"), [("log", "-2"), ("sqrt", "-1"), ("log1p", "-3")])
def test_real_function_outside_its_domain(fname: str, text: str) -> None:
    ns = number_system("mpfr:30")
    with pytest.raises(ValueError, match=rf"{fname}\(-\d\.0\) is not a real number in "
                       r"'mpfr:30'; check the argument's sign, or use 'mpfrc:30'"):
        getattr(ns, fname)(ns.scalar(text))
    assert getattr(number_system("mpfrc:30"), fname)(text) is not None


def test_complex_value_into_mpfr() -> None:
    with pytest.raises(ValueError, match=r"complex value '1\+2j' cannot be represented in the "
                       r"real system 'mpfr:30'; use 'mpfrc:30'"):
        number_system("mpfr:30").asarray(["1+2j"])


def test_library_imports_without_gmpy2() -> None:
    """Importing precision_nn (and making every built-in system) never imports gmpy2, and
    with gmpy2 unavailable, mpfr:N says which extra to install."""
    code = (
        "import sys; sys.modules['gmpy2'] = None\n"
        "import precision_nn as pnn\n"
        "pnn.MLP([2, 2, 1], numbers='mpf:30').gradient([[1, 2]], [[1]])\n"
        "assert 'precision_nn.numbers.mpfr_system' not in sys.modules\n"
        "try:\n    pnn.number_system('mpfr:30')\nexcept ValueError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert "needs the optional package gmpy2; install it with `pip install gmpy2` (or the " \
        "precision_nn extra `mpfr`)" in out.stdout


# ---------------------------------------------------------------------------------------
# The network in mpfr against references at twice the digits
# ---------------------------------------------------------------------------------------

HEADS = [("sigmoid", "cross_entropy"), ("softmax", "softmax_cross_entropy"),
         ("identity", "squared_error"), ("erf_logistic", "cross_entropy")]


def _data(scale: float, seed: int = 3):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((4, 3)) * scale
    Y = np.eye(2)[rng.integers(0, 2, 4)]
    return X, Y


# saturated inputs only with the canonical heads: cross-entropy on an erf_logistic output
# has no stable form (its loss is genuinely log(0) once erf rounds to 1, in any system)
NETWORK_CASES = [(head, scale) for scale in (0.5, 40.0) for head in HEADS
                 if scale < 1 or head[0] != "erf_logistic"]


@pytest.mark.parametrize("hidden", ["sigmoid", "tanh", "relu", "erf_logistic"])
@pytest.mark.parametrize(("head", "scale"), NETWORK_CASES,
                         ids=[f"{'-'.join(h)}-x{s:g}" for h, s in NETWORK_CASES])
def test_network_matches_mpf_at_twice_the_digits(hidden, head, scale) -> None:
    """forward, loss and gradient of mpfr:30 against the same network (same exact
    parameters and data) in mpf:60: 256·u relative, as in test_network.py. Inputs scaled
    by 40 saturate every sigmoid/erf/tanh unit and the outputs."""
    output, loss = head
    net = MLP([3, 4, 2], hidden=hidden, output=output, loss=loss, l2="0.3",
              numbers="mpfr:30", seed=9)
    X, Y = _data(scale)
    ref = net.to("mpf:60")
    ctx = mpmath.MPContext()
    ctx.dps = 80
    u = net.numbers.unit_roundoff

    def gap(ours, theirs) -> float:
        ours = [exact(ctx, v) for v in np.ravel(ours)]
        theirs = [exact(ctx, v) for v in np.ravel(theirs)]
        scale_ = max(max(abs(v) for v in theirs), 1e-3)
        return float(max(abs(a - b) for a, b in zip(ours, theirs)) / scale_)

    Xr, Yr = ref.numbers.asarray(net.numbers.asarray(X)), ref.numbers.asarray(
        net.numbers.asarray(Y))
    assert gap(net.forward(X), ref.forward(Xr)) <= ROUNDING_FACTOR * u
    assert gap([net.loss(X, Y)], [ref.loss(Xr, Yr)]) <= ROUNDING_FACTOR * u
    assert gap(net.gradient(X, Y), ref.gradient(Xr, Yr)) <= ROUNDING_FACTOR * u


@pytest.mark.parametrize("scale", [0.5, 40.0], ids=["moderate", "saturated"])
def test_gradient_matches_the_complex_step_reference(scale) -> None:
    """Backprop in mpfr:30 against the complex step of the loss in mpc:60 (tests/reference)."""
    net = MLP([3, 4, 2], hidden="tanh", output="softmax", loss="softmax_cross_entropy",
              numbers="mpfr:30", seed=4)
    X, Y = _data(scale, seed=5)
    ref = complex_step_gradient(net, X, Y)
    g = number_system("mpf:60").asarray(net.gradient(X, Y))
    bound = ROUNDING_FACTOR * net.numbers.unit_roundoff * max(float(np.max(np.abs(ref))), 1e-3)
    assert float(np.max(np.abs(g - ref))) <= bound


def test_complex_step_in_mpfrc_equals_backprop() -> None:
    """Im J(θ + i·h·e_j)/h in mpfrc:30 with h = 1e-40 against mpfr:30 backprop: nothing
    cancels, every branch acts on real parts, so they agree to rounding (16·u)."""
    net = MLP([2, 3, 2], hidden="erf_logistic", output="sigmoid", numbers="mpfr:30", seed=2)
    X, Y = _data(0.5, seed=1)
    X = X[:, :2]
    g = net.gradient(X, Y)
    cnet = net.to("mpfrc:30")
    c = cnet.numbers
    h = c.real().scalar("1e-40")
    with c.context():
        stack = np.tile(cnet.params, (net.n_params, 1))
        for i in range(net.n_params):
            stack[i, i] = stack[i, i] + gmpy2.mpc(0, h)
    losses = cnet.loss(X, Y, params=stack)
    with c.context():
        cs = np.array([v.imag / h for v in losses], dtype=object)
        diff = max(abs(a - b) for a, b in zip(cs, g))
        scale = max(abs(v) for v in g)
    assert diff <= 16 * net.numbers.unit_roundoff * scale


def test_complex_log1p_is_accurate_in_each_part_on_whole_arrays() -> None:
    """MPFR's real log1p and atan2 with Ziv's refinement (no mpmath detour): each part
    within 1 ulp of mpmath at 2N+20 digits, also where |1 + w| = 1 cancels the real part
    to ~1e-25 of |w| (the refinement must raise the guard bits there), on an array whose
    shape is kept; non-finite arguments take the detour."""
    ns = number_system("mpfrc:30")
    theta = mpmath.mpf("2.1")
    with mpmath.workdps(80):
        circle = mpmath.expjpi(theta / mpmath.pi) - 1  # |1 + w| = 1 to 80 digits
    points = ["1e-20+1e-30j", "-0.5+1e-30j", "3e-5-2e-9j", "0.25+4j", "-3+0.5j",
              circle]
    w = ns.asarray(np.array(points, dtype=object).reshape(2, 3))
    result = ns.log1p(w)
    assert result.shape == (2, 3) and ns.owns(result)
    real = ns.real()
    ref = mpmath.MPContext()
    ref.dps = 2 * 30 + 20
    for got, arg in zip(result.flat, w.flat):
        expected = ref.log1p(ref.mpc(exact(ref, arg.real), exact(ref, arg.imag)))
        for part, exact_part in ((got.real, expected.real), (got.imag, expected.imag)):
            ulp = ref.ldexp(1, int(ref.floor(ref.log(abs(exact_part), 2))) - real.bits + 1)
            assert abs(exact(ref, part) - exact_part) <= ulp, (arg, part, exact_part)
    assert abs(exact(ref, result[1, 2].real)) < 1e-20  # the cancelled real part is kept
    inf = ns.log1p(ns.asarray(["inf+1j"]))[0]
    assert not gmpy2.is_finite(inf)
