"""The composite functions of a `NumberSystem`: generic defaults a family may fuse.

Each is written once from the system's own elementwise functions (``exp``, ``log1p``,
``real_part``), in a form that neither overflows nor cancels, and is complex-step safe
(branches on the real part, both sides one holomorphic function). A family overrides one
where it can do better without changing the function: IEEE complex systems evaluate them
on real and imaginary parts (`numbers/ieee_fused.py`), ``arb:N`` takes the direct sigmoid
(no branch to decide on a ball) and a Taylor form of ``log1p_exp`` on stacks of nearby
rows (`numbers/arb_softplus.py`). Callers (activations, losses) never test a family.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["STACK_BYTES", "CompositeFunctions", "rank_one_stacks", "rowwise_sum"]

# bytes of the largest stack of rank-one updates `rank_one_stacks` forms at once.
# Temporaries at or above glibc's mmap threshold (128 KiB) are mapped fresh and
# page-faulted on first touch at every allocation: measured on the benchmark VM, four
# complex128 array operations cost 4 ns/element on 64 KiB arrays and 40-64 ns/element on
# 128 KiB-4 MiB arrays. Just under the threshold the per-piece Python overhead (~40 array
# calls) stays ~10% of the work.
STACK_BYTES = 2**17 - 2**13


class CompositeFunctions:
    """The sigmoid, the ball-safe branch and the stable sigmoid cross-entropy, for a
    class that provides ``exp``, ``log1p``, ``real_part``, ``one`` (`NumberSystem`)."""

    def sigmoid(self, x: Any) -> Any:
        """The logistic function ``1/(1 + e^{-x})``, the network's sigmoid activation.

        Default: from ``e = e^{-|x|} <= 1`` (``|x|`` by the sign of the real part) as
        ``1/(1+e)`` where Re x > 0 and ``e/(1+e)`` elsewhere. ``e^{-x}`` for x << 0 would
        overflow (an error in Decimal, inf in IEEE); both forms have a relative error of
        a few u everywhere, and each is holomorphic on its side of Re x = 0, so the
        complex step through them stays exact. A system whose exponent range is
        unbounded may use the direct form (`arb:N` does: no branch to decide on a ball).
        """
        positive, r, p = self._sigmoid_parts(x)
        return np.where(positive, r, p)

    def sigmoid_with_complement(self, x: Any) -> tuple[Any, Any]:
        """``(σ(x), σ(−x))``, each accurate to a few u relative, from one exponential: the
        sigmoid and its complement ``1 − σ(x)`` without the subtraction (which cancels
        where σ(x) rounds to 1), for backprop's ``σ' = σ(x)·σ(−x)``.

        Default: the two forms of `sigmoid`, ``r = 1/(1+e)`` and ``p = e·r`` with
        ``e = e^{-|x|}``, are σ(|x|) and σ(−|x|); by the sign of the real part they are
        ``(r, p)`` or ``(p, r)``. The first is `sigmoid` exactly (the same operations).
        """
        positive, r, p = self._sigmoid_parts(x)
        return np.where(positive, r, p), np.where(positive, p, r)

    def sigmoid_residual(self, x: Any, y: Any) -> Any:
        """``σ(x) − y`` for targets y in [0, 1], accurate where σ(x) rounds to 1 (the
        sigmoid cross-entropy's ∂/∂z, `precision_nn.losses`).

        Default: ``(1−y)·σ(x) − y·σ(−x)`` (equal since σ(x) + σ(−x) = 1) from
        `sigmoid_with_complement`: both terms are >= 0, so the error is a few u times
        ``(1−y)·σ(x) + y·σ(−x)``, which is at most the terms' sum of either textbook
        form, ``σ(x) − y`` (σ(x) + y) and ``(1−y) − σ(−x)`` ((1−y) + σ(−x)), and there
        is no branch. For y = 1 it is ``−σ(−x)``, where σ(x) − 1 would cancel to 0
        (x = 40 in float64); for y = 0 it is σ(x).
        """
        s, c = self.sigmoid_with_complement(x)
        return (self.one - y) * s - y * c

    def _sigmoid_parts(self, x: Any) -> tuple[np.ndarray, Any, Any]:
        """``(Re x > 0, σ(|x|), σ(−|x|))`` from ``e = e^{-|x|} <= 1`` (no overflow)."""
        positive = np.asarray(self.real_part(x) > 0, dtype=bool)
        e = self.exp(np.where(positive, -x, x))
        r = self.one / (self.one + e)
        return positive, r, e * r

    def branch_positive(self, x: Any) -> np.ndarray:
        """Re x > 0 as a boolean array, for choosing between two forms of ONE function
        (both valid everywhere, each the better-conditioned on its side), so a tie may go
        either way: an entry whose real part cannot be ordered against 0 (a ball
        straddling 0, whose comparison raises `ValueError`) takes the ``Re x <= 0``
        form, which still gives a rigorous enclosure."""
        try:
            return np.asarray(self.real_part(x) > 0, dtype=bool)
        except ValueError:
            out = np.zeros(np.shape(x), dtype=bool)
            for idx, v in np.ndenumerate(np.asarray(self.real_part(x), dtype=object)):
                try:
                    out[idx] = bool(v > 0)
                except ValueError:  # undecidable: either form is right
                    out[idx] = False
            return out

    def sigmoid_cross_entropy(self, z: Any, y: Any) -> Any:
        """The sigmoid cross-entropy's entries ``−y·log σ(z) − (1−y)·log σ(−z)`` from the
        logits, in the stable form ``c·z + log1p_exp(−|z|)`` with ``c = 1 − y`` where
        Re z > 0 and ``−y`` elsewhere (`precision_nn.losses`: for y in [0, 1] both terms
        are >= 0 and nothing cancels; the branch is on the real part, both sides one
        holomorphic function, so the complex step through it stays exact).

        Default: that formula on the system's arrays, the coefficient chosen first so
        one product forms ``c·z`` (``−(y·z) = (−y)·z`` exactly). A system may evaluate
        it fused (the IEEE complex step works on the parts, `numbers/ieee_fused.py`).
        """
        positive = self.branch_positive(z)
        linear = np.where(positive, self.one - y, -y) * z
        return linear + self.log1p_exp(np.where(positive, -z, z))

    def sigmoid_cross_entropy_sum(self, z: Any, y: Any) -> Any:
        """Σ of `sigmoid_cross_entropy` over the last two axes (examples and outputs):
        the loss's data term times m. Default: numpy's sum of the entries; a system that
        fuses the entries may sum their parts without assembling them."""
        return self.accurate_sum(self.sigmoid_cross_entropy(z, y), (-2, -1))

    def sigmoid_cross_entropy_rank_one_sum(self, z: Any, y: Any, u: Any, v: Any) -> Any:
        """`sigmoid_cross_entropy_sum` of each ``z + u_r ⊗ v_r`` (z and y of shape (m, n),
        u (R, m), v (R, n)): the loss terms after a rank-one update of one logit matrix,
        one sum per r (the perturbations of a last hidden layer's weights,
        `precision_nn.perturbation`).

        Default: the stacks formed (`rank_one_stacks`) and summed. A system may fuse it
        (the IEEE complex step forms the stacks on float parts and evaluates the
        functions of the real parts the update leaves unchanged once,
        `numbers/ieee_rank_one.py`).
        """
        return rank_one_stacks(z, u, v, lambda stack: self.sigmoid_cross_entropy_sum(stack, y))

    def log1p_exp(self, w: Any) -> Any:
        """``log(1 + e^w)`` for ``Re w <= 0`` (so ``|e^w| <= 1`` and nothing overflows):
        the softplus term of the sigmoid cross-entropy, which passes ``w = -|z|``.

        Default: ``log1p(exp(w))``. A system may fuse the two (the IEEE complex step
        works on the real and imaginary parts without forming the complex ``e^w``).
        """
        return self.log1p(self.exp(w))

    def affine(self, a: Any, w_t: Any, bias: Any) -> Any:
        """``a @ w_t + bias`` (`bias` broadcast over the rows of a stack of examples): the
        network's pre-activation. Default: the system's `matmul`, then numpy's sum; a
        system with a matrix type may add the bias without leaving it (arb's
        ``arb_mat`` takes the bias as the first term of each dot product: other
        roundings, an enclosure of the same exact value, no object-array pass)."""
        return self.matmul(a, w_t) + bias

    def affine_gradient(self, delta: Any, a: Any) -> Any:
        """``[Σ_i delta_i | deltaᵀ @ a]``: the gradient of a layer matrix whose column 0 is
        the bias, from the 2-D delta ``(m, fan_out)`` and inputs ``a`` ``(m, fan_in)``.
        Default: numpy's sum over the examples beside the system's `matmul`."""
        return np.concatenate([np.sum(delta, axis=0)[:, None],
                               self.matmul(np.swapaxes(delta, -1, -2), a)], axis=1)

    def accurate_sum(self, values: Any, axis: tuple[int, ...] = (-2, -1)) -> Any:
        """Σ of `values` over the trailing `axis`, accurate to about one rounding of the
        exact sum plus ``u·Σ|v|`` (a loss's data term: m·n_out terms).

        Why it matters: a finite difference's error bar assumes that one evaluation of a
        loss is accurate to a couple of roundings (`derivatives.steps.NOISE_ROUNDINGS`).
        numpy sums native dtypes pairwise (error ~log2(N)·u·Σ|v|), but an ``object``
        array one term after the other, and the 80-term loss of a [20, 30, 10] × 8 net
        in mpf:50 then erred by up to 4.9u, leaving 2% of a central-difference
        gradient's bars short by up to 1.8×. Default: numpy's sum; object systems
        override it with a sum rounded once (mpmath's fsum, gmpy2's fsum, or the terms
        added at extra precision and the total rounded)."""
        return np.sum(values, axis=axis)


def rank_one_stacks(z: Any, u: Any, v: Any, evaluate: Any) -> np.ndarray:
    """``evaluate(stack)`` of the stack of ``z + u_r ⊗ v_r`` over r (shapes (m, n), (R, m),
    (R, n)), formed ``z + u[:, :, None] * v[:, None, :]`` in pieces of at most
    `STACK_BYTES`; `evaluate` returns one value per stacked matrix."""
    u, v = np.asarray(u), np.asarray(v)
    R, m = u.shape
    rows = max(1, STACK_BYTES // (u.dtype.itemsize * m * max(1, v.shape[1])))
    parts = []
    for start in range(0, max(R, 1), rows):
        stack = u[start:start + rows, :, None] * v[start:start + rows, None, :]
        stack += z
        parts.append(np.reshape(evaluate(stack), -1))
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def rowwise_sum(values: Any, axis: tuple[int, ...], row_sum: Any) -> Any:
    """`row_sum` (a function of a 1-D object array) applied over the trailing `axis` of
    an object array: the rows are the other axes; a scalar when nothing else is left."""
    arr = np.asarray(values, dtype=object)
    count = len(axis)
    if tuple(sorted(a % arr.ndim for a in axis)) != tuple(range(arr.ndim - count, arr.ndim)):
        raise ValueError(f"accurate_sum sums trailing axes; got axis={axis}")
    lead = arr.shape[:arr.ndim - count]
    rows = arr.reshape(-1, int(np.prod(arr.shape[arr.ndim - count:], dtype=np.int64)))
    out = np.empty(rows.shape[0], dtype=object)
    for r in range(rows.shape[0]):
        out[r] = row_sum(rows[r])
    return out.reshape(lead) if lead else out[0]
