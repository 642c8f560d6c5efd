"""Suite-wide guards: no test may leave the global precision state changed.

precision_nn promises that using ``mpf:100``, ``decimal:60``, ``mpfr:60`` or ``arb:50``
leaves ``mpmath.mp``, the thread's decimal context, the thread's gmpy2 context and
python-flint's ``flint.ctx.prec`` as they were (DESIGN.md, "No leaked state"). This
autouse fixture turns that promise into a check around every test of the suite: whatever a test calls, the
state after it must equal the state before it.
"""

from __future__ import annotations

import decimal
import importlib.util
import os

import mpmath
import pytest
from hypothesis import settings

# Property tests draw the same examples on every run, so a CI verdict can be reproduced
# (HYPOTHESIS_PROFILE=explore draws fresh ones, to hunt for new counterexamples locally)
settings.register_profile("ci", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# gmpy2 is optional: without it no mpfr system can change its context
gmpy2 = importlib.import_module("gmpy2") if importlib.util.find_spec("gmpy2") else None
# the settings of a gmpy2 context (its flags, e.g. inexact, record work done, not state)
GMPY2_SETTINGS = ("precision", "real_prec", "imag_prec", "round", "real_round",
                  "imag_round", "emax", "emin", "subnormalize", "trap_underflow",
                  "trap_overflow", "trap_inexact", "trap_invalid", "trap_erange",
                  "trap_divzero", "allow_complex", "rational_division", "allow_release_gil")

try:  # optional: python-flint keeps one process-wide precision (arb:N / acb:N)
    import flint
except ImportError:  # pragma: no cover - the dev extra installs it
    flint = None


def _precision_state() -> dict[str, object]:
    """Everything a number system could leak into global or thread state."""
    ctx = decimal.getcontext()
    flint_state = {} if flint is None else {"flint.ctx.prec": flint.ctx.prec}
    return {
        **flint_state,
        "mpmath.mp.prec": mpmath.mp.prec,
        "mpmath.mp.dps": mpmath.mp.dps,
        "decimal.prec": ctx.prec,
        "decimal.rounding": ctx.rounding,
        "decimal.Emax": ctx.Emax,
        "decimal.Emin": ctx.Emin,
        "decimal.traps": {signal.__name__: bool(on) for signal, on in ctx.traps.items()},
        **({f"gmpy2.{name}": getattr(gmpy2.get_context(), name) for name in GMPY2_SETTINGS}
           if gmpy2 is not None else {}),
    }


@pytest.fixture(autouse=True)
def no_leaked_precision_state():
    """Fail a test that changes mpmath.mp, the decimal, gmpy2 or flint context (and
    repair it)."""
    before = _precision_state()
    saved_prec, saved_decimal = mpmath.mp.prec, decimal.getcontext().copy()
    saved_gmpy2 = gmpy2.get_context().copy() if gmpy2 is not None else None
    saved_flint = None if flint is None else flint.ctx.prec
    yield
    after = _precision_state()
    if after != before:
        changed = {key: (before[key], after[key]) for key in before if before[key] != after[key]}
        mpmath.mp.prec = saved_prec  # repair, so one leak does not fail every later test
        decimal.setcontext(saved_decimal)
        if saved_gmpy2 is not None:
            gmpy2.set_context(saved_gmpy2)
        if flint is not None:
            flint.ctx.prec = saved_flint
        pytest.fail(f"the test leaked precision state (before, after): {changed}")


@pytest.fixture
def one_torch_thread():
    """Single-threaded torch (2 shared cores: intra-op threads only spin), restored after.
    The torch test modules use it through ``pytestmark``."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
