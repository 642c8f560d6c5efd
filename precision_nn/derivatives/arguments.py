"""The arguments of `derivative` and `gradient`, checked and converted once at the entry:
the order a method takes, the number system of x, the steps h."""

from __future__ import annotations

from typing import Any

import numpy as np

from precision_nn.derivatives.stencils import CENTRAL_ORDERS, ONE_SIDED_ORDERS
from precision_nn.numbers import NumberSystem, infer_number_system, number_system

__all__ = ["ORDERS", "check_order", "convert_h", "resolve_numbers"]

# the orders each method takes (Richardson and the complex step: fixed)
ORDERS = {
    "forward": ONE_SIDED_ORDERS,
    "backward": ONE_SIDED_ORDERS,
    "central": CENTRAL_ORDERS,
    "richardson": (2,),
    "complex_step": (2,),
}


def check_order(method: str, order: Any) -> None:
    """`ValueError` naming `order` unless it is one `method` takes (`ORDERS`)."""
    if isinstance(order, bool) or not isinstance(order, (int, np.integer)) or \
            order not in ORDERS[method]:
        hint = " (its order is fixed)" if method in ("richardson", "complex_step") else ""
        raise ValueError(
            f"`order` must be one of {ORDERS[method]} for method={method!r}{hint}; "
            f"got {order!r}."
        )


def resolve_numbers(x: Any, numbers: Any) -> NumberSystem:
    """The system `numbers` names, else the one of `x`; `TypeError` saying to pass it."""
    if numbers is not None:
        return number_system(numbers)
    try:
        return infer_number_system(x)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"cannot tell the number system of `x` ({type(x).__name__}): {exc} Pass "
            "`numbers=` (e.g. numbers='mpf:50' with x='0.1')."
        ) from exc


def convert_h(ns: NumberSystem, h: Any, shape: tuple[int, ...]) -> np.ndarray:
    """The user's steps as a flat array of `ns`: positive, finite, one per coordinate."""
    real = ns.real()
    try:
        steps = real.asarray(h)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"`h` must be a positive real number of {real.name!r}; "
                         f"got {h!r} ({exc}).") from exc
    sizes = real.magnitude(steps)
    if not np.all(np.isfinite(sizes) & (sizes > 0) & (np.real(real.to_float(steps)) >= 0)):
        raise ValueError(f"`h` must be positive and finite; got {h!r}. Pass a step > 0, "
                         "or h=None to choose it from the error model.")
    try:
        steps = np.broadcast_to(steps, shape).reshape(-1)
    except ValueError:
        raise ValueError(f"`h` must be a scalar or have the shape of `x` {shape}; got "
                         f"shape {np.shape(steps)}.") from None
    return ns.asarray(steps)
