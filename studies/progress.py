"""The progress line of a study run, drawn by tqdm with a cost-weighted total.

The bar counts *cost*, not cells: each cell weighs its optional ``"cost"`` entry (1 when
absent, see `studies.runner.cell_cost`), so the time left, which tqdm computes as the cost
still to run over the mean rate so far (``smoothing=0``: the plain average, not an
exponential one that follows the last, possibly cheap, cell), holds from the first cells on
even when cells differ a hundredfold. The line also says how many cells are done and how
many failed.

On a terminal tqdm redraws the line in place. Into a file or a pipe (a CI log) a redraw
would be a carriage return inside one endless line, so there each redraw becomes a line of
its own, at most one every `every` seconds (tqdm's ``mininterval``), plus the last one.
"""

from __future__ import annotations

import sys
from typing import IO

from tqdm import tqdm

__all__ = ["Progress"]

BAR_FORMAT = ("{desc}{percentage:3.0f}%|{bar:24}| {cells} cells{failed}, "
              "elapsed {elapsed}, left ~{remaining}")


class _Bar(tqdm):
    """tqdm with the cell counts as fields of the bar format."""

    def __init__(self, *args, cells: str, **kwargs) -> None:
        self.cells, self.failed = cells, ""  # before tqdm's first draw
        super().__init__(*args, **kwargs)

    @property
    def format_dict(self):
        return {**super().format_dict, "cells": self.cells, "failed": self.failed}


class _LineStream:
    """A text stream that turns tqdm's in-place redraws into whole lines (for logs)."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream, self.last = stream, ""

    def write(self, text: str) -> None:
        for part in text.replace("\r", "\n").split("\n"):
            part = part.rstrip()
            if part and part != self.last:
                self.stream.write(part + "\n")
                self.last = part

    def flush(self) -> None:
        self.stream.flush()


class Progress:
    """One study's progress: cells done and failed, elapsed time, cost-weighted time left.

    Parameters
    ----------
    label : str
        The study's name, shown first.
    costs : list of float
        The cost of every cell of the grid still to run (0 for a cell already finished).
    done : int
        Cells already finished (reused by ``--resume``).
    stream : text stream, optional
        Where to draw (default: stderr).
    every : float
        Seconds between two lines when `stream` is not a terminal.
    """

    def __init__(self, label: str, costs: list[float], *, done: int = 0,
                 stream: IO[str] | None = None, every: float = 5.0) -> None:
        stream = sys.stderr if stream is None else stream
        tty = bool(getattr(stream, "isatty", lambda: False)())
        self.total, self.done, self.failed = len(costs), done, 0
        left = float(sum(costs))  # nothing left (all reused): a full bar of one unit
        self.bar = _Bar(total=left or 1.0, initial=0.0 if left else 1.0,
                        cells=f"{done}/{len(costs)}", desc=f"[{label}] ", bar_format=BAR_FORMAT,
                        file=stream if tty else _LineStream(stream), smoothing=0,
                        mininterval=0.1 if tty else every, dynamic_ncols=tty, ascii=not tty,
                        delay=0)

    def _label(self) -> None:
        self.bar.cells = f"{self.done}/{self.total}"
        self.bar.failed = f", {self.failed} failed" if self.failed else ""

    def update(self, *, failed: bool = False, cost: float = 1.0) -> None:
        """Count one more finished cell of estimated `cost` (tqdm throttles the redraw)."""
        self.done += 1
        self.failed += int(failed)
        self._label()
        # the costs summed one by one can pass their sum by a rounding error: clamp
        self.bar.update(min(cost, max(self.bar.total - self.bar.n, 0.0)))

    def line(self) -> str:
        """The current progress line."""
        return str(self.bar)

    def close(self) -> None:
        """Draw the last line and release the stream."""
        self._label()
        self.bar.refresh()
        self.bar.close()
