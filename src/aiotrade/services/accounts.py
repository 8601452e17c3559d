"""An account as it stands: balances straight from the venue, fills from the record."""

from __future__ import annotations

from datetime import datetime

from aiotrade import errors as domain
from aiotrade.exchange.gateway import ExchangeGateway
from aiotrade.models.account import Balances, Fill, FillPage
from aiotrade.models.orders import Fee
from aiotrade.store.orders import OrderStore, StoredFill


async def get_balances(gateway: ExchangeGateway, account: str) -> Balances:
    """Free, locked in open orders and total per asset, as the venue reports them now."""
    return await gateway.balances(account)


async def get_fills(
    store: OrderStore,
    account: str,
    *,
    symbol: str | None = None,
    executed_from: datetime | None = None,
    executed_to: datetime | None = None,
    cursor: str | None = None,
    limit: int = 100,
) -> FillPage:
    """The account's recorded fills, newest first (kept in step with the venue by the reconciler)."""
    try:
        fills, next_cursor = await store.fill_page(
            account, symbol=symbol, executed_from=executed_from, executed_to=executed_to, cursor=cursor, limit=limit
        )
    except ValueError as exc:
        raise domain.InvalidInput.param("cursor", str(exc)) from exc
    return FillPage(fills=[_fill(f) for f in fills], next_cursor=next_cursor)


def _fill(fill: StoredFill) -> Fill:
    return Fill(
        trade_id=fill.trade_id,
        order_id=fill.client_order_id,
        symbol=fill.symbol,
        side=fill.side,
        price=fill.price,
        amount=fill.amount,
        cost=fill.cost,
        fee=Fee(cost=fill.fee_cost, currency=fill.fee_currency) if fill.fee_cost is not None else None,
        taker_or_maker=fill.taker_or_maker,
        executed_at=fill.executed_at,
    )
