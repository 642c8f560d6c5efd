"""Per-coordinate tolerances built from error estimates, never a fixed 1e-7.

A coordinate passes when ``|a_i - n_i| <= tol_i`` with

    tol_i = REFERENCE_SAFETY · e_i + ROUNDING_FACTOR · u · (|a_i| + ‖a‖∞)

where ``e_i`` is the numerical reference's own error estimate and the second term bounds
the rounding error of the analytic (backprop) gradient. Backprop forms each entry as sums
of products along the layers; a first-order bound (Higham 2002, §3.1,
``γ_k = k·u/(1 - k·u)``) gives ``|ĝ_i - g_i| <= γ_k Σ|terms|``. The terms are not visible
from outside, but a small entry that results from cancellation is made of terms about as
large as the largest entries of the gradient, hence the ``‖a‖∞`` in the scale; ``k`` (the
length of the sums plus a few ulps per transcendental function and layer) stays below
~50 for the networks the check is meant for, and ``ROUNDING_FACTOR = 128`` leaves a
margin of about 2.5 over that.

References
----------
N. J. Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed., SIAM 2002.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["ANALYTIC_NOISE_SAFETY", "ENTRY_ROUNDINGS", "MEASURED_SAFETY", "REFERENCE_SAFETY",
           "ROUNDING_FACTOR", "Tolerance", "tolerance"]

# An error *estimate* (Richardson's difference of successive extrapolants, the spread of
# a complex step at two steps) is not a bound; a factor 4 covers the usual
# underestimate of the last extrapolation step (Ridders 1982; Press et al., §5.7).
REFERENCE_SAFETY = 4.0
# γ_k with k ≲ 50 for small networks, times a margin of ~2.5 (see the module docstring).
ROUNDING_FACTOR = 128.0
# The measured noise of the analytic gradient (a standard deviation from few samples,
# which scatter by about a factor 2) is allowed this many times over: a gap within it
# is indistinguishable from the gradient's own rounding.
ANALYTIC_NOISE_SAFETY = 8.0
# The analytic gradient's rounding measured in a wider system is the error itself at x
# (not a sample of it), up to the wider run's own rounding (bounded by the model and
# included): counted twice, plus a few roundings of the entry itself.
MEASURED_SAFETY = 2.0
ENTRY_ROUNDINGS = 4.0
# Without any error estimate the reference is trusted only to half its digits.
NO_ESTIMATE_EXPONENT = 0.5


@dataclass(frozen=True)
class Tolerance:
    """The tolerance of every coordinate and where it comes from.

    Attributes
    ----------
    values : ndarray of float
        ``tol_i``, the largest acceptable ``|a_i - n_i|``.
    reference_part, rounding_part : ndarray of float
        Its two terms: the reference's error and the analytic gradient's rounding.
    entry_part : ndarray of float or None
        The tolerance without the allowances for cancellation: ``ROUNDING_FACTOR·u·|a_i|``
        (or 8 × the measured noise of the analytic gradient, where larger), the most
        rounding an entry formed without cancelling larger terms shows, plus the
        reference's part with its own rounding at the entry's size. A gap beyond it
        passes only on the hypothesis that the entry (of the gradient or of the
        reference) cancels terms as large as the largest (`decisions.cancellation_only`).
        None where the scale was given (directions).
    source : str
        One sentence saying how the tolerance was formed.
    """

    values: np.ndarray
    reference_part: np.ndarray
    rounding_part: np.ndarray
    source: str
    entry_part: np.ndarray | None = None


def tolerance(analytic: np.ndarray, reference: np.ndarray, reference_error: np.ndarray, *,
              unit_roundoff: float, numbers: str, reference_name: str,
              rounding_scale: np.ndarray | None = None,
              analytic_noise: np.ndarray | None = None,
              underflow: float = 0.0,
              reference_entry_error: np.ndarray | None = None,
              analytic_rounding: np.ndarray | None = None,
              rounding_system: str | None = None, unit: str = "coordinate") -> Tolerance:
    """Tolerances from the reference's error estimate and the analytic rounding model.

    Parameters
    ----------
    analytic, reference, reference_error : ndarray of float
        The analytic gradient, the numerical reference and its error estimate (NaN where
        the reference has none).
    unit_roundoff : float
        ``u`` of the number system the analytic gradient was computed in.
    rounding_scale : ndarray of float, optional
        The scale of the analytic gradient's terms per coordinate (default
        ``|a_i| + max|a|``; directional checks pass ``Σ_i |v_i|·(|a_i| + max|a|)``).
    analytic_noise : ndarray of float, optional
        The measured noise of the analytic gradient per coordinate (its spread when x
        moves by a few ulps); where ``ANALYTIC_NOISE_SAFETY`` times it exceeds the
        rounding model, it replaces it (a gradient that cancels digits, e.g.
        ``sigmoid(z) - y`` at a saturated output, is not wrong for that).
    underflow : float
        The smallest subnormal of the system (0 for systems without a small exponent
        limit): the absolute rounding of entries in the subnormal range.
    reference_entry_error : ndarray of float, optional
        The reference's error bar with its rounding at the size of each entry, where its
        own bar assumes cancellation (the complex step's; default `reference_error`):
        it enters `Tolerance.entry_part` only.
    analytic_rounding : ndarray of float, optional
        The analytic gradient's rounding at x as measured by running grad in the wider
        system `rounding_system` (`measurements.wider_rounding`): ``MEASURED_SAFETY``
        times it plus ``ENTRY_ROUNDINGS·u·|a_i|`` replaces the model, below it (an entry
        that cancels nothing) and above it (the formula rounds by more at x than the
        model's ``|a_i| + max|a|`` terms allow: a float16 ``p − y`` with p near 1). A bug
        is the same in both runs, so it is not in the measurement; the rounding is. The
        measured noise can still widen it.
    numbers, reference_name : str
        For the sentence: the system's name and how the reference was computed.
    unit : str
        For the sentence: what one entry is (``"coordinate"``, or ``"direction"`` for a
        directional check, whose rounding scale is ``Σ_i |v_i|·(|a_i| + max|a|)``).

    Examples
    --------
    >>> t = tolerance(np.array([1.0, -2.0]), np.array([1.0, -2.0]), np.array([1e-12, 0.0]),
    ...               unit_roundoff=2.0**-53, numbers="float64", reference_name="Richardson")
    >>> bool(t.values[0] > 4e-12), bool(t.values[1] < 1e-12)
    (True, True)
    """
    a = np.abs(np.asarray(analytic, dtype=float))
    n = np.abs(np.asarray(reference, dtype=float))
    err = np.asarray(reference_error, dtype=float)
    # the scale |a_i| + max|a|, each term scaled by u before it is added (the sum itself
    # overflows near the float maximum); below the normal range the spacing stops
    # shrinking: an entry near the smallest subnormal `underflow` errs by about that
    base = a if rounding_scale is None else np.asarray(rounding_scale, dtype=float)
    top = float(np.max(a)) if a.size and rounding_scale is None else 0.0
    rounding = ROUNDING_FACTOR * (unit_roundoff * base + unit_roundoff * top + underflow)
    entry = (ROUNDING_FACTOR * (unit_roundoff * base + underflow)
             if rounding_scale is None else None)
    measured = beyond = 0
    if analytic_rounding is not None:
        own = (MEASURED_SAFETY * np.asarray(analytic_rounding, dtype=float)
               + ENTRY_ROUNDINGS * (unit_roundoff * a + underflow))
        measured = int(np.sum(own < rounding))
        # beyond the model: the same formula rounds by that much in this system at x (a
        # float16 p - y with p ~ 0.9976 beside max|a| = 0.0024 errs by 4.6e-4 against a
        # model of 2.5e-4); a bug is in both runs, so it is not in the measurement
        beyond = int(np.sum(own > rounding))
        rounding = own
        entry = None if entry is None else own
    widened = 0
    if analytic_noise is not None:
        noisy = ANALYTIC_NOISE_SAFETY * np.nan_to_num(analytic_noise, nan=0.0)
        widened = int(np.sum(noisy > rounding))
        rounding = np.maximum(rounding, noisy)
        entry = None if entry is None else np.maximum(entry, noisy)
    missing = ~np.isfinite(err)
    trust = unit_roundoff ** NO_ESTIMATE_EXPONENT
    fallback = trust * n + trust * (float(np.max(n)) if n.size else 0.0)
    ref_part = REFERENCE_SAFETY * np.where(missing, fallback, err)
    if entry is not None:  # the whole tolerance of an entry that cancels nothing
        own = err if reference_entry_error is None else \
            np.asarray(reference_entry_error, dtype=float)
        entry = entry + REFERENCE_SAFETY * np.where(missing, fallback, own)
    sentence = _sentence(ref_part, rounding, missing, unit_roundoff, numbers,
                         reference_name, unit)
    if measured or beyond:
        sentence += (f" At every coordinate the rounding part is measured instead (below the "
                     f"model at {measured}, above it at {beyond}): {MEASURED_SAFETY:g} × "
                     f"|a_i − a'_i| + {ENTRY_ROUNDINGS:g}·u·|a_i|, a' the same grad run in "
                     f"{rounding_system} (a wrong formula is wrong there too; the rounding "
                     "is not).")
    if widened:
        sentence += (f" At {widened} coordinate(s) the rounding part is "
                     f"{ANALYTIC_NOISE_SAFETY:g} × the measured noise of the analytic "
                     "gradient instead (it is noisier than that model).")
    return Tolerance(ref_part + rounding, ref_part, rounding, sentence, entry)


def _sentence(ref_part: np.ndarray, rounding: np.ndarray, missing: np.ndarray, u: float,
              numbers: str, reference_name: str, unit: str = "coordinate") -> str:
    """How the tolerance was formed, with its typical sizes."""
    if missing.any():
        ref_text = (f"{int(missing.sum())} {unit}(s) without an error estimate trusted "
                    f"to u^{NO_ESTIMATE_EXPONENT:g} relative, the others "
                    f"{REFERENCE_SAFETY:g} × the reference's error estimate ({reference_name})")
    else:
        ref_text = (f"{REFERENCE_SAFETY:g} × the reference's own error estimate "
                    f"({reference_name})")
    scale = "(|a_i| + max|a|)" if unit == "coordinate" else "Σ_i |v_i|·(|a_i| + max|a|)"
    return (f"per {unit}, {ref_text} (median {_median(ref_part):.1e}) plus "
            f"{ROUNDING_FACTOR:g}·u·{scale} for rounding in the analytic gradient "
            f"(u = {u:.2g} of {numbers}; median {_median(rounding):.1e}).")


def _median(values: np.ndarray) -> float:
    # np.median's own result, from a sorted copy (np.median costs ~20 µs of dispatch, a
    # share of a small check); NaN anywhere gives NaN, as np.median does
    flat = np.sort(np.ravel(values))
    n = flat.size
    if n == 0:
        return 0.0
    if np.isnan(flat[-1]):
        return float("nan")
    return float(flat[n // 2]) if n % 2 else float((flat[n // 2 - 1] + flat[n // 2]) / 2)
