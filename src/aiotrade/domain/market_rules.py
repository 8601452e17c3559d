"""A market's own rules — lot step, tick, minimum and maximum amount, price and notional — written once.

Order preparation, position sizing and rebalance planning all ask these functions, so an amount that
one of them calls tradable is tradable for the others. Amounts are truncated toward zero to the lot
step (never more than asked); a price off the tick is refused, never rounded (changing a limit price
changes the trade). A bound of zero or less means "no bound", as exchanges print it.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal

from aiotrade.models.market import Market
from aiotrade.models.orders import CreateOrderRequest, OrderType, TimeInForce

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class PreparedOrder:
    """A request at the market's precision: what is sent, and what the gate judges."""

    symbol: str
    side: str
    type: str
    amount: Decimal | None
    quote_amount: Decimal | None
    price: Decimal | None
    time_in_force: TimeInForce | None
    reference_price: Decimal | None = None  # the last price it was valued at (not sent)
    stop_price: Decimal | None = None


@dataclass(frozen=True, slots=True)
class MarketBreach:
    """A filter of the market that an order breaks, with a reason code and the field at fault."""

    code: str
    field: str
    reason: str


def truncate_to_lot(amount: Decimal, market: Market) -> Decimal:
    """``amount`` truncated toward zero to the lot step (never more than asked), never below zero."""
    step = _positive(market.precision.amount)
    if amount <= 0:
        return ZERO
    if step is None:
        return amount
    return (amount / step).to_integral_value(rounding=ROUND_DOWN) * step


def prepare(
    market: Market, request: CreateOrderRequest, last_price: Decimal | None
) -> tuple[PreparedOrder, list[MarketBreach]]:
    """The order at the market's precision and every filter it breaks (all of them, not the first).

    A market order's notional is valued at ``last_price``; without one, its notional bounds are not
    checked here (the caller decides whether a missing price refuses the order).
    """
    breaches: list[MarketBreach] = []
    amount = request.amount
    if amount is not None:
        amount = truncate_to_lot(amount, market)
        if amount <= 0:
            step = _positive(market.precision.amount)
            breaches.append(MarketBreach("AMOUNT_BELOW_LOT_STEP", "amount", f"below the lot step {step}"))
    price = request.price
    tick = _positive(market.precision.price)
    if price is not None and tick is not None and price % tick != 0:
        breaches.append(MarketBreach("PRICE_OFF_TICK", "price", f"not a multiple of the tick size {tick}"))
    if price is not None:
        breaches += _bounds(price, market.limits.price_min, market.limits.price_max, "PRICE", "price")
    stop = request.stop_price
    if stop is not None:
        if tick is not None and stop % tick != 0:
            breaches.append(
                MarketBreach("STOP_PRICE_OFF_TICK", "stop_price", f"not a multiple of the tick size {tick}")
            )
        breaches += _bounds(stop, market.limits.price_min, market.limits.price_max, "STOP_PRICE", "stop_price")
    prepared = PreparedOrder(
        symbol=request.symbol,
        side=request.side.value,
        type=request.type.value,
        amount=amount,
        quote_amount=request.quote_amount,
        price=price,
        time_in_force=_time_in_force(request),
        reference_price=last_price,
        stop_price=stop,
    )
    if amount is None or amount > 0:
        field = "quote_amount" if request.quote_amount is not None else "amount"
        breaches += size_breaches(market, amount, notional(prepared, last_price), notional_field=field)
    return prepared, breaches


def size_breaches(
    market: Market, amount: Decimal | None, notional_value: Decimal | None, *, notional_field: str = "amount"
) -> list[MarketBreach]:
    """The amount and notional bounds an order of this size breaks (an unknown size is not checked)."""
    breaches: list[MarketBreach] = []
    if amount is not None:
        if amount <= 0:
            return [MarketBreach("AMOUNT_BELOW_LOT_STEP", "amount", "rounds to zero at the lot step")]
        breaches += _bounds(amount, market.limits.amount_min, market.limits.amount_max, "AMOUNT", "amount")
    if notional_value is not None:
        limits = market.limits
        for breach in _bounds(notional_value, limits.cost_min, limits.cost_max, "NOTIONAL", notional_field):
            breaches.append(MarketBreach(breach.code, breach.field, f"notional {notional_value} is {breach.reason}"))
    return breaches


def notional(order: PreparedOrder, last_price: Decimal | None) -> Decimal | None:
    """Quote value of an order: the quote amount, amount × limit price, or amount × last price."""
    if order.quote_amount is not None:
        return order.quote_amount
    reference = order.price if order.price is not None else last_price
    return order.amount * reference if order.amount is not None and reference is not None else None


def base_amount(order: PreparedOrder, last_price: Decimal | None) -> Decimal | None:
    """Base quantity of an order; a quote-sized market buy is valued at ``last_price``."""
    if order.amount is not None:
        return order.amount
    if order.quote_amount is not None and last_price:
        return order.quote_amount / last_price
    return None


def max_amount(market: Market) -> Decimal | None:
    return _positive(market.limits.amount_max)


def _time_in_force(request: CreateOrderRequest) -> TimeInForce | None:
    if request.type in (OrderType.MARKET, OrderType.LIMIT_MAKER):
        return None  # a post-only order has no time in force on Binance
    return request.time_in_force or TimeInForce.GTC


def would_trigger_now(order: PreparedOrder, last_price: Decimal) -> bool:
    """Whether a stop order's trigger is already crossed (Binance refuses it: "would trigger immediately").

    A stop-loss sell and a take-profit buy trigger at or below their stop; a stop-loss buy and a
    take-profit sell at or above it.
    """
    if order.stop_price is None:
        return False
    falling = (order.type == OrderType.STOP_LOSS_LIMIT.value) == (order.side == "sell")
    return last_price <= order.stop_price if falling else last_price >= order.stop_price


def _bounds(value: Decimal, low: Decimal | None, high: Decimal | None, code: str, field: str) -> list[MarketBreach]:
    out = []
    if (low := _positive(low)) is not None and value < low:
        out.append(MarketBreach(f"{code}_BELOW_MIN", field, f"below the minimum {low}"))
    if (high := _positive(high)) is not None and value > high:
        out.append(MarketBreach(f"{code}_ABOVE_MAX", field, f"above the maximum {high}"))
    return out


def _positive(value: Decimal | None) -> Decimal | None:
    return value if value is not None and value > 0 else None
