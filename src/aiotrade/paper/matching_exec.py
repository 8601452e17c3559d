"""What happens to orders: fills, resting, triggers, expiry and cancellation, and OCO resolution.

Resting orders meet the market lazily: whenever the engine is called for a symbol, `advance` looks at what
traded since the symbol was last looked at (its low and high) and, in order of placement,
- fills working limit orders the range crossed, at their own price (maker; a mere touch fills half);
- triggers stop orders whose stopPrice the range reached: a stop-limit becomes a limit order at its price,
  a stop-market a market order, each taking from the book of that instant first (taker) and then, for a GTC
  stop-limit, resting.
A triggered order is matched against later trades only, so nothing it did can precede its trigger. When
both legs of an OCO would act in the same range, the range is halved until one acts alone: that one acts,
and the other expires.
"""

from __future__ import annotations

from decimal import ROUND_UP, Decimal

from aiotrade.paper.accounts import Account
from aiotrade.paper.matching_book import buy_lock, fill_quote, take_levels
from aiotrade.paper.matching_ledger import Ledger
from aiotrade.paper.matching_orders import Order, OrderList, Trade
from aiotrade.paper.matching_params import STOP_MARKET_TYPES, generated_id
from aiotrade.paper.matching_types import ZERO, PriceSource, floor_to


class Executor:
    """Moves orders and balances; every movement keeps each order's lock equal to what it can still spend."""

    def __init__(
        self,
        ledger: Ledger,
        prices: PriceSource,
        *,
        commission_rate: Decimal,
        book_depth: int,
        refund_on_fill: bool,
    ) -> None:
        self._ledger = ledger
        self._prices = prices
        self._rate = commission_rate
        self._book_depth = book_depth
        self._refund_on_fill = refund_on_fill  # Binance's unfilled order count: a first fill gives one back
        self._checked_ms: dict[str, int] = {}  # symbol -> time up to which resting orders were matched

    # -- arrival ------------------------------------------------------------------------------------------

    def execute(
        self, order: Order, account: Account, fills: list[tuple[Decimal, Decimal]], complete: bool, now: int
    ) -> list[Trade]:
        """Take `fills` from the book (taker), then rest a GTC remainder or end the order by its rules."""
        trades = [self.fill(order, account, price, qty, now, maker=False) for price, qty in fills]
        if order.type == "MARKET" or order.type in STOP_MARKET_TYPES:
            self.finish(order, account, "FILLED" if complete else "EXPIRED")
        elif order.remaining == 0:
            self.finish(order, account, "FILLED")
        elif order.time_in_force == "GTC":
            self.rest(order, account)
        else:
            self.finish(order, account, "EXPIRED")
        return trades

    def wait(self, order: Order) -> None:
        """Put an order on the book as it is: an untriggered stop, or an OCO leg whose list holds its lock."""
        order.status = "NEW"
        self._ledger.open.setdefault(order.rules.symbol, {})[order.order_id] = order

    def fill(self, order: Order, account: Account, price: Decimal, qty: Decimal, now: int, *, maker: bool) -> Trade:
        """Trade `qty` at `price`: the order pays from what it locked and receives the other asset less
        commission (Binance charges the asset received: base on buys, quote on sells)."""
        order_list = self._ledger.list_of(order)
        if order_list is not None:
            self.resolve(order_list, order, now)
        rules = order.rules
        quote = fill_quote(rules, price, qty)
        if order.buys:
            spent, received, asset, places = quote, qty, rules.base_asset, rules.base_asset_precision
        else:
            spent, received, asset, places = qty, quote, rules.quote_asset, rules.quote_asset_precision
        # a fee finer than the asset's precision is rounded up, never given away
        commission = (received * self._rate).quantize(Decimal(1).scaleb(-places), rounding=ROUND_UP)
        account.spend_locked(order.spent_asset, spent)
        order.locked -= spent
        account.credit(asset, received - commission)
        account.update_time = now
        if self._refund_on_fill and order.executed_qty == 0:
            account.orders.add(now, -1)
        order.executed_qty += qty
        order.cum_quote += quote
        order.update_time = now
        trade = Trade(
            rules=rules,
            trade_id=self._ledger.next_trade_id(rules.symbol),
            order_id=order.order_id,
            order_list_id=order.order_list_id,
            price=price,
            qty=qty,
            quote_qty=quote,
            commission=commission,
            commission_asset=asset,
            time=now,
            is_buyer=order.buys,
            is_maker=maker,
        )
        self._ledger.add_trade(order, trade)
        return trade

    def rest(self, order: Order, account: Account) -> None:
        """Put a GTC remainder on the book, holding exactly its price × remaining (buys) or remaining."""
        order.status = "PARTIALLY_FILLED" if order.executed_qty else "NEW"
        keep = buy_lock(order.rules, order.price, order.remaining) if order.buys else order.remaining
        account.unlock(order.spent_asset, order.locked - keep)
        order.locked = keep
        self._ledger.open.setdefault(order.rules.symbol, {})[order.order_id] = order

    def finish(self, order: Order, account: Account, status: str) -> None:
        order.status = status
        account.unlock(order.spent_asset, order.locked)
        order.locked = ZERO
        self._ledger.open.get(order.rules.symbol, {}).pop(order.order_id, None)

    # -- cancellation and OCO resolution ----------------------------------------------------------------

    def cancel(self, order: Order, account: Account, now: int, cancel_id: str | None) -> dict[str, object]:
        """Cancel an open order (its whole list, if it is a waiting OCO leg); the order's cancel answer."""
        order_list = self._ledger.list_of(order)
        cancel_id = cancel_id or _cancel_id(order.api_key, order.rules.symbol, order.order_id)
        if order_list is not None:
            self.cancel_list(order_list, account, now, cancel_id)
        else:
            order.update_time = now
            account.update_time = now
            self.finish(order, account, "CANCELED")
        return order.canceled(cancel_id, now)

    def cancel_list(
        self, order_list: OrderList, account: Account, now: int, cancel_id: str | None
    ) -> dict[str, object]:
        """Cancel both legs of a live OCO and release its lock; Binance's list cancellation answer."""
        cancel_id = cancel_id or _cancel_id(order_list.api_key, "list", order_list.order_list_id)
        for leg in order_list.legs:
            if leg.is_open:
                leg.update_time = now
                self.finish(leg, account, "CANCELED")
        self._close_list(order_list, account, ZERO, now)
        return order_list.with_reports([leg.canceled(cancel_id, now) for leg in order_list.legs])

    def resolve(self, order_list: OrderList, acting: Order, now: int) -> None:
        """`acting` fills or triggers first: the other leg expires and `acting` takes its own reserve."""
        account = self._ledger.account(order_list.api_key)
        other = order_list.other(acting)
        if other.is_open:
            other.update_time = now
            self.finish(other, account, "EXPIRED")
        acting.locked = acting.reserve
        self._close_list(order_list, account, acting.reserve, now)

    def _close_list(self, order_list: OrderList, account: Account, kept: Decimal, now: int) -> None:
        account.unlock(order_list.legs[0].spent_asset, order_list.locked - kept)
        account.update_time = now
        order_list.locked = ZERO
        order_list.status = "ALL_DONE"
        order_list.transaction_time = now

    # -- resting orders meet the market -----------------------------------------------------------------

    def advance(self, symbol: str, now: int) -> None:
        """Match the symbol's open orders against what traded since they were last matched."""
        checked = self._checked_ms.get(symbol)
        if self._ledger.open.get(symbol) and checked is not None and now > checked:
            self._match(symbol, checked, now)
        self._checked_ms[symbol] = now

    def advance_all(self, now: int) -> None:
        for symbol in [symbol for symbol, resting in self._ledger.open.items() if resting]:
            self.advance(symbol, now)

    def _match(self, symbol: str, start: int, end: int) -> None:
        span = self._prices.price_range(symbol, start, end)
        if span is None:
            return
        orders = list(self._ledger.open[symbol].values())
        late = set()  # OCO legs beaten by their sibling within this range
        for order in orders:
            order_list = self._ledger.list_of(order)
            if (
                order_list is not None
                and order is order_list.legs[0]
                and all(_acts(leg, span) for leg in order_list.legs)
            ):
                late.add(id(order_list.other(self._first_to_act(order_list, start, end))))
        for order in orders:
            if not order.is_open or id(order) in late or not _acts(order, span):
                continue
            if order.working:
                self._cross(order, span, end)
            else:
                self._trigger(order, end)

    def _first_to_act(self, order_list: OrderList, start: int, end: int) -> Order:
        """The leg that acted first in (start, end], found by halving the range (the resting limit leg when
        both act within one millisecond)."""
        first, second = order_list.legs
        while end - start > 1:
            middle = (start + end) // 2
            span = self._prices.price_range(order_list.rules.symbol, start, middle)
            acted = [leg for leg in order_list.legs if span is not None and _acts(leg, span)]
            if len(acted) == 1:
                return acted[0]
            start, end = (start, middle) if acted else (middle, end)
        return first if first.working else second

    def _cross(self, order: Order, span: tuple[Decimal, Decimal], now: int) -> None:
        """A buy fills at its price when the low went below it, a sell when the high went above it;
        a mere touch fills half the remainder (rounded down to the step, the rest if that is nothing)."""
        low, high = span
        crossed = low < order.price if order.buys else high > order.price
        qty = order.remaining
        if not crossed:
            qty = floor_to(qty / 2, order.rules.step_size) or qty
        account = self._ledger.account(order.api_key)
        self.fill(order, account, order.price, qty, now, maker=True)
        if order.remaining == 0:
            self.finish(order, account, "FILLED")
        else:
            order.status = "PARTIALLY_FILLED"

    def _trigger(self, order: Order, now: int) -> None:
        """The stop fires: it takes from the book of this instant as a market or a limit order."""
        account = self._ledger.account(order.api_key)
        order_list = self._ledger.list_of(order)
        if order_list is not None:
            self.resolve(order_list, order, now)
        order.working, order.working_time, order.update_time = True, now, now
        bids, asks = self._prices.book(order.rules.symbol, now, self._book_depth)
        levels = asks if order.buys else bids
        if order.type in STOP_MARKET_TYPES:
            fills, complete = take_levels(
                order.rules, order.side, levels, limit=None, quantity=order.remaining, market=True
            )
            if order.buys and not self._cover(order, account, fills):
                self.finish(order, account, "EXPIRED")
                return
        else:
            fills, complete = take_levels(order.rules, order.side, levels, limit=order.price, quantity=order.remaining)
            if order.time_in_force == "FOK" and not complete:
                fills = []
        self.execute(order, account, fills, complete, now)

    def _cover(self, order: Order, account: Account, fills: list[tuple[Decimal, Decimal]]) -> bool:
        """A triggered stop-market buy locked its size at the price of its placement; lock what its fills
        cost beyond that from the free balance, or refuse (Binance cancels the triggered order then)."""
        cost = sum((fill_quote(order.rules, price, qty) for price, qty in fills), ZERO)
        extra = cost - order.locked
        if extra <= 0:
            return True
        if account.balance(order.spent_asset).free < extra:
            return False
        account.lock(order.spent_asset, extra)
        order.locked += extra
        return True


def _acts(order: Order, span: tuple[Decimal, Decimal]) -> bool:
    """Whether trades between span's low and high fill (working) or trigger (waiting stop) the order."""
    low, high = span
    if not order.working:
        return order.triggered_by(low, high)
    return low <= order.price if order.buys else high >= order.price


def _cancel_id(api_key: str, scope: str, number: int) -> str:
    return generated_id(f"cancel/{api_key}/{scope}/{number}")
