"""No false accusations: verdicts of `check_gradient` on correct functions, by family.

    PYTHONPATH=. python benchmarks/false_accusations.py [COUNT] [SEED ...]

Runs COUNT (default 320) correct functions per seed (default seeds 0 1 2) from
`tests/correct_functions.py`: smooth sums, softmax/log-sum-exp at logits up to 1e7,
saturated logistic regressions and ReLU networks on raw 0-255 inputs, softplus in float32
at |z| > 88, f with relative noise 1e-14..1e-12 under every method, internal cancellation
(terms up to 1e14 that cancel), and kinks 0.01..0.5 away from x. Prints, per family, the
verdicts seen and the count of bug kinds (which must be 0), and the time per check.
The test suite runs a sample of 120 of these (`tests/test_gradcheck_verdicts.py`).
"""

from __future__ import annotations

import sys
import time
import warnings
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from correct_functions import cases

from precision_nn.gradcheck import check_gradient

BUG_KINDS = {"sign", "scale", "layout", "regularization", "localized", "mismatch", "kink",
             "step_too_large", "step_too_small"}


def main(count: int, seeds: list[int]) -> int:
    verdicts: dict[str, Counter] = defaultdict(Counter)
    seconds: dict[str, float] = defaultdict(float)
    accused = []
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # overflow warnings of the saturated families
        for seed in seeds:
            for case in cases(count, seed=seed):
                t0 = time.perf_counter()
                report = check_gradient(case.f, case.grad, case.x, method=case.method)
                seconds[case.family] += time.perf_counter() - t0
                verdicts[case.family][report.kinds] += 1
                if set(report.kinds) & BUG_KINDS:
                    accused.append((seed, case.family, report.kinds))
    total = sum(sum(c.values()) for c in verdicts.values())
    print(f"{total} correct functions, {len(accused)} with a bug kind, "
          f"{time.perf_counter() - start:.1f} s")
    for family in sorted(verdicts):
        n = sum(verdicts[family].values())
        kinds = ", ".join(f"{'+'.join(k)} ×{v}" for k, v in verdicts[family].most_common())
        print(f"  {family:22s} {n:4d}  {1e3 * seconds[family] / n:6.1f} ms/check  {kinds}")
    for item in accused:
        print("  ACCUSED", item)
    return 1 if accused else 0


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:]]
    sys.exit(main(args[0] if args else 320, args[1:] or [0, 1, 2]))
