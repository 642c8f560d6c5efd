"""The verdict of `taylor_test` from its remainders: the orders of r and of the h²-free
remainder D, the resolution a pass states, and when failing orders are pre-asymptotic.

The derivations are in the module docstring of `precision_nn.gradcheck.taylor`; each
threshold here carries its own.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "ASYMPTOTIC",
    "BAND",
    "ELIMINATED_PASS_ORDER",
    "FLOOR_EVIDENCE",
    "FLOOR_RUN",
    "MAX_RESOLUTION",
    "MIN_ORDERS",
    "ROUNDING_EXCESS",
    "R_FAIL_ORDER",
    "error_term",
    "near_one",
    "orders_of",
    "pre_asymptotic",
    "resolution_of",
]

FLOOR_RUN = 3  # ... and then go on until this many remainders in a row are at the floor
# The rounding of a remainder, measured: in the 320 of 634 correct-gradient runs (random
# smooth f and MLP losses in float16/32/64, the false-accusation corpus) that reach steps
# where both remainders sit within 3 floors (pure rounding), |D_k| there reached at most
# 2.5 times its bound q²·floor_{k+1} + floor_k (99th percentile 1.8-2.4). So a value
# counts as at most ROUNDING_EXCESS times its nominal floor off.
ROUNDING_EXCESS = 3.0
# An order read from two values each off by a share ρ is off by up to 2ρ/ln 2; the
# threshold 2 sits 1 from the orders 1 (wrong) and 3 (right) of D: allowing half that,
# ρ <= ln 2/4, a value is usable above ROUNDING_EXCESS·4/ln 2 ≈ 17 times its floor. (The
# former 100 left out remainders at 13-80 floors whose D's fell as h: a 3% error passed.)
BAND = ROUNDING_EXCESS * 4 / np.log(2)
MIN_ORDERS = 2  # at least this many usable halvings are needed for a verdict
ASYMPTOTIC = 3  # the observed order is the median of the last this-many usable orders
ELIMINATED_PASS_ORDER = 2.0  # the h²-free remainder shrinks as h³ (right) or h (wrong)
# r itself shrinks as h² (right) or h (wrong, e·h above c·h²): midway. An order read at
# BAND floors is off by at most 2·(ROUNDING_EXCESS/BAND)/ln 2 = 0.5, the margin to 1 and 2
R_FAIL_ORDER = 1.5
# A pass is a verdict only if it would have seen a relative error along v of this size
# (a dropped term or factor is an error of order 1; 10% leaves a factor 10)
MAX_RESOLUTION = 0.1
# a failing order counts only if the error it needs is within this factor of what the
# band of the smallest steps allows (`pre_asymptotic`)
FLOOR_EVIDENCE = 10.0


def orders_of(hs: np.ndarray, values: np.ndarray, usable: np.ndarray
              ) -> tuple[np.ndarray, float, int]:
    """Orders between consecutive usable values, the median of the last ASYMPTOTIC of
    them (the asymptotic order is that of the smallest usable steps), and their count."""
    with np.errstate(divide="ignore", invalid="ignore"):
        orders = np.log(values[:-1] / values[1:]) / np.log(hs[:-1] / hs[1:])
    orders = np.where(usable[:-1] & usable[1:], orders, np.nan)
    good = orders[~np.isnan(orders)]
    observed = float(np.median(good[-ASYMPTOTIC:])) if good.size else float("nan")
    return orders, observed, int(good.size)


def near_one(orders: np.ndarray) -> bool:
    """Whether the last usable orders of r all lie within ``R_FAIL_ORDER − 1`` of 1 (an
    error term e·h above c·h² at each); a correct gradient's r near a zero of
    ``c·h² + d·h³`` at the largest steps has orders anywhere (-1.5, then 1.4): no run
    at 1."""
    good = orders[~np.isnan(orders)][-ASYMPTOTIC:]
    return bool(np.all(np.abs(good - 1) <= R_FAIL_ORDER - 1))


def error_term(hs: np.ndarray, values: np.ndarray, q: np.ndarray) -> np.ndarray:
    """The |e| = |vᵀ(∇f − g)| that a D_k (or a bound on it) stands for:
    ``D = e·h_{k+1}·(q² − q)``."""
    return values / (hs[1:] * (q ** 2 - q))


def resolution_of(hs: np.ndarray, eliminated: np.ndarray, e_floor: np.ndarray,
                  e_usable: np.ndarray, q: np.ndarray) -> float:
    """The smallest |e| = |vᵀ(∇f − g)| these steps would have failed (module docstring).

    e fails once the last usable D's have order below 2: at ``MIN_ORDERS + 1`` consecutive
    steps ``e·h·(q² − q)`` must clear ``BAND`` times the rounding of D and dominate the h³
    term, ``e·h·(q² − q) >= |d|·h³·q²·(q − 1)/2`` (for ``D = a·h + b·h³``, halving h gives
    order ``1 + log2((1 + λ)/(1 + λ/4))``, below 2 while ``λ = b·h²/a < 2``). |d| is read
    from the smallest usable D's (order 3 there for a passing gradient), or bounded by the
    floor where none is usable. The resolution is the least e meeting both at some run of
    steps."""
    cube = hs[1:] ** 3 * q ** 2 * (q - 1)
    if e_usable.any():
        d = float(np.median((eliminated / cube)[e_usable][-ASYMPTOTIC:]))
    else:  # every D within its band: |d|·cube <= BAND·floor at each step, tightest at the top
        d = float(np.min(BAND * e_floor / cube))
    need = np.maximum(error_term(hs, BAND * e_floor, q),
                      error_term(hs, d * cube / 2, q))
    run = MIN_ORDERS + 1
    if need.size < run:
        return float("inf")
    windows = np.lib.stride_tricks.sliding_window_view(need, run).max(axis=1)
    return float(np.min(windows))


def pre_asymptotic(hs: np.ndarray, e_floor: np.ndarray, e_usable: np.ndarray,
                   q: np.ndarray, implied: np.ndarray) -> bool:
    """Whether a failing order comes from steps above f's length scale, not from the
    gradient: the h²-free remainders end within their band from some step on (at least
    ``FLOOR_RUN`` of them), which bounds the error term there: two consecutive D's,
    ``e + t`` and ``e + t/q²`` (the h³ term t shrinks by q² a halving), give
    ``|e| <= (q²·E_{j+1} + E_j)/(q² − 1)`` with E the e each D's band stands for. The
    failing orders need an e ``FLOOR_EVIDENCE`` times larger (`implied`: the e of the last
    usable D's, or r/h of the last usable remainders). A log-sum-exp of huge logits is
    piecewise linear at steps of 1e5 (order 1) and exactly linear below its length scale;
    a ReLU whose kink lies inside the largest steps is quadratic below it: their correct
    gradients failed. A wrong gradient's order-1 D's fall into their band as h, at the e
    they stand for: no such gap."""
    # the FLOOR_RUN remainders in the band that end the default steps give FLOOR_RUN − 1 D's
    tail = FLOOR_RUN - 1
    if e_usable.size < tail or e_usable[-tail:].any() or not implied.size:
        return False
    # the first of the trailing band steps
    first = int(np.flatnonzero(e_usable)[-1]) + 1 if e_usable.any() else 0
    band = error_term(hs, BAND * e_floor, q)
    qq = q[first + 1] ** 2
    bound = (qq * band[first + 1] + band[first]) / (qq - 1)
    return bool(np.min(implied[-ASYMPTOTIC:]) > FLOOR_EVIDENCE * bound)
