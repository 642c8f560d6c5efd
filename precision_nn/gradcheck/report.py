"""`GradientReport`: the verdict, the tolerance and its source, the findings, the worst
coordinates — read as a diagnosis, never as a dump of whole matrices."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from precision_nn.gradcheck.blocks import Blocks
from precision_nn.gradcheck.findings import NOTICES, Finding

# findings that doubt the reference, not the gradient: where every coordinate is within its
# tolerance they leave the check undecided (a kink within the steps means the two-sided
# reference may average two slopes; a given step may be too coarse or too fine to trust),
# never failed: no coordinate disagrees, so nothing accuses the gradient
DOUBTS = frozenset({"kink", "step_too_large", "step_too_small"})

__all__ = ["Coordinate", "GradientReport", "relative_errors"]

WORST_ROWS = 5  # rows of the worst-coordinates table in str() and to_markdown()


def relative_errors(difference: np.ndarray, analytic: np.ndarray,
                    reference: np.ndarray) -> np.ndarray:
    """``|a_i - n_i| / max(|a_i|, |n_i|)``, 0 where both vanish.

    Examples
    --------
    >>> relative_errors(np.array([0.1, 0.0]), np.array([1.1, 0.0]), np.array([1.0, 0.0]))
    array([0.09090909, 0.        ])
    """
    scale = np.maximum(np.abs(analytic), np.abs(reference))
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.abs(difference) / scale
    return np.where(scale > 0, rel, np.where(difference == 0, 0.0, np.inf))


@dataclass(frozen=True)
class Coordinate:
    """One row of the worst-coordinates table."""

    index: int
    where: tuple[int, ...]
    label: str
    analytic: float
    reference: float
    difference: float
    tolerance: float
    relative_error: float


@dataclass(frozen=True)
class GradientReport:
    """The result of `check_gradient`.

    Attributes
    ----------
    passed : bool
        Every coordinate within its tolerance and nothing found but ``match``.
    max_relative_error : float
        ``max_i |a_i - n_i| / max(|a_i|, |n_i|)``.
    relative_difference : float
        ``‖a - n‖ / ‖a + n‖`` (the Coursera/CS231n number, for comparison).
    relative_error, tolerance : ndarray of float
        Per coordinate (per direction in directional mode).
    tolerance_source : str
        How the tolerance was formed.
    findings : tuple of Finding
        The diagnosis, one sentence each.
    analytic, reference, reference_error, difference : ndarray of float
        The compared values (``difference`` formed in the check's number system).
    reference_name : str
        How the reference was computed.
    numbers : str
        The number system of the check.
    evaluations : int
        Points at which ``f`` was evaluated (a stacked batch counts each point; an
        adapter's reference provider adds the loss evaluations it reports).
    blocks : Blocks
        Where each coordinate lives.
    directional : bool
        Whether the coordinates are directional derivatives ``vᵀg`` along random ``v``.
    """

    passed: bool
    max_relative_error: float
    relative_difference: float
    relative_error: np.ndarray
    tolerance: np.ndarray
    tolerance_source: str
    findings: tuple[Finding, ...]
    analytic: np.ndarray
    reference: np.ndarray
    reference_error: np.ndarray
    difference: np.ndarray
    reference_name: str
    numbers: str
    evaluations: int
    blocks: Blocks
    directional: bool = False
    plan: str = ""  # why a check of this size ran directions instead of every coordinate

    @property
    def undecided(self) -> bool:
        """Whether the check failed only because the comparison could not decide: every
        finding an undecidable ``precision_loss``, or, with every coordinate within its
        tolerance, a doubt about the reference itself (`DOUBTS`: a kink within the steps,
        a step too large or too small). No bug found, none ruled out."""
        # notices (a complex step that fell back to a sound reference) inform only
        findings = [f for f in self.findings if f.kind not in NOTICES]
        within = self._outside() == 0
        undecidable = [(f.kind == "precision_loss" and f.evidence.get("undecidable"))
                       or (within and f.kind in DOUBTS) or self._on_kink(f)
                       for f in findings]
        return bool(undecidable) and not self.passed and all(undecidable)

    def _on_kink(self, finding: Finding) -> bool:
        """A kink finding at x itself (its jump persists to the scan's smallest step) that
        covers every coordinate outside tolerance: f has no derivative there to the check's
        resolution, and at each such coordinate the analytic value lies within half the
        slope gap of the reference (`kinks._between_slopes`): it may be either one-sided
        slope, so neither a bug nor its absence is shown. A value outside both slopes
        stays FAILED."""
        if finding.kind != "kink" or not finding.evidence.get("at_kink"):
            return False
        outside = np.flatnonzero(self._outside_mask())
        coordinates = finding.evidence.get("coordinates", [])
        between = dict(zip(coordinates, finding.evidence.get("between_slopes",
                                                             [False] * len(coordinates))))
        return all(between.get(int(i), False) for i in outside)

    def _outside_mask(self) -> np.ndarray:
        """The coordinates outside their tolerance (NaN gaps count as outside)."""
        return ~(np.abs(self.difference) <= self.tolerance)

    def _outside(self) -> int:
        """How many coordinates lie outside their tolerance (NaN gaps count as outside)."""
        return int(np.sum(self._outside_mask()))

    def _loosest(self) -> str:
        """``" (loosest: 3e-13 relative, at layer 1 [2, 0])"``: the largest tolerance
        relative to its entry ``max(|a_i|, |n_i|)``, i.e. the largest relative error that
        would have passed there (empty when every entry is 0)."""
        scale = np.maximum(np.abs(self.analytic), np.abs(self.reference))
        with np.errstate(divide="ignore", invalid="ignore"):
            share = np.where(scale > 0, self.tolerance / scale, -np.inf)
        if not np.any(np.isfinite(share)):
            return ""
        i = int(np.argmax(share))
        where = f"direction {i}" if self.directional else self.blocks.label(i)
        return f" (loosest: {share[i]:.2g} relative, at {where})"

    def _undecided_count(self) -> int:
        coords = {c for f in self.findings for c in f.evidence.get("coordinates", [])}
        return len(coords)

    @property
    def kinds(self) -> tuple[str, ...]:
        """The kinds of the findings, in order."""
        return tuple(f.kind for f in self.findings)

    def worst(self, k: int = WORST_ROWS) -> list[Coordinate]:
        """The `k` coordinates with the largest gap relative to their tolerance."""
        if not isinstance(k, (int, np.integer)) or k < 0:
            raise ValueError(f"`k` must be a non-negative integer; got {k!r}.")
        with np.errstate(divide="ignore", invalid="ignore"):
            share = np.abs(self.difference) / self.tolerance
        share = np.where(np.isnan(share), np.inf, share)
        order = np.argsort(-share, kind="stable")[:k]
        return [self._coordinate(int(i)) for i in order]

    def _coordinate(self, i: int) -> Coordinate:
        if self.directional:
            where, label = (i,), f"direction {i}"
        elif not self.blocks.given:
            where, label = (i,), self.blocks.label(i)
        else:
            where, label = self.blocks.locate(i), self.blocks.label(i)
        return Coordinate(i, where, label, float(self.analytic[i]), float(self.reference[i]),
                          float(self.difference[i]), float(self.tolerance[i]),
                          float(self.relative_error[i]))

    # -- text -------------------------------------------------------------------------------
    def verdict(self) -> str:
        """One line: PASSED/FAILED and how many coordinates fail."""
        failing = self._outside()
        what = "directions" if self.directional else "coordinates"
        if self.passed:
            return f"PASSED: all {self.difference.size} {what} within tolerance{self._loosest()}"
        if self.undecided:
            return (f"UNDECIDED: the check cannot decide "
                    f"{self._undecided_count()} of {self.difference.size} {what}; no bug "
                    "was found, and none could be ruled out there")
        if failing == 0:
            doubts = sum(f.kind not in NOTICES for f in self.findings)
            return (f"FAILED: all {self.difference.size} {what} within tolerance, but "
                    f"{doubts} finding(s) say the comparison cannot be trusted")
        return (f"FAILED: {failing} of {self.difference.size} {what} outside tolerance, "
                f"{len(self.findings)} finding(s)")

    def _summary_lines(self) -> list[str]:
        return [(f"reference: {self.reference_name} ({self.evaluations} evaluations of f, "
                f"{self.numbers})"),
                (f"max relative error {self.max_relative_error:.3g}; relative difference "
                f"‖a-n‖/‖a+n‖ = {self.relative_difference:.3g}"),
                f"tolerance: {self.tolerance_source}",
                *([f"size: {self.plan}"] if self.plan else [])]

    def _matrix_table(self) -> bool:
        """Whether every block is a matrix (the table then has row and column columns)."""
        return all(len(s) == 2 for s in self.blocks.shapes)

    def _headers(self) -> list[str]:
        if self.directional:
            first = ["direction"]
        elif self.blocks.given:
            first = ["block", "row", "column"] if self._matrix_table() else ["block", "entry"]
        else:
            first = ["index"]
        return [*first, "analytic", "reference", "|a-n|", "tolerance", "rel. error"]

    def _position(self, c: Coordinate) -> list[str]:
        """The position cells of one row: one cell per header before the numbers, so
        blocks of mixed rank keep the table aligned."""
        if self.directional or not self.blocks.given:
            return [str(c.index)]
        block, *coords = c.where
        if self._matrix_table():
            return [self.blocks.name(block), *(str(w) for w in coords)]
        return [self.blocks.name(block), self.blocks.entry(c.index)]

    def _rows(self, k: int) -> list[list[str]]:
        rows = []
        for c in self.worst(k):
            rows.append([*self._position(c), f"{c.analytic:.6g}", f"{c.reference:.6g}",
                         f"{abs(c.difference):.2e}", f"{c.tolerance:.2e}",
                         f"{c.relative_error:.2e}"])
        return rows

    def __str__(self) -> str:
        lines = [f"Gradient check {self.verdict()}"]
        lines += [f"  {line}" for line in self._summary_lines()]
        lines.append("findings:")
        lines += [f"  - {f}" for f in self.findings]
        headers, rows = self._headers(), self._rows(WORST_ROWS)
        widths = [max(len(h), *(len(r[j]) for r in rows)) for j, h in enumerate(headers)]
        lines.append("worst directions:" if self.directional else "worst coordinates:")
        lines.append("  " + "  ".join(h.rjust(w) for h, w in zip(headers, widths)))
        lines += ["  " + "  ".join(v.rjust(w) for v, w in zip(r, widths)) for r in rows]
        return "\n".join(lines)

    def to_markdown(self) -> str:
        """The report as markdown: verdict, summary, findings, a table of worst coordinates."""
        lines = [f"**Gradient check {self.verdict()}**", ""]
        lines += [f"- {line}" for line in self._summary_lines()]
        lines += ["", "Findings:", ""]
        lines += [f"- **{f.kind}**: {f.message}" for f in self.findings]
        headers = self._headers()
        lines += ["", "| " + " | ".join(headers) + " |",
                  "|" + "|".join("---:" for _ in headers) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in self._rows(WORST_ROWS)]
        return "\n".join(lines)
