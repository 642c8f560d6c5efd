"""Directional mode of `check_gradient`: ``vᵀg`` against directional derivatives.

For k seeded random unit vectors ``v_j`` the check compares ``v_jᵀ a`` (formed in the
number system) with the derivative of ``t ↦ f(x + t·v_j)`` at 0, each with its error
estimate: O(k) evaluations of ``f`` instead of O(n), for models too large for a full
check. A wrong gradient is seen along almost every random direction (the chance that a
random ``v`` is orthogonal to ``a - g`` is zero), and the patterns that survive
projection are still diagnosed: a constant factor or sign (``vᵀa = c·vᵀg``) and a
regulariser (``vᵀ(a - g) = λ·vᵀθ``).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from precision_nn.derivatives import derivative
from precision_nn.gradcheck import probes
from precision_nn.gradcheck.blocks import Blocks
from precision_nn.gradcheck.evidence import CheckData, Probes
from precision_nn.gradcheck.findings import NOTICES, diagnose
from precision_nn.gradcheck.reference import reference_method
from precision_nn.gradcheck.report import GradientReport, relative_errors
from precision_nn.gradcheck.setup import analytic_gradient
from precision_nn.gradcheck.tolerance import tolerance

__all__ = ["DIRECTION_SEED", "check_directions"]

DIRECTION_SEED = 0


def directions_matrix(k: int, n: int) -> np.ndarray:
    """`k` seeded random unit vectors of length `n`, one per row.

    Each is uniform on ``[-1, 1)^n``, normalised. What the check needs of its directions
    is that none is orthogonal to the error ``a - g`` (a fixed nonzero vector) and that
    every coordinate takes part; any distribution with a density gives both with
    probability one. Gaussian rows would also be rotation-invariant, which nothing here
    uses, at 4.8 times the cost (8 × 1e5 entries: 6.7 ms against 1.4 ms measured, an
    eighth of the default check of 1e5 variables in `benchmarks/check.py`).
    """
    V = np.random.default_rng(DIRECTION_SEED).random((k, n))
    V *= 2
    V -= 1
    # np.linalg.norm's own sum of squares, normalised in place (no k×n temporaries)
    V /= np.sqrt(np.add.reduce(V * V, axis=1, keepdims=True))
    return V


def check_directions(setup: Any, grad: Any, *, method: str, h: Any, k: int) -> GradientReport:
    """The directional check (called by `check_gradient` with ``directions=k``)."""
    ns, x = setup.ns, setup.x
    flat = np.ravel(x, order=setup.order)
    a = analytic_gradient(grad, setup)
    V = directions_matrix(k, flat.size)
    probe = None
    if method in ("auto", "complex_step"):
        probe = probes.complex_probe(setup.f, x, ns, requested=method == "complex_step")
    ref_method = reference_method(method, probe)
    values, errors, diffs, used = [], [], [], set()
    own = getattr(setup.provider, "directional", None)  # an adapter's derivative along v
    for v in V:
        vns = ns.asarray(v)

        def along(t: Any, vns: np.ndarray = vns) -> Any:
            # ``flat + t·vns`` with one temporary instead of two (the same operations in
            # the same order, the sum written over the product: at 1e5 complex entries
            # each temporary is 1.6 MB of fresh memory)
            point = t * vns
            np.add(flat, point, out=point)
            return setup.f(np.reshape(point, x.shape, order=setup.order))

        with ns.context():
            est = own(v, ref_method, h) if own else None
            if est is not None:  # (the provider counts its own evaluations of f)
                setup.f.provided += int(est.evaluations)
                used.add((est.method, getattr(setup.provider, "numbers_name", ns.name)))
            else:
                est = derivative(along, ns.zero, method=ref_method, h=h, numbers=ns)
                used.add((ref_method, ns.name))
            va = np.sum(vns * a)
            diffs.append(va - est.value)
        values.append((va, est.value))
        errors.append(float(est.error))
    (method_used, system), = used if len(used) == 1 else {(ref_method, ns.name)}
    return _report(setup, a, V, values, np.array(errors), diffs, method_used, probe,
                   setup.f.evaluations, system)


def one_coordinate_bounds(V: np.ndarray, tol: np.ndarray) -> np.ndarray:
    """Per coordinate j, the largest bug confined to j that passes every direction: a bug
    δ at j moves the gap along direction d by ``V[d, j]·δ``, so it passes while
    ``|δ| <= min_d tol_d / |V[d, j]|``."""
    # max_d |V[d, j]| / tol_d a row at a time in two buffers (no k x n temporary: ~1 ms
    # at 8 x 1e5)
    reach, row_reach = np.zeros(V.shape[1]), np.empty(V.shape[1])
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for row, t in zip(V, np.asarray(tol, dtype=float)):
            np.abs(row, out=row_reach)
            row_reach *= 1.0 / t
            np.maximum(reach, row_reach, out=reach)
        return 1.0 / reach


def blind_spot(V: np.ndarray, tol: np.ndarray, a_abs: np.ndarray) -> str:
    """`one_coordinate_bounds` at the worst coordinate, relative to the gradient's
    largest entry, as a sentence for the report (the full check resolves each
    coordinate to its own tolerance instead)."""
    bound = one_coordinate_bounds(V, tol)
    j = int(np.argmax(bound))
    top = float(np.max(a_abs, initial=0.0))
    size = f"{bound[j] / top:.1e} of max|a|" if top > 0 else f"{bound[j]:.1e}"
    return (f"Directions see a bug confined to one coordinate j only above "
            f"min_d tol_d/|v_dj|: up to {size} can pass at the worst coordinate ({j}); "
            "directions=None checks every coordinate against its own tolerance.")


def _report(setup: Any, a: np.ndarray, V: np.ndarray, values: list, errors: np.ndarray,
            diffs: list, ref_method: str, probe: Any, evaluations: int,
            system: str | None = None) -> GradientReport:
    ns = setup.ns
    to_f = probes.as_float
    an = np.array([to_f(ns, va) for va, _ in values])
    ref = np.array([to_f(ns, n) for _, n in values])
    d = np.array([to_f(ns, x) for x in diffs])
    a_abs = np.abs(np.real(ns.to_float(a)))
    scale = np.abs(V) @ (a_abs + float(np.max(a_abs)))
    name = f"directional derivatives by {ref_method.replace('_', ' ')} along {len(V)} " \
           f"seeded random directions in {system or ns.name}"
    tol = tolerance(an, ref, errors, unit_roundoff=ns.unit_roundoff, numbers=ns.name,
                    reference_name=name, rounding_scale=scale, unit="direction")
    tol = replace(tol, source=f"{tol.source} {blind_spot(V, tol.values, a_abs)}")
    x_dir = V @ np.ravel(np.real(ns.to_float(setup.x)), order=setup.order)
    # a rounding of each entry by up to u_b·(|a_k| + max|a|) with random signs reaches
    # about u_b·sqrt(Σ v_k² (|a_k| + max|a|)²) along v (not the aligned worst case `scale`)
    entry_scale = np.sqrt((V * V) @ ((a_abs + float(np.max(a_abs))) ** 2))
    data = CheckData(an, ref, d, errors, tol, x_dir,
                     Blocks.from_shapes(None, order="C", size=len(V)), setup.batch_size,
                     ns.unit_roundoff, name, Probes(complex=probe), unit="direction",
                     entry_scale=entry_scale,
                     entries=np.real(ns.to_float(a)).astype(float).ravel())
    findings = diagnose(data)
    passed = not data.failing.any() and all(f.kind in ("match", *NOTICES) for f in findings)
    rel = relative_errors(d, an, ref)
    denom = float(np.linalg.norm(an + ref))
    return GradientReport(passed, float(np.max(rel)),
                          float(np.linalg.norm(d)) / denom if denom > 0 else 0.0, rel,
                          tol.values, tol.source, findings, an, ref, errors, d, name,
                          ns.name, evaluations, data.blocks, directional=True)
