"""What an order takes from the book when it arrives, what it must lock, and what a fill costs.

Quote amounts are kept in the quote asset's precision: a fill's price × quantity is rounded down, a buy's
lock (price × quantity) rounded up, so an order's lock always covers every fill it can still make.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_UP, Decimal

from aiotrade.paper.matching_params import OrderRequest, check_market_filters
from aiotrade.paper.matching_types import ZERO, Level, SymbolFilters, floor_to, round_places


def fill_quote(rules: SymbolFilters, price: Decimal, qty: Decimal) -> Decimal:
    """The quote amount of one fill, as both sides of it see it."""
    return round_places(price * qty, rules.quote_asset_precision, ROUND_DOWN)


def buy_lock(rules: SymbolFilters, price: Decimal, qty: Decimal) -> Decimal:
    """What a limit buy of `qty` at `price` holds of the quote asset."""
    return round_places(price * qty, rules.quote_asset_precision, ROUND_UP)


def plan_taking(request: OrderRequest, levels: list[Level]) -> tuple[list[Level], bool]:
    """The (price, qty) fills the order takes from `levels` (its side of the book, best first) on arrival,
    and whether they complete it. Raises the MARKET filters that depend on the book (none when it is empty)."""
    fills, complete = take_levels(
        request.rules,
        request.side,
        levels,
        limit=request.price,
        quantity=request.quantity,
        quote_qty=request.quote_qty,
        market=request.type == "MARKET",
    )
    if request.type == "MARKET" and levels:
        filled = sum((qty for _, qty in fills), ZERO)
        if request.quote_qty is not None:
            notional = request.quote_qty
        else:
            assert request.quantity is not None
            # Binance prices a market order's notional at an average price: here, that of its fills
            quote = sum((price * qty for price, qty in fills), ZERO)
            average = quote / filled if filled else levels[0][0]
            notional = request.quantity * average
        check_market_filters(request, filled, notional)
    return fills, complete


def take_levels(
    rules: SymbolFilters,
    side: str,
    levels: list[Level],
    *,
    limit: Decimal | None,
    quantity: Decimal | None,
    quote_qty: Decimal | None = None,
    market: bool = False,
) -> tuple[list[Level], bool]:
    """The (price, qty) fills of a taker walking `levels` best first, never past `limit` (None: no limit),
    for `quantity` of base or, when that is None, `quote_qty` of quote; and whether they complete it."""
    step = rules.market_step if market else rules.step_size
    want_qty, want_quote = quantity, quote_qty
    fills: list[Level] = []
    complete = False
    for price, size in levels:
        if limit is not None and (price > limit if side == "BUY" else price < limit):
            break
        if want_qty is not None:
            take = floor_to(min(size, want_qty), step)
        else:
            assert want_quote is not None
            affordable = floor_to(want_quote / price, step)
            if affordable <= 0:
                complete = True  # what is left of quoteOrderQty buys less than one step
                break
            take = floor_to(min(size, affordable), step)
        if take <= 0:
            continue
        fills.append((price, take))
        if want_qty is not None:
            want_qty -= take
            complete = want_qty == 0
        else:
            assert want_quote is not None
            want_quote -= fill_quote(rules, price, take)
            complete = want_quote == 0
        if complete:
            break
    return fills, complete


def funds_needed(request: OrderRequest, fills: list[Level], last_price: Decimal | None = None) -> Decimal:
    """What the order locks of the asset it spends: a limit order (and a stop-limit) its whole size (at its
    price for a buy), a market order what it will spend (all of quoteOrderQty for a buy sent that way), a
    stop-market buy its size at the last price (Binance values it at the current price when it is placed)."""
    rules = request.rules
    if request.price is not None:
        assert request.quantity is not None
        if request.side == "BUY":
            return buy_lock(rules, request.price, request.quantity)
        return request.quantity
    if request.is_stop:
        assert request.quantity is not None and request.stop_price is not None
        if request.side == "BUY":
            return buy_lock(rules, last_price or request.stop_price, request.quantity)
        return request.quantity
    if request.side == "BUY":
        if request.quote_qty is not None:
            return request.quote_qty
        return sum((fill_quote(rules, price, qty) for price, qty in fills), ZERO)
    if request.quantity is not None:
        return request.quantity
    return sum((qty for _, qty in fills), ZERO)
