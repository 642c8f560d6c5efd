"""The check's numerical reference, computed in float64 or complex128 on the converted copy.

The generic path of `check_gradient` differentiates the objective in the check's own
system (float32 for float32 code), so it sees the objective's values rounded to float32
and spends ~20 evaluations per coordinate on Richardson's tableau. The objective itself
runs in float64, and the tolerance of a float32 check is known before any reference is
computed: ``128·u·(|a_i| + max|a|)`` with u = 2^-24. The reference only needs to be
accurate enough to decide, so `Float64Reference` (the check's reference provider) takes
the cheapest estimate that is, with an error bar that bounds its error:

* **complex step** (where the generic complex-safety probe said f is safe):
  ``Im f(x + i·t·e_j)/t`` in complex128 at ``t = 2^-66·(1 + |x_j|)``, one evaluation per
  coordinate. Its truncation error ``t²|f'''|/6`` is below 1e-39 relative; its rounding
  is that of a backward pass in float64, bounded like the analytic gradient's own,
  ``COMPLEX_ULPS·u₆₄·(|d_j| + max|d|)``. It is cross-checked once against a central
  difference along a seeded random direction in float64 (four evaluations): a forward
  that loses the imaginary part somewhere (``.real``, a comparison) is refused. In a
  float64 check that bar never decides cheaply, but the directional test still runs as
  the complex-safety probe (`complex_probe`): an ``abs`` that drops a 1e-7 relative term
  is seen there, where the generic probe sees such terms only from ~1e-6.
* **otherwise** (softplus, softmax, ReLU, max-pool without complex support), central
  differences ``D(h)`` at ``h = 2^-13·(1 + |x_j|)`` in float64 with the error bar
  ``|D(h) - R(h)|``, R the extrapolated forward difference from ``f(x + h/2)`` and a
  shared ``f(x)`` (3 evaluations per coordinate, plus one; see `_differences`), plus
  ``ROUNDING_ULPS`` float64 roundings of the values (the factor allowing for
  cancellation inside f).

An estimate whose error bar is not below ``TARGET_SHARE·u·(|a_j| + |d_j| + max|a| + max|d|)``
at every coordinate (u of the check's dtype) cannot decide cheaply: the provider declines
(`NotImplementedError`) and the check takes its generic path, as for explicit steps and
methods. A kink within the steps can leave the bar too small; such a coordinate fails, and
the check's kink scans name it.

Perturbed points are evaluated together through ``torch.func.vmap`` when the user's code
allows it (no custom Function without a vmap rule, no random numbers, no writes into its
inputs), else one by one, each from the seeded RNG state.
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np
import torch

from precision_nn.adapters.torch.problem import Objective, floating_outputs, objective_value
from precision_nn.derivatives import Estimate
from precision_nn.gradcheck.evidence import ComplexProbe
from precision_nn.numbers import NumberSystem

__all__ = ["COMPLEX_ULPS", "ROUNDING_ULPS", "TARGET_SHARE", "Float64Reference"]

U64 = 2.0 ** -53
# rounding of Im f(x + i·t·e_j)/t: the imaginary parts are propagated like a backward pass
# in float64, bounded as the check bounds the analytic gradient's rounding (128 ulps of
# |d_j| + max|d|)
COMPLEX_ULPS = 128.0
# float64 rounding of f's values, u·S per value, times this for cancellation inside f
# (terms of f up to 1024 times its largest value)
ROUNDING_ULPS = 1024.0
# the estimate must be this far inside what the check's dtype resolves (its tolerance has
# 128·u·(|a_j| + max|a|) for rounding; 4·bar at 8·u stays within a quarter of it)
TARGET_SHARE = 8.0
COMPLEX_STEP = 2.0 ** -66
CENTRAL_STEP = 2.0 ** -13
# the directional cross-check of the complex step: agreement within this many times the
# combined error bars
CROSS_SAFETY = 4.0
CHUNK = 256  # perturbed points per vmap call
HELD = 1 << 18  # output entries held for one batched product (2 MB in float64)
# the user's callables (a custom Function's class, a module) that vmap refused once: the
# next checks of the same code evaluate one by one at once
_NO_VMAP: weakref.WeakSet = weakref.WeakSet()


def _code_of(target: Any) -> Any:
    fn = getattr(target, "module", None) or target.fn
    return getattr(fn, "__self__", fn)  # ``Function.apply``: the Function class


class Float64Reference:
    """The reference provider of a torch check: ``provider(method, ns, h) -> Estimate``.

    `objective` evaluates the checked code; `x` is the flat point (float64 numpy, exact),
    `analytic` the gradient under test (to size the error bar the check needs), `u` the
    unit roundoff of the check's dtype.
    """

    numbers_name = "float64"  # what the report names as the reference's system

    def __init__(self, objective: Objective, x: np.ndarray, analytic: np.ndarray, u: float):
        self.objective, self.u = objective, u
        self.x = np.asarray(x, dtype=np.float64)
        self.analytic = np.abs(np.asarray(analytic, dtype=np.float64))
        self._code = _code_of(objective.target)
        self._vmap = (objective.rng.used is False and not objective.target.args.fresh
                      and not _known_refusal(self._code))
        self._done: dict[str, Estimate | str] = {}  # an estimate, or why there is none
        self._f0: float | None = None
        self._undecided: tuple[np.ndarray, np.ndarray] | None = None  # complex step, its bar
        self._evaluated = self._reported = 0  # calls of the user's code so far, reported

    def __call__(self, method: str, ns: NumberSystem, h: Any) -> Estimate:
        if h is not None or method not in ("complex_step", "richardson"):
            raise NotImplementedError(method)
        est = self._complex() if method == "complex_step" else self._real()
        if not isinstance(est, Estimate):
            raise NotImplementedError(f"{method}: {est}")
        return est

    def complex_probe(self, *, requested: bool) -> ComplexProbe | None:
        """Whether the complex step is safe, from the complex-step run itself (None: this
        run cannot tell; the check then probes generically)."""
        est = self._complex()
        if isinstance(est, Estimate):
            return ComplexProbe(True, True, "Im f(x + i·t·e_j)/t in complex128 agrees with "
                                "float64 central differences along a random direction.",
                                requested)
        if est.startswith(("raises", "disagrees")):
            return ComplexProbe(not est.startswith("raises"), False, est, requested)
        if self._undecided is not None:  # (a float64 check: the bar is never tight enough)
            # the same directional test, so that an abs() dropping a 1e-7 term is seen here
            # too (the generic probe sees it only from ~1e-6 relative)
            gap = self._gap_along_a_direction(*self._undecided)
            self._undecided = None
            if gap is not None:
                return ComplexProbe(True, False, _disagreement(gap), requested)
        return None

    def _complex(self) -> Estimate | str:
        if "complex" not in self._done:
            try:
                self._done["complex"] = self._complex_step()
            except Exception as exc:  # noqa: BLE001 - any failure means "not usable"
                self._done["complex"] = (f"raises on complex input ({type(exc).__name__}: "
                                         f"{exc}): it does not run on complex numbers.")
        return self._done["complex"]

    def _real(self) -> Estimate | str:
        if "real" not in self._done:
            try:
                self._done["real"] = self._central()
            except RuntimeError as exc:  # the code cannot run in float64
                self._done["real"] = f"cannot run in float64 ({exc})"
        return self._done["real"]

    def directional(self, v: np.ndarray, method: str, h: Any) -> Estimate | None:
        """The derivative along the unit vector `v` for the directional check (None: the
        check's generic derivative decides instead), by the rules above: the complex step
        (one evaluation) or central differences with their measured bar (three, and f(x)
        once for all directions). The rounding scale is that of the check's directional
        tolerance, ``Σ|v_j|·(|a_j| + max|a|)``."""
        if h is not None or method not in ("complex_step", "richardson"):
            return None
        v = np.asarray(v, dtype=np.float64)
        a = self.analytic
        scale = float(np.abs(v) @ (a + float(np.max(a, initial=0.0))))
        try:
            if method == "complex_step":
                t = COMPLEX_STEP * (1 + float(np.max(np.abs(self.x))))
                point = torch.from_numpy(self.x + 1j * t * v)[None, :]
                d = float(self._values(point).imag[0]) / t
                error = COMPLEX_ULPS * U64 * (abs(d) + scale)
                used = "complex_step"
            else:
                step = np.array([CENTRAL_STEP * (1 + float(np.max(np.abs(self.x))))])
                values, errors = self._differences(v[None, :], step)
                d, error, used = float(values[0]), float(errors[0]), "central"
        except RuntimeError:  # the code cannot run in float64/complex128
            return None
        if not (np.isfinite(d) and error <= TARGET_SHARE * self.u * (abs(d) + scale)):
            return None
        return Estimate(value=d, error=error, h=0.0, evaluations=self._count(),
                        method=used, note="provided in float64 by the torch adapter")

    # -- the two estimates ----------------------------------------------------------------
    def _complex_step(self) -> Estimate | str:
        n = self.x.size
        t = COMPLEX_STEP * (1 + np.abs(self.x))
        points = np.tile(self.x.astype(np.complex128), (n, 1))
        points[np.arange(n), np.arange(n)] += 1j * t
        d = self._values(torch.from_numpy(points)).imag.numpy() / t
        if not np.all(np.isfinite(d)):
            return "gives non-finite values"
        error = COMPLEX_ULPS * U64 * (np.abs(d) + float(np.max(np.abs(d), initial=0.0)))
        if not self._decides(d, error):
            self._undecided = (d, error)  # for the complex-safety probe
            return "not accurate enough to decide cheaply"
        gap = self._gap_along_a_direction(d, error)
        if gap is not None:
            return _disagreement(gap)
        return Estimate(value=d, error=error, h=t, evaluations=self._count(),
                        method="complex_step",
                        note="Im f(x + i·t·e_j)/t in complex128, cross-checked along one "
                        "direction against float64 central differences")

    def _central(self) -> Estimate | str:
        n = self.x.size
        h = CENTRAL_STEP * (1 + np.abs(self.x))
        h = (self.x + h) - self.x  # steps exact in float64
        value, error = self._differences(np.eye(n), h)
        if not np.all(np.isfinite(value)):
            return "gives non-finite values"
        if not self._decides(value, error):
            return "not accurate enough to decide cheaply"
        return Estimate(value=value, error=error, h=h, evaluations=self._count(),
                        method="central",
                        note="float64 central differences with a measured error bar "
                        "decide at this dtype's tolerance")

    def _differences(self, directions: np.ndarray, h: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray]:
        """Central differences ``D(h)`` along each row of `directions` (step `h` per row),
        and their error bars ``|D(h) - R(h)| + 9·ROUNDING_ULPS·u₆₄·S/h``.

        ``R(h) = 2·F(h/2) - F(h)`` from the forward differences ``F(s) = (f(x+s) - f(x))/s``.
        By Taylor, ``D(h) = f' + h²·f₃/6 + O(h⁴)`` and ``R(h) = f' - h²·f₃/12 + O(h³)``
        (f₃ the third derivative), so ``|D - R| ≈ h²·|f₃|/4`` is 1.5 times the error of D
        for a smooth f (3 evaluations per row, plus f(x)). Across a kink within h the
        difference moves with the jump J; for some kink positions it understates D's
        error (down to 0 for a kink at h/5 on the positive side), which fails the
        coordinate, and the check's kink scans name it. Rounding: D and R combine 2 and 8
        values of size at most S (the largest seen), divided by h.
        """
        steps = h[:, None] * directions
        rows = [self.x + steps, self.x - steps, self.x + steps / 2]
        if self._f0 is None:  # the check's own f(x), if it was evaluated in float64
            self._f0 = self.objective.value_at(self.x)
        if self._f0 is None:  # f(x), once for every call
            rows.insert(0, self.x[None, :])
        f = self._values(torch.from_numpy(np.concatenate(rows))).numpy()
        if self._f0 is None:
            self._f0, f = f[0], f[1:]
        f0, (plus, minus, half) = self._f0, f.reshape(3, len(h))
        central = (plus - minus) / (2 * h)
        extrapolated = (4 * (half - f0) - (plus - f0)) / h
        size = max(float(np.max(np.abs(f))), abs(float(f0)))
        return central, np.abs(central - extrapolated) + 9 * ROUNDING_ULPS * U64 * size / h

    def _decides(self, d: np.ndarray, error: np.ndarray) -> bool:
        a, m = self.analytic, np.abs(d)
        scale = a + m + float(np.max(a, initial=0.0)) + float(np.max(m, initial=0.0))
        return bool(np.all(error <= TARGET_SHARE * self.u * scale))

    def _gap_along_a_direction(self, d: np.ndarray, error: np.ndarray
                               ) -> tuple[float, float] | None:
        """``vᵀd`` against central differences along a seeded random unit vector v: None
        when they agree, else the two values."""
        v = np.random.default_rng(12).standard_normal(self.x.size)
        v /= np.linalg.norm(v)
        h = np.array([CENTRAL_STEP * (1 + float(np.max(np.abs(self.x))))])
        along, bar = self._differences(v[None, :], h)
        if abs(float(v @ d) - along[0]) <= CROSS_SAFETY * (bar[0] + float(np.abs(v) @ error)):
            return None
        return float(v @ d), float(along[0])

    # -- evaluation -------------------------------------------------------------------------
    def _values(self, points: torch.Tensor) -> torch.Tensor:
        """The objective at each row of `points` (float64 or complex128), on the CPU."""
        obj = self.objective
        dtype = points.dtype
        points = points.to(obj.device)
        v = obj.cotangents_in(dtype)

        def one(flat: torch.Tensor) -> torch.Tensor:
            outputs, _ = obj.target.call(obj.blocks.split(flat), dtype, convert_others=True)
            return objective_value(outputs, obj.loss, v)

        with torch.no_grad():
            if self._vmap:
                try:
                    values = torch.cat([torch.func.vmap(one)(points[k:k + CHUNK])
                                        for k in range(0, len(points), CHUNK)]).cpu()
                    self._evaluated += len(points)
                    return values
                except Exception:  # noqa: BLE001 - vmap's refusal, or the code's own error
                    self._evaluated += 1
                    one(points[0])  # the code's own (no complex support) propagates here
                    self._vmap = False  # vmap refused code that runs: one by one
                    _remember_refusal(self._code)
            return self._one_by_one(points, v)

    def _one_by_one(self, points: torch.Tensor, v: list[torch.Tensor]) -> torch.Tensor:
        """`_values` without vmap: each row from the seeded RNG state. Without a loss the
        products ``Σ⟨v, output⟩`` are formed for many rows at once (two tensor ops instead
        of two per row), holding at most ``HELD`` output entries."""
        obj, dtype = self.objective, points.dtype
        values: list[torch.Tensor] = []
        held: list[list[torch.Tensor]] = []
        size = 0
        for tensors in obj.blocks.split_rows(points):  # (the stack cut once for every row)
            obj.rng.reset()
            self._evaluated += 1
            outputs, _ = obj.target.call(tensors, dtype, convert_others=True)
            if obj.loss is not None:
                values.append(objective_value(outputs, obj.loss, v).reshape(1))
                continue
            held.append(floating_outputs(outputs))
            size += sum(o.numel() for o in held[-1])
            if size > HELD:
                values.append(_products(held, v))
                held, size = [], 0
        if held:
            values.append(_products(held, v))
        return torch.cat(values).cpu()

    def _count(self) -> int:
        """The calls since the last estimate was returned (failed attempts included: a
        complex step refused, a vmap refusal's single call)."""
        count, self._reported = self._evaluated - self._reported, self._evaluated
        return count


def _disagreement(gap: tuple[float, float]) -> str:
    return (f"disagrees with f's real arithmetic: along a random direction "
            f"Im f(x + i·t·v)/t = {gap[0]:.6g} but float64 central differences "
            f"give {gap[1]:.6g}; something inside drops or conjugates the imaginary "
            "part (abs, a real-part cast, conj, a comparison).")


def _products(rows: list[list[torch.Tensor]], v: list[torch.Tensor]) -> torch.Tensor:
    """``Σ_k ⟨v_k, output_k⟩`` for each row of outputs (no conjugate, as
    `objective_value`)."""
    total = None
    for k, vk in enumerate(v):
        stacked = torch.stack([row[k] for row in rows])
        term = (stacked * vk).reshape(len(rows), -1).sum(1)
        total = term if total is None else total + term
    return total


def _known_refusal(code: Any) -> bool:
    try:
        return code in _NO_VMAP
    except TypeError:  # not weakly referenceable
        return False


def _remember_refusal(code: Any) -> None:
    try:
        _NO_VMAP.add(code)
    except TypeError:
        pass
