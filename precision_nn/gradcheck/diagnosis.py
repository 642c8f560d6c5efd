"""The vocabulary of the detectors: `Finding`, `Region`, and what earlier findings explain.

Detectors (in `patterns`, `causes` and `findings`) are pure functions
``detector(data, earlier) -> list[Finding]``; each sees the findings made before it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from precision_nn.gradcheck.evidence import CheckData

__all__ = ["EXPLAINS_ALL", "NOTICES", "Detector", "Finding", "Region", "against_limit",
           "cap", "explained", "fails", "numerical"]


@dataclass(frozen=True)
class Finding:
    """One diagnosis: its kind, a sentence a learner understands, the numbers behind it.

    ``evidence["coordinates"]`` lists the flat indices the finding explains (if any).

    Examples
    --------
    >>> Finding("scale", "The gradient is 0.2 × the reference.", {"factor": 0.2}).kind
    'scale'
    """

    kind: str
    message: str
    evidence: Mapping[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"[{self.kind}] {self.message}"


@dataclass(frozen=True)
class Region:
    """A set of flat indices with a human label (``"block 1, column 0 (bias)"``)."""

    indices: np.ndarray
    label: str
    block: int | None = None


Detector = Callable[[CheckData, Sequence[Finding]], list[Finding]]


def explained(data: CheckData, earlier: Sequence[Finding]) -> np.ndarray:
    mask = np.zeros(data.analytic.shape, dtype=bool)
    for finding in earlier:
        mask[np.asarray(finding.evidence.get("coordinates", []), dtype=int)] = True
    return mask


# labels the check makes up itself start a sentence capitalised; a caller's block name
# ("fc1.bias") is kept exactly as given
_GENERIC = ("block ", "the ", "layer ", "every ")


def cap(text: str) -> str:
    """`text` capitalised to start a sentence, unless it starts with a caller's name."""
    return text[:1].upper() + text[1:] if text.startswith(_GENERIC) else text


def against_limit(data: CheckData) -> CheckData:
    """The comparison with the h → 0 limit when the user's explicit step was probed.

    Bug patterns are judged against the best reference available: a factor fitted to a
    reference with a large step error would carry that error.
    """
    step = data.probes.step
    if step is None:
        return data
    return replace(data, reference=data.analytic - step.limit_difference,
                   difference=step.limit_difference,
                   tol=replace(data.tol, values=step.limit_tolerance))


def fails(data: CheckData) -> np.ndarray:
    """Failing against the reference, or against the h → 0 limit when there is one."""
    if data.probes.step is None:
        return data.failing
    return data.failing | against_limit(data).failing


def numerical(earlier: Sequence[Finding]) -> bool:
    """Whether a numerical cause already explains the disagreement as a whole (an
    undecidable reference, or a noisy f that covers only some gaps, explains only its
    own coordinates)."""
    return any(f.kind in EXPLAINS_ALL and not f.evidence.get("undecidable")
               and not f.evidence.get("partial") for f in earlier)


# a step finding explains only the coordinates where the h → 0 limit agrees (the bug
# detectors judge the rest against that limit), so it is not among these
EXPLAINS_ALL = {"precision_loss"}


# findings that inform but do not fail a check (the reference fell back and is sound)
NOTICES = frozenset({"not_complex_safe"})
