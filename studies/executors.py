"""Executors that run the study cells: in-process, a local process pool, or a Dask cluster.

`make_executor` is the one entry: it validates ``jobs``/``dask`` and yields a
`concurrent.futures.Executor` that is closed (or, after an exception such as Ctrl-C,
stopped at once: running workers are terminated) on exit. `studies.runner` submits the
cells to it; nothing here knows about studies, logs or locks.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import signal
from collections.abc import Iterator

__all__ = ["SerialExecutor", "make_executor"]


class SerialExecutor(cf.Executor):
    """Run each submitted call at once in the calling process (``jobs=1``, debugging).

    An `Exception` is stored in the returned future; a `BaseException` such as
    `KeyboardInterrupt` propagates to the caller, exactly as an interrupted run would.
    """

    def submit(self, fn, /, *args, **kwargs):
        future: cf.Future = cf.Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as exc:  # noqa: BLE001 - handed to the caller through the future
            future.set_exception(exc)
        return future


@contextlib.contextmanager
def make_executor(*, jobs: int | None = None, dask: str | None = None) -> Iterator[cf.Executor]:
    """The executor that runs the cells, closed on exit.

    Parameters
    ----------
    jobs : int or None
        Worker processes of the local pool (None: one per core); 1 runs in-process.
    dask : str or None
        Address of a ``dask.distributed`` scheduler (``tcp://host:8786``); when given, the
        cells run on that cluster through ``Client(dask).get_executor()``. Its workers must
        be able to import `studies` and `precision_nn` (same code, same versions).
    """
    if jobs is not None and (not isinstance(jobs, int) or jobs < 1):
        raise ValueError(f"`jobs` must be a positive integer (or None for one per core); "
                         f"got {jobs!r}.")
    if dask is not None:
        try:
            from dask.distributed import Client
        except ImportError as exc:
            raise ValueError("`--dask` needs dask.distributed; install the optional extra: "
                             "pip install -e '.[dask]'.") from exc
        try:
            client = Client(dask)
        except OSError as exc:
            raise OSError(f"cannot reach the dask scheduler at {dask!r} ({exc}); start one "
                          "with `dask scheduler` and workers with `dask worker ADDRESS`, or "
                          "drop --dask to use the local process pool.") from exc
        with client:
            yield client.get_executor()
    elif jobs == 1:
        yield SerialExecutor()
    else:
        pool = cf.ProcessPoolExecutor(max_workers=jobs, initializer=_ignore_sigint)
        try:
            yield pool
        except BaseException:
            _stop(pool)
            raise
        pool.shutdown()


def _ignore_sigint() -> None:
    """Worker initializer: Ctrl-C reaches the whole process group, and only the parent
    acts on it (it stops the workers itself), so no worker prints a traceback."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _stop(pool: cf.ProcessPoolExecutor) -> None:
    """Stop `pool` now: cancel what has not started and terminate the running workers.

    `ProcessPoolExecutor.shutdown` can only wait for running calls, which for a long cell
    means a Ctrl-C that does nothing for minutes; the worker processes are reached through
    the pool's ``_processes`` mapping (private, present since Python 3.2), and nothing they
    were computing is lost that was not already lost: a cell is logged only when it ends.
    """
    workers = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in workers:
        process.terminate()
    for process in workers:
        process.join(timeout=5)
