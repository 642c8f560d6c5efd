"""The cost of a proof: the certified MLP check against the arb central reference and the
mpf:50 check, on a [20, 30, 10] sigmoid network with 8 examples (950 weights), in one run.

    flock /tmp/heavy.lock python benchmarks/certified.py [--skip-mpf]

Rows (wall time, best of `REPEAT` except the mpf check, which runs once):

- ``certified reference``: `certified_gradient` alone — one weight at a time in series
  arithmetic on the unperturbed forward pass, arb_mat products (the issue's 10× target is
  against the next row);
- ``arb:50 central``: ``net.numerical_gradient(X, Y, method="central", h=2^-56)`` in
  arb:50, the structure-aware central difference (no proof: an estimate, in ball
  arithmetic);
- ``certified check``: ``net.check_gradient(X, Y, method="certified")`` in arb:50 — the
  reference, backprop in arb and the verdict;
- ``generic taylor``: `gradient(net.loss, θ, method="taylor")`, 950 full series passes of
  the loss (what the structure-aware reference saves);
- ``mpf:50 check``: ``net.check_gradient(X, Y)`` in mpf:50 (complex step + follow-ups).
"""

from __future__ import annotations

import sys
import time

import numpy as np

from precision_nn.certified_network import certified_gradient
from precision_nn.derivatives import gradient
from precision_nn.network import MLP

REPEAT = 3
SIZES = [20, 30, 10]
# an explicit step near u^(1/3) of arb:50 (2^-169): the automatic one costs extra trial
# evaluations, so the explicit step makes the peer cheaper and the ratio conservative
CENTRAL_STEP = f"1/{2**56}"


def _problem():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((8, SIZES[0])).round(6).astype(str)
    Y = np.eye(SIZES[-1])[rng.integers(0, SIZES[-1], 8)]
    return MLP(SIZES, numbers="arb:50", seed=0, l2="0.01"), X, Y


def _best(fn, repeat=REPEAT) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main(skip_mpf: bool) -> None:
    net, X, Y = _problem()
    ns = net.numbers
    Xa, Ya = ns.asarray(X), ns.asarray(Y)
    rows = {
        "certified reference": _best(lambda: certified_gradient(net, Xa, Ya)),
        "arb:50 central": _best(lambda: net.numerical_gradient(X, Y, method="central",
                                                               h=CENTRAL_STEP)),
        "certified check": _best(lambda: net.check_gradient(X, Y, method="certified")),
        "generic taylor": _best(lambda: gradient(lambda p: net.loss(Xa, Ya, params=p),
                                                 net.params, method="taylor", numbers=ns),
                                repeat=1),
    }
    if not skip_mpf:
        mpf = net.to("mpf:50")
        rows["mpf:50 check"] = _best(lambda: mpf.check_gradient(X, Y), repeat=1)
    base = rows["arb:50 central"]
    print(f"[20, 30, 10] x 8 examples, {net.n_params} weights; ratios to arb:50 central")
    print(f"{'':22s} {'seconds':>9s} {'ratio':>8s}")
    for name, seconds in rows.items():
        print(f"{name:22s} {seconds:9.3f} {seconds / base:8.2f}")
    report = net.check_gradient(X, Y, method="certified")
    print(f"verdict: {report.verdict()}")


if __name__ == "__main__":
    main(skip_mpf="--skip-mpf" in sys.argv)
