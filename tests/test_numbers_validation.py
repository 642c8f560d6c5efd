"""Every error of precision_nn.numbers: its type and that its message names the problem.

Each message must say what was wrong (the spec or value, quoted) and how to fix it.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from decimal import Decimal
from fractions import Fraction

import mpmath
import numpy as np
import pytest

from precision_nn import numbers
from precision_nn.numbers import infer_number_system, number_system
from tests.test_numbers import (
    FUNCTIONS,
    POSITIVE,
    error_in_ulps,
    exact,
    reference_context,
    tolerance,
)

# -- specs --------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", ["float8", "int32", "mpq:50", "double", "decimal50", "arbx:5"])
def test_unknown_spec(spec: str) -> None:
    message = rf"unknown number system '{re.escape(spec)}'; expected one of"
    with pytest.raises(ValueError, match=message):
        number_system(spec)


@pytest.mark.parametrize("spec", ["mpf:abc", "decimal:", "mpc:1.5", "mpf:50:3", "decimal:+"])
def test_malformed_spec(spec: str) -> None:
    family = spec.split(":")[0]
    with pytest.raises(ValueError, match=rf"malformed number system '{re.escape(spec)}': the "
                       r"precision "
                       rf"after '{family}:' must be a whole number of significant decimal "
                       rf"digits, e\.g\. '{family}:50'"):
        number_system(spec)


@pytest.mark.parametrize(("spec", "n"), [("mpf:0", 0), ("decimal:-3", -3), ("mpc:0", 0)])
def test_precision_below_one(spec: str, n: int) -> None:
    with pytest.raises(ValueError, match=rf"precision of '{spec}' must be at least 1 "
                       rf"significant digit; got {n}\. Use e\.g\. '{spec.split(':')[0]}:"):
        number_system(spec)


@pytest.mark.parametrize("spec", ["float64:10", "float32:3", "complex128:"])
def test_precision_after_a_fixed_format(spec: str) -> None:
    name = spec.split(":")[0]
    with pytest.raises(ValueError, match=rf"malformed number system '{re.escape(spec)}': "
                       rf"'{name}' has a fixed precision; write '{name}' without ':N'"):
        number_system(spec)


@pytest.mark.parametrize(("spec", "module", "package", "extra"), [
    ("arb:50", "flint", "python-flint", "arb"), ("acb", "flint", "python-flint", "arb"),
    ("mpfr:40", "gmpy2", "gmpy2", "mpfr"), ("mpfrc:40", "gmpy2", "gmpy2", "mpfr"),
])
def test_optional_family_without_its_package_names_the_extra(
        monkeypatch: pytest.MonkeyPatch, spec: str, module: str, package: str,
        extra: str) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # makes `import <module>` fail
    # bypass both caches: a system made while the package was importable is not the point
    monkeypatch.setattr(numbers, "_system", numbers._system.__wrapped__)
    with pytest.raises(ValueError, match=rf"number system '{re.escape(spec)}' needs the "
                       rf"optional package {package}; install it with `pip install "
                       rf"{package}` \(or the precision_nn extra `{extra}`\)"):
        numbers._cached.__wrapped__(spec)


def test_family_module_that_is_missing_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    missing = numbers.Family(
        numbers._optional("precision_nn.numbers.no_such_system", "NoSuch", numbers.GMPY2),
        10, numbers._optional_recogniser("precision_nn.numbers.no_such_system", numbers.GMPY2),
        numbers.GMPY2)
    monkeypatch.setitem(numbers.FAMILIES, "nosuch", missing)
    monkeypatch.setattr(numbers, "_system", numbers._system.__wrapped__)
    with pytest.raises(ValueError, match=r"number system 'nosuch:12' is not part of this "
                       r"installation \(precision_nn\.numbers\.no_such_system, which "
                       r"provides NoSuch, is missing\)"):
        numbers._cached.__wrapped__("nosuch:12")


def test_a_new_family_is_one_registry_line(monkeypatch: pytest.MonkeyPatch) -> None:
    # a family registered at run time is parsed, defaulted, cached and inferred like the rest
    made = []

    def make(digits: int) -> numbers.NumberSystem:
        made.append(digits)
        return number_system(f"mpf:{digits}")

    monkeypatch.setitem(numbers.FAMILIES, "toy", numbers.Family(make, 7, lambda a: None))
    monkeypatch.setattr(numbers, "_system", numbers._system.__wrapped__)
    assert numbers._cached.__wrapped__("toy").name == "mpf:7"
    assert numbers._cached.__wrapped__("toy:012").name == "mpf:12"
    assert made == [7, 12]
    with pytest.raises(ValueError, match=r"precision of 'toy:0' must be at least 1 "
                       r"significant digit; got 0\. Use e\.g\. 'toy:7'"):
        numbers._cached.__wrapped__("toy:0")


@pytest.mark.parametrize("spec", [50, None, 3.5, np.float64, ["mpf", 50]],
                         ids=["int", "None", "float", "dtype", "list"])
def test_spec_that_is_not_a_string(spec: object) -> None:
    with pytest.raises(TypeError, match=r"`numbers` must be a spec string such as 'float64' "
                       r"or 'mpf:50', or a NumberSystem; got .* of type"):
        number_system(spec)


def test_bfloat16_without_ml_dtypes_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ml_dtypes", None)  # makes `import ml_dtypes` fail
    # bypass a bfloat16 cached while it was importable
    monkeypatch.setattr(numbers, "_system", numbers._system.__wrapped__)
    uncached = numbers._cached.__wrapped__
    with pytest.raises(ValueError, match=r"'bfloat16' needs the optional package ml_dtypes; "
                       r"install it with `pip install ml_dtypes`"):
        uncached("bfloat16")


def test_bfloat16_works_exactly_when_ml_dtypes_is_installed() -> None:
    if importlib.util.find_spec("ml_dtypes") is None:
        with pytest.raises(ValueError, match="ml_dtypes"):
            number_system("bfloat16")
        return
    ns = number_system("bfloat16")
    assert ns.unit_roundoff == 2.0**-8 and ns.digits == 2 and not ns.is_complex
    # "0.1" rounds once to 8 significant bits: 0.1 = 0.000110011..._2 -> 205/2048
    assert Fraction(float(ns.scalar("0.1"))) == Fraction(205, 2048)
    x = ns.asarray(["-2.5", "-0.3", "0.01", "0.7", "3"])
    ref = reference_context(ns)
    for fname in FUNCTIONS:
        operand = np.abs(x) if fname in POSITIVE else x
        result = getattr(ns, fname)(operand)
        assert result.dtype == ns.dtype
        for xi, yi in zip(operand, result, strict=True):
            reference = getattr(ref, fname)(exact(ref, xi))
            assert error_in_ulps(ns, yi, reference, ref) <= tolerance(ns, fname)
    with pytest.raises(ValueError, match="no complex counterpart"):
        ns.complex()


# -- values -------------------------------------------------------------------------------


@pytest.mark.parametrize(("spec", "text"), [("float32", "abc"), ("longdouble", "1e"),
                                            ("decimal:30", "0.1.2"), ("mpf:30", "1+"),
                                            ("mpc:30", "j1"), ("complex128", "")])
def test_unparseable_string(spec: str, text: str) -> None:
    with pytest.raises(ValueError, match=rf"cannot parse '{re.escape(text)}' as a number of "
                       rf"'{spec}'; "
                       r"write a decimal literal such as '0\.1'"):
        number_system(spec).asarray([text])


@pytest.mark.parametrize("spec", ["float64", "decimal:30", "mpf:30", "mpc:30"])
@pytest.mark.parametrize("value", [None, object()], ids=["None", "object"])
def test_value_that_is_not_a_number(spec: str, value: object) -> None:
    with pytest.raises(TypeError, match=rf"cannot convert .* to a number of '{spec}'; give "
                       r"numbers, strings of numbers"):
        number_system(spec).asarray([value])


@pytest.mark.parametrize(("spec", "value", "shown", "limit"), [
    ("float32", 1e39, "1e+39", r"3\.40282e\+38"),
    ("float32", "1e39", "'1e39'", r"3\.40282e\+38"),
    ("float16", "70000", "'70000'", "65504"),
    ("float16", 70000.0, "70000.0", "65504"),
    ("float64", "1e309", "'1e309'", r"1\.79769e\+308"),
    ("complex64", "1e39+1j", "'1e39+1j'", r"3\.40282e\+38"),
], ids=["float32-float", "float32-str", "float16-str", "float16-float", "float64-str",
        "complex64-str"])
def test_value_beyond_the_format(spec: str, value: object, shown: str, limit: str) -> None:
    with pytest.raises(ValueError, match=rf"value {re.escape(shown)} cannot be represented in "
                       rf"'{spec}' "
                       rf"\(largest finite magnitude {limit}\); use a wider number system"):
        number_system(spec).asarray([value])


# an exact value of 10^(10^12) would never finish: these pass only if refused at once
@pytest.mark.parametrize(("spec", "text", "low", "high"), [
    ("float64", "1e999999999999", -325, 309), ("float32", "-2.5e100000", -46, 39),
    ("float16", "1e6", -9, 5), ("mpf:30", "1e999999999999", -100000, 100000),
    ("mpf:30", "1e-999999999999", -100000, 100000), ("mpc:30", "1+1e999999999999j",
                                                      -100000, 100000),
    ("mpfr:30", "0.01e100003", -100000, 100000),
])
def test_absurd_exponent_is_refused_at_once(spec: str, text: str, low: int,
                                             high: int) -> None:
    with pytest.raises(ValueError, match=rf"value '{re.escape(text)}' cannot be represented "
                       rf"in '{spec}': its decimal exponent -?\d+ lies outside \[{low}, "
                       rf"{high}\], the literals this system accepts; scale the value"):
        number_system(spec).asarray([text])


@pytest.mark.parametrize("spec", ["float64", "complex128", "float16"])
def test_tiny_literal_in_a_binary_format_rounds_to_zero(spec: str) -> None:
    assert number_system(spec).scalar("1e-999999999999") == 0
    assert number_system("float64").scalar("2.5e-324") == 5e-324  # the subnormal, kept


@pytest.mark.parametrize("spec", ["float64", "decimal:30", "mpf:30", "mpc:30", "mpfr:30"])
def test_overlong_string_is_refused_at_once(spec: str) -> None:
    text = "1" * 100_000
    if spec.startswith("decimal"):  # Decimal parses it itself, in linear time: one rounding
        assert str(number_system(spec).scalar(text)).startswith("1.1111")
        return
    with pytest.raises(ValueError, match=r"cannot parse a string of 100000 characters as a "
                       rf"number of '{spec}': literals are limited to 4400 characters"):
        number_system(spec).asarray([text])


def test_decimal_exponent_beyond_emax() -> None:
    with pytest.raises(ValueError, match=r"value '1e1000000' cannot be represented in "
                       r"'decimal:30': its exponent exceeds Emax = 999999; scale the value "
                       r"or use 'mpf:30'"):
        number_system("decimal:30").asarray(["1e1000000"])


@pytest.mark.parametrize(("spec", "value", "fix"), [
    ("float64", 1 + 2j, "use 'complex128'"),
    ("float32", "1+2j", "use 'complex64'"),
    ("float16", np.complex64(3j), "use 'complex64' or 'complex128'"),
    ("decimal:30", "0.5-1j", "use 'mpc:30'"),
    ("decimal:30", 1j, "use 'mpc:30'"),
    ("mpf:30", "2j", "use 'mpc:30'"),
    ("mpf:30", 1 - 1j, "use 'mpc:30'"),
], ids=["float64", "float32-str", "float16", "decimal-str", "decimal-complex", "mpf-str",
        "mpf-complex"])
def test_complex_value_into_a_real_system(spec: str, value: object, fix: str) -> None:
    with pytest.raises(ValueError, match=rf"complex value .* cannot be represented in .*"
                       rf"'{spec}'.*{fix}"):
        number_system(spec).asarray([value])


def test_complex_with_zero_imaginary_part_is_real() -> None:
    # not an error: the value is representable
    assert number_system("float64").scalar(2 + 0j) == 2.0
    assert number_system("mpf:30").scalar("2+0j") == 2
    assert number_system("decimal:30").scalar(2 + 0j) == Decimal(2)


# -- missing counterparts and domains -----------------------------------------------------


@pytest.mark.parametrize(("spec", "fix"), [
    ("decimal", (r"'decimal:28' has no complex counterpart \(Decimal is real only\); for a "
                r"complex step at this precision use 'mpc:28'")),
    ("decimal:50", r"use 'mpc:50'"),
    ("float16", (r"'float16' has no complex counterpart in numpy; use float32 or float64 "
                r"\(or mpf:N\) for complex-step work")),
])
def test_missing_complex_counterpart(spec: str, fix: str) -> None:
    with pytest.raises(ValueError, match=fix):
        number_system(spec).complex()


@pytest.mark.parametrize(("spec", "fname", "text", "message"), [
    ("decimal:30", "log", "-1", r"log\(-1\) is not a real number in 'decimal:30'"),
    ("decimal:30", "sqrt", "-2", r"sqrt\(-2\) is not a real number in 'decimal:30'"),
    ("decimal:30", "log", "0", None),  # -Infinity is a value, not an error
    ("decimal:30", "log1p", "-1.5", r"log1p\(-1\.5\) is not a real number in 'decimal:30'"),
    ("decimal:30", "log1p", "-1", None),
    ("decimal:30", "exp", "1e10", (r"exp\(1E\+10\) overflows 'decimal:30' \(largest exponent "
                                  r"Emax = 999999\); use 'mpf:30'")),
    ("mpf:30", "log", "-2", r"log\(-2\.0\) is not a real number in 'mpf:30'.* use 'mpc:30'"),
    ("mpf:30", "sqrt", "-1", r"sqrt\(-1\.0\) is not a real number in 'mpf:30'"),
    ("mpf:30", "log1p", "-3", r"log1p\(-3\.0\) is not a real number in 'mpf:30'"),
], ids=["decimal-log", "decimal-sqrt", "decimal-log0", "decimal-log1p", "decimal-log1p-1",
        "decimal-exp", "mpf-log", "mpf-sqrt", "mpf-log1p"])
def test_function_outside_its_real_domain(spec: str, fname: str, text: str,
                                          message: str | None) -> None:
    ns = number_system(spec)
    if message is None:
        assert getattr(ns, fname)(ns.scalar(text)) == Decimal("-Infinity")
        return
    with pytest.raises(ValueError, match=message):
        getattr(ns, fname)(ns.scalar(text))


@pytest.mark.parametrize(("value", "shown"), [(np.array(["0.1"]), "<U3"),
                                              (np.array([np.datetime64(1, "s")]), "datetime64")],
                         ids=["strings", "datetime"])
def test_infer_number_system_of_a_foreign_dtype(value: object, shown: str) -> None:
    with pytest.raises(TypeError, match=rf"arrays of dtype {shown}.* belong to no number "
                       r"system; convert them with ns\.asarray"):
        infer_number_system(value)


def test_infer_number_system_of_foreign_elements() -> None:
    with pytest.raises(TypeError, match=r"cannot infer a number system from elements of type "
                       r"Fraction; convert them with ns\.asarray"):
        infer_number_system(np.array([Fraction(1, 3)], dtype=object))


@pytest.mark.parametrize(("values", "first", "second"), [
    ([Decimal("0.1"), 0.5], "Decimal", "float"),
    ([0.5, Decimal("0.1")], "float", "Decimal"),
    ([mpmath.mpf(1), Decimal("0.1")], r"mpf \(15 digits\)", "Decimal"),
    ([Decimal("0.1"), mpmath.mpf(1)], "Decimal", r"mpf \(15 digits\)"),
], ids=["decimal-float", "float-decimal", "mpf-decimal", "decimal-mpf"])
def test_infer_number_system_of_mixed_elements(values: list, first: str, second: str) -> None:
    with pytest.raises(TypeError, match=rf"the array mixes {first} and {second} elements "
                       r"\(flat index 0 and 1\); mixing number types would change precision "
                       r"silently\. Convert all values with one system"):
        infer_number_system(np.array(values, dtype=object))


def test_infer_number_system_of_mpf_of_two_precisions() -> None:
    values = [number_system("mpf:30").scalar(1), number_system("mpf:40").scalar(1)]
    with pytest.raises(TypeError, match=r"mixes mpf \(30 digits\) and mpf \(40 digits\)"):
        infer_number_system(np.array(values, dtype=object))


def test_infer_number_system_lets_exact_ints_join() -> None:
    ns = number_system("decimal:30")
    values = np.array([*ns.asarray(["0.1", "1/3"]), 3], dtype=object)  # 1/3 has 30 digits
    assert infer_number_system(values) == ns
    assert infer_number_system(np.array([0.5, 2, np.float64(1)], dtype=object)).name == \
        "float64"


def test_infer_number_system_of_an_empty_object_array() -> None:
    with pytest.raises(TypeError, match=r"cannot infer a number system from an empty object "
                       r"array; pass `numbers=`"):
        infer_number_system(np.array([], dtype=object))


def test_an_mpf_of_mpmaths_global_context_is_named_as_such():
    # mpmath.sin returns numbers of mpmath.mp, not of the system's private context: the
    # message says where they come from and what to use instead (red-team, 2026-12-02)
    ns = number_system("mpf:30")
    with ns.context():
        value = np.array([mpmath.sin(mpmath.mpf("0.3"))], dtype=object)
    name = ns.foreign_type(value)
    assert "global context" in name and "ns.asarray" in name
    assert ns.foreign_type(ns.asarray(["0.3"])) is None
