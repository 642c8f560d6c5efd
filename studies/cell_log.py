"""The cell log and the report folder's lock: what a crash, a stray line or a second run
cannot spoil.

``<out>/<study>/cells.jsonl`` holds one JSON record per finished cell (see
`studies.runner.execute_cell`). A run killed while writing leaves a torn last line (a
fragment without its newline); a person may paste anything into the file. The rules:

- every append starts on a fresh line: if the file does not end with a newline (a torn
  tail), one is written first, so the next record is never glued onto a fragment;
- when the log is read for ``--resume``, a torn tail that does not parse is cut off and
  set aside in ``cells.jsonl.torn`` (appended, so nothing is destroyed), with a warning;
  a tail that parses as a record only lacked its newline, which is added;
- lines that are not records (not JSON, or JSON that is not an object with ``key``,
  ``cell``, ``rows`` and ``error``) are skipped with one warning that counts them.

`lock_out` takes an advisory lock (``fcntl.flock``) on ``<out>/.studies.lock`` for a whole
run, because every study folder and the shared ``index.md`` live under ``--out``: a second
run into the same folder fails at once with `OutLocked`, naming the process that holds
it. The kernel drops the lock when its holder exits, however it exits, so a stale lock file
never blocks anyone. A ``--out`` that cannot hold a report gives `OutUnusable`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

__all__ = ["CellLog", "OutLocked", "OutUnusable", "is_record", "lock_out", "prepare_out"]

LOG = logging.getLogger(__name__)
LOCK_NAME = ".studies.lock"


class OutLocked(RuntimeError):
    """Another run holds the lock of the report folder."""


class OutUnusable(ValueError):
    """The ``--out`` path cannot hold a report (a file, or a folder one cannot write)."""


def is_record(value: object) -> bool:
    """Whether `value` has the shape of a cell record (``key``, ``cell``, ``rows``, ``error``)."""
    return (isinstance(value, dict) and isinstance(value.get("key"), str)
            and isinstance(value.get("cell"), dict) and isinstance(value.get("rows"), list)
            and (value.get("error") is None or isinstance(value.get("error"), str)))


class CellLog:
    """Append-only JSON-lines log of finished cells, ``<out>/<study>/cells.jsonl``.

    Each line is one record, written, flushed and synced as soon as its cell finishes; a
    later record of the same key supersedes an earlier one.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @property
    def torn_path(self) -> Path:
        """Where a torn tail is set aside (``cells.jsonl.torn``)."""
        return self.path.with_name(self.path.name + ".torn")

    def read(self) -> dict[str, dict]:
        """The last record of every key, after repairing a torn tail (see the module doc)."""
        if not self.path.exists():
            return {}
        self._repair_tail()
        records: dict[str, dict] = {}
        skipped = 0
        with self.path.open("rb") as stream:
            for raw in stream:
                if not raw.strip():
                    continue
                record = _parse(raw)
                if record is None:
                    skipped += 1
                else:
                    records[record["key"]] = record
        if skipped:
            LOG.warning("%s: skipped %d line%s that %s not a cell record (not JSON, or "
                        "JSON without key, cell, rows and error); those cells are recomputed",
                        self.path, skipped, "" if skipped == 1 else "s",
                        "is" if skipped == 1 else "are")
        return records

    def finished(self) -> int:
        """How many distinct cells the log holds as finished without error (no repair)."""
        if not self.path.exists():
            return 0
        keys = set()
        with self.path.open("rb") as stream:
            for raw in stream:
                record = _parse(raw)
                if record is not None and record["error"] is None:
                    keys.add(record["key"])
        return len(keys)

    def reset(self) -> None:
        """Start an empty log (a run without ``--resume``)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text("")

    def append(self, record: dict) -> dict:
        """Write `record` as one line on a fresh line, flushed and synced; return it as read
        back (the JSON round trip the renderer sees)."""
        line = json.dumps(record)  # key order kept: it is the column order of results.csv
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a+b") as stream:
            stream.seek(0, os.SEEK_END)
            fresh = b""
            if stream.tell() > 0:
                stream.seek(-1, os.SEEK_END)
                fresh = b"" if stream.read(1) == b"\n" else b"\n"
            stream.write(fresh + line.encode() + b"\n")  # "a" mode: always at the end
            stream.flush()
            os.fsync(stream.fileno())
        return json.loads(line)

    def _repair_tail(self) -> None:
        """Give a log whose last line lacks its newline one, or set a torn tail aside."""
        with self.path.open("r+b") as stream:
            data = stream.read()
            if not data or data.endswith(b"\n"):
                return
            start = data.rfind(b"\n") + 1
            tail = data[start:]
            if _parse(tail) is not None:  # a whole record that only lost its newline
                stream.write(b"\n")
                return
            with self.torn_path.open("ab") as aside:
                aside.write(tail + b"\n")
            stream.truncate(start)
        LOG.warning("%s: the last line was torn (%d bytes without a newline: a run stopped "
                    "while writing it); set aside in %s, and its cell is recomputed",
                    self.path, len(tail), self.torn_path.name)


def _parse(raw: bytes) -> dict | None:
    """The record on one line, or None when the line is not one."""
    try:
        value = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return value if is_record(value) else None


# -- the report folder --------------------------------------------------------------------
def prepare_out(out: Path) -> Path:
    """Create the report folder `out` if needed and check that a report can be written.

    Raises
    ------
    OutUnusable
        When `out` (or a parent) is a file, or the folder cannot be created or written.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise OutUnusable(f"--out {str(out)!r} is a file, not a folder; give a folder "
                          "(it is created if missing), e.g. --out reports.")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutUnusable(f"--out {str(out)!r} cannot be created ({exc.strerror or exc}); "
                          "give a folder you can write to.") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise OutUnusable(f"--out {str(out)!r} is not writable; give a folder you can "
                          "write to.")
    return out


@contextlib.contextmanager
def lock_out(out: Path) -> Iterator[Path]:
    """Hold the advisory lock of report folder `out` for the duration of the block.

    The lock file records the holder's pid, command line and start time, so that a second
    run can say who holds it.

    Raises
    ------
    OutLocked
        When another process holds the lock.
    OutUnusable
        When the lock file cannot be created.
    """
    path = Path(out) / LOCK_NAME
    try:
        stream = path.open("a+")
    except OSError as exc:
        raise OutUnusable(f"--out {str(out)!r}: cannot create its lock file {path.name} "
                          f"({exc.strerror or exc}); give a folder you can write to.") from None
    with stream:
        try:
            fcntl.flock(stream.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            stream.seek(0)
            raise OutLocked(f"--out {str(out)!r} is in use by another run ({_holder(stream)}); "
                            "wait for it to finish, or give another --out.") from None
        stream.seek(0)
        stream.truncate()
        stream.write(json.dumps({"pid": os.getpid(), "command": " ".join(sys.argv),
                                 "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                              time.gmtime())}) + "\n")
        stream.flush()
        try:
            yield path
        finally:
            fcntl.flock(stream.fileno(), fcntl.LOCK_UN)


def _holder(stream) -> str:
    """Who holds the lock, from what the holder wrote into the lock file."""
    try:
        holder = json.loads(stream.read() or "{}")
    except json.JSONDecodeError:
        holder = {}
    if not isinstance(holder, dict) or "pid" not in holder:
        return "its process did not record its pid yet"
    return (f"pid {holder['pid']}, `{holder.get('command', '?')}`, started "
            f"{holder.get('started_utc', '?')}")
