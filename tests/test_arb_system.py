"""arb:N and acb:N against mpmath at twice the digits: every function's ball must contain
the reference (containment is the whole promise of ball arithmetic, so no tolerance), and
radii must be near the system's unit roundoff (tightness, with the factors stated)."""

from __future__ import annotations

import threading
from fractions import Fraction

import mpmath
import numpy as np
import pytest

from precision_nn.numbers import infer_number_system, number_system
from precision_nn.numbers.arb_system import OrderedBalls, flint_precision, radius
from precision_nn.numbers.literals import exact_parts

flint = pytest.importorskip("flint")

DIGITS = (15, 50, 200)
REAL_FUNCTIONS = ("exp", "log", "log1p", "sqrt", "tanh", "erf", "sin", "cos")
# points per function: inside every domain (log, sqrt need > 0), from tiny to large
POINTS = ("1e-30", "0.001", "0.3", "1.7", "12.5", "100")
# a tight ball of a well-conditioned function has radius within this many units of
# roundoff of |f| (Arb's functions give a few ulps; the argument adds its own rounding
# times the condition number, at most ~|x|·|f'/f| <= 200 for these points)
TIGHTNESS = 1e4


def _point(value, prec_bits=8000):
    """An mpmath (or any exact) value as a ball of tiny radius, for containment tests."""
    if isinstance(value, mpmath.mpc):
        return flint.acb(_point(value.real, prec_bits), _point(value.imag, prec_bits))
    with flint_precision(prec_bits):
        q = _exact(value)
        return flint.arb(flint.fmpq(q.numerator, q.denominator))


def _relative_radius(ball) -> float:
    """radius/|midpoint| formed in arb (both may be far outside the float range)."""
    from precision_nn.numbers.arb_system import radius_ball

    mid = abs(ball.mid()) if isinstance(ball, flint.arb) else \
        abs(ball.real.mid()) + abs(ball.imag.mid())
    with flint_precision(64):
        return float((radius_ball(ball) / mid).mid())


def _exact(value):
    return exact_parts(value, "reference")[0]  # never mpmath.mpf(value): that rounds


@pytest.mark.parametrize("digits", DIGITS, ids=lambda d: f"arb:{d}")
@pytest.mark.parametrize("name", REAL_FUNCTIONS)
def test_every_real_function_encloses_mpmath_at_twice_the_digits(name, digits):
    ns = number_system(f"arb:{digits}")
    x = ns.asarray(list(POINTS))
    y = getattr(ns, name)(x)
    with mpmath.workdps(2 * digits + 20):
        refs = [getattr(mpmath, name)(mpmath.mpf(p)) for p in POINTS]
    for p, ball, ref in zip(POINTS, y, refs):
        assert ball.contains(_point(ref)), f"{name}({p}) = {ball} misses {ref}"
    rel = [_relative_radius(v) for v in y]
    assert max(rel) <= TIGHTNESS * ns.unit_roundoff, (name, rel)


@pytest.mark.parametrize("name", ("exp", "log", "sqrt", "tanh", "erf", "sin", "cos",
                                  "log1p"))
def test_every_complex_function_encloses_mpmath(name):
    ns = number_system("acb:40")
    z = ns.asarray(["0.3+0.7j", "-1.2+0.01j", "2-3j"])
    w = getattr(ns, name)(z)
    with mpmath.workdps(100):
        refs = [getattr(mpmath, name)(mpmath.mpc(re, im))
                for re, im in (("0.3", "0.7"), ("-1.2", "0.01"), ("2", "-3"))]
    for ball, ref in zip(w, refs):
        assert ball.contains(_point(ref)), (name, ball, ref)
    assert max(map(_relative_radius, w)) <= TIGHTNESS * ns.unit_roundoff


def test_conversion_is_exact_then_rounded_once_into_the_radius():
    ns = number_system("arb:30")
    x = ns.asarray(["0.1", 0.1, 2**200 + 1, "1/3", 0.5])
    with flint_precision(4000):
        tenth = flint.arb(flint.fmpq(1, 10))
    assert x[0].contains(tenth) and radius(x[:1])[0] > 0  # 1/10 is not binary
    # the float 0.1 is its binary value exactly (it fits in 30 digits): radius 0
    assert radius(x[1:2])[0] == 0 and x[1] == flint.arb(0.1)
    assert x[2].contains(_point(str(2**200 + 1)))
    assert radius(x[2:3])[0] > 0  # 201 bits do not fit in arb:30's 103: one rounding
    assert x[3].contains(_point("1/3"))
    assert float(radius(x[4:5])[0]) == 0.0
    assert flint.ctx.prec == 53  # conversion scoped the precision


def test_midpoints_radii_and_the_system_attributes():
    ns = number_system("arb:50")
    assert (ns.is_ball, ns.radix, ns.object_elements, ns.prec) == (True, 2, True, 169)
    assert ns.unit_roundoff == 2.0 ** -169 and ns.log2_unit_roundoff == -169.0
    assert ns.wider().name == "arb:100" and number_system("acb:7").wider().name == "acb:14"
    assert ns.complex().name == "acb:50" and ns.complex().real() == ns
    assert number_system("arb:1000").log2_unit_roundoff == -3325.0  # beyond the float range
    x = ns.asarray(["0.25", "1/3"])
    np.testing.assert_array_equal(ns.to_float(x), [0.25, 1 / 3])
    acb = number_system("acb:20")
    assert acb.to_float(acb.asarray(["1-2j"]))[0] == 1 - 2j
    powers = ns.radix_powers(np.array([-1100, 3]))
    assert powers[0] == flint.arb(flint.arf((1, -1100))) and powers[1] == 8
    assert np.all(radius(powers) == 0)


def test_radius_is_an_upper_bound_even_below_the_float_range():
    ns = number_system("arb:400")
    r = radius(ns.asarray(["0.1"]))[0]
    assert r > 0  # the true radius ~1e-401 underflows; the bound is the smallest subnormal
    ball = flint.arb(0, flint.arb("1e-20"))
    assert radius([ball])[0] >= 1e-20  # rounded up, never down


def test_matmul_goes_through_arb_mat_and_encloses_the_exact_product():
    ns = number_system("arb:40")
    rng = np.random.default_rng(0)
    a_q = rng.integers(-9, 10, (3, 4))
    b_q = rng.integers(-9, 10, (2, 4, 5))
    a = ns.asarray([[f"{v}/7" for v in row] for row in a_q])
    b = ns.asarray(b_q.astype(object))
    product = ns.matmul(a, b)
    exact = np.array([[[Fraction(int(v)) for v in row] for row in m] for m in
                      (a_q.astype(object) @ b_q[k].astype(object) for k in range(2))]) / 7
    assert product.shape == (2, 3, 5)
    for p, q in zip(product.flat, exact.flat):
        assert p.contains(_point(f"{q.numerator}/{q.denominator}"))
    assert np.all(radius(product) < 1e-38)
    with pytest.raises(ValueError, match="do not align"):
        ns.matmul(a, a)


def test_comparisons_prove_their_answer_or_raise_naming_the_entry():
    ns = number_system("arb:30")
    z = ns.asarray(["0.5", "-2", "0"])
    z[2] = flint.arb(0, flint.arb("1e-40"))  # a ball straddling 0
    re = ns.real_part(z)
    assert isinstance(re, OrderedBalls)
    np.testing.assert_array_equal(re[:2] > 0, [True, False])
    with pytest.raises(ValueError, match=r"entry \(2,\).*straddles the threshold"):
        _ = re > 0
    with pytest.raises(ValueError, match="straddles"):
        np.asarray(ns.real_part(z) <= 0, dtype=bool)
    assert np.max(re[:2]) == flint.arb("0.5")  # a decided maximum
    tie = np.max(re)  # undecided: a ball enclosing the maximum of the points, no side picked
    assert tie.contains(flint.arb("0.5"))
    # acb: the real parts, and plain arrays for everything else
    w = number_system("acb:30").asarray(["1+5j", "-1-5j"])
    np.testing.assert_array_equal(number_system("acb:30").real_part(w) > 0, [True, False])
    assert type(ns.real_part(z) + 1) is np.ndarray


def test_functions_name_an_entry_outside_their_domain():
    ns = number_system("arb:30")
    with pytest.raises(ValueError, match=r"log\(x\) at entry \(1,\).*outside the domain"):
        ns.log(ns.asarray(["2", "0"]))
    with pytest.raises(ValueError, match=r"sqrt\(x\) at entry \(0,\)"):
        ns.sqrt(ns.asarray(["-1"]))
    with pytest.raises(ValueError, match="cannot be represented in the real system"):
        ns.asarray(["1+2j"])
    with pytest.raises(ValueError, match="cannot parse"):
        ns.asarray(["one"])


def test_series_safe_sigmoid_and_softplus():
    ns = number_system("arb:40")
    x = ns.asarray(["-800", "-3", "0.5", "800"])
    with mpmath.workdps(100):
        sig = [1 / (1 + mpmath.exp(-mpmath.mpf(p))) for p in ("-800", "-3", "0.5", "800")]
        soft = [mpmath.log1p(mpmath.exp(mpmath.mpf(p))) for p in ("-800", "-3", "0.5", "800")]
    for ball, ref in zip(ns.sigmoid(x), sig):
        assert ball.contains(_point(ref))
    for ball, ref in zip(ns.softplus(x), soft):
        assert ball.contains(_point(ref))
    assert max(map(_relative_radius, ns.softplus(x))) <= 100 * ns.unit_roundoff


def test_sigmoid_and_log1p_exp_hooks_enclose_mpmath():
    ns = number_system("arb:40")
    points = ("-800", "-3", "0.5", "800")
    x = ns.asarray(points)
    w = ns.asarray([f"-{p.lstrip('-')}" for p in points])  # log1p_exp's domain: w <= 0
    with mpmath.workdps(100):
        sig = [1 / (1 + mpmath.exp(-mpmath.mpf(p))) for p in points]
        soft = [mpmath.log1p(mpmath.exp(-abs(mpmath.mpf(p)))) for p in points]
    for ball, ref in zip(ns.sigmoid(x), sig):
        assert ball.contains(_point(ref))
    for ball, ref in zip(ns.log1p_exp(w), soft):
        assert ball.contains(_point(ref))
    assert max(map(_relative_radius, ns.log1p_exp(w))) <= 100 * ns.unit_roundoff


def test_precision_never_leaks_also_on_error_and_across_threads():
    ns = number_system("arb:60")
    before = flint.ctx.prec
    with pytest.raises(RuntimeError), ns.context():
        assert flint.ctx.prec == ns.prec
        raise RuntimeError
    assert flint.ctx.prec == before
    errors = []
    with mpmath.workdps(700):
        reference = _point(mpmath.exp(mpmath.mpf("0.1")))

    def work(digits: int) -> None:
        system = number_system(f"arb:{digits}")
        for _ in range(30):
            with system.context():
                y = system.exp(system.asarray(["0.1", "0.2"]))
            # whatever the other thread did, the ball is an enclosure
            if not y[0].contains(reference):
                errors.append(digits)

    threads = [threading.Thread(target=work, args=(d,)) for d in (20, 80, 300)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and flint.ctx.prec == before


def test_infer_number_system_reads_balls():
    ns = number_system("arb:40")
    assert infer_number_system(ns.asarray(["1/3"])).name == "arb:40"  # digits of the midpoint
    with ns.context():
        assert infer_number_system(ns.asarray([1])).name == "arb:40"
    acb = number_system("acb:40")
    with acb.context():
        third = flint.acb(flint.arb(1) / 3, 1)
    assert infer_number_system(acb.asarray([third])).name == "acb:40"


COMPLEX_STEP_DERIVATIVES = {  # f' in closed form, mpmath
    "exp": mpmath.exp, "tanh": lambda t: 1 - mpmath.tanh(t) ** 2,
    "erf": lambda t: 2 * mpmath.exp(-t * t) / mpmath.sqrt(mpmath.pi),
    "sin": mpmath.cos, "cos": lambda t: -mpmath.sin(t), "log": lambda t: 1 / t,
    "sqrt": lambda t: 1 / (2 * mpmath.sqrt(t)), "log1p": lambda t: 1 / (1 + t),
}


@pytest.mark.parametrize("exact_point", [True, False], ids=["exact x", "rounded x"])
@pytest.mark.parametrize("name", sorted(COMPLEX_STEP_DERIVATIVES))
def test_the_complex_step_in_acb_encloses_the_derivative(name, exact_point):
    # Im f(x + ih)/h = f'(x) - h^2 f'''(x)/6 + ...: with h = 2**-100 the truncation (bounded
    # by h^2 here: |f'''| <= 6 for these f near 0.7) is far below arb:30's radius. With x a
    # rounded ball (radius r), a plain rectangle would carry r·|f'|/h ~ 1 into the slope;
    # the system evaluates at the exact midpoint and widens by r·h·max|f''| instead
    acb = number_system("acb:30")
    h = flint.arb(flint.arf((1, -100)))
    with acb.context():
        x = flint.arb("0.7").mid() if exact_point else flint.arb("0.7")
        z = np.array([flint.acb(x, h)], dtype=object)
        slope = getattr(acb, name)(z)[0].imag / h
        slope = flint.arb(slope.mid(), slope.rad() + h * h)
    with mpmath.workdps(80):
        q = _exact(x.mid())
        point = mpmath.mpf(q.numerator) / q.denominator if exact_point else mpmath.mpf("0.7")
        assert slope.contains(_point(COMPLEX_STEP_DERIVATIVES[name](point))), name
    assert float(slope.rad()) < 1e-28, slope


def _same_ball(a, b) -> bool:
    return bool(a.mid() == b.mid()) and bool(a.rad() == b.rad())


def test_fast_paths_give_the_balls_of_the_general_paths():
    """Arrays of this system's balls take C loops (flint's methods as ufuncs, two-loop
    comparisons, pass-through conversion); an array with one foreign element takes the
    entry-by-entry paths. Both must give identical balls and answers."""
    ns = number_system("arb:40")
    rng = np.random.default_rng(5)
    x = ns.asarray([str(v) for v in rng.normal(size=12) * 3])
    mixed = x.copy()
    mixed[0] = 1  # an int: converted exactly, entry by entry
    for name in ("exp", "tanh", "log1p", "erf", "sin"):
        arg = (lambda v: ns.exp(v)) if name == "log1p" else (lambda v: v)  # log1p: > -1
        fast, general = getattr(ns, name)(arg(x)), getattr(ns, name)(arg(mixed))
        assert all(_same_ball(a, b) for a, b in zip(fast[1:], general[1:])), name
    assert _same_ball(ns.exp(x[3]), ns.exp(mixed)[3])  # a 0-d argument
    with pytest.raises(ValueError, match=r"log\(x\) at entry \(2,\)"):
        ns.log(ns.asarray(["1", "2", "-3"]))  # the fast path names the entry too
    copy = ns.asarray(x)
    assert copy is not x and all(a is b for a, b in zip(copy, x))
    np.testing.assert_array_equal(ns.to_float(x), [float(v.mid()) for v in x])
    np.testing.assert_array_equal(ns.isfinite(np.append(x, flint.arb("inf"))),
                                  [True] * 12 + [False])
    for op in (">", ">=", "<", "<="):
        fast = {">": ns.real_part(x) > 0.5, ">=": ns.real_part(x) >= 0.5,
                "<": ns.real_part(x) < 0.5, "<=": ns.real_part(x) <= 0.5}[op]
        expected = [{">": v > 0.5, ">=": v >= 0.5, "<": v < 0.5, "<=": v <= 0.5}[op]
                    for v in x]
        np.testing.assert_array_equal(fast, expected)
    np.testing.assert_array_equal(ns.real_part(x[:3]) > ns.real_part(x[3:6]),
                                  [a > b for a, b in zip(x[:3], x[3:6])])
