"""What the detectors look at: the compared arrays, the blocks and the probes' measurements.

Everything here is plain float64 arrays and numbers, so the detectors in `findings` are
pure functions that can be tested on synthetic data. The one subtle array is
`difference`: ``a - n`` is formed in the number system of the check (or a wider one) and
only then rounded to float64, because two 30-digit numbers that agree to 25 digits would
otherwise differ by float64's rounding of each.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from precision_nn.gradcheck.blocks import Blocks
from precision_nn.gradcheck.tolerance import Tolerance

__all__ = [
    "EXPLAIN_ROUNDING",
    "REPEAT_ULPS",
    "CheckData",
    "ComplexProbe",
    "KinkProbe",
    "NoiseProbe",
    "Probes",
    "StepProbe",
]

# A bug pattern (a factor, a permutation, λ·θ) "explains" a disagreement when, after it
# is applied, the residual at every coordinate it claims is within that coordinate's own
# tolerance (the one that decides pass/fail), widened only by the rounding of the float64
# copies the detectors compute with: a residual formed from float64 copies of a and n
# (a sign, a permutation) is known to about 2 ulps of float64 of |a| + |n| (each copy
# rounds by half an ulp, the subtraction by another), so EXPLAIN_ROUNDING of them.
EXPLAIN_ROUNDING = 4 * 2.0 ** -53
# Rounding is a deterministic function of its inputs: a function or gradient evaluated
# twice at the same x returns the same numbers. Only a summation order that changes
# between calls (threaded reductions) moves them, by at most γ_k·Σ|terms| (Higham 2002,
# §3.1), about √k·u·Σ|terms| in practice: 16 ulps of the largest size covers a few
# hundred terms of that size (the torch adapter's `REPEAT_ULPS` for two backward calls).
# Beyond that the calls differ by randomness or changing state, never by rounding.
REPEAT_ULPS = 16.0


@dataclass(frozen=True)
class StepProbe:
    """The user's explicit step against the h → 0 limit.

    Attributes
    ----------
    method, h : str, float
        The user's finite-difference method and step.
    limit_name : str
        How the limit was computed (e.g. ``"Richardson"``).
    limit_difference, limit_tolerance : ndarray
        ``a - limit`` and the tolerance of that comparison.
    step_error : ndarray
        ``|n_h - limit|``, the actual error of the estimate at the user's step.
    rounding : ndarray
        The rounding error the user's step incurs by the model ``c·u·|f|/h``.
    relevant : ndarray
        The error from which on a step counts as off (√u relative: below it the step
        is as good as the check can tell).
    """

    method: str
    h: float
    limit_name: str
    limit_difference: np.ndarray
    limit_tolerance: np.ndarray
    step_error: np.ndarray
    rounding: np.ndarray
    relevant: np.ndarray


@dataclass(frozen=True)
class NoiseProbe:
    """The measured noise of ``f`` against its number system's unit roundoff.

    `sigma` is the noise estimated from fourth differences of ``f`` at offsets ``k·delta``
    along a random direction, `sigma_fine` the same at offsets ``k·delta/16``; `expected`
    is ``u·max|f|``. Rounding noise keeps its size at both spacings, while a kink between
    the offsets gives fourth differences proportional to the spacing. `higher` names a
    wider system in which ``f`` was also measured at the same offsets (`higher_sigma` its
    sigma there, `higher_ratio` = that sigma / the wider system's ``u·max|f|``). `terms`
    is ``u`` times the size of f's terms as its gradient shows them
    (``max_i |n_i|·(1 + |x_i|)``, `decisions.with_terms`): the rounding an f that cancels
    to a small value can show, which ``u·max|f|`` does not bound (0 while not measured).
    `repeat` is the gap between two calls of f at x itself: rounding repeats exactly, so
    a gap beyond reordered sums (`nondeterministic`) is randomness in f, not precision.
    """

    sigma: float
    expected: float
    delta: float
    numbers: str
    sigma_fine: float = float("nan")
    higher: str | None = None
    higher_ratio: float | None = None
    higher_sigma: float | None = None
    terms: float = 0.0
    # |f(x) − f(x)| between two calls at the same x (formed in the system), 0 if equal
    repeat: float = 0.0

    @property
    def nondeterministic(self) -> bool:
        """Whether two calls of f at the same x differ beyond reordered sums
        (`REPEAT_ULPS` times the rounding of f's value or of its terms)."""
        return bool(self.repeat > REPEAT_ULPS * max(self.expected, self.terms))


@dataclass(frozen=True)
class KinkProbe:
    """One-sided differences at the failing coordinates over a scan of shrinking steps.

    Row ``r`` belongs to flat index ``indices[r]``; ``steps[r, s]`` runs down by factors
    of 4 (NaN-padded) and ``jumps[r, s] = D+(h) - D-(h) = (f(x+h) - 2f(x) + f(x-h))/h``.
    For a smooth ``f`` the jump shrinks like the step (``≈ h·f''``); across a kink at
    distance δ it stays the jump of the slope for every ``h ≫ δ`` and falls away for
    ``h < δ``. `noise` is the rounding level of each jump, ``8·u·|f|/h``.
    """

    indices: np.ndarray
    steps: np.ndarray
    jumps: np.ndarray
    noise: np.ndarray


@dataclass(frozen=True)
class ComplexProbe:
    """Whether ``f`` is complex-step safe, and the measurements behind the answer."""

    ran: bool
    safe: bool
    reason: str
    requested: bool = False
    # False: not shown unsafe, but f's real arithmetic was too coarse to confirm it safe
    verified: bool = True


@dataclass(frozen=True)
class Probes:
    """The optional measurements `check_gradient` made beyond the comparison."""

    step: StepProbe | None = None
    noise: NoiseProbe | None = None
    kink: KinkProbe | None = None
    complex: ComplexProbe | None = None
    # the noise of the analytic gradient per coordinate (when measured)
    gradient_noise: np.ndarray | None = None
    # coordinates a failure was seen at only through a reference that real arithmetic
    # could neither confirm nor refute (flat bool, `Reference.unresolved`)
    unresolved: np.ndarray | None = None
    # coordinates whose reference was computed again from a step below a kink the scan
    # found (flat bool, `Reference.restarted`): its steps there do not reach the kink
    restarted: np.ndarray | None = None
    # |grad(x) − grad(x)| per coordinate between two calls at the same x (flat, float64;
    # 0 where equal, inf where only one is finite), when measured
    gradient_repeat: np.ndarray | None = None
    # (the binary float grad returned its array in, the system's name) when that float is
    # less precise than the system (`setup.narrower_dtype`: a float64 array for decimal:30)
    gradient_dtype: tuple[str, str] | None = None


@dataclass(frozen=True)
class CheckData:
    """The comparison the detectors diagnose (all float64).

    Attributes
    ----------
    analytic, reference, difference, reference_error : ndarray
        ``a``, ``n``, ``a - n`` (formed accurately), ``n``'s error estimate.
    tol : Tolerance
        The whole tolerance: per-coordinate values, its two parts and its source
        (``tolerance`` is its values).
    x : ndarray
        The point, flattened like the gradient.
    blocks : Blocks
        Where each index lives.
    batch_size : int or None
        ``m``, the number of examples the loss averages over, when known.
    unit_roundoff : float
        ``u`` of the number system.
    reference_name : str
        How the reference was computed.
    probes : Probes
        Extra measurements.
    unit : str
        What one index is, for the sentences: ``"coordinate"`` or ``"direction"``.
    entry_scale : ndarray or None
        The scale of a per-entry rounding of the gradient at each index (see the field).
    entries : ndarray or None
        The analytic gradient's own entries (float64 copies) when `analytic` holds
        something else (``vᵀa`` along directions); None when `analytic` is the gradient.
    """

    analytic: np.ndarray
    reference: np.ndarray
    difference: np.ndarray
    reference_error: np.ndarray
    tol: Tolerance
    x: np.ndarray
    blocks: Blocks
    batch_size: int | None = None
    unit_roundoff: float = 2.0 ** -53
    reference_name: str = "reference"
    probes: Probes = field(default_factory=Probes)
    unit: str = "coordinate"  # what an index is: "coordinate", or "direction"
    # per index, the size a rounding of every gradient entry (relative u_b, random signs)
    # reaches, divided by u_b: ``|n_i| + max|n|`` for a coordinate (None); along a
    # direction v, ``sqrt(Σ_k v_k² (|a_k| + max|a|)²)`` (a sum of independent errors)
    entry_scale: np.ndarray | None = None
    # the gradient's entries when `analytic` holds projections (directional mode): what
    # a test of "the gradient was stored through float32" looks at
    entries: np.ndarray | None = None

    @property
    def tolerance(self) -> np.ndarray:
        """``tol_i`` per coordinate."""
        return self.tol.values

    @property
    def failing(self) -> np.ndarray:
        """Boolean mask of the coordinates outside their tolerance."""
        return ~(np.abs(self.difference) <= self.tolerance)

    @property
    def explain_tolerance(self) -> np.ndarray:
        """How closely a bug pattern, applied to float64 copies of ``a``, must reproduce
        the reference to explain it: the tolerance, plus the copies' own rounding."""
        # each term scaled before the sum (|a| + |n| overflows near the float maximum)
        rel = EXPLAIN_ROUNDING * np.abs(self.analytic) + EXPLAIN_ROUNDING * np.abs(self.reference)
        return self.tolerance + rel
