"""The study runner: registry, validation, failing cells, interruption and resume, outputs.

A toy study defined in this module exercises the plumbing; the cell's value is a closed
form (the sum of the first n squares) so that the rows can be checked independently.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path

import pytest

import studies
from studies import output, runner
from studies.__main__ import main, parse_args
from studies.progress import Progress

# -- a toy study (importable by worker processes as this test module) -----------------------
NAME = "toy"
TITLE = "Toy study: sums of squares"
SEED = 7


def grid(quick: bool) -> list[dict]:
    return [{"key": f"n={n}", "n": n, "log": TOY_STATE["log"], "stop": TOY_STATE["stop"],
             "fail": TOY_STATE["fail"]} for n in range(1, 4 if quick else 7)]


def run_cell(cell: dict) -> list[dict]:
    if cell["log"]:
        with open(cell["log"], "a") as stream:
            stream.write(cell["key"] + "\n")
    if cell["key"] == cell["stop"]:
        raise KeyboardInterrupt  # what Ctrl-C in the middle of a run looks like
    if cell["key"] == cell["fail"]:
        raise ZeroDivisionError("planted failure")
    n = cell["n"]
    return [{"n": n, "sum_of_squares": sum(k * k for k in range(1, n + 1))}]


def render(rows: list[dict], out: Path) -> str:
    fig, ax = output.figure()
    ax.plot([r["n"] for r in rows], [r["sum_of_squares"] for r in rows], "o-", label="toy")
    ax.set(xlabel="n", ylabel="sum of squares")
    ax.legend()
    png = output.save_figure(fig, out, "toy")
    table = output.markdown_table(rows, [("n", "n"), ("sum_of_squares", "Σk²")])
    return f"{table}\n\n![Sums of squares]({png})\n\nThe sums grow like n³/3."


TOY_STATE = {"log": "", "stop": "", "fail": ""}
TOY = sys.modules[__name__]


@pytest.fixture()
def toy(monkeypatch, tmp_path):
    """Register the toy study and give each test its own state."""
    monkeypatch.setitem(studies.STUDIES, "toy", __name__)
    monkeypatch.setattr(sys.modules[__name__], "TOY_STATE",
                        {"log": str(tmp_path / "calls.txt"), "stop": "", "fail": ""})
    return sys.modules[__name__].TOY_STATE


def calls(state: dict) -> list[str]:
    path = Path(state["log"])
    return path.read_text().split() if path.exists() else []


def read_csv(path: Path) -> list[dict]:
    with path.open() as stream:
        return list(csv.DictReader(stream))


# -- validation ---------------------------------------------------------------------------
def test_unknown_study_name_lists_valid_names():
    with pytest.raises(ValueError, match=r"unknown study 'nope'; valid names are \[.*epsilon"):
        studies.validate_names(["nope"])


def test_cli_rejects_unknown_name_with_the_valid_ones(capsys):
    with pytest.raises(SystemExit):
        parse_args(["epsilon_sweep", "nope"])
    assert "valid names are" in capsys.readouterr().err


def test_cli_rejects_nonpositive_jobs(capsys):
    with pytest.raises(SystemExit):
        parse_args(["--jobs", "0"])
    assert "`--jobs` must be at least 1" in capsys.readouterr().err


def test_jobs_must_be_positive():
    with pytest.raises(ValueError, match="`jobs` must be a positive integer"), \
            runner.make_executor(jobs=0):
        pass


def test_study_lacking_interface_is_named():
    with pytest.raises(TypeError, match=r"'io' lacks \['NAME', 'TITLE', 'grid', 'run_cell', 'render'\]"):
        runner.check_study(io)


def test_duplicate_cell_keys_are_rejected(tmp_path, toy):
    cells = [{"key": "a"}, {"key": "a"}]
    with pytest.raises(ValueError, match="'a' repeats"):
        runner.run_cells(TOY, cells, executor=runner.SerialExecutor(),
                         log=runner.CellLog(tmp_path / "cells.jsonl"))


def test_cell_without_key_is_rejected(tmp_path, toy):
    with pytest.raises(ValueError, match="must be a dict with a str 'key'"):
        runner.run_cells(TOY, [{"n": 1}], executor=runner.SerialExecutor(),
                         log=runner.CellLog(tmp_path / "cells.jsonl"))


# -- running ------------------------------------------------------------------------------
def test_failing_cell_is_recorded_and_the_run_goes_on(tmp_path, toy):
    toy["fail"] = "n=2"
    results = runner.run(["toy"], out=tmp_path, quick=True, jobs=2, stream=io.StringIO())
    (result,) = results
    assert [r["key"] for r in result.failures] == ["n=2"]
    assert "ZeroDivisionError: planted failure" in result.failures[0]["error"]
    rows = read_csv(tmp_path / "toy" / "results.csv")
    assert [(int(r["n"]), int(r["sum_of_squares"])) for r in rows] == [(1, 1), (3, 14)]
    summary = (tmp_path / "toy" / "summary.md").read_text()
    assert "## Failed cells" in summary and "planted failure" in summary


def test_resume_reuses_only_records_of_identical_cells(tmp_path, toy):
    toy["stop"] = "n=4"
    executor = runner.SerialExecutor()
    with pytest.raises(KeyboardInterrupt):
        runner.run_study("toy", out=tmp_path, executor=executor, stream=io.StringIO())
    assert calls(toy) == ["n=1", "n=2", "n=3", "n=4"]
    logged = runner.CellLog(tmp_path / "toy" / "cells.jsonl").read()
    assert sorted(logged) == ["n=1", "n=2", "n=3"]  # nothing finished was lost

    toy["stop"] = ""  # the cells change, so none of the logged records matches any more ...
    again = runner.run_study("toy", out=tmp_path, executor=executor, resume=True,
                             stream=io.StringIO())
    assert again.computed == 6  # ... and all are recomputed: a record must match its cell


def test_resume_recomputes_only_missing_cells(tmp_path, toy, monkeypatch):
    executor = runner.SerialExecutor()
    real = runner.execute_cell

    def interrupt_at_fourth(module_name, cell):
        if cell["key"] == "n=4":
            raise KeyboardInterrupt
        return real(module_name, cell)

    monkeypatch.setattr(runner, "execute_cell", interrupt_at_fourth)
    with pytest.raises(KeyboardInterrupt):
        runner.run_study("toy", out=tmp_path, executor=executor, stream=io.StringIO())
    monkeypatch.setattr(runner, "execute_cell", real)
    assert calls(toy) == ["n=1", "n=2", "n=3"]

    result = runner.run_study("toy", out=tmp_path, executor=executor, resume=True,
                              stream=io.StringIO())
    assert calls(toy) == ["n=1", "n=2", "n=3", "n=4", "n=5", "n=6"]  # each cell once
    assert (result.computed, result.reused) == (3, 3)
    assert [r["sum_of_squares"] for r in result.rows] == [1, 5, 14, 30, 55, 91]


def test_without_resume_everything_is_recomputed(tmp_path, toy):
    runner.run(["toy"], out=tmp_path, quick=True, jobs=1, stream=io.StringIO())
    runner.run(["toy"], out=tmp_path, quick=True, jobs=1, stream=io.StringIO())
    assert calls(toy) == ["n=1", "n=2", "n=3"] * 2
    runner.run(["toy"], out=tmp_path, quick=True, jobs=1, resume=True, stream=io.StringIO())
    assert len(calls(toy)) == 6


def test_progress_line_shows_cells_elapsed_and_time_left():
    stream = io.StringIO()
    progress = Progress("demo", [0, 1, 1, 1], done=1, stream=stream, every=0.0)
    progress.update()
    progress.update(failed=True)
    progress.close()
    line = stream.getvalue().splitlines()[-1]
    assert "[demo]" in line and "3/4 cells, 1 failed" in line
    assert "elapsed 00:00" in line and "left ~00:00" in line
    assert "\r" not in stream.getvalue()  # not a terminal: whole lines, for a log


def test_progress_in_a_log_is_throttled():
    stream = io.StringIO()
    progress = Progress("demo", [1.0] * 50, stream=stream, every=60.0)
    for _ in range(50):
        progress.update()
    progress.close()
    lines = stream.getvalue().splitlines()
    assert len(lines) <= 3 and "50/50 cells" in lines[-1]  # first, (maybe one), last


def test_process_pool_and_serial_runs_write_the_same_csv(tmp_path, toy):
    runner.run(["toy"], out=tmp_path / "a", quick=True, jobs=2, stream=io.StringIO())
    runner.run(["toy"], out=tmp_path / "b", quick=True, jobs=1, stream=io.StringIO())
    a = (tmp_path / "a" / "toy" / "results.csv").read_text()
    assert a == (tmp_path / "b" / "toy" / "results.csv").read_text()
    assert a.splitlines() == ["n,sum_of_squares", "1,1", "2,5", "3,14"]


# -- outputs ------------------------------------------------------------------------------
def test_index_shows_figures_tables_and_provenance(tmp_path, toy):
    runner.run(["toy"], out=tmp_path, quick=True, jobs=1, stream=io.StringIO())
    folder = tmp_path / "toy"
    assert (folder / "toy.png").stat().st_size > 0 and (folder / "toy.svg").exists()
    index = (tmp_path / "index.md").read_text()
    assert "![Sums of squares](toy/toy.png)" in index  # links re-rooted at the report
    assert "| 3 | 14 |" in index and "The sums grow like n³/3." in index
    run = json.loads((folder / "run.json").read_text())
    assert run["seed"] == 7 and run["config"]["quick"] is True
    assert run["packages"]["numpy"][0].isdigit() and len(run["git"]) >= 40
    html = (tmp_path / "index.html").read_text()
    assert '<img src="data:image/png;base64,' in html and "<table>" in html and "numpy" in html
    page = (folder / "summary.html").read_text()  # each study's own page, figures embedded
    assert '<img src="data:image/png;base64,' in page and "<td>14</td>" in page


def test_markdown_to_html_renders_tables_lists_and_embeds_figures(tmp_path):
    png = b"\x89PNG\r\n\x1a\n-not-really"
    (tmp_path / "f.png").write_bytes(png)
    text = ("# T\n\npara `x` **b**\nmore\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n- item\n\n"
            "![c](f.png) ![d](missing.png)")
    html = output.markdown_to_html(text, title="t", base=tmp_path)
    assert '<h1 id="t">T</h1>' in html
    assert "<p>para <code>x</code> <strong>b</strong>\nmore</p>" in html
    assert "<td>1</td>" in html and "<td>2</td>" in html and "<li>item</li>" in html
    import base64
    assert f'src="data:image/png;base64,{base64.b64encode(png).decode()}" alt="c"' in html
    assert 'src="missing.png" alt="d"' in html  # not a file: left as a link


def test_cli_runs_a_study(tmp_path, toy, capsys):
    status = main(["toy", "--quick", "--jobs", "1", "--out", str(tmp_path)])
    assert status == 0
    assert "3/3 cells" in capsys.readouterr().err
    assert (tmp_path / "index.html").exists()


def test_time_left_is_weighted_by_cell_cost():
    progress = Progress("demo", [1.0, 9.0], stream=io.StringIO())
    progress.bar.start_t -= 10.0  # ten seconds have passed ...
    progress.update(cost=1.0)  # ... for the cheap cell: the dear one needs ~90 s more
    assert "left ~01:30" in progress.line() and "1/2 cells" in progress.line()


def test_costliest_cells_are_submitted_first(tmp_path, toy):
    order = []

    class Recording(runner.SerialExecutor):
        def submit(self, fn, /, *args, **kwargs):
            order.append(args[1]["key"])
            return super().submit(fn, *args, **kwargs)

    cells = [{"key": "a", "n": 1, "log": "", "stop": "", "fail": "", "cost": 1},
             {"key": "b", "n": 2, "log": "", "stop": "", "fail": "", "cost": 5},
             {"key": "c", "n": 3, "log": "", "stop": "", "fail": ""}]
    records, computed = runner.run_cells(TOY, cells, executor=Recording(),
                                         log=runner.CellLog(tmp_path / "cells.jsonl"))
    assert order == ["b", "a", "c"] and computed == 3 and list(records) == ["b", "a", "c"]


def test_progress_never_overshoots_its_cost_total():
    import warnings

    progress = Progress("demo", [0.3, 0.2, 0.1], stream=io.StringIO())  # sums to 0.6
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # tqdm warns when n passes total
        for cost in (0.1, 0.2, 0.3):  # finishing order: sums to 0.6000000000000001
            progress.update(cost=cost)
        progress.close()
    assert progress.bar.n <= progress.bar.total and "3/3 cells" in progress.line()
