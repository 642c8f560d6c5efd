"""Runnable studies that chart truncation against rounding error: ``python -m studies``.

The registry below maps each study's name to the dotted path of its module. It is an
explicit table, not registration by import side effect, and a module is imported only when
its study is run (`load`), so one study that fails to import never stops the others.
The interface every study module implements is described in `studies.runner`.
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["STUDIES", "load", "validate_names"]

STUDIES: dict[str, str] = {
    "epsilon_sweep": "studies.epsilon_sweep",
    "precision_sweep": "studies.precision_sweep",
    "method_comparison": "studies.method_comparison",
    "gradcheck_reliability": "studies.gradcheck_reliability",
    "seed_cases": "studies.seeds",
    "certified": "studies.certified",
}


def validate_names(names: list[str] | tuple[str, ...]) -> list[str]:
    """The study names to run, in the order given (all of them when `names` is empty).

    Raises
    ------
    ValueError
        For a name that is not in `STUDIES`; the message lists the valid names.
    """
    unknown = [name for name in names if name not in STUDIES]
    if unknown:
        raise ValueError(
            f"unknown study {unknown[0]!r}; valid names are {sorted(STUDIES)} "
            "(run `python -m studies` with no name to run them all)."
        )
    return list(names) if names else list(STUDIES)


def load(name: str) -> ModuleType:
    """Import and return the module of study `name` (see `studies.runner` for its interface)."""
    validate_names([name])
    return importlib.import_module(STUDIES[name])
