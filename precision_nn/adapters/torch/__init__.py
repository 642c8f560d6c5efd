"""The PyTorch adapter behind `precision_nn.torch` (needs the optional `torch` extra).

* `tensors` — the blocks of a check (named tensors), dtypes and the flat vector;
* `validation` — the entry checks: options, the tensors to check (finite, non-empty),
  their dtype;
* `targets` — the user's function or module as a function of the checked tensors;
* `rng` — torch's RNG seeded for every evaluation and restored afterwards;
* `problem` — the user's backward (vector-Jacobian products in the user's dtype) and the
  objective that the numerical reference differentiates (on a float64/complex128 copy);
* `kinks` — a one-sided-difference scan that names kinks the generic check leaves
  undecidable;
* `findings` — what only torch code can get wrong: a backward that ignores its
  ``grad_output``, a nondeterministic backward, an input modified in place by forward, a
  gradient that is ``None``, a returned gradient of the wrong dtype, TF32 matmuls.
"""
