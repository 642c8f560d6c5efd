"""The arb products' operand cache, the nested precision scope and the sigmoid hook.

The cache is keyed by the identity of the operand's elements; the tests check that a hit
gives exactly the product of a fresh conversion, that no changed element can hit (also
when the old array is gone and its memory re-used), and that transposes are found.
"""

from __future__ import annotations

import gc
import threading

import mpmath
import numpy as np
import pytest

from precision_nn.network import MLP
from precision_nn.numbers import arb_matrix, number_system
from precision_nn.numbers.arb_context import _OPEN
from precision_nn.numbers.arb_matrix import CACHE_SIZE, OperandCache, _pointers, product
from precision_nn.numbers.arb_series import BallSeries
from precision_nn.numbers.arb_system import flint_precision

flint = pytest.importorskip("flint")


def _exact_product(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The product of integer-valued balls in Python ints (exact, independent of flint)."""
    to_int = np.vectorize(lambda v: int(v.mid().man_exp()[0]) << int(v.mid().man_exp()[1])
                          if not v.is_zero() else 0, otypes=[object])
    return to_int(a) @ to_int(b)


def _ints(ns, rng, shape):
    return ns.asarray(rng.integers(-50, 50, shape).astype(object))


def test_a_hit_gives_the_product_of_a_fresh_conversion_and_a_change_never_hits():
    ns = number_system("arb:30")
    rng = np.random.default_rng(0)
    a, b = _ints(ns, rng, (4, 3)), _ints(ns, rng, (3, 5))
    with ns.context():
        first = ns.matmul(a, b)
        again = ns.matmul(a.copy(), b)  # a new array of the same balls: a hit
        changed = a.copy()
        changed[2, 1] = ns.scalar(1000)  # outside the drawn range: a new value
        moved = ns.matmul(changed, b)
    exact = _exact_product(a, b)
    assert all(p.mid() == q for p, q in zip(first.flat, exact.flat))
    assert all(p.mid() == q.mid() and p.rad() == q.rad() for p, q in zip(first.flat,
                                                                          again.flat))
    np.testing.assert_array_equal(
        np.vectorize(lambda v: v.mid() == 0, otypes=[bool])(moved - ns.asarray(
            _exact_product(changed, b))), True)


def test_fresh_arrays_in_reused_memory_never_hit_stale_matrices(monkeypatch):
    """Many short-lived operands of the same shape, three times as many as the cache
    holds (made small, so evicted elements are freed): CPython re-uses freed memory, so
    an unpinned id-key would hit; every product must still be the exact one."""
    monkeypatch.setattr(arb_matrix, "CACHE_SIZE", 24)
    ns = number_system("arb:20")
    rng = np.random.default_rng(1)
    b = _ints(ns, rng, (6, 2))
    with ns.context():
        for _ in range(3 * 24):
            a = _ints(ns, rng, (3, 6))
            got = ns.matmul(a, b)
            assert all(p.mid() == q for p, q in zip(got.flat, _exact_product(a, b).flat))
            del a, got
            gc.collect()


def test_the_transpose_of_a_cached_operand_hits_and_the_cache_stays_bounded():
    rng = np.random.default_rng(2)
    ns = number_system("arb:25")
    cache = OperandCache(flint.arb_mat)
    a = _ints(ns, rng, (3, 4))
    with ns.context():
        first = cache.matrix(a)
        transposed = cache.matrix(np.swapaxes(a, 0, 1))
        assert first.transpose() == transposed and cache.matrix(a) is first
        for _ in range(2 * CACHE_SIZE):
            cache.matrix(_ints(ns, rng, (2, 2)))
    assert len(cache._items) <= CACHE_SIZE
    cache.clear()
    assert not cache._items


def test_the_key_holds_the_element_identities_in_c_order_whatever_the_strides():
    """The key of a transposed or sliced view is that of its C-ordered copy: the ids of
    its elements, so a view and a copy of the same objects share one cache entry."""
    arr = np.empty((3, 5), dtype=object)
    for index in np.ndindex(arr.shape):
        arr[index] = object()
    for view in (arr, arr.T, arr[::2, 1:4], arr.T[::-1]):
        ids = np.frombuffer(_pointers(view), dtype=np.uintp)
        assert ids.tolist() == [id(v) for v in view.ravel()]
        assert _pointers(view) == _pointers(np.ascontiguousarray(view))


def test_the_cache_drops_the_oldest_operands_beyond_its_entry_budget(monkeypatch):
    monkeypatch.setattr(arb_matrix, "CACHED_ENTRIES", 50)
    rng = np.random.default_rng(3)
    ns = number_system("arb:25")
    cache = OperandCache(flint.arb_mat)
    with ns.context():
        operands = [_ints(ns, rng, (3, 4)) for _ in range(4)]  # 12 entries, 2 items each
        for a in operands:
            cache.matrix(a)
        assert cache._entries == sum(len(item[1]) for item in cache._items.values()) <= 50
        assert len(cache._items) == 4  # the last two operands and their transposes
        last = cache.matrix(operands[-1])
        assert cache.matrix(operands[-1]) is last


def test_a_deep_gradient_converts_no_more_than_with_an_unbounded_cache(monkeypatch):
    """Within one gradient every operand the backward pass takes again (``[1 | a]``, the
    weights) is still cached: the default size converts exactly as often as an unbounded
    cache, on a network of 24 layers."""
    net = MLP([3] + [4] * 23 + [2], numbers="arb:30", seed=4)
    rng = np.random.default_rng(6)
    X, Y = rng.standard_normal((5, 3)), np.eye(2)[rng.integers(0, 2, 5)]
    conversions = []
    convert = OperandCache._convert

    def counted(self, arr):
        conversions.append(arr.shape)
        return convert(self, arr)

    monkeypatch.setattr(OperandCache, "_convert", counted)

    def count(size: int) -> int:
        monkeypatch.setattr(arb_matrix, "CACHE_SIZE", size)
        net.numbers._operands.clear()
        conversions.clear()
        net.gradient(X, Y)
        return len(conversions)

    unbounded = count(10**6)
    assert count(CACHE_SIZE) == unbounded < count(8)


def test_operands_that_are_not_numbers_take_numpys_product():
    """A first-order series cannot enter an arb_mat: the product falls back, and the
    series' derivative survives it."""
    ns = number_system("arb:30")
    x = ns.asarray(["0.5", "2"])
    with ns.context():
        series = np.array([BallSeries(x[0], ns.one), BallSeries(x[1], ns.zero)],
                          dtype=object).reshape(1, 2)
        out = ns.matmul(series, ns.asarray([[3], [5]]))
        with pytest.raises(TypeError):
            product(OperandCache(flint.arb_mat), series, ns.asarray([[3], [5]]))
    assert isinstance(out[0, 0], BallSeries)
    assert out[0, 0].slope.mid() == 3 and out[0, 0].value.mid() == 11.5


def test_a_nested_scope_of_the_same_precision_is_counted_not_registered():
    before = flint.ctx.prec
    with flint_precision(200):
        opened = len(_OPEN)
        with flint_precision(200):
            assert len(_OPEN) == opened and flint.ctx.prec == 200
            with flint_precision(90):  # another precision registers
                assert len(_OPEN) == opened + 1 and flint.ctx.prec == 90
                with flint_precision(200):
                    assert flint.ctx.prec == 200
                assert flint.ctx.prec == 90
            assert flint.ctx.prec == 200
        assert flint.ctx.prec == 200
    assert flint.ctx.prec == before and not _OPEN
    with pytest.raises(KeyError), flint_precision(200), flint_precision(200):
        raise KeyError
    assert flint.ctx.prec == before and not _OPEN


@pytest.mark.parametrize("spec", ["float16", "float32", "float64", "mpf:30", "decimal:30",
                                  "arb:30"])
def test_the_sigmoid_hook_is_accurate_and_finite_at_saturation(spec):
    """`NumberSystem.sigmoid` against mpmath at 60 digits; relative error within 4 u
    (a few roundings: one exp, one add, one division, the argument's own rounding times
    the condition |x·σ'/σ| <= |x| is excluded by converting x first); arb: containment."""
    ns = number_system(spec)
    # the widest |x| whose σ(-|x|) is still a normal number of the system
    wide = {"float16": "8", "float32": "80", "float64": "700"}.get(spec, "800")
    points = [f"-{wide}", "-3.5", "-0.25", "0", "0.25", "3.5", wide]
    with ns.context():  # far past saturation: finite (0 or 1 in IEEE), no overflow
        assert np.all(ns.isfinite(ns.sigmoid(ns.asarray(["-1e4", "1e4"]))))
    x = ns.asarray(points)
    with ns.context():
        s = ns.sigmoid(x)
    with mpmath.workdps(60):
        for xi, si in zip(x, s):
            exact = 1 / (1 + mpmath.exp(-mpmath.mpf(ns.to_float(np.asarray([xi]))[0])
                                        if not ns.is_ball else -_mp(xi)))
            if ns.is_ball:
                with flint_precision(400):  # 55 digits: its error is 1e-25 of the radius
                    ref = flint.arb(mpmath.nstr(exact, 55))
                assert si.overlaps(ref) and float(si.rad()) <= 1e-28 * float(abs(si.mid()))
            else:
                got = mpmath.mpf(str(si)) if spec.startswith("decimal") else \
                    mpmath.mpf(si if spec.startswith("mpf") else float(si))
                assert abs(got - exact) <= 4 * ns.unit_roundoff * exact, (xi, si)


def _mp(ball):
    man, exp = ball.mid().man_exp()
    return mpmath.mpf(int(man)) * mpmath.mpf(2) ** int(exp)


def test_threads_sharing_the_cache_get_exact_products_of_transposes():
    """Square operands and their transposes from four threads at once: a transposition
    half-done by one thread must never be seen by another (it would, silently, give the
    product of the wrong orientation)."""
    ns = number_system("arb:20")
    rng = np.random.default_rng(3)
    pairs = [(_ints(ns, rng, (5, 5)), _ints(ns, rng, (5, 5))) for _ in range(4)]
    errors = []

    def work() -> None:
        with ns.context():
            for k in range(60):
                a, b = pairs[k % len(pairs)]
                for left, right in ((a, b), (a.T, b), (a, b.T), (a.T, b.T)):
                    got = ns.matmul(left, right)
                    if not all(p.mid() == q for p, q in
                               zip(got.flat, _exact_product(left, right).flat)):
                        errors.append(k)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
