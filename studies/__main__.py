"""Command line: ``python -m studies [NAME ...] [--quick] [--out DIR] [--jobs N]
[--dask ADDRESS] [--resume]``.

Runs the named studies (all of them when no name is given) and writes
``DIR/<study>/{results.csv,summary.md,*.png,*.svg}`` and ``DIR/index.{md,html}``.
This is the only module that configures logging.

Exit status: 0 when every cell finished, 1 when a cell failed, 2 for a usage error (a bad
option, an ``--out`` that cannot hold a report, or one another run is writing to: its lock
is held), 130 after Ctrl-C and 143 after SIGTERM; an interruption prints
``interrupted: N cells saved; rerun with --resume`` and no traceback.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import time

import studies
from studies import runner


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse and validate the command line (unknown study names list the valid ones)."""
    parser = argparse.ArgumentParser(
        prog="python -m studies",
        description="Chart truncation against rounding error of numerical derivatives.")
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"studies to run (default: all of {list(studies.STUDIES)})")
    parser.add_argument("--quick", action="store_true",
                        help="small grids: a run of seconds, for CI and tests")
    parser.add_argument("--out", default="reports", help="report folder (default: reports)")
    parser.add_argument("--jobs", type=int, default=None,
                        help="worker processes (default: one per core; 1 runs in-process)")
    parser.add_argument("--dask", metavar="ADDRESS", default=None,
                        help="run the cells on this dask.distributed scheduler")
    parser.add_argument("--resume", action="store_true",
                        help="reuse the cells already finished in DIR/<study>/cells.jsonl")
    args = parser.parse_args(argv)
    try:
        studies.validate_names(args.names)
        if args.jobs is not None and args.jobs < 1:
            raise ValueError(f"`--jobs` must be at least 1; got {args.jobs}.")
    except ValueError as exc:
        parser.error(str(exc))
    return args


class _Terminated(KeyboardInterrupt):
    """SIGTERM, handled as Ctrl-C (the workers are stopped, the logs are kept)."""


def _on_sigterm(signum, frame):
    raise _Terminated


def main(argv: list[str] | None = None) -> int:
    """Run the studies and return the exit status (see the module docstring)."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    start = time.monotonic()
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        results = runner.run(args.names, out=args.out, quick=args.quick, jobs=args.jobs,
                             dask=args.dask, resume=args.resume)
    except (runner.OutUnusable, runner.OutLocked) as exc:
        print(f"python -m studies: error: {exc}", file=sys.stderr)
        return 2
    except runner.Interrupted as exc:
        terminated = isinstance(exc.__context__, _Terminated)
        print(str(exc) + (" (SIGTERM)" if terminated else ""), file=sys.stderr)
        return 143 if terminated else 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    failed = sum(len(result.failures) for result in results)
    logging.getLogger("studies").info(
        "wrote %s/index.md and index.html in %.1f s (%d failed cells)", args.out,
        time.monotonic() - start, failed)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
