"""What the float32 → float64 confirmation of torch checks costs, one run.

    flock /tmp/heavy.lock python benchmarks/torch_confirm.py
    flock /tmp/heavy.lock python benchmarks/torch_confirm.py --repeat 3

Every case is checked twice per round, with the confirmation (``confirm.CONFIRM_IN`` as
shipped) and without it (float32 taken out of the table: the check as it was before),
the two interleaved round by round so that the machine's drift moves them alike; the
best of ``--repeat`` rounds is kept. Groups: the correct twins of the torch zoo (passing
checks that need no confirmation: the common case), small networks whose small entries
make float32 doubtful (passing, confirmed), and the zoo's bugs (failing, confirmed). It
prints the seconds of each group both ways and their ratio, and how many checks of each
group ran the confirmation. torch runs single-threaded.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import torch
import torch_zoo as zoo  # benchmarks/torch_zoo.py, beside this script

import precision_nn.torch as pt
from precision_nn.adapters.torch import confirm
from precision_nn.torch import check_function, check_module


def _zoo_runs(bad: bool) -> list[Callable[[], Any]]:
    runs = []
    for case in zoo.CASES:
        if case.expected == "error":
            continue
        p = case.make(bad)
        if p.module:
            runs.append(lambda p=p: check_module(p.fn, *p.inputs, loss=p.loss))
        else:
            runs.append(lambda p=p: check_function(p.fn, *p.inputs))
    return runs


def _doubtful_runs() -> list[Callable[[], Any]]:
    """Small correct nets with entries far below the largest: deep sigmoid stacks, and
    elementwise functions at inputs spread over 3 (tests/test_torch_reference.py)."""
    runs = []
    for depth in (4, 6, 8):
        torch.manual_seed(depth)
        layers = []
        for _ in range(depth):
            layers += [torch.nn.Linear(4, 4), torch.nn.Sigmoid()]
        net, x = torch.nn.Sequential(*layers), torch.randn(8, 4)
        runs.append(lambda net=net, x=x: check_module(net, x, loss=lambda y: (y ** 2).sum()))
    for fn in (torch.tanh, lambda z: torch.relu(z) * z + torch.tanh(z)):
        x = (torch.randn(18, generator=torch.Generator().manual_seed(1)) * 3).requires_grad_()
        runs.append(lambda fn=fn, x=x: check_function(fn, x))
    return runs


def _timed(run: Callable[[], Any], confirmed: bool) -> tuple[float, bool]:
    """Seconds of one check, and whether it ran a confirmation."""
    calls = []
    decide = pt.decide
    pt.decide = lambda *a: calls.append(1) or decide(*a)
    saved = confirm.CONFIRM_IN.pop(torch.float32) if not confirmed else None
    try:
        start = time.perf_counter()
        run()
        return time.perf_counter() - start, bool(calls)
    finally:
        pt.decide = decide
        if saved is not None:
            confirm.CONFIRM_IN[torch.float32] = saved


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    groups = {"zoo twins (pass)": _zoo_runs(False), "doubtful nets (pass)": _doubtful_runs(),
              "zoo bugs (fail)": _zoo_runs(True)}
    print("| group | checks | confirmed | s with | s without | ratio |")
    print("|---|---|---|---|---|---|")
    for name, runs in groups.items():
        best = {True: [float("inf")] * len(runs), False: [float("inf")] * len(runs)}
        ran = 0
        for run in runs:  # warm-up (first calls build caches)
            _timed(run, True)
        for _ in range(args.repeat):
            for k, run in enumerate(runs):
                for confirmed in (True, False):
                    seconds, used = _timed(run, confirmed)
                    best[confirmed][k] = min(best[confirmed][k], seconds)
                    ran += used and confirmed
        with_, without = sum(best[True]), sum(best[False])
        print(f"| {name} | {len(runs)} | {ran // args.repeat} | {with_:.3f} | "
              f"{without:.3f} | {with_ / without:.2f} |")


if __name__ == "__main__":
    main()
