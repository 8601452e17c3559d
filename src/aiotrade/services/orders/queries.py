"""One order (refreshed from the exchange), order history, and cancellation."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from datetime import datetime

from aiotrade import errors as domain
from aiotrade.exchange.gateway import ExchangeGateway
from aiotrade.models.orders import Order, OrderPage, OrderStatus, leg_ids, list_id_of
from aiotrade.services.orders.settlement import refresh
from aiotrade.store.orders import OrderFilter, OrderStore, StoredOrder


async def get_order(gateway: ExchangeGateway, store: OrderStore, account: str, order_id: str) -> Order:
    """One order; a live one is refreshed from the exchange first. The stored copy, marked
    ``venue_confirmed=False``, while the exchange is away or when it no longer knows the order (a venue that
    lost its state): an order we hold is never a 404."""
    order = await _known(gateway, store, account, order_id)
    if order.status.is_terminal:
        return order.as_order()
    try:
        refreshed = await refresh(gateway, store, order)
    except domain.UpstreamError:
        refreshed = None
    if refreshed is None:
        return order.as_order().model_copy(update={"venue_confirmed": False})
    return refreshed.as_order()


async def get_order_history(
    store: OrderStore,
    account: str,
    *,
    symbol: str | None = None,
    statuses: Sequence[OrderStatus] = (),
    created_from: datetime | None = None,
    created_to: datetime | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> OrderPage:
    """Orders from the store, newest first (kept in step with the exchange by the reconciler)."""
    filters = OrderFilter(symbol=symbol, statuses=tuple(statuses), created_from=created_from, created_to=created_to)
    try:
        orders, next_cursor = await store.list(account, filters, cursor=cursor, limit=limit)
    except ValueError as exc:
        raise domain.InvalidInput.param("cursor", str(exc)) from exc
    return OrderPage(orders=[o.as_order() for o in orders], next_cursor=next_cursor)


async def cancel_order(gateway: ExchangeGateway, store: OrderStore, account: str, order_id: str) -> Order:
    """Cancel an open order, then report what the exchange says it is now."""
    order = await _known(gateway, store, account, order_id)
    if order.status.is_terminal:
        raise domain.Conflict(f"order {order.client_order_id} is already {order.status}")
    await store.audit(account, order.client_order_id, "cancel_requested")
    try:
        await gateway.cancel_order(account, order.symbol, order.client_order_id)
    except domain.OrderNotFound:
        pass  # already gone (filled or cancelled meanwhile): the refresh below tells which
    except domain.DomainError as error:
        if error.order_may_exist is False:
            raise
        # Cancelling twice is harmless, but the refresh below is the truth either way.
    refreshed = await refresh(gateway, store, order)
    if refreshed is None:
        raise domain.OrderNotFound(f"the exchange does not know order {order.client_order_id}")
    await store.audit(account, order.client_order_id, "cancel_outcome", status=refreshed.status)
    await _refresh_other_legs(gateway, store, order)
    return refreshed.as_order()


async def _refresh_other_legs(gateway: ExchangeGateway, store: OrderStore, order: StoredOrder) -> None:
    """Cancelling one leg of an OCO cancels its list on the venue: record the other leg's end now, so the
    history and the stream say so at once rather than on the reconciler's next pass."""
    list_id = list_id_of(order.client_order_id)
    if list_id is None:
        return
    for leg_id in leg_ids(list_id):
        leg = await store.get(order.account, leg_id) if leg_id != order.client_order_id else None
        if leg is not None and not leg.status.is_terminal:
            with contextlib.suppress(domain.UpstreamError):  # the venue is away: a later reconciler pass
                await refresh(gateway, store, leg)


async def _known(gateway: ExchangeGateway, store: OrderStore, account: str, order_id: str) -> StoredOrder:
    gateway.venue_of(account)  # unknown account -> 404 before the store is asked
    order = await store.find(account, order_id)
    if order is None:
        raise domain.OrderNotFound(f"no order {order_id!r} on account {account!r}")
    return order
