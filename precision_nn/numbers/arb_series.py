"""`BallSeries`: a first-order Taylor series ``v + d·t + O(t²)`` with Arb ball coefficients.

Evaluating f on ``x + t`` in this arithmetic gives ``f(x) + f'(x)·t``: the coefficient of
``t`` is the derivative, with no step and no truncation error. Each rule below is the chain
rule ``g(v + d·t) = g(v) + g'(v)·d·t``, with ``g(v)`` and ``g'(v)`` evaluated in ball
arithmetic, so both coefficients are rigorous enclosures whenever ``v`` and ``d`` are
(the inclusion property of interval arithmetic; Moore, Kearfott and Cloud, *Introduction
to Interval Analysis*, SIAM 2009, §5; Rall, *Automatic Differentiation*, LNCS 120, 1981).

Why not python-flint's ``arb_series``: it defines ``__len__`` and ``__getitem__``, so numpy
unpacks it into a sequence when it builds or broadcasts object arrays, and it has no
``tanh`` or ``log1p``; it cannot be compared, so a ReLU mask fails without naming the
entry. This type has neither problem and keeps every rule visible.

Comparisons compare the value balls and raise `ValueError` when the balls do not decide
(a ReLU at its kink); ``float()`` raises `TypeError`, since it would drop the proof.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["BallSeries", "decide", "is_series"]


class BallSeries:
    """``value + slope·t + O(t²)``; `value` and `slope` are ``flint.arb`` (or ``acb``).

    Examples
    --------
    >>> import flint
    >>> t = BallSeries(flint.arb(2), flint.arb(1))  # the variable x = 2 + t
    >>> y = (t * t).exp()                           # exp(x²): value e⁴, slope 2x·e⁴
    >>> y.slope.contains(4 * flint.arb(4).exp()), y.value.contains(flint.arb(4).exp())
    (True, True)
    """

    __slots__ = ("slope", "value")
    __array_priority__ = 100

    def __init__(self, value: Any, slope: Any):
        self.value = value
        self.slope = slope

    def __repr__(self) -> str:
        return f"BallSeries({self.value}, {self.slope})"

    # -- arithmetic: (u + u't)(v + v't) = uv + (u'v + uv')t, etc. ---------------------------
    @staticmethod
    def _parts(other: Any) -> tuple[Any, Any] | None:
        if isinstance(other, BallSeries):
            return other.value, other.slope
        if isinstance(other, (int, float)) or _is_ball(other):
            return other, 0
        if isinstance(other, np.integer):
            return int(other), 0
        if isinstance(other, np.floating) and other.dtype.itemsize <= 8:
            return float(other), 0  # exact: float16/32/64 values are float64 values
        return None

    def __add__(self, other: Any) -> Any:
        p = self._parts(other)
        return NotImplemented if p is None else BallSeries(self.value + p[0], self.slope + p[1])

    __radd__ = __add__

    def __sub__(self, other: Any) -> Any:
        p = self._parts(other)
        return NotImplemented if p is None else BallSeries(self.value - p[0], self.slope - p[1])

    def __rsub__(self, other: Any) -> Any:
        p = self._parts(other)
        return NotImplemented if p is None else BallSeries(p[0] - self.value, p[1] - self.slope)

    def __mul__(self, other: Any) -> Any:
        if isinstance(other, BallSeries):
            return BallSeries(self.value * other.value,
                              self.slope * other.value + self.value * other.slope)
        p = self._parts(other)
        return NotImplemented if p is None else BallSeries(self.value * p[0], self.slope * p[0])

    __rmul__ = __mul__

    def __truediv__(self, other: Any) -> Any:
        if isinstance(other, BallSeries):
            q = self.value / other.value  # (u/v)' = (u' - q v')/v
            return BallSeries(q, (self.slope - q * other.slope) / other.value)
        p = self._parts(other)
        return NotImplemented if p is None else BallSeries(self.value / p[0], self.slope / p[0])

    def __rtruediv__(self, other: Any) -> Any:
        p = self._parts(other)
        if p is None:
            return NotImplemented
        q = p[0] / self.value  # (c/v)' = -q v'/v
        return BallSeries(q, -(q * self.slope) / self.value)

    def __neg__(self) -> BallSeries:
        return BallSeries(-self.value, -self.slope)

    def __pos__(self) -> BallSeries:
        return self

    def __pow__(self, n: Any) -> Any:
        if not isinstance(n, int):
            return NotImplemented  # x**y = exp(y log x): write it so
        if n == 0:
            return BallSeries(self.value ** 0, self.slope * 0)
        return BallSeries(self.value ** n, n * self.value ** (n - 1) * self.slope)

    def __abs__(self) -> BallSeries:
        return self if _sign(self, "abs") > 0 else -self

    # -- functions: g(v + d t) = g(v) + g'(v) d t ----------------------------------------------
    def exp(self) -> BallSeries:
        e = self.value.exp()
        return BallSeries(e, e * self.slope)

    def log(self) -> BallSeries:
        return BallSeries(self.value.log(), self.slope / self.value)

    def log1p(self) -> BallSeries:
        return BallSeries(self.value.log1p(), self.slope / (1 + self.value))

    def sqrt(self) -> BallSeries:
        r = self.value.sqrt()
        return BallSeries(r, self.slope / (2 * r))

    def tanh(self) -> BallSeries:
        th = self.value.tanh()
        return BallSeries(th, (1 - th * th) * self.slope)

    def erf(self) -> BallSeries:
        # erf'(v) = 2/√π · exp(-v²)
        v = self.value
        return BallSeries(v.erf(), 2 * (-(v * v)).exp() / _sqrt_pi(v) * self.slope)

    def sin(self) -> BallSeries:
        return BallSeries(self.value.sin(), self.value.cos() * self.slope)

    def cos(self) -> BallSeries:
        return BallSeries(self.value.cos(), -self.value.sin() * self.slope)

    def is_finite(self) -> bool:
        return bool(self.value.is_finite() and self.slope.is_finite())

    # -- what series cannot do ---------------------------------------------------------------
    def __float__(self) -> float:
        raise TypeError(
            "float() of a first-order ball series would drop its derivative and its proof; "
            "write f with the number system's functions (ns.exp, ns.tanh, ...) or numpy "
            "ufuncs instead of float()/math.*."
        )

    __complex__ = __int__ = __index__ = __float__

    def __bool__(self) -> bool:
        raise TypeError(
            "the truth value of a ball series is undefined (an `if` on a value of f's "
            "argument); compare explicitly, e.g. `x > 0`, so an undecidable case can be named."
        )

    def __lt__(self, other: Any) -> bool:
        return decide(self, other, "<")

    def __le__(self, other: Any) -> bool:
        return decide(self, other, "<=")

    def __gt__(self, other: Any) -> bool:
        return decide(self, other, ">")

    def __ge__(self, other: Any) -> bool:
        return decide(self, other, ">=")

    def __eq__(self, other: object) -> bool:  # exact equality of both coefficients, as arb
        p = self._parts(other)
        return p is not None and bool(self.value == p[0]) and bool(self.slope == p[1])

    __hash__ = None


def is_series(value: Any) -> bool:
    """Whether `value` is a `BallSeries`."""
    return isinstance(value, BallSeries)


def _is_ball(value: Any) -> bool:
    name = type(value).__name__
    return name in ("arb", "acb") and type(value).__module__.startswith("flint")


def _sqrt_pi(v: Any) -> Any:
    return type(v).pi().sqrt() if type(v).__name__ == "arb" else type(v)(type(v).pi()).sqrt()


def _value(x: Any) -> Any:
    return x.value if isinstance(x, BallSeries) else x


_ORDER = {
    "<": (lambda a, b: a < b, lambda a, b: a >= b),
    "<=": (lambda a, b: a <= b, lambda a, b: a > b),
    ">": (lambda a, b: a > b, lambda a, b: a <= b),
    ">=": (lambda a, b: a >= b, lambda a, b: a < b),
}


def decide(left: Any, right: Any, op: str) -> bool:
    """``left op right`` on the value balls, when ball arithmetic proves one answer.

    Arb answers ``a < b`` with True only when every point of a is below every point of b;
    so "True" and "False" are each proven only when the ball comparison or its opposite
    holds. Otherwise the balls overlap the threshold: raise rather than pick a side.

    When either side is a series, the answer must also hold for ``x + t`` with small t
    (else the derivative of the branch taken is not f's): only a *strict* order is proven,
    and a tie — even of exact balls, |x| at x = 0 — raises as well.
    """
    a, b = _value(left), _value(right)
    if isinstance(left, BallSeries) or isinstance(right, BallSeries):
        if a > b:
            return op in (">", ">=")
        if a < b:
            return op in ("<", "<=")
        raise ValueError(
            f"cannot decide {a} {op} {b} for a first-order series: the values are equal or "
            "their balls overlap, so the branch may change within any step (a kink of "
            "ReLU, abs or max, or a tie); its derivative cannot be proven there."
        )
    holds, fails = _ORDER[op]
    if holds(a, b):
        return True
    if fails(a, b):
        return False
    raise ValueError(
        f"cannot decide {a} {op} {b}: the ball straddles the threshold, so ball arithmetic "
        "cannot tell which side the exact value lies on (a ReLU or max at its kink, or a "
        "tie). Move the point off the threshold, or evaluate in a system without balls."
    )


def _sign(x: BallSeries, what: str) -> int:
    if x.value > 0:
        return 1
    if x.value < 0:
        return -1
    raise ValueError(
        f"{what} of a ball series whose value {x.value} contains 0 is not differentiable "
        "there (a kink); ball arithmetic cannot prove its derivative."
    )
