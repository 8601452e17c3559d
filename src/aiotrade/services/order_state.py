"""The order state machine: which status may follow which, and how ccxt's view maps onto ours."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from aiotrade.models.orders import OrderStatus as S

log = logging.getLogger(__name__)

_LIVE = {S.OPEN, S.PARTIALLY_FILLED, S.FILLED, S.CANCELED, S.EXPIRED}
TRANSITIONS: Mapping[S, frozenset[S]] = {
    S.PENDING: frozenset({*_LIVE, S.REJECTED, S.UNKNOWN}),
    # UNKNOWN -> PENDING: a retry with the same key found no order once the first send could no
    # longer land, and sends again under the same client id.
    S.UNKNOWN: frozenset({*_LIVE, S.REJECTED, S.PENDING}),
    S.OPEN: frozenset({S.PARTIALLY_FILLED, S.FILLED, S.CANCELED, S.EXPIRED}),
    S.PARTIALLY_FILLED: frozenset({S.FILLED, S.CANCELED, S.EXPIRED}),
    S.FILLED: frozenset(),
    S.CANCELED: frozenset(),
    S.REJECTED: frozenset(),
    S.EXPIRED: frozenset(),
}


class IllegalTransition(RuntimeError):
    """A status change the table does not declare: a bug or an exchange surprise, never silent."""


def check_transition(current: S, new: S, *, order_id: str) -> None:
    """Raise (and log loudly) unless ``current -> new`` is declared; staying put is always allowed."""
    if new == current or new in TRANSITIONS[current]:
        return
    log.error("illegal order transition %s -> %s for order %s", current, new, order_id)
    raise IllegalTransition(f"order {order_id}: {current} -> {new} is not a declared transition")


def status_from_ccxt(order: Mapping[str, Any]) -> S:
    """Our status for a ccxt unified order (partial fills are `open` to ccxt, not to us)."""
    status = order.get("status")
    filled = Decimal(str(order.get("filled") or 0))
    if status == "open":
        return S.PARTIALLY_FILLED if filled > 0 else S.OPEN
    return {
        "closed": S.FILLED,
        "canceled": S.CANCELED,
        "expired": S.EXPIRED,
        "rejected": S.REJECTED,
    }.get(status or "", S.UNKNOWN)
