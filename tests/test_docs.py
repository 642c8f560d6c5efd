"""Run every ```python example of the documentation and check what it prints.

The convention (described for writers in docs/contributing.md):

- Every fenced ```python block in ``docs/**/*.md`` and ``README.md`` is executed; the
  blocks of one page run in order in one namespace, in a fresh temporary directory.
- A ```text block that follows a ```python block (only blank lines between) is the
  expected output: what the block prints must equal it, line by line with trailing
  spaces ignored; ``...`` matches anything (doctest's ELLIPSIS).
- An HTML comment right above a block changes how it runs:
  ``<!-- docs-test: skip -->`` (never run: e.g. needs a cluster address) and
  ``<!-- docs-test: requires MODULE -->`` (skipped when MODULE cannot be imported).

This file needs nothing beyond the dev extra: it does not import mkdocs.
"""

from __future__ import annotations

import contextlib
import doctest
import importlib.util
import io
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted([*(ROOT / "docs").rglob("*.md"), ROOT / "README.md"])
# an example should take seconds (aim for < 5 s); this limit only catches runaway ones
SECONDS_PER_BLOCK = 60.0

_FENCE = re.compile(r"^(?P<indent> *)```(?P<lang>[\w-]*)[^\n]*$")
_DIRECTIVE = re.compile(r"<!--\s*docs-test:\s*(?P<what>skip|requires\s+[\w.]+)\s*-->")
_CHECKER = doctest.OutputChecker()
_FLAGS = doctest.ELLIPSIS


@dataclass
class Block:
    lang: str
    code: str
    line: int  # 1-based line of the opening fence
    size: int  # lines between the fences
    directive: str | None = None
    expected: str | None = None
    expected_line: int | None = None  # 1-based line of the ```text fence
    expected_size: int = 0


def blocks(text: str) -> list[Block]:
    """The fenced blocks of a Markdown text, with expected outputs attached."""
    found: list[Block] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        indent, start = match.group("indent"), i
        body = []
        i += 1
        while i < len(lines) and lines[i].strip() != "```":
            body.append(lines[i].removeprefix(indent))
            i += 1
        found.append(Block(match.group("lang"), "\n".join(body) + "\n", start + 1,
                           len(body), _directive_above(lines, start)))
        i += 1
    return _attach_outputs(found, lines)


def _directive_above(lines: list[str], start: int) -> str | None:
    k = start - 1
    while k >= 0 and not lines[k].strip():
        k -= 1
    match = _DIRECTIVE.search(lines[k]) if k >= 0 else None
    return match.group("what") if match else None


def _attach_outputs(found: list[Block], lines: list[str]) -> list[Block]:
    runnable = []
    for block, following in zip(found, [*found[1:], None]):
        if block.lang != "python":
            continue
        if following is not None and following.lang == "text":
            end = block.line + block.size + 1  # 0-based index after the closing fence
            between = lines[end:following.line - 1]
            if all(not line.strip() for line in between):
                block.expected, block.expected_line = following.code, following.line
                block.expected_size = following.size
        runnable.append(block)
    return runnable


def _normalise(output: str) -> str:
    return "\n".join(line.rstrip() for line in output.strip("\n").splitlines()) + "\n"


def _skip_reason(block: Block) -> str | None:
    if block.directive == "skip":
        return "marked docs-test: skip"
    if block.directive and block.directive.startswith("requires"):
        module = block.directive.split()[1]
        # the dev extra installs every module the docs require: a missing one is an error
        if importlib.util.find_spec(module.split(".")[0]) is None or \
                importlib.util.find_spec(module) is None:
            raise ModuleNotFoundError(f"the docs example at line {block.line} needs "
                                      f"{module}; install the dev extra (pip install -e '.[dev]').")
    return None


def run_page(page: Path, on_output) -> int:
    """Run the examples of one page (in the current directory); ``on_output(block, out)``
    is called after each block that ran. Returns the number of blocks run."""
    namespace: dict = {"__name__": "__docs__"}
    ran = 0
    for block in blocks(page.read_text(encoding="utf-8")):
        if _skip_reason(block):
            continue
        where = f"{page.relative_to(ROOT)}:{block.line}"
        out = io.StringIO()
        start = time.perf_counter()
        with contextlib.redirect_stdout(out):
            exec(compile(block.code, where, "exec"), namespace)  # noqa: S102
        elapsed = time.perf_counter() - start
        assert elapsed < SECONDS_PER_BLOCK, f"{where}: example took {elapsed:.1f} s"
        ran += 1
        on_output(block, out.getvalue())
    return ran


def test_the_block_parser_attaches_outputs_and_directives():
    page = ("Intro\n```python\nprint(1 + 1)\n```\n\n```text\n2\n```\n"
            "<!-- docs-test: skip -->\n```python\nconnect()\n```\n```sh\nmake docs\n```\n")
    found = blocks(page)
    assert [(b.line, b.expected, b.directive) for b in found] == [
        (2, "2\n", None), (10, None, "skip")]


def test_every_page_is_found():
    assert ROOT / "docs" / "index.md" in PAGES and ROOT / "README.md" in PAGES


def _has_runnable_examples(page: Path) -> bool:
    return any(b.directive != "skip" for b in blocks(page.read_text(encoding="utf-8")))


# pages without a runnable example are not test cases at all (rather than skipped ones)
EXAMPLE_PAGES = [p for p in PAGES if _has_runnable_examples(p)]


@pytest.mark.parametrize("page", EXAMPLE_PAGES,
                         ids=[str(p.relative_to(ROOT)) for p in EXAMPLE_PAGES])
def test_examples_run_and_print_what_the_page_shows(page: Path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")

    def check(block: Block, output: str) -> None:
        if block.expected is None:
            return
        got, want = _normalise(output), _normalise(block.expected)
        if not _CHECKER.check_output(want, got, _FLAGS):
            diff = _CHECKER.output_difference(doctest.Example("", want), got, _FLAGS)
            pytest.fail(f"{page.relative_to(ROOT)}:{block.line}: printed output differs "
                        f"from the page\n{diff}")

    assert run_page(page, check) > 0


def update(page: Path) -> None:
    """Rewrite the ```text blocks of `page` with what its examples print now, except those
    that still match (so a deliberate `...` survives). Review the diff before committing."""
    import tempfile

    page = page.resolve()
    outputs: list[tuple[Block, str]] = []
    here = Path.cwd()
    os.environ.setdefault("MPLBACKEND", "Agg")
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        try:
            run_page(page, lambda block, out: outputs.append((block, out)))
        finally:
            os.chdir(here)
    lines = page.read_text(encoding="utf-8").splitlines()
    for block, out in sorted(outputs, key=lambda item: -item[0].line):
        if block.expected_line is None:
            continue
        if _CHECKER.check_output(_normalise(block.expected), _normalise(out), _FLAGS):
            continue  # still matches: keep the page's text, with any `...` in it
        first = block.expected_line  # 0-based index of the first line inside the fence
        last = first + block.expected_size
        lines[first:last] = _normalise(out).rstrip("\n").splitlines()
    page.write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":  # python tests/test_docs.py docs/page.md ...
    import sys

    for name in sys.argv[1:]:
        update(Path(name))
        print(f"updated {name}")
