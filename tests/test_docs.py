"""Run every ```python example of the documentation and check what it prints.

The convention (described for writers in docs/contributing.md):

- Every fenced ```python block in ``docs/**/*.md`` and ``README.md`` is executed; the
  blocks of one page run in order in one namespace, in a fresh temporary directory.
- A ```text block that follows a ```python block (only blank lines between) is the
  expected output: what the block prints must equal it, line by line with trailing
  spaces ignored; ``...`` matches anything (doctest's ELLIPSIS). Printed numbers may
  differ as float64's last bits differ between CPUs (`outputs_agree`).
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


# a printed number: an optional sign, digits with an optional point, an optional exponent
_NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")


def outputs_agree(want: str, got: str) -> bool:
    """Whether `got` is what a page shows as `want`: equal (doctest's ELLIPSIS), or equal
    in every character but the digits of numbers, which agree as `numbers_agree` says.

    Why a tolerance. numpy's exp, log and sin take different SIMD paths on different CPUs
    (AVX-512 or AVX2), which round differently in the last bit, and the examples print
    error estimates, noise measurements and adaptive evaluation counts that follow those
    bits: measured on the same commit, docs/guides/choose-method.md printed an estimate
    of 3.576e-07 as ``4e-07`` on an AMD EPYC where its page, written on a Xeon, shows
    ``3e-07``, and Richardson's 586 calls as 584; a noise-bound true error came out
    ``1e-11`` against ``2e-11``. Text, verdicts and small counts must still match
    exactly. Pages with ``...`` get no tolerance (the numbers could not be paired).
    """
    if _CHECKER.check_output(want, got, _FLAGS):
        return True
    if "..." in want or _NUMBER.sub("#", want) != _NUMBER.sub("#", got):
        return False
    return all(map(numbers_agree, _NUMBER.findall(want), _NUMBER.findall(got)))


def numbers_agree(want: str, got: str) -> bool:
    """Two printed numbers agree when an integer is within 1% (so every count below 100
    must be exact: block and row indices, shapes, counts of findings); a number printed
    with 1 or 2 significant digits (an error estimate, a magnitude) within a factor of
    2 with the same sign, which allows the rounding boundary and a noise-bound value's
    run-to-run spread; and any other within 5%."""
    w, g = float(want), float(got)
    if not any(c in want for c in ".eE"):
        return abs(g - w) <= 0.01 * abs(w)
    if w == 0 or g == 0:
        return w == g
    mantissa = re.split(r"[eE]", want)[0].lstrip("+-").replace(".", "").lstrip("0")
    if len(mantissa) <= 2:
        return (w > 0) == (g > 0) and max(w / g, g / w) <= 2
    return abs(g - w) <= 0.05 * abs(w)


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


def test_printed_numbers_agree_across_cpus_but_text_and_counts_do_not():
    # what differed between a Xeon and an AMD EPYC on the same commit
    assert outputs_agree("forward 1 4e-08 3e-07 109\nrichardson 2 5e-14 2e-13 586\n",
                         "forward 1 4e-08 4e-07 109\nrichardson 2 5e-14 2e-13 584\n")
    assert outputs_agree("true error = 2e-11, 11.0× the u·9.1e-02\n",
                         "true error = 1e-11, 10.7× the u·9.1e-02\n")
    assert outputs_agree("(1243 evaluations of f, float64)\n", "(1245 evaluations of f, float64)\n")
    for want, got in [("FAILED: 3 of 38\n", "FAILED: 4 of 38\n"),  # a count
                      ("check PASSED\n", "check FAILED\n"),  # a verdict
                      ("estimated 3e-07\n", "estimated 7e-07\n"),  # beyond 2x
                      ("value 0.109348\n", "value 0.120000\n"),  # 10% of a value
                      ("λ = -1.2\n", "λ = 1.2\n"),  # the sign
                      ("error 0\n", "error 1e-300\n"),
                      ("in float64\n", "in float32\n"),
                      ("a ... b 1e-07\n", "a x b 2e-07\n")]:  # no tolerance with `...`
        assert not outputs_agree(want, got), (want, got)


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
        if not outputs_agree(want, got):
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
        if outputs_agree(_normalise(block.expected), _normalise(out)):
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
