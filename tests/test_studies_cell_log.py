"""A cell log a crash cannot spoil, tested against real ``python -m studies`` processes.

Each test starts the real command line (`tests.studies_toy.command`) in a subprocess and
then tears its log, interrupts it with a signal, or races a second run against it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from studies.cell_log import LOCK_NAME, CellLog, is_record
from tests.studies_toy import command

REPO = Path(__file__).resolve().parent.parent
SQUARES = {n: sum(k * k for k in range(1, n + 1)) for n in range(1, 20)}


def start(out: Path, *args: str, cells: int = 4, sleep: float = 0.0, calls: Path | None = None,
          **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "TOY_CELLS": str(cells),
           "TOY_SLEEP": str(sleep), "TOY_CALLS": str(calls or "")}
    return subprocess.Popen(command("--out", str(out), *args), cwd=REPO, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)


def finish(proc: subprocess.Popen, timeout: float = 120) -> tuple[int, str]:
    _, err = proc.communicate(timeout=timeout)
    return proc.returncode, err


def run(out: Path, *args: str, **kwargs) -> tuple[int, str]:
    return finish(start(out, *args, **kwargs))


def wait_for(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the run"
        time.sleep(0.02)


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def log_of(out: Path) -> Path:
    return out / "toy" / "cells.jsonl"


def children(pid: int) -> list[int]:
    """The live child processes of `pid` (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


# -- torn and foreign lines ---------------------------------------------------------------
def test_torn_tail_is_set_aside_and_only_its_cell_recomputed(tmp_path):
    out, calls = tmp_path / "r", tmp_path / "calls.txt"
    assert run(out, "--jobs", "1", calls=calls)[0] == 0
    log = log_of(out)
    whole = log.read_bytes()
    last = whole.rstrip(b"\n").rsplit(b"\n", 1)[1]
    torn = whole[: len(whole) - len(last) // 2 - 1]  # a crash half-way through the last line
    log.write_bytes(torn)
    torn_key = json.loads(last)["key"]

    status, err = run(out, "--jobs", "1", "--resume", calls=calls)
    assert status == 0
    assert "the last line was torn" in err and "cells.jsonl.torn" in err
    assert lines(calls)[4:] == [torn_key]  # only the torn cell ran again
    assert (out / "toy" / "cells.jsonl.torn").read_bytes() == torn[torn.rfind(b"\n") + 1:] + b"\n"
    assert all(is_record(json.loads(line)) for line in lines(log))  # the log is whole again
    assert sorted(CellLog(log).read()) == ["n=1", "n=2", "n=3", "n=4"]


def test_a_record_that_lost_only_its_newline_is_kept(tmp_path):
    out, calls = tmp_path / "r", tmp_path / "calls.txt"
    assert run(out, "--jobs", "1", calls=calls)[0] == 0
    log_of(out).write_bytes(log_of(out).read_bytes().rstrip(b"\n"))
    status, err = run(out, "--jobs", "1", "--resume", calls=calls)
    assert status == 0 and "torn" not in err
    assert len(lines(calls)) == 4  # nothing recomputed


def test_append_after_a_torn_tail_starts_a_fresh_line(tmp_path):
    log = CellLog(tmp_path / "cells.jsonl")
    log.path.write_text('{"key": "n=1", "cell": {"ke')  # killed mid-write, never repaired
    record = {"key": "n=2", "cell": {"key": "n=2"}, "rows": [], "error": None, "seconds": 0}
    log.append(record)
    assert log.path.read_text().splitlines()[1] == json.dumps(record)  # not glued on
    assert log.read() == {"n=2": record}


def test_lines_that_are_not_records_are_skipped_with_a_count(tmp_path):
    out, calls = tmp_path / "r", tmp_path / "calls.txt"
    assert run(out, "--jobs", "1", calls=calls)[0] == 0
    log = log_of(out)
    kept = lines(log)
    # the record of n=2 replaced by four lines that are not records, valid JSON or not
    log.write_text("\n".join([kept[0], "{}", "null", '[1, 2]', "not json", *kept[2:]]) + "\n")
    status, err = run(out, "--jobs", "1", "--resume", calls=calls)
    assert status == 0, err
    assert "skipped 4 lines that are not a cell record" in err
    assert "Traceback" not in err
    assert lines(calls)[4:] == ["n=2"]
    result = json.loads((out / "toy" / "run.json").read_text())
    assert (result["reused"], result["computed"], result["failed"]) == (3, 1, 0)


# -- the lock -----------------------------------------------------------------------------
def test_a_second_run_into_the_same_out_names_the_holder_and_exits_2(tmp_path):
    out = tmp_path / "r"
    first = start(out, "--jobs", "1", cells=6, sleep=0.3)
    try:
        wait_for(lambda: log_of(out).exists() and lines(log_of(out)))  # first holds the lock
        status, err = run(out, "--jobs", "1")
        assert status == 2
        assert err.count("\n") == 1 and "Traceback" not in err
        assert f"is in use by another run (pid {first.pid}" in err
        assert "give another --out" in err
        assert first.poll() is None  # the second run did not disturb the first ...
    finally:
        status, err = finish(first)
    assert status == 0, err  # ... which finishes with every cell
    assert len(CellLog(log_of(out)).read()) == 6


def test_the_lock_of_a_killed_run_does_not_block_the_next(tmp_path):
    out = tmp_path / "r"
    first = start(out, "--jobs", "1", cells=20, sleep=0.2)
    wait_for(lambda: (out / LOCK_NAME).exists() and lines(log_of(out)))
    first.kill()  # SIGKILL: no clean-up runs, the lock file stays behind
    finish(first)
    assert (out / LOCK_NAME).exists()
    status, err = run(out, "--jobs", "1", "--resume", cells=20)
    assert status == 0, err
    assert len(CellLog(log_of(out)).read()) == 20


# -- an unusable --out --------------------------------------------------------------------
@pytest.mark.parametrize("where", ["file", "under_a_file"])
def test_unusable_out_is_one_line_and_exit_2(tmp_path, where):
    (tmp_path / "f").write_text("not a folder")
    out = tmp_path / "f" if where == "file" else tmp_path / "f" / "sub"
    status, err = run(out)
    assert status == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"python -m studies: error: --out '{out}'")
    assert ("is a file, not a folder" if where == "file" else "cannot be created") in err


# -- signals ------------------------------------------------------------------------------
@pytest.mark.parametrize(("jobs", "sig", "status", "note"),
                         [("2", signal.SIGINT, 130, ""), ("2", signal.SIGTERM, 143, " (SIGTERM)"),
                          ("1", signal.SIGINT, 130, "")])  # 1: cells run in the main process
def test_a_signal_stops_the_workers_and_resume_computes_only_the_rest(tmp_path, jobs, sig,
                                                                      status, note):
    out, calls = tmp_path / "r", tmp_path / "calls.txt"
    cells = 12
    proc = start(out, "--jobs", jobs, cells=cells, sleep=0.4, calls=calls,
                 start_new_session=True)  # its own process group, as a terminal's job
    wait_for(lambda: len(lines(log_of(out))) >= 2)
    workers = children(proc.pid)
    assert bool(workers) == (jobs != "1"), "a process pool has workers, a serial run none"
    if sig == signal.SIGINT:
        os.killpg(proc.pid, sig)  # Ctrl-C reaches the whole group, workers included
    else:
        proc.send_signal(sig)  # `kill PID` reaches the parent only
    code, err = finish(proc, timeout=30)
    saved = CellLog(log_of(out)).finished()
    assert code == status
    assert err.splitlines()[-1] == f"interrupted: {saved} cells saved; rerun with --resume{note}"
    assert "Traceback" not in err
    assert 2 <= saved < cells
    wait_for(lambda: not any(alive(pid) for pid in workers), timeout=10)  # workers stopped

    started = len(lines(calls))
    code, err = run(out, "--jobs", jobs, "--resume", cells=cells, sleep=0.4, calls=calls)
    assert code == 0, err
    result = json.loads((out / "toy" / "run.json").read_text())
    assert (result["reused"], result["computed"], result["failed"]) == \
        (saved, cells - saved, 0)
    assert len(lines(calls)) == started + cells - saved  # nothing finished ran again
    rows = [json.loads(line)["rows"][0] for line in lines(log_of(out))]
    assert all(row["sum_of_squares"] == SQUARES[row["n"]] for row in rows)
