"""python-flint, imported on first use, and its process-wide precision, scoped.

python-flint keeps ONE working precision for the whole process, ``flint.ctx.prec``, read
by every arithmetic operation on balls; `flint_precision` sets it for a scope and restores
it, correctly also when scopes of several threads interleave.
"""

from __future__ import annotations

import threading
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


_THREAD = threading.local()  # .scopes: this thread's open precisions, innermost last


class flint_precision:  # a function to its callers: ``with flint_precision(p):``
    """``flint.ctx.prec = prec`` for the scope; restored when every open scope has closed.

    A scope nested directly in one of the same precision in the same thread, while that
    precision is in force, is only counted: the outer scope is registered and stays open
    until the inner one has closed (a thread's scopes nest), so registering again would
    change nothing but cost ~5 µs, and the network opens such scopes in every operation.
    """

    __slots__ = ("_token", "prec")

    def __init__(self, prec: int):
        self.prec = prec
        self._token: object | None = None

    def __enter__(self) -> None:
        flint = flint_module()
        scopes = _THREAD.__dict__.setdefault("scopes", [])
        if scopes and scopes[-1] == self.prec and flint.ctx.prec == self.prec:
            scopes.append(self.prec)
            return
        token = self._token = object()
        with _LOCK:
            if not _OPEN:
                _BEFORE[:] = [flint.ctx.prec]
            _OPEN.append((token, self.prec))
            flint.ctx.prec = self.prec
        scopes.append(self.prec)

    def __exit__(self, *exc: object) -> None:
        _THREAD.scopes.pop()
        token, self._token = self._token, None
        if token is None:
            return
        flint = flint_module()
        with _LOCK:
            _OPEN[:] = [scope for scope in _OPEN if scope[0] is not token]
            flint.ctx.prec = _OPEN[-1][1] if _OPEN else _BEFORE[0]
