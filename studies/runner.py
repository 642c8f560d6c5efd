"""Run studies: grid cells through an executor, a resumable cell log, tidy outputs.

The study interface
-------------------
A study is a module listed in `studies.STUDIES` that defines

``NAME: str``
    The registry name, also the output folder ``<out>/<NAME>/``.
``TITLE: str``
    A one-line human title (the heading of its summary and of its index section).
``SEED: int`` (optional)
    The base seed from which `grid` derives every random choice; recorded in the
    provenance. Omit it for a study that draws nothing at random.
``grid(quick: bool) -> list[dict]``
    The cells of the study. A cell is a dict of JSON-serialisable values (str, int, float,
    bool, None, and lists/dicts of those) with a ``"key"`` entry: a str, unique within the
    grid and stable across runs and machines (build it from the cell's parameters, e.g.
    ``"float32/central2/exp"``). ``quick=True`` gives a grid that runs in seconds.
``run_cell(cell: dict) -> list[dict]``
    Compute one cell. Pure (same cell, same rows; no files written, no global state
    changed, no logging configuration), importable at module level so that it pickles,
    and self-contained: it runs in another process or on a Dask worker. It returns tidy
    rows: one dict per measurement with scalar JSON-serialisable values, the same keys in
    every row of the study; the study's module docstring names and explains the columns.
    It may raise: the runner records the error against the cell and goes on.
    A cell may carry a ``"cost"`` entry, a positive number proportional to its expected
    run time: the runner submits the costliest cells first and weighs the time-left
    estimate by it.
``render(rows: list[dict], out: pathlib.Path) -> str``
    Draw and tabulate. `rows` are the rows of every successful cell, in grid order, with
    values as they come back from the cell log (JSON round trip: floats, ints, str, bool,
    None). It writes its figures into the existing folder `out` as PNG and SVG (see
    `studies.output.save_figure`) and returns the markdown body of ``summary.md``: its
    tables, its figures linked by paths relative to `out` (``![caption](error_vs_h.png)``),
    and a one-paragraph reading of each. It must not fail on a partial grid (some cells
    failed): say what is missing instead.

What the runner does with it
----------------------------
For each study, `run_study` takes ``grid(quick)``, skips the cells already finished in
``<out>/<NAME>/cells.jsonl`` when resuming (a finished record whose cell is identical to
the current one; failed cells are retried), submits the others to a
`concurrent.futures.Executor` (a local process pool, an in-process serial executor for
``jobs=1``, or a ``dask.distributed`` cluster's executor, all made by
`studies.executors.make_executor`) and appends each record to the
log the moment its cell finishes, so an interruption loses nothing finished (the log's
rules against torn lines and foreign lines are in `studies.cell_log`). A tqdm progress line
on stderr (`studies.progress`) shows cells done, elapsed time and a cost-weighted estimate
of the time left. A whole run holds the advisory lock of ``<out>`` (a second run into the
same folder stops at once), and Ctrl-C stops the workers and raises `Interrupted`, which
counts the cells saved. The
runner then writes ``results.csv`` (rows of all successful cells in grid order, columns in
first-seen order), ``summary.md`` (title, the study's body, any failed cells with their
errors, the run's provenance from `studies.provenance`) and ``run.json`` (provenance and counts), and finally
`studies.output.write_index` writes ``<out>/index.md`` and ``<out>/index.html``.

Only ``studies.__main__`` configures logging; this module only logs through
``logging.getLogger(__name__)``.
"""

from __future__ import annotations

import concurrent.futures as cf
import importlib
import importlib.util
import json
import logging
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import IO

import studies
from studies.cell_log import CellLog, OutLocked, OutUnusable, lock_out, prepare_out
from studies.executors import SerialExecutor, make_executor
from studies.progress import Progress
from studies.provenance import provenance

__all__ = [
    "CellLog",
    "Interrupted",
    "OutLocked",
    "OutUnusable",
    "Progress",
    "SerialExecutor",
    "StudyResult",
    "check_study",
    "execute_cell",
    "make_executor",
    "provenance",
    "run",
    "run_cells",
    "run_study",
]

LOG = logging.getLogger(__name__)
REQUIRED = ("NAME", "TITLE", "grid", "run_cell", "render")


# -- the study interface ------------------------------------------------------------------
def check_study(module: ModuleType) -> ModuleType:
    """Return `module` after checking that it implements the study interface.

    Raises
    ------
    TypeError
        Naming the missing attributes.
    """
    missing = [attr for attr in REQUIRED if not hasattr(module, attr)]
    if missing:
        raise TypeError(
            f"study module {module.__name__!r} lacks {missing}; a study defines "
            f"{list(REQUIRED)} (see the docstring of studies.runner)."
        )
    return module


def _cell_keys(cells: list[dict], name: str) -> list[str]:
    """The cells' keys, checked to be present, strings and unique."""
    keys = []
    for cell in cells:
        key = cell.get("key") if isinstance(cell, dict) else None
        if not isinstance(key, str):
            raise ValueError(  # noqa: TRY004 - a bad grid value, whatever its type
                f"every cell of study {name!r} must be a dict with a str 'key'; "
                             f"got {cell!r}.")
        keys.append(key)
    if len(set(keys)) != len(keys):
        duplicate = next(k for k in keys if keys.count(k) > 1)
        raise ValueError(f"cell keys of study {name!r} must be unique; {duplicate!r} repeats.")
    return keys



def execute_cell(module_name: str, cell: dict) -> dict:
    """Run one cell in a worker and return its log record (never raises an `Exception`).

    The record holds ``key``, ``cell``, ``rows`` (empty on failure), ``error`` (None, or
    the exception and its traceback) and ``seconds`` (wall time of the cell).
    """
    start = time.perf_counter()
    try:
        module = importlib.import_module(module_name)
        rows, error = list(module.run_cell(cell)), None
    except Exception:  # noqa: BLE001 - a failing cell is recorded, the run goes on
        rows, error = [], traceback.format_exc()
    return {"key": cell["key"], "cell": cell, "rows": rows, "error": error,
            "seconds": time.perf_counter() - start}


def _finished(record: dict | None, cell: dict) -> bool:
    """Whether `record` is a successful run of exactly this cell."""
    same_cell = record is not None and record["cell"] == json.loads(json.dumps(cell))
    return same_cell and record["error"] is None


# -- running ------------------------------------------------------------------------------
@dataclass
class StudyResult:
    """What one study's run produced (records in grid order)."""

    name: str
    title: str
    records: list[dict]
    computed: int
    reused: int
    seconds: float
    seed: int | None = None
    info: dict = field(default_factory=dict)

    @property
    def rows(self) -> list[dict]:
        """Rows of every successful cell, in grid order."""
        return [row for record in self.records if record["error"] is None
                for row in record["rows"]]

    @property
    def failures(self) -> list[dict]:
        """Records of the cells that raised."""
        return [record for record in self.records if record["error"] is not None]


def run_cells(module: ModuleType, cells: list[dict], *, executor: cf.Executor, log: CellLog,
              resume: bool = False, previous: dict[str, dict] | None = None,
              progress: Progress | None = None) -> tuple[dict, int]:
    """Run the unfinished `cells` of `module` on `executor`, logging each as it finishes.

    With `resume`, the records of `previous` (the log as already read by the caller; read
    here when None) whose cell is identical are reused; without, the log starts empty.

    Returns
    -------
    records : dict
        key -> record for every cell (reused or computed).
    computed : int
        Number of cells computed in this call.
    """
    keys = _cell_keys(cells, module.NAME)
    if not resume:
        previous = {}
        log.reset()
    elif previous is None:
        previous = log.read()
    records = {key: previous[key] for key, cell in zip(keys, cells)
               if _finished(previous.get(key), cell)}
    # the costliest first: with few workers, the longest cells then do not end the run
    todo = sorted((cell for key, cell in zip(keys, cells) if key not in records),
                  key=lambda cell: -cell_cost(cell))
    pending: dict[cf.Future, dict] = {}

    def finish(future: cf.Future) -> None:
        record = _record_of(future, pending.pop(future))
        records[record["key"]] = log.append(record)
        if progress is not None:
            progress.update(failed=record["error"] is not None, cost=cell_cost(record["cell"]))

    try:
        for cell in todo:
            pending[executor.submit(execute_cell, module.__name__, cell)] = cell
            # Log whatever is already done (every cell, for the serial executor), so that
            # an interruption while submitting loses nothing finished.
            for future in [f for f in pending if f.done()]:
                finish(future)
        for future in cf.as_completed(list(pending)):
            finish(future)
    except BaseException:
        for future in pending:
            future.cancel()
        raise
    return records, len(todo)


def cell_cost(cell: dict) -> float:
    """The cell's optional relative cost estimate (``"cost"``, default 1)."""
    cost = cell.get("cost", 1.0)
    return float(cost) if isinstance(cost, (int, float)) and cost > 0 else 1.0


def _record_of(future: cf.Future, cell: dict) -> dict:
    """The record of a finished future; an executor-level failure becomes a cell error."""
    try:
        return future.result()
    except Exception:  # noqa: BLE001 - e.g. a worker died or the cell did not pickle
        return {"key": cell["key"], "cell": cell, "rows": [], "seconds": float("nan"),
                "error": traceback.format_exc()}


def run_study(study: str | ModuleType, *, out: Path, quick: bool = False,
              executor: cf.Executor, resume: bool = False,
              stream: IO[str] | None = None) -> StudyResult:
    """Run one study's grid and return its records (files are written by `write_study`).

    Parameters
    ----------
    study : str or module
        A name in `studies.STUDIES`, or a module implementing the interface.
    out : Path
        The report root; the cell log goes to ``out / NAME / "cells.jsonl"``.
    """
    module = check_study(studies.load(study) if isinstance(study, str) else study)
    start = time.monotonic()
    cells = module.grid(quick)
    log = CellLog(Path(out) / module.NAME / "cells.jsonl")
    previous = log.read() if resume else {}  # the only read of the log
    finished = [_finished(previous.get(cell.get("key")), cell) for cell in cells]
    progress = Progress(module.NAME, [0.0 if f else cell_cost(c) for f, c in
                                      zip(finished, cells)], done=sum(finished), stream=stream)
    try:
        records, computed = run_cells(module, cells, executor=executor, log=log,
                                      resume=resume, previous=previous, progress=progress)
    finally:
        progress.close()
    ordered = [records[cell["key"]] for cell in cells]
    return StudyResult(name=module.NAME, title=module.TITLE, records=ordered,
                       computed=computed, reused=len(cells) - computed,
                       seconds=time.monotonic() - start, seed=getattr(module, "SEED", None))


class Interrupted(KeyboardInterrupt):
    """A run stopped by Ctrl-C (or SIGTERM) after saving `saved` finished cells."""

    def __init__(self, saved: int) -> None:
        super().__init__(saved)
        self.saved = saved

    def __str__(self) -> str:
        return (f"interrupted: {self.saved} cell{'' if self.saved == 1 else 's'} saved; "
                "rerun with --resume")


def run(names: list[str] | tuple[str, ...] = (), *, out: Path | str = "reports",
        quick: bool = False, jobs: int | None = None, dask: str | None = None,
        resume: bool = False, stream: IO[str] | None = None) -> list[StudyResult]:
    """Run the named studies (all when empty), write their reports and the index.

    This is what ``python -m studies`` calls; see the module docstring for the outputs.
    The whole run holds the advisory lock of `out` (`studies.cell_log.lock_out`).

    Raises
    ------
    OutUnusable
        When `out` cannot hold a report.
    OutLocked
        When another run holds the lock of `out`.
    Interrupted
        On Ctrl-C: the workers are stopped, and the exception counts the finished cells
        saved in the logs of the studies of this run (what ``--resume`` reuses).
    """
    names = studies.validate_names(list(names)) if names else available()
    out = prepare_out(Path(out))
    with lock_out(out):
        try:
            return _run_locked(names, out=out, quick=quick, jobs=jobs, dask=dask,
                               resume=resume, stream=stream)
        except KeyboardInterrupt:
            saved = sum(CellLog(out / name / "cells.jsonl").finished() for name in names)
            raise Interrupted(saved) from None


def _run_locked(names: list[str], *, out: Path, quick: bool, jobs: int | None,
                dask: str | None, resume: bool, stream: IO[str] | None) -> list[StudyResult]:
    from studies import output

    config = {"studies": names, "quick": quick, "out": str(out), "jobs": jobs,
              "dask": dask, "resume": resume}
    results = []
    with make_executor(jobs=jobs, dask=dask) as executor:
        for name in names:
            try:
                module = load_module(name)
            except Exception:  # noqa: BLE001 - reported in its summary; other studies go on
                module, result = None, _import_failure(name)
                result.info = provenance(config=config)
            else:
                # taken before the run: its start, its commit, the study's base seed
                started = provenance(config=config, seed=getattr(module, "SEED", None))
                result = run_study(module, out=out, quick=quick, executor=executor,
                                   resume=resume, stream=stream)
                result.info = started
            output.write_study(module, result, out / name)
            results.append(result)
            LOG.info("%s: %d cells computed, %d reused, %d failed, %.1f s", name,
                     result.computed, result.reused, len(result.failures), result.seconds)
    output.write_index(out)
    return results


def available() -> list[str]:
    """The registered studies whose module exists (a study still being written is skipped)."""
    return [name for name, path in studies.STUDIES.items()
            if importlib.util.find_spec(path) is not None]


def _import_failure(name: str) -> StudyResult:
    """The result of a study whose module raised on import: one failed pseudo-cell."""
    record = {"key": "(import)", "cell": {"key": "(import)"}, "rows": [],
              "error": traceback.format_exc(), "seconds": 0.0}
    return StudyResult(name=name, title=name, records=[record], computed=0, reused=0,
                       seconds=0.0)


def load_module(name: str) -> ModuleType:
    """The checked module of study `name`."""
    return check_study(studies.load(name))
