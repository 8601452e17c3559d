"""What the exchange says of one of our orders, taken into the store (state machine checked)."""

from __future__ import annotations

from collections.abc import Callable

from aiotrade.domain.records import VenueOrder
from aiotrade.exchange.gateway import ExchangeGateway
from aiotrade.store.orders import KeyCompletion, OrderStore, StoredOrder


async def adopt(
    store: OrderStore,
    order: StoredOrder,
    seen: VenueOrder,
    *,
    event: str | None = None,
    complete_key: Callable[[StoredOrder], KeyCompletion] | None = None,
    **detail: object,
) -> StoredOrder:
    """The venue's view of ``order`` recorded, with ``event`` on its trail, in one transaction."""
    updated = await store.transition(
        order.account,
        order.client_order_id,
        seen.status,
        event=event,
        detail={"exchange_order_id": seen.exchange_order_id, **detail} if event else None,
        complete_key=complete_key,
        exchange_order_id=seen.exchange_order_id,
        filled=seen.filled,
        average_price=seen.average_price,
        cost=seen.cost,
        fee_cost=seen.fee_cost,
        fee_currency=seen.fee_currency,
        exchange_updated_at=seen.updated_at,
        error=None,
        fills=seen.fills,
    )
    assert updated is not None  # no compare-and-set asked: the transition either happens or raises
    return updated


async def refresh(gateway: ExchangeGateway, store: OrderStore, order: StoredOrder) -> StoredOrder | None:
    """The order as the venue knows it now, fills recorded; None if the venue does not know it."""
    seen = await gateway.find_order(order.account, order.symbol, order.client_order_id)
    if seen is None:
        return None
    updated = await adopt(store, order, seen)
    if updated.filled > 0 and updated.exchange_order_id is not None:
        await record_fills(gateway, store, updated)
    return updated


async def record_fills(gateway: ExchangeGateway, store: OrderStore, order: StoredOrder) -> int:
    assert order.exchange_order_id is not None
    fills = await gateway.order_fills(order.account, order.symbol, order.exchange_order_id, order.side)
    return await store.record_fills(order, fills)
