"""Outputs of the studies: figures, tidy CSV, markdown tables, summaries and the index.

Everything here is drawing and writing; nothing computes a result. Figures use the Agg
backend (no display needed) and are saved twice, PNG for reading and SVG for print.
"""

from __future__ import annotations

import base64
import csv
import html
import json
import math
import re
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from markdown_it import MarkdownIt

import studies

__all__ = [
    "figure",
    "fmt",
    "markdown_table",
    "markdown_to_html",
    "save_figure",
    "write_csv",
    "write_index",
    "write_study",
]

DPI = 130
# One colour per method, the same in every figure (matplotlib's tab10 order).
METHOD_COLORS = {
    "forward": "tab:blue", "backward": "tab:cyan", "central2": "tab:orange",
    "central4": "tab:green", "central6": "tab:olive", "central8": "tab:brown",
    "richardson": "tab:purple", "complex_step": "tab:red", "backprop": "tab:gray",
}


# -- figures ------------------------------------------------------------------------------
def figure(ncols: int = 1, nrows: int = 1, *, width: float = 6.0, height: float = 4.2,
           sharey: bool = False):
    """A new figure and its axes (a flat array when there is more than one)."""
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows),
                             sharey=sharey, squeeze=False, layout="constrained")
    return fig, (axes[0, 0] if ncols * nrows == 1 else axes.ravel())


def save_figure(fig, out: Path, stem: str) -> str:
    """Write `fig` as ``out/stem.png`` and ``out/stem.svg``, close it, return the PNG name."""
    out = Path(out)
    fig.savefig(out / f"{stem}.png", dpi=DPI)
    fig.savefig(out / f"{stem}.svg")
    plt.close(fig)
    return f"{stem}.png"


# -- tables -------------------------------------------------------------------------------
def fmt(value: Any, digits: int = 3) -> str:
    """A number for a table: `digits` significant digits, scientific when large or small."""
    if value is None:
        return "–"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "–"
    if value == 0 or 1e-3 <= abs(value) < 1e4:
        return f"{value:.{digits}g}"
    return f"{value:.{max(digits - 1, 0)}e}"


def markdown_table(rows: Sequence[dict], columns: Sequence[tuple[str, str]], *,
                   formatters: dict[str, Callable[[Any], str]] | None = None) -> str:
    """A pipe table of `rows`; `columns` are ``(key, header)`` pairs in display order."""
    formatters = formatters or {}
    lines = ["| " + " | ".join(header for _, header in columns) + " |",
             "|" + "|".join("---" for _ in columns) + "|"]
    for row in rows:
        cells = [formatters.get(key, fmt)(row.get(key)) for key, _ in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_csv(rows: Sequence[dict], path: Path) -> None:
    """Tidy CSV: one line per row, columns in order of first appearance."""
    columns: list[str] = []
    for row in rows:
        columns.extend(key for key in row if key not in columns)
    with Path(path).open("w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


# -- one study's report -------------------------------------------------------------------
def write_study(module: ModuleType | None, result, folder: Path) -> None:
    """Write ``results.csv``, the figures, ``summary.md`` and ``run.json`` of one study.

    A `render` that raises is reported in the summary instead of stopping the run.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rows = result.rows
    write_csv(rows, folder / "results.csv")
    try:
        body = module.render(rows, folder) if rows else "No cell finished; nothing to draw."
    except Exception:  # noqa: BLE001 - the report says what broke, the other studies go on
        body = "Rendering failed:\n\n```\n" + traceback.format_exc() + "```"
    run = _run_record(result)
    (folder / "run.json").write_text(json.dumps(run, indent=2, sort_keys=True) + "\n")
    parts = [f"# {result.title}", body.strip(), _failures_md(result.failures), _run_md(run)]
    text = "\n\n".join(p for p in parts if p) + "\n"
    (folder / "summary.md").write_text(text)
    (folder / "summary.html").write_text(markdown_to_html(text, title=result.title,
                                                          base=folder))


def _run_record(result) -> dict:
    return {**result.info, "study": result.name, "title": result.title,
            "cells": len(result.records), "computed": result.computed,
            "reused": result.reused, "failed": len(result.failures),
            "wall_seconds": round(result.seconds, 3)}


def _failures_md(failures: list[dict]) -> str:
    if not failures:
        return ""
    rows = [{"key": f"`{r['key']}`", "error": _last_line(r["error"])} for r in failures]
    return ("## Failed cells\n\nThese cells raised; their full tracebacks are in "
            "`cells.jsonl`, and `--resume` retries them.\n\n"
            + markdown_table(rows, [("key", "cell"), ("error", "error")]))


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return (lines[-1] if lines else "").replace("|", "\\|")


def _run_md(run: dict) -> str:
    config = run.get("config", {})
    packages = ", ".join(f"{k} {v}" for k, v in run.get("packages", {}).items())
    return "\n".join([
        "## Run",
        "",
        (f"- command: `{run.get('command', '')}`; quick: {config.get('quick')}, "
         f"jobs: {config.get('jobs')}, dask: {config.get('dask')}, "
         f"resume: {config.get('resume')}"),
        f"- seed: {run.get('seed')}; git: `{run.get('git')}`; started {run.get('started_utc')}",
        (f"- cells: {run['cells']} ({run['computed']} computed, {run['reused']} reused, "
         f"{run['failed']} failed); wall time {run['wall_seconds']:.1f} s"),
        (f"- Python {run.get('python')} on {run.get('platform')} ({run.get('cpus')} CPUs); "
         f"{packages}"),
    ])


# -- the index ----------------------------------------------------------------------------
def write_index(out: Path) -> None:
    """Write ``out/index.md`` and ``out/index.html`` from every study folder in `out`.

    Studies appear in registry order; each section is the study's ``summary.md`` with its
    headings one level down and its links re-rooted at `out`.
    """
    out = Path(out)
    present = [name for name in studies.STUDIES if (out / name / "summary.md").exists()]
    runs = {name: _read_json(out / name / "run.json") for name in present}
    parts = ["# precision_nn studies: truncation against rounding error",
             _index_intro(present, runs)]
    for name in present:
        summary = (out / name / "summary.md").read_text()
        parts.append(_reroot(_demote(_strip_run(summary)), name))
    parts.append(_provenance_md(present, runs))
    text = "\n\n".join(parts) + "\n"
    (out / "index.md").write_text(text)
    (out / "index.html").write_text(markdown_to_html(text, title="precision_nn studies",
                                                     base=out))


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def _index_intro(present: list[str], runs: dict[str, dict]) -> str:
    items = [f"- [{runs[n].get('title', n)}](#{_anchor(runs[n].get('title', n))}) — "
             f"`{n}/` ([summary]({n}/summary.md), [data]({n}/results.csv))" for n in present]
    return ("Each section below shows a study's figures and tables with a reading of each; "
            "the tidy data behind them is in `<study>/results.csv`, and the provenance of "
            "every run is at the end.\n\n" + "\n".join(items))


def _strip_run(summary: str) -> str:
    """The summary without its ``## Run`` section (the index has one provenance table)."""
    return re.split(r"^## Run\s*$", summary, flags=re.MULTILINE)[0].rstrip()


def _demote(text: str) -> str:
    return re.sub(r"^(#{1,5}) ", lambda m: "#" + m.group(1) + " ", text, flags=re.MULTILINE)


def _reroot(text: str, folder: str) -> str:
    """Prefix relative link targets with ``folder/``."""
    def fix(match: re.Match) -> str:
        target = match.group(2)
        if re.match(r"^([a-z]+:|/|#)", target):
            return match.group(0)
        return f"{match.group(1)}({folder}/{target})"
    return re.sub(r"(!?\[[^\]]*\])\(([^)\s]+)\)", fix, text)


def _provenance_md(present: list[str], runs: dict[str, dict]) -> str:
    rows = [{"study": f"`{n}`", "seed": runs[n].get("seed"), "git": f"`{runs[n].get('git')}`",
             "quick": (runs[n].get("config") or {}).get("quick"),
             "cells": f"{runs[n].get('cells')} ({runs[n].get('computed')} computed, "
                      f"{runs[n].get('failed')} failed)",
             "wall": runs[n].get("wall_seconds"), "started": runs[n].get("started_utc")}
            for n in present]
    table = markdown_table(rows, [("study", "study"), ("seed", "seed"), ("git", "git commit"),
                                  ("quick", "quick"), ("cells", "cells"),
                                  ("wall", "wall time (s)"), ("started", "started (UTC)")])
    latest = max((runs[n] for n in present), key=lambda r: r.get("started_utc", ""),
                 default={})
    packages = markdown_table([{"package": k, "version": v}
                               for k, v in latest.get("packages", {}).items()],
                              [("package", "package"), ("version", "version")])
    config = json.dumps(latest.get("config", {}), sort_keys=True)
    return "\n\n".join([
        "## Provenance", table,
        (f"Latest run: `{latest.get('command', '')}` with configuration `{config}`, "
         f"Python {latest.get('python')} on {latest.get('platform')} "
         f"({latest.get('cpus')} CPUs). Package versions:"), packages])


def _anchor(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


# -- HTML pages (markdown-it-py, CommonMark with tables) ------------------------------------
def markdown_to_html(text: str, *, title: str, base: Path | None = None) -> str:
    """A standalone HTML page of the markdown `text` (CommonMark with pipe tables).

    Headings get ``id`` anchors (`_anchor`, the ones the index links to). With `base`, each
    image whose file exists under `base` is embedded as a ``data:`` URI, so the page shows
    its figures on its own (mailed, or opened from an archive); other images stay links.
    """
    parser = MarkdownIt("commonmark", {"html": False}).enable("table")
    tokens = parser.parse(text)
    for i, token in enumerate(tokens):
        if token.type == "heading_open" and i + 1 < len(tokens):
            token.attrSet("id", _anchor(tokens[i + 1].content))
        for child in token.children or ():
            if child.type == "image" and base is not None:
                child.attrSet("src", _data_uri(Path(base), str(child.attrGet("src"))))
    body = parser.renderer.render(tokens, parser.options, {})
    return (f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{html.escape(title)}"
            f"</title><style>{_CSS}</style></head><body>\n{body}</body></html>\n")


def _data_uri(base: Path, src: str) -> str:
    """`src` as a ``data:`` URI when it names a PNG or SVG file under `base`, else `src`."""
    kinds = {".png": "image/png", ".svg": "image/svg+xml"}
    path = base / src
    if re.match(r"^[a-z]+:", src) or path.suffix not in kinds or not path.is_file():
        return src
    return f"data:{kinds[path.suffix]};base64," + base64.b64encode(path.read_bytes()).decode()


_CSS = ("body{font-family:system-ui,sans-serif;max-width:70rem;margin:2rem auto;padding:0 1rem;"
        "line-height:1.45}table{border-collapse:collapse;margin:1rem 0;font-size:.9rem}"
        "td,th{border:1px solid #ccc;padding:.2rem .5rem;text-align:right}"
        "th{background:#f3f3f3}img{max-width:100%}figure{margin:1rem 0}"
        "figcaption{font-size:.85rem;color:#555}pre{background:#f6f6f6;padding:.5rem;"
        "overflow-x:auto}code{background:#f3f3f3}")
