"""`check_gradient(..., method="certified")`: a gradient check whose verdict is a proof.

The reference is not an estimate but a ball ``D_i ∋ ∂f/∂x_i`` (`taylor_mode`: f on
first-order series with Arb ball coefficients). The analytic gradient is run on the ball
point too:

- if ``grad`` computes in ball arithmetic (written against the number system, or the
  MLP's backprop in ``arb:N``), it returns balls ``A_i`` that contain the exact value of
  its formula, and nothing is assumed: disjoint balls prove the formula wrong;
- otherwise its values ``a_i`` are taken exactly and their own rounding is *assumed* to be
  at most ``τ_i = ROUNDING_FACTOR·u·(|a_i| + max|a|)`` (the library's rounding model, u of
  the system ``a`` came in); the report states this assumption.

Per entry, ball arithmetic encloses the gap ``|a_i − ∂f_i|`` in ``[lo_i, hi_i]``:

- proven wrong where ``lo_i > τ_i``;
- consistent where ``hi_i ≤ τ_i + 2(r_a + r_d)`` (the balls overlap beyond the assumed
  rounding) and the proof resolves the gradient, ``r_a + r_d ≤ √u·scale``;
- otherwise nothing is proven there (an enclosure too wide, or f cannot run on series at
  that entry — a kink of ReLU, a float() inside f): the report says so instead of guessing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from precision_nn.derivatives.taylor_mode import enclosures
from precision_nn.gradcheck.blocks import Blocks
from precision_nn.gradcheck.evidence import CheckData
from precision_nn.gradcheck.findings import Finding, diagnose
from precision_nn.gradcheck.report import GradientReport, relative_errors
from precision_nn.gradcheck.setup import point_in
from precision_nn.gradcheck.tolerance import ROUNDING_FACTOR, tolerance
from precision_nn.numbers import NumberSystem, infer_number_system, number_system

__all__ = ["CertifiedReport", "analytic_values", "check_certified", "compare_certified"]

LISTED = 8  # entries named in a verdict sentence before "and k more"
# the detectors weigh entries by 1/tol²: exact balls (tol = 0) get this floor instead
_TINY = 1e-150


@dataclass(frozen=True)
class CertifiedReport(GradientReport):
    """A `GradientReport` whose verdict is proven; see the module docstring.

    Attributes
    ----------
    status : {"proven_wrong", "consistent", "cannot_prove"}
    proven : str
        What ball arithmetic proved, in one sentence.
    assumed : str
        What the proof assumes (about f, and about the analytic gradient's rounding).
    bound : ndarray of float
        Per entry, a proven upper bound of ``|a_i − ∂f/∂x_i|`` (float64, rounded up).
    wrong, unprovable : tuple of int
        Flat indices proven wrong, and those where nothing could be proven.
    """

    status: str = "cannot_prove"
    proven: str = ""
    assumed: str = ""
    bound: np.ndarray | None = None
    wrong: tuple[int, ...] = ()
    unprovable: tuple[int, ...] = ()

    def verdict(self) -> str:
        if self.status == "proven_wrong":
            return f"PROVEN WRONG at entries {_listed(self.wrong, self.blocks)}"
        if self.status == "consistent":
            worst = float(np.max(self.bound)) if self.bound is not None else 0.0
            return (f"CONSISTENT: |a − ∂f| ≤ r at every entry, proven (all "
                    f"{self.difference.size}; largest r = {worst:.2e})")
        return f"CANNOT PROVE at entries {_listed(self.unprovable, self.blocks)}"

    def _summary_lines(self) -> list[str]:
        return [*super()._summary_lines(), f"proven: {self.proven}",
                f"assumed: {self.assumed}"]


def check_certified(f: Callable[[Any], Any], grad: Callable[[Any], Any], x: Any, *,
                    numbers: str | NumberSystem | None = None,
                    shapes: Sequence[Sequence[int]] | Mapping[str, Sequence[int]] | None = None,
                    order: str = "C", batch_size: int | None = None,
                    h: Any = None, directions: int | None = None) -> CertifiedReport:
    """``check_gradient(f, grad, x, method="certified", numbers="arb:N")``.

    Parameters are those of `check_gradient`; `numbers` must be a ball system
    (``arb:N``), `h` and `directions` must be None (there is no step; every entry is
    proven).

    Examples
    --------
    >>> import numpy as np
    >>> from precision_nn.numbers import number_system
    >>> ns = number_system("arb:30")
    >>> f = lambda x: np.sum(ns.tanh(x) * x)
    >>> good = lambda x: ns.tanh(x) + x * (1 - ns.tanh(x) ** 2)
    >>> check_certified(f, good, ["0.5", "-1", "2"], numbers=ns).status
    'consistent'
    >>> bad = lambda x: ns.tanh(x) + x * (1 - ns.tanh(x))  # a missing square
    >>> report = check_certified(f, bad, ["0.5", "-1", "2"], numbers=ns)
    >>> report.status, report.wrong
    ('proven_wrong', (0, 1, 2))
    """
    ns, arr, blocks = _validate(x, numbers=numbers, shapes=shapes, order=order, h=h,
                                directions=directions)
    with ns.context():
        balls, failures, passes = enclosures(f, ns, arr.reshape(-1), arr.shape)
        analytic = grad(arr)
    reference = np.ravel(balls.reshape(arr.shape), order=order)
    unprovable = _flat_failures(failures, arr, order)
    return compare_certified(ns, _analytic(ns, analytic, arr, order), reference, blocks,
                             x=np.ravel(arr, order=order), evaluations=passes,
                             unprovable=unprovable, batch_size=batch_size,
                             reference_name=f"Taylor-mode enclosure (f on first-order ball "
                             f"series, {passes} passes) in {ns.name}")


def compare_certified(ns: NumberSystem, analytic: tuple[np.ndarray, float | None, str],
                      reference: np.ndarray, blocks: Blocks, *, x: np.ndarray,
                      evaluations: int, unprovable: dict[int, str], batch_size: int | None,
                      reference_name: str, assumed_f: str | None = None) -> CertifiedReport:
    """The verdict from the analytic gradient and proven enclosures of the true one.

    `analytic` is ``(values, log2_u, system)``: balls of `ns` (``log2_u=None``: nothing
    assumed), or exact values whose rounding is assumed within the library's model at
    unit roundoff ``2**log2_u`` (a log, so that 1000-digit systems keep it).
    `reference` holds balls of `ns` (None where `unprovable` names the cause).
    """
    values, u_a, system = analytic
    ok = np.array([v is not None for v in reference])
    ref = np.array([v if v is not None else ns.zero for v in reference], dtype=object)
    with ns.context():
        gap = values - ref  # a ball containing a_exact − ∂f at every entry
    r_a, r_d = ns.radius(values), np.where(ok, ns.radius(ref), np.inf)
    a_mid = ns.to_float(values)
    d_mid, diff_mid = (np.where(ok, ns.to_float(v), np.nan) for v in (ref, gap))
    _, hi = _gap_bounds(ns, gap)
    tau = np.zeros(values.shape) if u_a is None else tolerance(
        a_mid, d_mid, r_d, unit_roundoff=2.0 ** u_a, numbers=system,
        reference_name=reference_name).rounding_part  # for the table: may underflow
    wrong, consistent = _decide(ns, values, ref, gap, ok, u_a)
    undecided = ~wrong & ~consistent
    status = "proven_wrong" if wrong.any() else ("consistent" if consistent.all()
                                                 else "cannot_prove")
    tol = tau + r_a + r_d  # |mid gap| beyond it <=> lo > τ
    # the detectors see the unprovable entries as agreeing (they are reported apart)
    data = _check_data(a_mid, np.where(ok, d_mid, a_mid), np.where(ok, diff_mid, 0.0),
                       np.where(ok, r_d, 0.0), np.where(ok, np.maximum(tol, _TINY), 1.0), x,
                       blocks, batch_size,
                       ns.unit_roundoff, reference_name, tolerance(
                           a_mid, d_mid, r_d,
                           unit_roundoff=2.0 ** (ns.log2_unit_roundoff if u_a is None else u_a),
                           numbers=system, reference_name=reference_name))
    findings = _findings(status, data, wrong, undecided, ok, unprovable, hi, blocks)
    rel = relative_errors(diff_mid, a_mid, d_mid)
    denom = float(np.linalg.norm(a_mid + d_mid))
    return CertifiedReport(
        passed=status == "consistent", max_relative_error=float(np.max(rel)),
        relative_difference=float(np.linalg.norm(diff_mid)) / denom if denom > 0 else 0.0,
        relative_error=rel, tolerance=tol, tolerance_source=_source(u_a, system),
        findings=findings, analytic=a_mid, reference=d_mid, reference_error=r_d,
        difference=diff_mid, reference_name=reference_name, numbers=ns.name,
        evaluations=evaluations, blocks=blocks, status=status,
        proven=_proven(status, wrong, consistent, hi, d_mid, blocks),
        assumed=_assumed(u_a, system, assumed_f), bound=hi,
        wrong=tuple(int(i) for i in np.flatnonzero(wrong)),
        unprovable=tuple(int(i) for i in np.flatnonzero(undecided)))


# -- setup ------------------------------------------------------------------------------------
def _validate(x: Any, *, numbers: Any, shapes: Any, order: Any, h: Any,
              directions: Any) -> tuple[NumberSystem, np.ndarray, Blocks]:
    if h is not None:
        raise ValueError(f"`h` is not used by method='certified' (the reference takes no "
                         f"step); got h={h!r}. Drop `h`.")
    if directions is not None:
        raise ValueError("`directions` cannot be combined with method='certified' (every "
                         f"entry is proven); got directions={directions!r}. Drop it.")
    if order not in ("C", "F"):
        raise ValueError(f"`order` must be 'C' or 'F'; got {order!r}.")
    ns = number_system(numbers) if numbers is not None else _inferred(x)
    if not ns.is_ball or ns.is_complex:
        raise ValueError(
            f"method='certified' needs a real ball system to prove anything; got "
            f"{ns.name!r}. Pass numbers='arb:N' (e.g. 'arb:30'; needs python-flint)."
        )
    arr = point_in(ns, x)
    if shapes is None:
        blocks = Blocks.from_shapes([arr.shape] if arr.ndim >= 2 else None, order=order,
                                    size=arr.size)
    else:
        blocks = Blocks.from_shapes(shapes if isinstance(shapes, Mapping)
                                    else [tuple(s) for s in shapes], order=order, size=arr.size)
    return ns, arr, blocks


def _inferred(x: Any) -> NumberSystem:
    try:
        return infer_number_system(x)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"method='certified' needs numbers='arb:N'; cannot tell the system "
                         f"of `x`: {exc}") from exc


def _analytic(ns: NumberSystem, g: Any, arr: np.ndarray,
              order: str) -> tuple[np.ndarray, float | None, str]:
    """``grad(x)`` flat in `order`, as `analytic_values`."""
    g = np.asarray(g, dtype=object) if not isinstance(g, np.ndarray) else g
    if g.size != arr.size:
        raise ValueError(f"`grad(x)` must have one entry per entry of x ({arr.size}); got "
                         f"shape {g.shape}.")
    return analytic_values(ns, np.ravel(g.reshape(arr.shape), order=order))


def analytic_values(ns: NumberSystem, flat: np.ndarray) -> tuple[np.ndarray, float | None, str]:
    """An analytic gradient as balls of `ns`, with the unit roundoff whose rounding is to be
    assumed (None: computed in ball arithmetic, nothing to assume) and its system's name."""
    if flat.dtype == object and ns.owns(flat):
        return flat, None, ns.name
    source = infer_number_system(flat)
    if source.is_complex:
        raise ValueError(f"`grad(x)` must be real; got values of {source.name!r}.")
    return ns.asarray(flat), source.log2_unit_roundoff, source.name


def _flat_failures(failures: dict[int, Any], arr: np.ndarray, order: str) -> dict[int, str]:
    """Failures by the index of the C-flat pass, re-indexed into the `order` flattening."""
    positions = np.ravel(np.arange(arr.size).reshape(arr.shape), order=order)
    where = {int(k): i for i, k in enumerate(positions)}
    return {where[k]: str(exc) for k, exc in failures.items()}


# -- the proof ---------------------------------------------------------------------------------
def _decide(ns: NumberSystem, values: np.ndarray, ref: np.ndarray, gap: np.ndarray,
            ok: np.ndarray, log2_u: float | None) -> tuple[np.ndarray, np.ndarray]:
    """Wrong and consistent entries, decided in ball arithmetic (no float can underflow).

    wrong_i: ``lo_i > τ_i`` proven, with ``τ_i = ROUNDING_FACTOR·u·(|a_i| + max|a|)`` the
    assumed rounding (0 for balls) and ``u`` rounded up to a power of 2. consistent_i:
    ``hi_i ≤ τ_i + 2w_i`` and ``w_i = r_a + r_d ≤ √u_ns·(|∂f_i| + max|∂f|)`` (the proof
    resolves the gradient to half the system's digits).
    """
    zero = ns.zero
    power = lambda e: ns.radix_powers(np.array([int(e)]))[0]  # exact 2**e
    with ns.context():
        a_abs = [abs(v.mid()) for v in values]
        d_abs = [abs(r.mid()) if good else zero for r, good in zip(ref, ok)]
        a_max, d_max = _largest(a_abs), _largest(d_abs)
        u_a = zero if log2_u is None else power(np.ceil(log2_u))
        root_u = power(np.ceil(ns.log2_unit_roundoff / 2))
        wrong, consistent = np.zeros(ok.shape, bool), np.zeros(ok.shape, bool)
        for i in np.flatnonzero(ok):
            tau = ROUNDING_FACTOR * u_a * (a_abs[i] + a_max)
            width = values[i].rad() + ref[i].rad()
            wrong[i] = bool(gap[i].abs_lower() > tau)
            consistent[i] = not wrong[i] and bool(gap[i].abs_upper() <= tau + 2 * width) \
                and bool(width <= root_u * (d_abs[i] + d_max))
    return wrong, consistent


def _largest(values: list) -> Any:
    """The largest of exact non-negative balls (arb's max: exact on exact balls)."""
    largest = values[0]
    for v in values[1:]:
        largest = largest.max(v)
    return largest


def _gap_bounds(ns: NumberSystem, gap: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Proven bounds lo ≤ |a − ∂f| ≤ hi per entry, as floats rounded outward."""
    lo, hi = np.empty(gap.shape), np.empty(gap.shape)
    for i, g in enumerate(gap):
        low, up = g.abs_lower(), g.abs_upper()  # exact arf bounds of |ball|
        lo[i] = _float_down(low)
        hi[i] = _float_up(up)
    return lo, hi


def _float_up(v: Any) -> float:
    f = float(v.mid())
    return f if type(v)(f) >= v else float(np.nextafter(f, np.inf))


def _float_down(v: Any) -> float:
    f = float(v.mid())
    return f if type(v)(f) <= v else float(np.nextafter(f, -np.inf))


def _check_data(a, n, d, err, tol, x, blocks, batch_size, u, name, tolerance_) -> CheckData:
    """The detectors' view of a certified comparison, with the proven tolerance."""
    return CheckData(analytic=a, reference=n, difference=d, reference_error=err, x=x,
                     blocks=blocks, batch_size=batch_size, unit_roundoff=u,
                     reference_name=name, tol=dataclasses.replace(tolerance_, values=tol))


# -- the words ---------------------------------------------------------------------------------
def _findings(status: str, data: CheckData, wrong: np.ndarray, undecided: np.ndarray,
              ok: np.ndarray, unprovable: dict[int, str], hi: np.ndarray,
              blocks: Blocks) -> tuple[Finding, ...]:
    found: list[Finding] = []
    if status == "proven_wrong":
        found += [f for f in diagnose(data) if f.kind != "match"]
        if not found:
            found.append(Finding("mismatch", f"The gradient is proven wrong at "
                                 f"{int(wrong.sum())} entries.", {"coordinates": list(
                                     np.flatnonzero(wrong))}))
    kinks = sorted(unprovable)
    if kinks:
        first = unprovable[kinks[0]]
        found.append(Finding("kink", f"Nothing can be proven at {_listed(kinks, blocks)}: f "
                             f"cannot run on first-order series there ({first})",
                             {"coordinates": kinks, "undecidable": True}))
    wide = np.flatnonzero(undecided & ok)
    if wide.size:
        found.append(Finding("precision_loss", f"undecidable: the enclosures at "
                             f"{_listed(wide, blocks)} are too wide to prove consistency "
                             "(radius beyond √u of the gradient's scale); use more digits.",
                             {"coordinates": list(wide), "undecidable": True}))
    if status == "consistent":
        found.append(Finding("match", f"Consistent: |a − ∂f| ≤ r at every entry, proven "
                             f"(largest r = {float(np.max(hi)):.2e}).",
                             {"coordinates": list(range(hi.size))}))
    return tuple(found)


def _proven(status: str, wrong: np.ndarray, consistent: np.ndarray, hi: np.ndarray,
            d_mid: np.ndarray, blocks: Blocks) -> str:
    scale = float(np.max(np.abs(d_mid))) if d_mid.size else 0.0
    if status == "proven_wrong":
        return (f"the analytic gradient differs from ∂f beyond its assumed rounding at "
                f"{_listed(np.flatnonzero(wrong), blocks)} (the balls are disjoint)")
    if status == "consistent":
        return (f"|a_i − ∂f/∂x_i| ≤ r_i at all {hi.size} entries, r_i ≤ "
                f"{float(np.max(hi)):.2e} ({float(np.max(hi)) / scale if scale else 0:.1e} "
                "of max|∂f|)")
    return (f"consistency at {int(consistent.sum())} of {hi.size} entries; no entry proven "
            "wrong")


def _assumed(u_a: float | None, system: str, assumed_f: str | None) -> str:
    about_f = assumed_f or ("f is the composition of the operations it performs on its "
                            "argument (no float(), no branch the balls cannot decide)")
    if u_a is None:
        return f"{about_f}; nothing about the analytic gradient (computed in ball arithmetic)"
    return (f"{about_f}; the analytic gradient, given in {system}, is off by its own rounding "
            f"by at most {_rounding_text(u_a)} per entry")


def _rounding_text(log2_u: float) -> str:
    u = 2.0 ** log2_u
    text = f"{u:.2g}" if u > 0 else f"2^{log2_u:.0f}"
    return f"{ROUNDING_FACTOR:g}·u·(|a_i| + max|a|), u = {text}"


def _source(u_a: float | None, system: str) -> str:
    if u_a is None:
        return ("proven: r_a + r_d, the radii of the analytic and reference balls (|mid gap| "
                "beyond it proves the balls disjoint)")
    return (f"proven radii r_a + r_d plus the assumed rounding of the analytic gradient, "
            f"{_rounding_text(u_a)} ({system})")


def _listed(indices: Any, blocks: Blocks) -> str:
    idx = [int(i) for i in indices]
    names = [blocks.label(i) if blocks.given else str(i) for i in idx[:LISTED]]
    more = f" and {len(idx) - LISTED} more" if len(idx) > LISTED else ""
    return ", ".join(names) + more
