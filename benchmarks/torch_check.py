"""The torch bug zoo against ``torch.autograd.gradcheck``, one run.

    flock /tmp/heavy.lock python benchmarks/torch_check.py           # every case
    flock /tmp/heavy.lock python benchmarks/torch_check.py --repeat 1

For every case of `torch_zoo` (a bug and its correct twin) it runs

* ``torch.autograd.gradcheck`` in float64 (slow mode, its default), the way its docs ask;
* ``gradcheck`` in float32 with its default tolerances, the way users run it on float32
  code (it warns that the check "will likely fail");
* ``precision_nn.torch`` in float32, every coordinate, and with ``directions=4``;

and prints a markdown table: whether the bug is caught, whether the twin raises a false
alarm, the kind named, and seconds (best of ``--repeat`` runs on the twin, where every
tool does its full work; the tools' runs interleaved round by round, so that the
machine's drift moves them alike) with the ratios to gradcheck's float64 slow mode and
to its float32 run. A raised error counts as caught. torch runs single-threaded
(2 shared cores: intra-op threads only spin), for both tools alike.
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import pathlib
import sys

# the zoo is loaded from its file, so this runs as a script and as a module alike
_HERE = pathlib.Path(__file__).resolve().parent

import time
import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch.func import functional_call

from precision_nn.torch import check_function, check_module


def _load_zoo() -> Any:
    spec = importlib.util.spec_from_file_location("torch_zoo", _HERE / "torch_zoo.py")
    module = sys.modules.setdefault("torch_zoo", importlib.util.module_from_spec(spec))
    spec.loader.exec_module(module)
    return module


_zoo = _load_zoo()
CASES, KINKS, Problem = _zoo.CASES, _zoo.KINKS, _zoo.Problem

DIRECTIONS = 4


def _converted(value: Any, dtype: torch.dtype) -> Any:
    if isinstance(value, torch.Tensor) and value.is_floating_point():
        return value.detach().to(dtype).requires_grad_(value.requires_grad)
    return value


def gradcheck_problem(p: Problem, dtype: torch.dtype) -> tuple[Callable, tuple]:
    """`p` as a function of tensors for gradcheck (a module's parameters become inputs)."""
    inputs = tuple(_converted(t, dtype) for t in p.inputs)
    if not p.module:
        return p.fn, inputs
    module = copy.deepcopy(p.fn).to(dtype)
    names = [n for n, _ in module.named_parameters()]
    params = tuple(q.detach().clone().requires_grad_() for q in module.parameters())

    def f(*tensors: torch.Tensor) -> Any:
        out = functional_call(module, dict(zip(names, tensors[:len(names)])),
                              tensors[len(names):])
        return p.loss(out) if p.loss is not None else out

    return f, params + inputs


def run_gradcheck(p: Problem, dtype: torch.dtype) -> tuple[bool | str, float]:
    """(passed, or the error it raised; seconds)."""
    fn, inputs = gradcheck_problem(p, dtype)
    start = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ok = torch.autograd.gradcheck(fn, inputs, raise_exception=False)
    except Exception as exc:  # noqa: BLE001 - a raised error is a caught bug
        ok = f"raised {type(exc).__name__}"
    return ok, time.perf_counter() - start


def run_ours(p: Problem, **options: Any) -> tuple[bool | str, tuple[str, ...], float]:
    """(passed, or the error it raised; kinds; seconds)."""
    start = time.perf_counter()
    try:
        if p.module:
            report = check_module(p.fn, *p.inputs, loss=p.loss, **options)
        else:
            report = check_function(p.fn, *p.inputs, **options)
        result, kinds = report.passed, report.kinds
    except ValueError as exc:
        result, kinds = "raised ValueError", (f"error: {str(exc)[:60]}…",)
    return result, kinds, time.perf_counter() - start


def measure(case: Any, repeat: int) -> dict:
    bad, good = case.make(True), case.make(False)
    row = {"case": case.name, "bug": case.bug, "expected": case.expected}
    row["gc64_bad"], _ = run_gradcheck(bad, torch.float64)
    row["gc32_bad"], _ = run_gradcheck(bad, torch.float32)
    row["ours_bad"], row["kinds"], _ = run_ours(bad)
    row["dir_bad"], _, _ = run_ours(bad, directions=DIRECTIONS)
    # the twins' timings interleaved, one round of every tool per repeat, so that the
    # machine's drift (±30% on shared cores) moves every tool of a round alike
    runs: dict[str, list[tuple]] = {"gc64": [], "gc32": [], "ours": [], "dir": []}
    for _ in range(repeat):
        runs["gc64"].append(run_gradcheck(good, torch.float64))
        runs["gc32"].append(run_gradcheck(good, torch.float32))
        runs["ours"].append(run_ours(good))
        runs["dir"].append(run_ours(good, directions=DIRECTIONS))
    best = {k: min(v, key=lambda r: r[-1]) for k, v in runs.items()}
    row["gc64_good"], row["gc64_s"] = best["gc64"]
    row["gc32_good"], row["gc32_s"] = best["gc32"]
    row["ours_good"], row["good_kinds"], row["ours_s"] = best["ours"]
    row["dir_good"], _, row["dir_s"] = best["dir"]
    return row


def _caught(result: bool | str) -> str:
    return "yes" if result is not True else "**no**"


def _alarm(result: bool | str) -> str:
    return "no" if result is True else f"**yes** ({result})" if isinstance(result, str) \
        else "**yes**"


def table(rows: list[dict]) -> str:
    head = ("| case | bug | gradcheck f64 caught | f64 twin alarm | gradcheck f32 caught | "
            "f32 twin alarm | ours f32 caught | kind named (expected) | ours twin alarm | "
            "dirs=4 caught | gradcheck f64 s | gradcheck f32 s | ours s | ratio | "
            "ours/f32 | dirs=4 s | ratio |")
    lines = [head, "|" + "---|" * head.count(" | ") + "---|"]
    for r in rows:
        named = r["expected"] in r["kinds"] or (r["expected"] == "error" and
                                                r["ours_bad"] == "raised ValueError")
        kinds = ", ".join(r["kinds"])
        lines.append(
            f"| {r['case']} | {r['bug']} | {_caught(r['gc64_bad'])} | {_alarm(r['gc64_good'])} | "
            f"{_caught(r['gc32_bad'])} | {_alarm(r['gc32_good'])} | {_caught(r['ours_bad'])} | "
            f"{'' if named else '**not** '}{kinds} ({r['expected']}) | "
            f"{_alarm(r['ours_good'])} | {_caught(r['dir_bad'])} | {r['gc64_s']:.4f} | "
            f"{r['gc32_s']:.4f} | {r['ours_s']:.4f} | {r['ours_s'] / r['gc64_s']:.1f}x | "
            f"{r['ours_s'] / r['gc32_s']:.1f}x | {r['dir_s']:.4f} | "
            f"{r['dir_s'] / r['gc64_s']:.1f}x |")
    return "\n".join(lines)


def summary(rows: list[dict]) -> str:
    def count(pred: Callable[[dict], bool]) -> int:
        return sum(1 for r in rows if pred(r))

    n = len(rows)
    named = count(lambda r: r["expected"] in r["kinds"] or
                  (r["expected"] == "error" and r["ours_bad"] == "raised ValueError"))
    ratios = sorted(r["ours_s"] / r["gc64_s"] for r in rows)
    f32_ratios = sorted(r["ours_s"] / r["gc32_s"] for r in rows)
    either = sum(1 for r in rows if min(r["ours_s"], r["dir_s"]) <= 2 * r["gc64_s"])
    dir_ratios = sorted(r["dir_s"] / r["gc64_s"] for r in rows)
    return "\n".join([
        f"cases: {n}",
        (f"gradcheck float64: caught {count(lambda r: r['gc64_bad'] is not True)}/{n}, "
        f"false alarms on twins {count(lambda r: r['gc64_good'] is not True)}/{n}"),
        (f"gradcheck float32 (default tolerances): caught "
        f"{count(lambda r: r['gc32_bad'] is not True)}/{n}, false alarms on twins "
        f"{count(lambda r: r['gc32_good'] is not True)}/{n}"),
        (f"precision_nn.torch float32: caught {count(lambda r: r['ours_bad'] is not True)}/{n}, "
        f"named {named}/{n}, false alarms on twins "
        f"{count(lambda r: r['ours_good'] is not True)}/{n}"),
        (f"precision_nn.torch float32 directions={DIRECTIONS}: caught "
        f"{count(lambda r: r['dir_bad'] is not True)}/{n}, false alarms "
        f"{count(lambda r: r['dir_good'] is not True)}/{n}"),
        (f"time / gradcheck float64 slow mode: median {ratios[n // 2]:.1f}x, max "
        f"{ratios[-1]:.1f}x, within 2x for {sum(x <= 2 for x in ratios)}/{n}; with "
        f"directions={DIRECTIONS}: median {dir_ratios[n // 2]:.1f}x, within 2x for "
        f"{sum(x <= 2 for x in dir_ratios)}/{n}; within 2x one way or the other for "
        f"{either}/{n}"),
        (f"time / gradcheck float32 (default, where it fails every twin): median "
        f"{f32_ratios[n // 2]:.1f}x, max {f32_ratios[-1]:.1f}x"),
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="timing runs per twin (best)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    run_ours(CASES[0].make(False))  # warm up imports and torch's dispatch
    rows = [measure(case, args.repeat) for case in (*CASES, *KINKS)]
    print(f"torch {torch.__version__}, single-threaded\n")
    print(table(rows))
    print()
    print(summary(rows))


if __name__ == "__main__":
    main()
