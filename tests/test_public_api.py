"""The public face: DESIGN's names at the top of the package, and a cheap import.

``import precision_nn`` must give every public name and load nothing optional or heavy
that precision_nn itself does not need: no plotting (matplotlib), no cluster (dask,
distributed), no adapters' back ends (torch, flint for arb:N, ml_dtypes for bfloat16), no
study tooling (markdown_it). numpy, scipy, mpmath and tqdm (the progress bar of long
gradient checks, gradcheck/cost.py) are core dependencies of the library and may load.

gmpy2 is the one subtle case: mpmath itself imports gmpy2 when it is installed (its
optional fast back end), so its presence after ``import precision_nn`` says nothing about
precision_nn. The test therefore imports precision_nn with ``MPMATH_NOGMPY=1``, which
tells mpmath not to; gmpy2 then appears only if precision_nn imports it (as the mpfr:N
system would eagerly), which it must not.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import precision_nn as pnn
from precision_nn import derivatives, gradcheck, network, numbers

REPO = Path(__file__).resolve().parent.parent
PUBLIC = {"MLP": network.MLP, "derivative": derivatives.derivative,
          "gradient": derivatives.gradient, "Estimate": derivatives.Estimate,
          "check_gradient": gradcheck.check_gradient, "taylor_test": gradcheck.taylor_test,
          "GradientReport": gradcheck.GradientReport, "Finding": gradcheck.Finding,
          "number_system": numbers.number_system, "NumberSystem": numbers.NumberSystem}
NOT_AT_IMPORT = ("matplotlib", "dask", "distributed", "torch", "flint", "gmpy2", "ml_dtypes",
                 "markdown_it", "studies")


def test_public_names_are_the_library_objects():
    assert sorted(pnn.__all__) == sorted(PUBLIC)
    for name, obj in PUBLIC.items():
        assert getattr(pnn, name) is obj, name


def test_public_names_work_from_the_top():
    import numpy as np

    estimate = pnn.derivative(np.exp, 0.0, method="complex_step")
    assert isinstance(estimate, pnn.Estimate) and float(estimate.value) == 1.0
    assert isinstance(pnn.number_system("float32"), pnn.NumberSystem)


def test_import_loads_nothing_optional():
    code = ("import json, sys, precision_nn; "
            f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & {set(NOT_AT_IMPORT)!r})))")
    env = {**os.environ, "PYTHONPATH": str(REPO), "MPMATH_NOGMPY": "1"}
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, check=True,
                          capture_output=True, text=True)
    assert json.loads(done.stdout) == []


def test_the_import_check_can_see_a_heavy_module():
    """The same probe reports matplotlib once something imports it (the check is live)."""
    code = ("import json, sys, precision_nn, matplotlib; "
            "print(json.dumps('matplotlib' in {m.split('.')[0] for m in sys.modules}))")
    env = {**os.environ, "PYTHONPATH": str(REPO), "MPMATH_NOGMPY": "1"}
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, check=True,
                          capture_output=True, text=True)
    assert json.loads(done.stdout) is True
