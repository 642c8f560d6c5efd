"""Full numerical gradients of an MLP loss: precision_nn against peer tools, one run.

    python benchmarks/gradient.py            # the [64, 128, 10] batch-32 float64 net
    python benchmarks/gradient.py --quick    # smaller nets, seconds
    python benchmarks/gradient.py --vectorised [N ...]   # only the generic gradient(f) tables

Every row differentiates the same loss at the same parameters and is compared with the
analytic gradient (`MLP.gradient`): seconds, the ratio to a baseline measured in the same
run, and ``max|numerical − analytic| / max|analytic|``. Peers that are not installed
(``pip install -e '.[bench]'`` brings numdifftools; torch is left to the user) are listed
as such. The mpf:50 part compares the structure-aware gradient with a naive loop of full
loss evaluations on a [20, 30, 10] net, and the same net's gradients in mpfr:50 and arb:50
with that loop (`multiprecision_rows`).
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from naive import naive_central, naive_complex_step  # benchmarks/naive.py

from precision_nn.derivatives import evaluation, gradient
from precision_nn.network import MLP
from precision_nn.numbers import NumberSystem

SEED = 0
# u^(1/3) of float64, a power of two: the central step every fixed-step row uses
CENTRAL_STEP = 2.0**-17
# the sizes of the generic gradient(f) tables
VECTORISED_SIZES = (100, 300, 1000, 2000)
# the networks whose loss is also differentiated as a black box by gradient(f)
NETWORK_LOSSES = (([16, 32, 10], 8), ([64, 128, 10], 32))


@dataclass(frozen=True)
class Row:
    tool: str
    method: str
    seconds: float
    accuracy: float | None  # max|num − analytic| / max|analytic|
    note: str = ""


def problem(sizes: list[int], batch: int, spec: str) -> tuple[MLP, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(SEED)
    net = MLP(sizes, seed=SEED).to(spec)
    X = net.numbers.asarray(rng.normal(size=(batch, sizes[0])))
    labels = rng.integers(0, sizes[-1], size=batch)
    Y = net.numbers.asarray(np.eye(sizes[-1])[labels])
    return net, X, Y


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def accuracy(ns: NumberSystem, numerical: Any, analytic: np.ndarray) -> float:
    """The difference is taken in the system itself (in float64 an mpf:50 error vanishes)."""
    with ns.context():
        difference = np.asarray(numerical) - ns.asarray(analytic)
    scale = np.max(np.abs(ns.to_float(ns.asarray(analytic))))
    return float(np.max(np.abs(ns.to_float(difference))) / scale)


# -- precision_nn -----------------------------------------------------------------------
def structure_aware(net: MLP, X: np.ndarray, Y: np.ndarray, method: str, h: Any) -> Any:
    """`MLP.numerical_gradient`: only what one weight's perturbation changes is recomputed."""
    return net.numerical_gradient(X, Y, method=method, h=h)


def precision_nn_rows(net: MLP, X: np.ndarray, Y: np.ndarray, analytic: np.ndarray,
                      quick: bool) -> list[Row]:
    ns = net.numbers
    loss = lambda p: net.loss(X, Y, params=p)
    complex_net = net.to(ns.complex())
    Xc, Yc = ns.complex().asarray(X), ns.complex().asarray(Y)
    complex_loss = lambda p: complex_net.loss(Xc, Yc, params=p)
    runs = [
        ("MLP structure-aware", "central h=2^-17",
         lambda: structure_aware(net, X, Y, "central", CENTRAL_STEP)),
        ("MLP structure-aware", "central h=None",
         lambda: structure_aware(net, X, Y, "central", None)),
        ("MLP structure-aware", "complex_step",
         lambda: structure_aware(net, X, Y, "complex_step", None)),
        ("MLP structure-aware", "richardson",
         lambda: structure_aware(net, X, Y, "richardson", None)),
        ("gradient(f) batched", "central h=2^-17",
         lambda: gradient(loss, net.params, h=CENTRAL_STEP)),
        ("gradient(f) batched", "complex_step",
         lambda: gradient(complex_loss, net.params, method="complex_step")),
        ("naive loop", "central h=2^-17", lambda: naive_central(net, X, Y, CENTRAL_STEP)),
    ]
    if not quick:
        runs.insert(6, ("gradient(f) batched", "richardson",
                        lambda: gradient(loss, net.params, method="richardson")))
    rows = []
    for tool, method, run in runs:
        result, seconds = timed(run)
        value = getattr(result, "value", result)
        note = f"{result.evaluations} evaluations" if hasattr(result, "evaluations") else ""
        rows.append(Row(tool, method, seconds, accuracy(ns, value, analytic), note))
    return rows


# -- peers ---------------------------------------------------------------------------------
def scipy_row(net: MLP, X: np.ndarray, Y: np.ndarray, analytic: np.ndarray) -> Row:
    from scipy.optimize import approx_fprime

    loss = lambda p: float(net.loss(X, Y, params=p))
    step = float(np.sqrt(net.numbers.unit_roundoff))  # forward differences: u^(1/2)
    value, seconds = timed(lambda: approx_fprime(net.params, loss, step))
    return Row("scipy approx_fprime", "forward", seconds, accuracy(net.numbers, value, analytic))


def numdifftools_row(net: MLP, X: np.ndarray, Y: np.ndarray, analytic: np.ndarray) -> Row:
    if importlib.util.find_spec("numdifftools") is None:
        return Row("numdifftools.Gradient", "central", float("nan"), None, "not installed")
    import numdifftools as nd

    loss = lambda p: float(net.loss(X, Y, params=p))
    value, seconds = timed(lambda: nd.Gradient(loss, method="central")(net.params))
    return Row("numdifftools.Gradient", "central (Richardson)", seconds,
               accuracy(net.numbers, value, analytic))


def torch_rows(net: MLP, X: np.ndarray, Y: np.ndarray) -> list[Row]:
    """torch.autograd.gradcheck on the same loss written in torch (numerical Jacobian +
    comparison with autograd, slow and fast mode); its accuracy is not exposed."""
    if importlib.util.find_spec("torch") is None:
        return [Row("torch gradcheck", mode, float("nan"), None, "not installed")
                for mode in ("slow", "fast")]
    import torch

    torch.set_num_threads(1)  # as the numpy rows; many threads thrash a loaded 2-core box
    Xt, Yt = torch.tensor(X), torch.tensor(Y)
    theta = torch.tensor(net.params, requires_grad=True)

    def loss(flat):
        a, start = Xt, 0
        for fan_out, fan_in1 in net.shapes:
            W = flat[start:start + fan_out * fan_in1].reshape(fan_out, fan_in1)
            start += fan_out * fan_in1
            a = torch.sigmoid(W[:, 0] + a @ W[:, 1:].T)
        ce = -(Yt * torch.log(a) + (1 - Yt) * torch.log(1 - a))
        return ce.sum() / Xt.shape[0]

    rows = []
    for mode, fast in (("slow", False), ("fast", True)):
        _, seconds = timed(lambda fast=fast: torch.autograd.gradcheck(
            loss, (theta,), eps=CENTRAL_STEP, atol=1e-5, fast_mode=fast))
        rows.append(Row("torch gradcheck", mode, seconds, None))
    return rows


# -- mpf:50 -------------------------------------------------------------------------------
def multiprecision_rows(sizes: list[int], batch: int) -> list[Row]:
    """The mpf:50 structure-aware gradient and the naive loop (the baseline, second row),
    then the same net's gradients in the faster 50-digit systems: structure-aware central
    and complex step in mpfr:50 (where the check's automatic reference runs), arb:50
    structure-aware central, and arb:50 backprop. Accuracy is against mpf:50 backprop."""
    net, X, Y = problem(sizes, batch, "mpf:50")
    analytic = net.gradient(X, Y)
    step = "1e-17"  # u^(1/3) of mpf:50
    fast, fast_s = timed(lambda: structure_aware(net, X, Y, "central", step))
    slow, slow_s = timed(lambda: naive_central(net, X, Y, step))
    rows = [Row("MLP structure-aware (mpf:50)", "central h=1e-17", fast_s,
                accuracy(net.numbers, fast.value, analytic)),
            Row("naive loop (mpf:50)", "central h=1e-17", slow_s,
                accuracy(net.numbers, slow, analytic))]
    for spec, method in (("mpfr:50", "central"), ("mpfr:50", "complex_step"),
                         ("arb:50", "central")):
        other = net.to(spec)
        Xo, Yo = other.numbers.asarray(X), other.numbers.asarray(Y)
        est, s = timed(lambda o=other, a=Xo, b=Yo, m=method: structure_aware(o, a, b, m,
                                                                             None))
        with net.numbers.context():
            value = net.numbers.asarray(est.value)  # exact: the same binary precision
        rows.append(Row(f"MLP structure-aware ({spec})", f"{method} h=None", s,
                        accuracy(net.numbers, value, analytic),
                        f"{est.evaluations} evaluations"))
    ball = net.to("arb:50")
    Xb, Yb = ball.numbers.asarray(X), ball.numbers.asarray(Y)
    value, s = timed(lambda: ball.gradient(Xb, Yb))
    with net.numbers.context():
        value = net.numbers.asarray(value)
    rows.append(Row("MLP.gradient backprop (arb:50)", "analytic", s,
                    accuracy(net.numbers, value, analytic), "certified balls"))
    return rows


# -- generic gradient(f) on a vectorised f --------------------------------------------------
def vectorised_rows(n: int) -> list[Row]:
    """`gradient(f, x)` (batched, with error bars) against naive loops on the same cheap
    f, ``f(v) = Σ_j w_j·exp(sin v_j)``, which accepts one point (n,) or a stack (k, n).

    What each side computes (the counts are the ``evaluations`` the rows print):

    - ``gradient(f) central h=2^-17``: for every coordinate f at ``x ± h·e_i`` (the
      quotient) and at ``x + 2h·e_i`` (the witness of the h² term: the error bar's one
      extra evaluation per coordinate), f(x) once, the stack probe (f on 2 stacked
      points, to learn that f accepts a stack), the resolution probe (2 points at one
      coordinate) and the measurement of f's noise (27 points at that coordinate,
      `derivatives.noise`); stacked into batches of the evaluator's measured size; value,
      error bar, note. ``naive loop central h=2^-17``: the same quotient at the same h, 2n calls of
      f on one point each, no error bar.
    - ``gradient(f) central h=None``: as above at steps it chooses per coordinate from
      ``u^(1/3)·max(|x_i|, 1)`` (rounded to a power of 2) and its error model (here one
      round). ``naive loop central h=rule``: the same quotient at that initial step rule,
      2n calls, no error bar.
    - ``gradient(f) complex_step``: for every coordinate f at ``x + i·h·e_i`` with
      ``h = 2^round(log2(u·max(|x_i|, 1)))`` and at a second step ``h₂ ≈ √u·max(|x_i|, 1)``
      (the error bar's one extra evaluation per coordinate), the stack probe, and the
      real cross-check (f(x) and 2 real points at one coordinate). ``naive loop
      complex_step h=rule``: ``Im f(x + i·h·e_i)/h`` at the same h, n calls, no bar.

    The last row of each table, ``bound: f in stacks only``, is the fastest any batched
    path making the same evaluations could be: every point at the cost of a point inside a
    batch of the best size (`stack_gain`; its note: f alone and in a stack, per point), no
    bookkeeping at all. Its ratio to the loop is about ``(alone / in a stack) × 2n/(3n+34)``
    for central differences and ``× n/(2n+6)`` for the complex step: the error bar's one
    extra evaluation per coordinate against a loop without one.

    Measured on a 2-core Xeon (one run, ``python benchmarks/gradient.py --vectorised 100
    300 1000``, 2026-12-02, after the noise measurement of `derivatives.noise` added 27
    points and one batched call to every central gradient; ratios to the naive loop, the
    bound in brackets; ours vary by ± 0.1 between runs, the bounds at n = 100 more):

    =====  ====================  =============  ==============  ==================
    n      alone / in a stack    central        complex step    alone / in a stack
           (real)                                               (complex)
    =====  ====================  =============  ==============  ==================
    100    4.2                   0.8  [2.7]     0.6  [1.3]      2.4
    300    2.1                   1.0  [1.4]     0.6  [0.8]      1.5
    1000   1.3                   0.8  [0.9]     0.5  [0.6]      1.2
    =====  ====================  =============  ==============  ==================

    Re-measured after the evaluator began measuring its batch size (the same command,
    2026-12-02, later): n = 100 0.8 [2.5] and 0.7 [1.3]; n = 300 1.0 [1.3] and 0.7 [0.8];
    n = 1000 0.8 [0.9] and 0.5 [0.6], the bounds now over every size it may choose. On
    this f the 128 KiB start is already the best size, so nothing moved.

    (Before that measurement, same machine, an earlier run: n = 100 1.0 [4.9] and 0.6
    [1.3]; n = 300 1.3 [2.0] and 0.7 [0.8]; n = 1000 0.8 [1.1] and 0.5 [0.6]; n = 2000
    0.7 [0.9] and 0.5 [0.5]. The 27 points buy bars that bound the true error where f
    rounds beyond κu·|f|, module notes of `derivatives.noise`.)

    So the goal of 2× is out of reach for this f at every size, for two different
    reasons. From n ≈ 300 up f's own arithmetic bounds it: a point in a stack costs only
    1.1-2.8 times less than alone (sin and exp of every entry dominate; a stack saves the
    Python call), and the error bar's witness adds n evaluations, so even a path with no
    bookkeeping would reach at most 2.0× (central) and 0.8× (complex step) at n = 300,
    and less than the loop from n ≈ 1,000 (complex step: already at 300). There the
    batched path runs at 65-100% of its bound (the rest: ~20 us per batch to form and
    check it, and the fixed cost below); evaluating one by one instead would cost (3n or
    2n) × the time alone, slower still. At n = 100 the bound was 4.9× (central; 2.7×
    with the 27 noise points) and 1.3× (complex step), and what separates us from it is
    the fixed cost of the error model: about 0.45 ms per call whatever n (measured at
    n = 4, before the noise measurement added ~0.1 ms), of which the resolution
    probe (or the complex step's cross-check in real arithmetic) takes 0.2-0.25 ms, the
    finite-difference bookkeeping (`finite_difference._at_steps`) most of the rest, and the
    batching probe 0.06 ms; a naive loop of 2n = 200 calls takes about 0.8 ms in all.

    Where that fixed cost goes (pyinstrument, n = 100, central h=2^-17, 2026-12-02, second
    half): the stencil's bookkeeping around the two batched calls (`_evaluate_offsets`,
    `_level`, `witness_difference`, `_input_rounding`: dozens of numpy operations on
    arrays of n entries, ~1-2 us each) about 25% of the call, the resolution probe about
    30% (2 points, but the same generic stencil path at one coordinate), the batching
    probe (2 points alone, timed, and a stack of 2) and f(x) about 10%, `convert_h` and
    `check_steps` 7%, forming the stacks 3%; f itself in its batches only 15%. No single
    operation dominates, so only fewer operations (not faster ones) would move it. Taking
    values that are already of the system's numpy dtype without re-checking them
    (`Evaluator._convert`: only their finiteness is tested) removed per-value checks that
    cost more than f at small n (about 7% of the complex step's call at n = 4 under the
    profiler); within the noise of this shared machine (± 20% between runs) the ratios
    did not move measurably.

    *A cheaper witness for the complex step, considered and not taken.* Its bar's second
    evaluation per coordinate, ``D_i(h₂)`` at ``h₂ ≈ √u·scale``, could be replaced by a
    few directional complex steps ``Im f(x + i·h₂·d)/h₂`` compared with ``Σ d_i·D_i(h)``,
    falling back to the per-coordinate witness only when they disagree. That is not
    honest at the resolution the bar claims, for two reasons:

    - *Resolution.* Along d the comparison is floored by the rounding of the directional
      value, ``κu·Σ_i |d_i|·|t_i| ≥ κu·Σ_i |d_i·D_i|``, of order ``n·u·‖D‖∞`` for a dense
      gradient; the per-coordinate bar it would vouch for is ``8u·max(|D_i|, 4‖D‖∞)``.
      A disagreement confined to one coordinate (digits lost in that coordinate's complex
      path: mpmath's asin at x + ih, module notes of `complex_step`) between the two
      levels, up to ~n/32 times the bar (30× at n = 1,000), passes the aggregate test, and
      that coordinate keeps a bar that does not bound its error: a tight bar that lies.
      A narrow feature of width ~1e-8 at one coordinate would be seen (its h₂² term is of
      the order of ``D_j`` itself), but the lost-digit case is what the witness is for.
    - *Different quantity.* The directional third-order term is ``Σ_{ijk} d_i d_j d_k
      f_ijk``, mixed derivatives included, while the per-coordinate witnesses measure only
      ``f_iii``; an f whose mixed and diagonal third derivatives cancel along the seeded
      directions (``g(x_1 − x_2)``-like terms) shows nothing along d while each
      coordinate's h₂² term is large. Random signs make that improbable for a given f
      but not impossible for a structured one, and the directions are seeded.

    Making it honest would mean widening every bar to the aggregate's resolution
    (~``n·u·‖D‖∞``), the bar of a central difference, which undoes the point of the
    complex step. So the witness stays per coordinate, and with it the complex step's
    bound of about ``(alone / in a stack) × n/(2n+6)`` above.
    """
    rng = np.random.default_rng(SEED)
    weights = rng.uniform(0.5, 1.5, n)
    x = rng.normal(size=n) / 4

    def f(v):
        return np.sum(weights * np.exp(np.sin(v)), axis=-1)

    exact = weights * np.exp(np.sin(x)) * np.cos(x)
    gradient(lambda v: np.sum(np.sin(v), axis=-1), x[:4])  # warm-up: the first call imports the number systems (~1.4 s)
    u = 2.0**-53
    scale = np.maximum(np.abs(x), 1.0)
    central_rule = np.exp2(np.rint(np.log2(scale * u ** (1 / 3))))
    complex_rule = np.exp2(np.rint(np.log2(scale * u)))

    def naive_loop(h: np.ndarray) -> np.ndarray:
        p, out = x.copy(), np.zeros(n)
        for i in range(n):
            saved = p[i]
            p[i] = saved + h[i]
            plus = f(p)
            p[i] = saved - h[i]
            minus = f(p)
            p[i] = saved
            out[i] = (plus - minus) / (2 * h[i])
        return out

    def naive_complex_loop(h: np.ndarray) -> np.ndarray:
        p, out = x.astype(np.complex128), np.zeros(n)
        for i in range(n):
            saved = p[i]
            p[i] = saved + 1j * h[i]
            out[i] = f(p).imag / h[i]
            p[i] = saved
        return out

    fixed = np.full(n, CENTRAL_STEP)
    runs = [("gradient(f) batched", "central h=2^-17", lambda: gradient(f, x, h=CENTRAL_STEP)),
            ("naive loop", "central h=2^-17", lambda: naive_loop(fixed)),
            ("gradient(f) batched", "central h=None", lambda: gradient(f, x)),
            ("naive loop", "central h=rule", lambda: naive_loop(central_rule)),
            ("gradient(f) batched", "complex_step",
             lambda: gradient(f, x, method="complex_step")),
            ("naive loop", "complex_step h=rule", lambda: naive_complex_loop(complex_rule))]
    best = [math.inf] * len(runs)
    results: list[Any] = [None] * len(runs)
    for _ in range(5):  # best of 5, interleaved: the n = 100 rows take milliseconds
        for k, (_, _, run) in enumerate(runs):
            result, seconds = timed(run)
            results[k], best[k] = result, min(best[k], seconds)
    rows = []
    for (tool, method, _), result, seconds in zip(runs, results, best):
        value = getattr(result, "value", result)
        note = f"{result.evaluations} evaluations" if hasattr(result, "evaluations") else ""
        err = float(np.max(np.abs(value - exact)) / np.max(np.abs(exact)))
        rows.append(Row(tool, method, seconds, err, note))
    rows.insert(4, stack_bound(f, x, np.float64, results[0].evaluations, "central h=2^-17"))
    rows.append(stack_bound(f, x, np.complex128, results[4].evaluations, "complex_step"))
    return rows


def stack_gain(f: Callable[[Any], Any], x: np.ndarray, dtype: type) -> tuple[float, float]:
    """Seconds of one point of f alone and of one point inside the best stack: stacks from
    `evaluation.BATCH_BYTES` of input, doubled up to `evaluation.MAX_BATCH_BYTES` (the
    sizes the evaluator may choose), best of 5 at each (a stack is formed once, outside
    the timing)."""
    point = x.astype(dtype)
    row_bytes = x.size * np.dtype(dtype).itemsize
    rows = max(2, evaluation.BATCH_BYTES // row_bytes)
    reps = max(1, 20000 // x.size)
    alone = min(timed(lambda: [f(point) for _ in range(reps)])[1] for _ in range(5)) / reps
    inside = math.inf
    while rows * row_bytes <= max(evaluation.MAX_BATCH_BYTES, 2 * row_bytes):
        stack = np.repeat(point[None, :], rows, axis=0)
        inside = min(inside, min(timed(lambda stack=stack: f(stack))[1] for _ in range(5)) / rows)
        rows *= 2
    return alone, inside


def stack_bound(f: Callable[[Any], Any], x: np.ndarray, dtype: type, evaluations: int,
                method: str) -> Row:
    """The fastest any batched path with `evaluations` calls' worth of points could be:
    every point at the cost of a point inside the best stack, nothing else (no
    bookkeeping, no error bar arithmetic, the probes' points as cheap as stacked ones). Its
    ratio to the loop bounds what `gradient(f)` can reach on this f."""
    alone, inside = stack_gain(f, x, dtype)
    kind = "complex" if np.dtype(dtype).kind == "c" else "real"
    return Row("bound: f in stacks only", f"{method}, {evaluations} points", evaluations *
               inside, None, f"{kind}: {alone * 1e6:.1f} us alone, {inside * 1e6:.1f} us per "
               f"point in a stack (ratio {alone / inside:.2f})")


def network_loss_rows(sizes: list[int], batch: int) -> list[Row]:
    """`gradient(f, θ)` on ``f = MLP.loss`` as a black box (it takes a stack of parameter
    vectors, shape (k, n)) against the naive loops of `naive.py` on the same loss: central
    differences at h = 2^-17 (2n losses, no bar) and the complex step at the step rule of
    `vectorised_rows` (n complex losses, no bar); then the bound of each (`stack_bound`).

    Measured (2-core Xeon, 2026-12-02, fresh processes, two runs; ratio to the naive loop,
    the bound in brackets): [16, 32, 10] × 8, central 8.7-8.8× [11.8-12.5], complex step
    4.9-5.1× [7.3]; [64, 128, 10] × 32, central 1.0× [1.4], complex step 0.6× [1.0]
    (1.3× [1.4] and 0.9× [0.9] when run after the other tables: the stacks' cost depends
    on the state of glibc's heap, below). Before the evaluator measured its batch size
    (a fixed 128 KiB of input: 1 point of 9,610 parameters, so never a stack), the large
    net's rows were 0.6× and 0.4×.

    What bounds the large net: its loss costs 61 us alone and 30 us in the best stack,
    29 us of which are BLAS products and 4,096 exps per point; the error bar's witness
    adds n evaluations to the loop's 2n (complex step: n to n). In a fresh process a
    stack above glibc's mmap threshold (128 KiB) is served by fresh pages on every call,
    so stacks of 4 points cost 67-77 us a point inside the gradient against 40 us
    after the heap has grown (``MALLOC_TOP_PAD_=67108864`` gives 30 us at 32 points); the
    evaluator measures what a stack costs in the process it runs in and keeps the size
    that pays there (2 points on the first gradient of a fresh process, 4 on later ones).
    A library cannot change the allocator of its caller's process, so this stays."""
    net, X, Y = problem(sizes, batch, "float64")
    analytic = net.gradient(X, Y)
    complex_net = net.to(net.numbers.complex())
    Xc, Yc = complex_net.numbers.asarray(X), complex_net.numbers.asarray(Y)
    loss = lambda p: net.loss(X, Y, params=p)
    complex_loss = lambda p: complex_net.loss(Xc, Yc, params=p)
    rule = np.exp2(np.rint(np.log2(np.maximum(np.abs(net.params), 1.0) * 2.0**-53)))
    runs = [("gradient(f) batched", "central h=2^-17",
             lambda: gradient(loss, net.params, h=CENTRAL_STEP)),
            ("naive loop", "central h=2^-17", lambda: naive_central(net, X, Y, CENTRAL_STEP)),
            ("gradient(f) batched", "complex_step",
             lambda: gradient(complex_loss, net.params, method="complex_step")),
            ("naive loop", "complex_step h=rule", lambda: naive_complex_step(net, X, Y, rule))]
    rows = []
    for tool, method, run in runs:
        result, seconds = min((timed(run) for _ in range(3)), key=lambda r: r[1])
        value = getattr(result, "value", result)
        note = f"{result.evaluations} evaluations" if hasattr(result, "evaluations") else ""
        rows.append(Row(tool, method, seconds, accuracy(net.numbers, value, analytic), note))
    evaluations = [int(r.note.split()[0]) for r in (rows[0], rows[2])]
    rows.insert(2, stack_bound(loss, net.params, np.float64, evaluations[0], "central h=2^-17"))
    rows.append(stack_bound(complex_loss, net.params, np.complex128, evaluations[1],
                            "complex_step"))
    return rows


def print_network_loss(sizes: list[int], batch: int) -> None:
    rows = network_loss_rows(sizes, batch)
    n = MLP(sizes).n_params
    print(f"\n## generic gradient(f) on MLP.loss {sizes} × {batch} ({n} parameters) as "
          "a vectorised f\n")
    print(table(rows[:3], [rows[1]]))
    print()
    print(table(rows[3:], [rows[4]]))


def print_vectorised(n: int) -> None:
    vec = vectorised_rows(n)
    print(f"\n## generic gradient(f) on a vectorised f of {n} variables\n")
    print(table(vec[:5], [vec[1], vec[3]]))
    print()
    print(table(vec[5:], [vec[6]]))


# -- report ------------------------------------------------------------------------------
def table(rows: list[Row], baselines: list[Row]) -> str:
    ratios = " | ".join(f"× faster than {b.tool} ({b.method})" for b in baselines)
    header = f"| tool | method | seconds | {ratios} | max rel. error vs analytic | note |"
    lines = [header, "|---|---|---:|" + "---:|" * len(baselines) + "---:|---|"]
    for r in rows:
        measured = not math.isnan(r.seconds)
        acc = "—" if r.accuracy is None else f"{r.accuracy:.1e}"
        seconds = f"{r.seconds:.3f}" if measured else "—"
        ratio_text = " | ".join(
            f"{b.seconds / r.seconds:.1f}" if measured and not math.isnan(b.seconds) else "—"
            for b in baselines)
        lines.append(f"| {r.tool} | {r.method} | {seconds} | {ratio_text} | {acc} | {r.note} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small nets, a few seconds")
    parser.add_argument("--vectorised", type=int, nargs="*", metavar="N",
                        help="only the generic gradient(f) tables, at these sizes "
                             f"(default {list(VECTORISED_SIZES)})")
    args = parser.parse_args(argv)
    if args.vectorised is not None:
        for n in args.vectorised or VECTORISED_SIZES:
            print_vectorised(n)
        for sizes, batch in NETWORK_LOSSES:
            print_network_loss(sizes, batch)
        return
    sizes, batch = ([16, 32, 10], 8) if args.quick else ([64, 128, 10], 32)
    mp_sizes, mp_batch = ([6, 8, 4], 4) if args.quick else ([20, 30, 10], 8)

    net, X, Y = problem(sizes, batch, "float64")
    analytic = net.gradient(X, Y)
    rows = precision_nn_rows(net, X, Y, analytic, args.quick)
    rows += [scipy_row(net, X, Y, analytic), numdifftools_row(net, X, Y, analytic)]
    rows += torch_rows(net, X, Y)
    baselines = [rows[-2], next(r for r in rows if r.tool == "naive loop")]  # torch slow
    print(f"## float64 {sizes}, batch {batch}, {net.n_params} parameters\n")
    print(table(rows, baselines))
    for n in VECTORISED_SIZES:
        print_vectorised(n)
    for net_sizes, net_batch in NETWORK_LOSSES[:1] if args.quick else NETWORK_LOSSES:
        print_network_loss(net_sizes, net_batch)
    mp = multiprecision_rows(mp_sizes, mp_batch)
    print(f"\n## mpf:50 {mp_sizes}, batch {mp_batch}\n")
    print(table(mp, [mp[1]]))


if __name__ == "__main__":
    main()
