"""python-flint, imported on first use, and its process-wide precision, scoped.

python-flint keeps ONE working precision for the whole process, ``flint.ctx.prec``, read
by every arithmetic operation on balls; `flint_precision` sets it for a scope and restores
it, correctly also when scopes of several threads interleave.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

__all__ = ["flint_module", "flint_precision"]


def flint_module() -> Any:
    """python-flint, imported on first use, or an ImportError naming the extra."""
    try:
        import flint
    except ImportError as exc:  # pragma: no cover - the dev extra installs it
        raise ImportError(
            "the number systems 'arb:N' and 'acb:N' need python-flint: "
            "`pip install python-flint` (or the extra: `pip install precision_nn[arb]`)."
        ) from exc
    return flint


# -- python-flint's process-wide precision, scoped ---------------------------------------------
# Open scopes across all threads, oldest first, and the precision before the first of them:
# a plain save/restore per scope leaks when threads interleave (T1 saves 53 and sets 169,
# T2 saves 169 and sets 336, T1 restores 53, T2 restores 169: left at 169).
_LOCK = threading.RLock()
_OPEN: list[tuple[object, int]] = []
_BEFORE: list[int] = []


@contextlib.contextmanager
def flint_precision(prec: int) -> Iterator[None]:
    """``flint.ctx.prec = prec`` for the scope; restored when every open scope has closed."""
    flint = flint_module()
    token = object()
    with _LOCK:
        if not _OPEN:
            _BEFORE[:] = [flint.ctx.prec]
        _OPEN.append((token, prec))
        flint.ctx.prec = prec
    try:
        yield
    finally:
        with _LOCK:
            _OPEN[:] = [scope for scope in _OPEN if scope[0] is not token]
            flint.ctx.prec = _OPEN[-1][1] if _OPEN else _BEFORE[0]
