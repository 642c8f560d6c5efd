"""A toy study for tests that run ``python -m studies`` as a real process.

The subprocess registers it (``studies.STUDIES["toy"] = "tests.studies_toy"``) and runs the
real command-line entry point. Its grid reads the environment: ``TOY_CELLS`` cells that
each sleep ``TOY_SLEEP`` seconds and append their key to the file ``TOY_CALLS``, so a test
can interrupt a run mid-way and count which cells ran. A cell's value is a closed form (the
sum of the first n squares) to check the rows independently.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

NAME = "toy"
TITLE = "Toy study: sums of squares"
SEED = 11

# what a subprocess runs: the real entry point, with the toy registered
DRIVER = ("import sys, studies; studies.STUDIES['toy'] = 'tests.studies_toy'; "
          "from studies.__main__ import main; sys.exit(main(sys.argv[1:]))")


def command(*args: str) -> list[str]:
    """The argv of ``python -m studies toy ARGS`` with the toy study registered."""
    return [sys.executable, "-c", DRIVER, "toy", *args]


def grid(quick: bool) -> list[dict]:
    cells = int(os.environ.get("TOY_CELLS", "4"))
    return [{"key": f"n={n}", "n": n, "sleep": float(os.environ.get("TOY_SLEEP", "0")),
             "calls": os.environ.get("TOY_CALLS", "")} for n in range(1, cells + 1)]


def run_cell(cell: dict) -> list[dict]:
    if cell["calls"]:
        with open(cell["calls"], "a") as stream:
            stream.write(cell["key"] + "\n")
    time.sleep(cell["sleep"])
    n = cell["n"]
    return [{"n": n, "sum_of_squares": sum(k * k for k in range(1, n + 1))}]


def render(rows: list[dict], out: Path) -> str:
    return "\n".join(f"- n = {r['n']}: {r['sum_of_squares']}" for r in rows)
