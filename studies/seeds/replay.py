"""What every seed case shares: the `Replay` record, the base seed, the logistic sigmoid."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from precision_nn.gradcheck import GradientReport

__all__ = ["SEED", "Replay", "sigmoid"]

SEED = 0  # the base seed of every random choice in the seed cases (recorded in run.json)


@dataclass(frozen=True)
class Replay:
    """One seed case replayed.

    Attributes
    ----------
    case : str
        ``seed000`` ... ``seed004``.
    saw : str
        What the user saw, reproduced, in one paragraph.
    reports : dict of str to GradientReport
        `check_gradient`'s report per scenario (``"user"``: the user's setup).
    user_metrics : dict of str to float
        The number the user looked at, per scenario where there is one.
    facts : dict
        Further numbers of the replay (e.g. training results).
    """

    case: str
    saw: str
    reports: dict[str, GradientReport]
    user_metrics: dict[str, float] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)


def sigmoid(z: np.ndarray) -> np.ndarray:
    """The logistic 1/(1 + e^-z), in whatever arithmetic `z` carries (complex-step safe)."""
    return 1 / (1 + np.exp(-z))
