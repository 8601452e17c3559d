"""ccxt's unified dicts become typed records here, once, where they arrive.

Nothing above `exchange/` picks a ccxt dict apart: services see `Market`, `Ticker`, `Balances`,
`VenueOrder`, `VenueFill`, `OrderBook`, `Trades`. With ``client.number = str`` ccxt hands out exact
strings; the few floats left (market metadata) become Decimal through their shortest repr.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from aiotrade.domain.convert import ms_to_datetime, to_decimal
from aiotrade.domain.records import VenueFill, VenueOrder
from aiotrade.models.account import AssetBalance, Balances
from aiotrade.models.market import Market, MarketLimits, MarketPrecision, OrderBook, Ticker, Trade, Trades
from aiotrade.models.orders import OrderStatus

CcxtDict = Mapping[str, Any]
ZERO = Decimal(0)


def market(m: CcxtDict) -> Market:
    limits = m.get("limits") or {}
    precision = m.get("precision") or {}

    def bound(kind: str, side: str) -> Decimal | None:
        return to_decimal((limits.get(kind) or {}).get(side))

    return Market(
        symbol=m["symbol"],
        base=m["base"],
        quote=m["quote"],
        type=m.get("type") or "spot",
        active=m.get("active"),
        precision=MarketPrecision(amount=to_decimal(precision.get("amount")), price=to_decimal(precision.get("price"))),
        limits=MarketLimits(
            amount_min=bound("amount", "min"),
            amount_max=bound("amount", "max"),
            price_min=bound("price", "min"),
            price_max=bound("price", "max"),
            cost_min=bound("cost", "min"),
            cost_max=bound("cost", "max"),
        ),
        maker_fee=to_decimal(m.get("maker")),
        taker_fee=to_decimal(m.get("taker")),
    )


def ticker(venue: str, t: CcxtDict) -> Ticker:
    return Ticker(
        exchange=venue,
        symbol=t["symbol"],
        timestamp=ms_to_datetime(t.get("timestamp")),
        last=to_decimal(t.get("last")),
        bid=to_decimal(t.get("bid")),
        ask=to_decimal(t.get("ask")),
        bid_volume=to_decimal(t.get("bidVolume")),
        ask_volume=to_decimal(t.get("askVolume")),
        open=to_decimal(t.get("open")),
        high=to_decimal(t.get("high")),
        low=to_decimal(t.get("low")),
        vwap=to_decimal(t.get("vwap")),
        base_volume=to_decimal(t.get("baseVolume")),
        quote_volume=to_decimal(t.get("quoteVolume")),
        change=to_decimal(t.get("change")),
        percentage=to_decimal(t.get("percentage")),
    )


def order_book(venue: str, symbol: str, raw: CcxtDict, limit: int) -> OrderBook:
    return OrderBook(
        exchange=venue,
        symbol=symbol,
        timestamp=ms_to_datetime(raw.get("timestamp")),
        bids=[(Decimal(p), Decimal(a)) for p, a, *_ in raw["bids"][:limit]],
        asks=[(Decimal(p), Decimal(a)) for p, a, *_ in raw["asks"][:limit]],
        nonce=raw.get("nonce"),
    )


def trades(venue: str, symbol: str, raw: list[CcxtDict], limit: int) -> Trades:
    rows = [
        Trade(
            id=t.get("id"),
            timestamp=ms_to_datetime(t["timestamp"]) or datetime.now(UTC),
            side=t.get("side"),
            price=Decimal(str(t["price"])),
            amount=Decimal(str(t["amount"])),
            cost=to_decimal(t.get("cost")),
        )
        for t in raw[-limit:]
    ]
    return Trades(exchange=venue, symbol=symbol, trades=rows)


def balances(account: str, venue: str, raw: CcxtDict) -> Balances:
    free, used, total = (raw.get(kind) or {} for kind in ("free", "used", "total"))
    assets: dict[str, AssetBalance] = {}
    for asset in sorted(set(free) | set(used) | set(total)):
        f, u, t = to_decimal(free.get(asset)), to_decimal(used.get(asset)), to_decimal(total.get(asset))
        if f is None and u is None and t is None:
            continue
        f, u = f if f is not None else ZERO, u if u is not None else ZERO
        assets[asset] = AssetBalance(free=f, used=u, total=t if t is not None else f + u)
    # binance: the account's updateTime, on the venue's clock (its last balance change).
    changed = ms_to_datetime(raw.get("timestamp"))
    return Balances(account=account, venue=venue, assets=assets, timestamp=datetime.now(UTC), updated_at=changed)


def status(o: CcxtDict) -> OrderStatus:
    """Our status for a ccxt unified order (partial fills are `open` to ccxt, not to us)."""
    value = o.get("status")
    filled = to_decimal(o.get("filled")) or ZERO
    if value == "open":
        return OrderStatus.PARTIALLY_FILLED if filled > 0 else OrderStatus.OPEN
    return {
        "closed": OrderStatus.FILLED,
        "canceled": OrderStatus.CANCELED,
        "expired": OrderStatus.EXPIRED,
        "rejected": OrderStatus.REJECTED,
    }.get(value or "", OrderStatus.UNKNOWN)


def venue_order(o: CcxtDict) -> VenueOrder:
    fee = o.get("fee") or {}
    # Fills inside an order response carry neither side nor time: they are the order's.
    when = o.get("lastTradeTimestamp") or o.get("timestamp")
    fills = tuple(
        venue_fill(
            {**t, "symbol": t.get("symbol") or o["symbol"], "timestamp": t.get("timestamp") or when}, side=o.get("side")
        )
        for t in o.get("trades") or []
        if t.get("id") is not None
    )
    return VenueOrder(
        exchange_order_id=str(o["id"]),
        client_order_id=o.get("clientOrderId"),
        symbol=o["symbol"],
        side=str(o.get("side") or ""),
        type=o.get("type"),
        status=status(o),
        amount=to_decimal(o.get("amount")),
        price=to_decimal(o.get("price")),
        filled=to_decimal(o.get("filled")) or ZERO,
        average_price=to_decimal(o.get("average")),
        cost=to_decimal(o.get("cost")) or ZERO,
        fee_cost=to_decimal(fee.get("cost")),
        fee_currency=fee.get("currency"),
        updated_at=ms_to_datetime(o.get("lastUpdateTimestamp") or o.get("timestamp")),
        fills=fills,
    )


def venue_fill(t: CcxtDict, *, side: str | None = None) -> VenueFill:
    fee = t.get("fee") or {}
    price, amount = Decimal(str(t["price"])), Decimal(str(t["amount"]))
    return VenueFill(
        trade_id=str(t["id"]),
        exchange_order_id=str(t["order"]) if t.get("order") is not None else None,
        symbol=t["symbol"],
        side=str(t.get("side") or side or ""),
        price=price,
        amount=amount,
        cost=to_decimal(t.get("cost")) or price * amount,
        fee_cost=to_decimal(fee.get("cost")),
        fee_currency=fee.get("currency"),
        taker_or_maker=t.get("takerOrMaker"),
        executed_at=ms_to_datetime(t.get("timestamp")) or datetime.now(UTC),
    )
