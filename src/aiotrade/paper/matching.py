"""The paper exchange's matching engine: Binance Spot order semantics over a synthetic market.

Plain synchronous methods, one per private REST endpoint, each answering the dict Binance would answer
(or raising `PaperApiError` with Binance's code and message). Orders trade against the `PriceSource`:
marketable ones walk its book at once (taker); resting ones fill at their limit price when the market's
traded range crosses them (maker), checked whenever the engine is called. Same inputs and clock, same
results: nothing here is random.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import ROUND_UP, Decimal

from aiotrade.paper.accounts import Account, OrderCounter, OrderWindow
from aiotrade.paper.matching_book import buy_lock, fill_quote, funds_needed, plan_taking
from aiotrade.paper.matching_orders import Order, Trade
from aiotrade.paper.matching_params import (
    CLIENT_ID_LEGAL,
    CLIENT_ID_RE,
    OrderRequest,
    generated_id,
    parse_id,
    parse_limit,
    parse_order_request,
    parse_symbol,
    time_window,
)
from aiotrade.paper.matching_types import (
    ZERO,
    PaperApiError,
    PriceSource,
    SymbolFilters,
    api_error,
    duplicate_order,
    either_param,
    exact,
    floor_to,
    illegal_chars,
    invalid_api_key,
    order_does_not_exist,
    unknown_order,
)

__all__ = ["MatchingEngine", "PaperApiError", "PriceSource", "SymbolFilters"]


class MatchingEngine:
    """Accounts, orders and trades of the paper exchange; see the module docstring."""

    def __init__(
        self,
        prices: PriceSource,
        *,
        clock: Callable[[], int],
        commission_rate: Decimal = Decimal("0.001"),
        orders_per_10s: int = 50,
        orders_per_day: int = 160_000,
        book_depth: int = 500,
        fills_refund_order_count: bool = True,
    ) -> None:
        if not ZERO <= commission_rate < 1:
            raise ValueError("commission_rate must be in [0, 1)")
        self._prices = prices
        self._clock = clock
        self._rate = commission_rate
        self._windows = (OrderWindow("SECOND", 10, orders_per_10s), OrderWindow("DAY", 1, orders_per_day))
        self._book_depth = book_depth
        # Binance's unfilled order count: an order's first fill gives its count back
        self._refund_on_fill = fills_refund_order_count
        self._now = 0
        self._accounts: dict[str, Account] = {}
        self._order_ids: dict[str, int] = {}  # per symbol, shared by all accounts, as on Binance
        self._trade_ids: dict[str, int] = {}
        self._orders: dict[tuple[str, int], Order] = {}  # (symbol, orderId)
        self._by_client_id: dict[tuple[str, str, str], Order] = {}  # (api key, symbol, id): latest
        self._history: dict[tuple[str, str], list[Order]] = {}  # (api key, symbol)
        self._trades: dict[tuple[str, str], list[Trade]] = {}  # (api key, symbol)
        self._open: dict[str, dict[int, Order]] = {}  # symbol → resting orders by id, all accounts
        self._checked_ms: dict[str, int] = {}  # symbol → time up to which resting orders were matched
        self._ledger: list[Order] = []

    # -- accounts -------------------------------------------------------------------------------------

    def open_account(self, api_key: str, balances: Mapping[str, Decimal]) -> None:
        """Create an account holding `balances` (all free). Refuses a key already in use."""
        if api_key in self._accounts:
            raise ValueError(f"account {api_key!r} already exists")
        account = Account(api_key, uid=len(self._accounts) + 1, orders=OrderCounter(self._windows))
        for asset, amount in balances.items():
            if amount < 0:
                raise ValueError(f"negative balance for {asset}")
            account.credit(asset, amount)
        self._accounts[api_key] = account

    @exact
    def account(self, api_key: str, *, omit_zero_balances: bool = False) -> dict[str, object]:
        """GET /api/v3/account."""
        account = self._account(api_key)
        self._advance_all()
        return account.render(self._rate, omit_zero_balances)

    def order_rate_limits(self, api_key: str) -> list[dict[str, object]]:
        """GET /api/v3/rateLimit/order: the account's unfilled order count in each window."""
        return self._account(api_key).orders.rate_limits(self._tick())

    def order_count_headers(self, api_key: str) -> dict[str, str]:
        """The X-MBX-ORDER-COUNT-10S / -1D headers Binance adds to order responses."""
        return self._account(api_key).orders.headers(self._tick())

    # -- orders ---------------------------------------------------------------------------------------

    @exact
    def place(self, api_key: str, params: Mapping[str, str]) -> dict[str, object]:
        """POST /api/v3/order. A refused order leaves no trace: no lock, no count, no ledger entry."""
        account = self._account(api_key)
        request = parse_order_request(params, self._prices.filters)
        rules = request.rules
        now = self._advance(rules.symbol)
        bids, asks = self._prices.book(rules.symbol, now, self._book_depth)
        fills, complete = plan_taking(request, asks if request.side == "BUY" else bids)
        if request.type == "LIMIT_MAKER" and fills:
            raise api_error(-2010, "Order would immediately match and take.")
        if request.time_in_force == "FOK" and not complete:
            fills = []
        self._check_acceptable(account, request, now)
        need = funds_needed(request, fills)
        account.lock(rules.quote_asset if request.side == "BUY" else rules.base_asset, need)

        order_id = self._next_id(self._order_ids, rules.symbol)
        client_id = request.client_order_id or generated_id(f"order/{api_key}/{rules.symbol}/{order_id}")
        order = Order(
            api_key=api_key,
            rules=rules,
            order_id=order_id,
            client_order_id=client_id,
            side=request.side,
            type=request.type,
            time_in_force=request.time_in_force,
            price=request.price or ZERO,
            orig_qty=request.quantity if request.quantity is not None else sum((q for _, q in fills), ZERO),
            orig_quote_qty=request.quote_qty or ZERO,
            stp_mode=request.stp_mode,
            time=now,
            update_time=now,
            locked=need,
        )
        account.orders.add(now, 1)
        account.update_time = now
        self._orders[(rules.symbol, order_id)] = order
        self._by_client_id[(api_key, rules.symbol, client_id)] = order
        self._history.setdefault((api_key, rules.symbol), []).append(order)
        self._ledger.append(order)

        trades = [self._fill(order, account, price, qty, now, maker=False) for price, qty in fills]
        if request.type == "MARKET":
            self._finish(order, account, "FILLED" if complete else "EXPIRED")
        elif order.remaining == 0:
            self._finish(order, account, "FILLED")
        elif request.time_in_force == "GTC":
            self._rest(order, account)
        else:
            self._finish(order, account, "EXPIRED")

        if request.resp_type == "ACK":
            return order.ack(now)
        if request.resp_type == "RESULT":
            return order.result(now)
        return order.full(now, trades)

    @exact
    def get(
        self, api_key: str, symbol: str, order_id: int | str | None = None, orig_client_order_id: str | None = None
    ) -> dict[str, object]:
        """GET /api/v3/order. By client id, the latest order that carried it."""
        self._account(api_key)
        rules = parse_symbol(symbol, self._prices.filters)
        self._advance(rules.symbol)
        order = self._find(api_key, rules.symbol, order_id, orig_client_order_id)
        if order is None:
            raise order_does_not_exist()
        return order.query()

    @exact
    def cancel(
        self,
        api_key: str,
        symbol: str,
        order_id: int | str | None = None,
        orig_client_order_id: str | None = None,
        new_client_order_id: str | None = None,
    ) -> dict[str, object]:
        """DELETE /api/v3/order: cancels an open order and unlocks what it still held."""
        account = self._account(api_key)
        rules = parse_symbol(symbol, self._prices.filters)
        now = self._advance(rules.symbol)
        order = self._find(api_key, rules.symbol, order_id, orig_client_order_id)
        if new_client_order_id and not CLIENT_ID_RE.match(new_client_order_id):
            raise illegal_chars("newClientOrderId", CLIENT_ID_LEGAL)
        if order is None or not order.is_open:
            raise unknown_order()
        return self._cancel(order, account, now, new_client_order_id)

    @exact
    def open_orders(self, api_key: str, symbol: str | None = None) -> list[dict[str, object]]:
        """GET /api/v3/openOrders, for one symbol or all."""
        self._account(api_key)
        if symbol is None:
            self._advance_all()
            symbols = list(self._open)
        else:
            symbols = [parse_symbol(symbol, self._prices.filters).symbol]
            self._advance(symbols[0])
        orders = [order for s in symbols for order in self._open_of(api_key, s)]
        orders.sort(key=lambda order: (order.time, order.rules.symbol, order.order_id))
        return [order.query() for order in orders]

    @exact
    def cancel_all(self, api_key: str, symbol: str) -> list[dict[str, object]]:
        """DELETE /api/v3/openOrders: Binance answers -2011 when there is nothing to cancel."""
        account = self._account(api_key)
        rules = parse_symbol(symbol, self._prices.filters)
        now = self._advance(rules.symbol)
        orders = self._open_of(api_key, rules.symbol)
        if not orders:
            raise unknown_order()
        return [self._cancel(order, account, now, None) for order in orders]

    @exact
    def all_orders(
        self,
        api_key: str,
        symbol: str,
        order_id: int | str | None = None,
        start_time: int | str | None = None,
        end_time: int | str | None = None,
        limit: int | str | None = 500,
    ) -> list[dict[str, object]]:
        """GET /api/v3/allOrders: from orderId (or startTime) onward, else the most recent; oldest first."""
        self._account(api_key)
        rules = parse_symbol(symbol, self._prices.filters)
        self._advance(rules.symbol)
        first_id = parse_id("orderId", order_id)
        start, end = time_window(start_time, end_time)
        count = parse_limit(limit)
        orders = [
            order
            for order in self._history.get((api_key, rules.symbol), [])
            if (first_id is None or order.order_id >= first_id)
            and (start is None or order.time >= start)
            and (end is None or order.time <= end)
        ]
        chosen = orders[:count] if first_id is not None or start is not None else orders[-count:]
        return [order.query() for order in chosen]

    @exact
    def my_trades(
        self,
        api_key: str,
        symbol: str,
        order_id: int | str | None = None,
        start_time: int | str | None = None,
        end_time: int | str | None = None,
        from_id: int | str | None = None,
        limit: int | str | None = 500,
    ) -> list[dict[str, object]]:
        """GET /api/v3/myTrades: from fromId (or startTime) onward, else the most recent; oldest first."""
        self._account(api_key)
        rules = parse_symbol(symbol, self._prices.filters)
        self._advance(rules.symbol)
        wanted_order = parse_id("orderId", order_id)
        first_id = parse_id("fromId", from_id)
        start, end = time_window(start_time, end_time)
        if (first_id is not None or wanted_order is not None) and (start is not None or end is not None):
            raise api_error(-1128, "Combination of optional parameters invalid.")
        count = parse_limit(limit)
        trades = [
            trade
            for trade in self._trades.get((api_key, rules.symbol), [])
            if (wanted_order is None or trade.order_id == wanted_order)
            and (first_id is None or trade.trade_id >= first_id)
            and (start is None or trade.time >= start)
            and (end is None or trade.time <= end)
        ]
        chosen = trades[:count] if first_id is not None or start is not None else trades[-count:]
        return [trade.my_trade_row() for trade in chosen]

    @exact
    def ledger(self) -> list[dict[str, object]]:
        """Every order ever accepted, in acceptance order, as GET /api/v3/order shows it, plus `apiKey`."""
        return [{"apiKey": order.api_key, **order.query()} for order in self._ledger]

    # -- taking liquidity -----------------------------------------------------------------------------

    def _check_acceptable(self, account: Account, request: OrderRequest, now: int) -> None:
        symbol = request.rules.symbol
        if len(self._open_of(account.api_key, symbol)) >= request.rules.max_num_orders:
            raise api_error(-2010, "Filter failure: MAX_NUM_ORDERS")
        account.orders.check(now)
        if request.client_order_id is not None:
            previous = self._by_client_id.get((account.api_key, symbol, request.client_order_id))
            if previous is not None and previous.is_open:
                raise duplicate_order()

    def _fill(self, order: Order, account: Account, price: Decimal, qty: Decimal, now: int, *, maker: bool) -> Trade:
        """Trade `qty` at `price`: the order pays from what it locked and receives the other asset less
        commission (Binance charges the asset received: base on buys, quote on sells)."""
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
            trade_id=self._next_id(self._trade_ids, rules.symbol),
            order_id=order.order_id,
            price=price,
            qty=qty,
            quote_qty=quote,
            commission=commission,
            commission_asset=asset,
            time=now,
            is_buyer=order.buys,
            is_maker=maker,
        )
        order.trades.append(trade)
        self._trades.setdefault((order.api_key, rules.symbol), []).append(trade)
        return trade

    def _rest(self, order: Order, account: Account) -> None:
        """Put a GTC remainder on the book, holding exactly its price × remaining (buys) or remaining."""
        order.status = "PARTIALLY_FILLED" if order.executed_qty else "NEW"
        keep = buy_lock(order.rules, order.price, order.remaining) if order.buys else order.remaining
        account.unlock(order.spent_asset, order.locked - keep)
        order.locked = keep
        self._open.setdefault(order.rules.symbol, {})[order.order_id] = order

    def _finish(self, order: Order, account: Account, status: str) -> None:
        order.status = status
        account.unlock(order.spent_asset, order.locked)
        order.locked = ZERO
        self._open.get(order.rules.symbol, {}).pop(order.order_id, None)

    def _cancel(self, order: Order, account: Account, now: int, cancel_id: str | None) -> dict[str, object]:
        order.update_time = now
        account.update_time = now
        self._finish(order, account, "CANCELED")
        symbol = order.rules.symbol
        return order.canceled(cancel_id or generated_id(f"cancel/{order.api_key}/{symbol}/{order.order_id}"), now)

    # -- resting orders meet the market ---------------------------------------------------------------

    def _advance(self, symbol: str) -> int:
        """Match the symbol's resting orders against what traded since they were last matched."""
        now = self._tick()
        resting = self._open.get(symbol)
        checked = self._checked_ms.get(symbol)
        if resting and checked is not None and now > checked:
            span = self._prices.price_range(symbol, checked, now)
            if span is not None:
                self._cross(resting, span, now)
        self._checked_ms[symbol] = now
        return now

    def _advance_all(self) -> None:
        for symbol in [symbol for symbol, resting in self._open.items() if resting]:
            self._advance(symbol)

    def _cross(self, resting: dict[int, Order], span: tuple[Decimal, Decimal], now: int) -> None:
        """A buy fills at its price when the low went below it, a sell when the high went above it;
        a mere touch fills half the remainder (rounded down to the step, the rest if that is nothing)."""
        low, high = span
        for order in list(resting.values()):
            reached = low if order.buys else high
            crossed = reached < order.price if order.buys else reached > order.price
            if not crossed and reached != order.price:
                continue
            qty = order.remaining
            if not crossed:
                qty = floor_to(qty / 2, order.rules.step_size) or qty
            account = self._accounts[order.api_key]
            self._fill(order, account, order.price, qty, now, maker=True)
            if order.remaining == 0:
                self._finish(order, account, "FILLED")
            else:
                order.status = "PARTIALLY_FILLED"

    # -- lookups --------------------------------------------------------------------------------------

    def _tick(self) -> int:
        self._now = max(self._now, self._clock())  # the engine's time never runs backwards
        return self._now

    def _account(self, api_key: str) -> Account:
        account = self._accounts.get(api_key)
        if account is None:
            raise invalid_api_key()
        return account

    def _find(self, api_key: str, symbol: str, order_id: int | str | None, client_id: str | None) -> Order | None:
        """Binance's lookup: by orderId (then checked against the client id if both are sent), else by
        client id."""
        wanted = parse_id("orderId", order_id)
        if wanted is None and not client_id:
            raise either_param("orderId", "origClientOrderId")
        if wanted is None:
            assert client_id is not None
            return self._by_client_id.get((api_key, symbol, client_id))
        order = self._orders.get((symbol, wanted))
        if order is None or order.api_key != api_key:
            return None
        if client_id and order.client_order_id != client_id:
            return None
        return order

    def _open_of(self, api_key: str, symbol: str) -> list[Order]:
        return [order for order in self._open.get(symbol, {}).values() if order.api_key == api_key]

    @staticmethod
    def _next_id(counters: dict[str, int], symbol: str) -> int:
        counters[symbol] = counters.get(symbol, 0) + 1
        return counters[symbol]
