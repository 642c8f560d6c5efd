"""The seed systems replayed: what each user saw, what `check_gradient` finds, the fix.

One module per case, matching ``docs/seeds/``; each rebuilds its problem from what the
user describes (never from the user's code) and defines ``CASE``, a ``READING`` paragraph
for the report, and ``replay() -> Replay`` (`studies.seeds.replay`), which the tests call
directly:

`studies.seeds.seed000`
    A Decimal network whose sigmoid goes through a binary float, checked at h = 0.99399.
seed001
    The same question as seed000, asked in Chinese. It has no module and no cell of its
    own: replaying it would repeat seed000's numbers row for row, so the registry below
    maps it to seed000 (`ALIASES`) and the report says so.
`studies.seeds.seed002`
    The Coursera ML 3-5-3 network: a regulariser that counts the bias, C or F order.
`studies.seeds.seed003`
    Layers that differentiate themselves numerically: AND and OR not learned together.
`studies.seeds.seed004`
    A 4-3-1 ReLU/sigmoid network: σ' taken at z instead of a, and a missing 1/m.

This package is the study ``seed_cases`` (``python -m studies seed_cases``). Its
``run_cell`` returns one row per scenario with the columns

``case``, ``scenario``
    The seed and what is checked (``user``, ``fixed``, ...).
``passed``, ``findings``
    The verdict of `check_gradient` and its finding kinds joined by ``+``.
``max_relative_error``, ``relative_difference``
    From the report.
``user_metric``
    The number the user looked at for this scenario (empty when none).
``saw``
    What the user saw, reproduced (the same in every row of a case).
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

from studies.seeds import seed000, seed002, seed003, seed004
from studies.seeds.replay import SEED, Replay

__all__ = ["ALIASES", "CASES", "NAME", "SEED", "TITLE", "Replay", "grid", "render",
           "run_cell"]

NAME = "seed_cases"
TITLE = "Seed cases: what the users saw, what check_gradient finds, the fix passing"
CASES: dict[str, ModuleType] = {module.CASE: module
                                for module in (seed000, seed002, seed003, seed004)}
ALIASES = {"seed001": "seed000"}  # the Chinese copy of seed000: the same replay


def grid(quick: bool) -> list[dict]:
    """One cell per seed case (the replays are small; `quick` changes nothing)."""
    return [{"key": name} for name in CASES]


def run_cell(cell: dict) -> list[dict]:
    """Replay one case; one row per checked scenario."""
    replay = CASES[cell["key"]].replay()
    return [{"case": replay.case, "scenario": name, "passed": report.passed,
             "findings": "+".join(report.kinds),
             "max_relative_error": report.max_relative_error,
             "relative_difference": report.relative_difference,
             "user_metric": replay.user_metrics.get(name), "saw": replay.saw}
            for name, report in replay.reports.items()]


def render(rows: list[dict], out: Path) -> str:
    """Per case: what the user saw, a reading, and a table of scenario, verdict, findings."""
    if not rows:
        return "No case finished.\n"
    parts = []
    for case, module in CASES.items():
        mine = [r for r in rows if r["case"] == case]
        if not mine:
            parts.append(f"## {case}\n\nThis case did not finish (see the failed cells).\n")
            continue
        aliases = [alias for alias, target in ALIASES.items() if target == case]
        also = (f" {', '.join(aliases)} asks the same question in another language; its "
                "replay is this one." if aliases else "")
        passed = sum(bool(r["passed"]) for r in mine)
        lines = [f"## {case}", "", f"**What the user saw.** {mine[0]['saw']}", "",
                 f"**Reading.** {module.READING} Of {len(mine)} scenarios, {passed} pass.{also}",
                 "", f"The walkthrough: `docs/seeds/{case}.md`.", "",
                 "| scenario | passed | findings | max rel. error |", "|---|---|---|---:|"]
        lines += [f"| {r['scenario']} | {r['passed']} | {r['findings']} | "
                  f"{r['max_relative_error']:.3g} |" for r in mine]
        parts.append("\n".join(lines) + "\n")
    return "\n".join(parts)
