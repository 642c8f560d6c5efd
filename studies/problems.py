"""The test problems of the studies, each with an independent high-precision reference.

Scalar functions are written once against a `NumberSystem` (so the same formula runs in
float16 and in mpf:200, and in the complex counterpart for the complex step); their exact
derivatives come from closed forms evaluated by mpmath at `REFERENCE_DPS` digits, and the
higher derivatives that set the truncation constants from `mpmath.diff` at that precision.

The network problem is an `MLP` whose inputs and parameters are dyadic rationals with few
bits (multiples of 2^-6 of magnitude < 4), so every number system, float16 included,
holds *exactly the same* problem and one reference gradient — backprop in
``mpf:REFERENCE_DPS`` — serves them all.
"""

from __future__ import annotations

import dataclasses
import decimal
import functools
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import mpmath
import numpy as np

from precision_nn.network import MLP
from precision_nn.numbers import NumberSystem, number_system

__all__ = [
    "FUNCTIONS",
    "MAX_DIGITS",
    "REFERENCE_DPS",
    "NetworkProblem",
    "ScalarProblem",
    "estimate",
    "exact",
    "log10_relative_error",
    "network_problem",
    "problem",
    "problem_derivatives",
    "random_network_problem",
    "reference_dps",
    "relative_error",
    "to_mpf",
]

# The most digits of any system a study may use (`precision_sweep` goes to 1000).
MAX_DIGITS = 1000


def reference_dps(digits: int) -> int:
    """Digits a reference needs against systems of up to `digits` digits: ``2·digits + 20``.

    The rule: a measured relative error can be as small as the system's u ≈ 10^-digits
    (the complex step, Richardson), and it must itself be right to many digits, so the
    reference carries twice the digits (its own error, ~10^-(2·digits), is then 10^-digits
    times the smallest error measured, invisible in any log10 of an error) plus 20 guard
    digits for the cancellation of |value − exact|. This is also the "mpmath at twice the
    digits" of the library's own tests.
    """
    return 2 * digits + 20


# Digits of every reference (2020): `reference_dps` of the largest precision studied, so one
# cached reference serves every system from float16 to 1000 digits (its cost is negligible:
# a scalar f' in microseconds, the network's backprop in 0.04 s).
REFERENCE_DPS = reference_dps(MAX_DIGITS)


@dataclass(frozen=True)
class ScalarProblem:
    """A scalar function f at a point x0 (a decimal string, exact in every system)."""

    name: str
    x0: str
    formula: str
    build: Callable[[NumberSystem], Callable[[Any], Any]]
    mp_f: Callable[[Any], Any]
    mp_df: Callable[[Any], Any]

    def shifted(self, k: int, *, spacing: int = 64) -> ScalarProblem:
        """The same function at x0 + k/spacing (exact: spacing a power of two)."""
        x0 = decimal.Decimal(self.x0) + decimal.Decimal(k) / decimal.Decimal(spacing)
        return dataclasses.replace(self, x0=str(x0))

    def function(self, ns: NumberSystem) -> Callable[[Any], Any]:
        """f written against `ns` (pass ``ns.complex()`` for the complex step)."""
        return self.build(ns)

    def exact_derivative(self) -> Any:
        """f'(x0) as an mpf of `REFERENCE_DPS` digits."""
        with mpmath.workdps(REFERENCE_DPS):
            return self.mp_df(mpmath.mpf(self.x0))

    def taylor(self, n: int) -> list[float]:
        """|f^(k)(x0)| for k = 0..n, as floats (for the truncation constants)."""
        return _taylor(self.name, n)


def _sigmoid_ns(ns: NumberSystem) -> Callable[[Any], Any]:
    one = ns.one
    return lambda x: one / (one + ns.exp(-x))


def _sigmoid_mp(x):
    return 1 / (1 + mpmath.exp(-x))


FUNCTIONS: dict[str, ScalarProblem] = {
    problem.name: problem for problem in [
        ScalarProblem("exp", "1", "exp(x) at x = 1", lambda ns: ns.exp, mpmath.exp,
                      mpmath.exp),
        ScalarProblem("sin", "0.75", "sin(x) at x = 0.75", lambda ns: ns.sin, mpmath.sin,
                      mpmath.cos),
        ScalarProblem("sigmoid", "0.5", "1/(1+exp(-x)) at x = 0.5", _sigmoid_ns, _sigmoid_mp,
                      lambda x: _sigmoid_mp(x) * (1 - _sigmoid_mp(x))),
    ]
}


@functools.cache
def _taylor(name: str, n: int) -> list[float]:
    problem = FUNCTIONS[name]
    with mpmath.workdps(60):
        x0 = mpmath.mpf(problem.x0)
        return [float(abs(mpmath.diff(problem.mp_f, x0, k))) for k in range(n + 1)]


# -- the network ----------------------------------------------------------------------------
@dataclass(frozen=True)
class NetworkProblem:
    """An MLP loss J(θ) at θ0 with data (X, Y); all entries exact in every system."""

    layer_sizes: tuple[int, ...]
    X: np.ndarray  # float64 array of dyadic values
    Y: np.ndarray
    params: np.ndarray  # float64 array of dyadic values
    hidden: str = "sigmoid"
    l2: str = "0"  # λ as a decimal string: exact in every system

    def network(self, numbers: str | NumberSystem) -> MLP:
        """The network in `numbers` (parameters exact)."""
        return MLP(list(self.layer_sizes), hidden=self.hidden, numbers=numbers,
                   init=self.params, l2=self.l2)

    def loss_function(self, numbers: str | NumberSystem) -> Callable[[Any], Any]:
        """θ ↦ J(θ) in `numbers`; accepts a stack of parameter vectors."""
        net = self.network(numbers)
        X, Y = net.numbers.asarray(self.X), net.numbers.asarray(self.Y)
        return lambda theta: net.loss(X, Y, theta)

    def reference_gradient(self) -> list:
        """∇J(θ0) by backprop in ``mpf:REFERENCE_DPS`` (list of mpf)."""
        return list(_reference_gradient(self))

    def __hash__(self) -> int:
        return hash((self.layer_sizes, self.X.tobytes(), self.Y.tobytes(),
                     self.params.tobytes(), self.hidden, self.l2))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NetworkProblem) and hash(self) == hash(other)


@functools.lru_cache(maxsize=8)
def _reference_gradient(problem: NetworkProblem) -> tuple:
    ns = number_system(f"mpf:{REFERENCE_DPS}")
    net = problem.network(ns)
    return tuple(net.gradient(ns.asarray(problem.X), ns.asarray(problem.Y)))


def random_network_problem(seed: int) -> NetworkProblem:
    """A network with seeded random shape, activation, batch size and λ (for many trials).

    Inputs 2-6, one hidden layer of 2-8 units (sigmoid or tanh), 1-4 sigmoid outputs with
    cross-entropy, 2-10 examples, λ in {0.01, 0.1, 1}.
    """
    rng = np.random.default_rng([seed, 20261125])
    sizes = (int(rng.integers(2, 7)), int(rng.integers(2, 9)), int(rng.integers(1, 5)))
    base = network_problem(sizes, examples=int(rng.integers(2, 11)), seed=seed)
    return NetworkProblem(base.layer_sizes, base.X, base.Y, base.params,
                          hidden=str(rng.choice(["sigmoid", "tanh"])),
                          l2=str(rng.choice(["0.01", "0.1", "1"])))


def network_problem(layer_sizes: tuple[int, ...] = (3, 4, 2), *, examples: int = 5,
                    seed: int = 0) -> NetworkProblem:
    """A seeded sigmoid MLP with cross-entropy loss, dyadic inputs, targets and weights.

    Weights are N(0, 1/fan_in) draws rounded to multiples of 2^-6 and inputs uniform on
    [-1, 1] rounded to multiples of 2^-4: at most 9 significant bits, so float16 (11 bits)
    represents them exactly.
    """
    rng = np.random.default_rng(seed)
    sizes = list(layer_sizes)
    shapes = [(fan_out, fan_in + 1) for fan_in, fan_out in itertools.pairwise(sizes)]
    weights = np.concatenate([rng.standard_normal(s).ravel() / np.sqrt(s[1]) for s in shapes])
    params = np.round(weights * 64) / 64
    X = np.round(rng.uniform(-1, 1, size=(examples, sizes[0])) * 16) / 16
    Y = (rng.uniform(size=(examples, sizes[-1])) < 0.5).astype(float)
    return NetworkProblem(tuple(sizes), X, Y, params)


# -- measuring errors -------------------------------------------------------------------------
def to_mpf(value: Any) -> Any:
    """An exact mpmath number (at the current precision) from any system's scalar."""
    if isinstance(value, (np.floating, float, np.integer, int)):
        return mpmath.mpf(float(value)) if not isinstance(value, (int, np.integer)) \
            else mpmath.mpf(int(value))
    if isinstance(value, (np.complexfloating, complex)):
        return mpmath.mpc(float(value.real), float(value.imag))
    if hasattr(value, "_mpf_"):  # an mpf of any mpmath context (each has its own class)
        return mpmath.mpf(value._mpf_)
    if hasattr(value, "_mpc_"):
        real, imag = value._mpc_
        return mpmath.mpc(mpmath.mpf(real), mpmath.mpf(imag))
    return mpmath.mpmathify(str(value))  # Decimal: its exact decimal string


def relative_error(value: Any, exact: Any) -> float:
    """‖value − exact‖₂ / ‖exact‖₂ computed at `REFERENCE_DPS` digits, as a float.

    `value` is a scalar or a vector of any number system; `exact` mpf(s) of the same shape.
    Below about 1e-308 the float underflows to 0: use `log10_relative_error` there.
    """
    with mpmath.workdps(REFERENCE_DPS):
        return float(_relative_error(value, exact))


def log10_relative_error(value: Any, exact: Any) -> float:
    """log10 of `relative_error`, exact far below the float range (−inf for no error).

    Examples
    --------
    >>> import mpmath
    >>> with mpmath.workdps(1100):
    ...     exact = mpmath.mpf(2)
    ...     value = exact * (1 + mpmath.mpf(10) ** -900)
    >>> round(log10_relative_error(value, exact), 6)
    -900.0
    """
    with mpmath.workdps(REFERENCE_DPS):
        ratio = _relative_error(value, exact)
    if ratio == 0:
        return -math.inf
    with mpmath.workdps(30):  # the ratio is exact to 2020 digits; its log10 needs 17
        return float(mpmath.log10(ratio))


def _relative_error(value: Any, exact: Any) -> Any:
    """The relative error as an mpf (call inside ``workdps(REFERENCE_DPS)``)."""
    values = np.ravel(np.asarray(value, dtype=object))
    exacts = np.ravel(np.asarray(exact, dtype=object))
    diff = mpmath.sqrt(mpmath.fsum(abs(to_mpf(v) - e) ** 2 for v, e in zip(values, exacts)))
    return diff / mpmath.sqrt(mpmath.fsum(abs(e) ** 2 for e in exacts))


# -- estimating with the library ------------------------------------------------------------
def estimate(problem: ScalarProblem | NetworkProblem, numbers: str, label: str, *,
             h: float | None) -> Any:
    """The library's `Estimate` of f'(x0) (scalar) or ∇J(θ0) (network) by method `label`.

    The function is built in the complex counterpart of `numbers` for the complex step,
    so that it is evaluated on x0 + ih with no silent conversion.
    """
    from precision_nn.derivatives import derivative, gradient
    from studies.laws import METHODS

    spec = METHODS[label]
    ns = number_system(numbers)
    evaluation = ns.complex() if spec.method == "complex_step" else ns
    if isinstance(problem, ScalarProblem):
        f, x0, rule = problem.function(evaluation), ns.asarray(problem.x0)[()], derivative
    else:
        f, x0, rule = problem.loss_function(evaluation), ns.asarray(problem.params), gradient
    return rule(f, x0, method=spec.method, h=h, order=spec.order, numbers=ns)


def exact(problem: ScalarProblem | NetworkProblem) -> Any:
    """The reference derivative (mpf) or gradient (list of mpf)."""
    if isinstance(problem, ScalarProblem):
        return problem.exact_derivative()
    return problem.reference_gradient()


def problem(name: str, *, seed: int = 0) -> ScalarProblem | NetworkProblem:
    """A scalar function of `FUNCTIONS` by name, or ``"mlp"``: the seeded network problem."""
    if name == "mlp":
        return network_problem(seed=seed)
    if name not in FUNCTIONS:
        raise ValueError(f"unknown problem {name!r}; valid: {sorted(FUNCTIONS) + ['mlp']}.")
    return FUNCTIONS[name]


def problem_derivatives(p: ScalarProblem | NetworkProblem, n: int = 5) -> list[float] | None:
    """|f^(k)(x0)| for k = 0..n for a scalar problem; None for the network."""
    return p.taylor(n) if isinstance(p, ScalarProblem) else None
