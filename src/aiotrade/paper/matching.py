"""The paper exchange's matching engine: Binance Spot order semantics over a synthetic market.

Plain synchronous methods, one per private REST endpoint, each answering the dict Binance would answer
(or raising `BinanceError` with Binance's code and message). Orders trade against the `PriceSource`:
marketable ones walk its book at once (taker); resting ones fill at their limit price when the market's
traded range crosses them (maker), and stop orders trigger when it reaches their stopPrice, checked whenever
the engine is called (see `matching_exec`). Same inputs and clock, same results: nothing here is random.

Order types: MARKET, LIMIT, LIMIT_MAKER (refused with -2010 if it would take), STOP_LOSS, TAKE_PROFIT (a
market order once triggered), STOP_LOSS_LIMIT, TAKE_PROFIT_LIMIT (a limit order once triggered), and OCO
order lists of two of them. Funds are locked as on Binance: a limit or stop-limit its size (buys at their
price), a stop-market buy its size at the price of its placement, an OCO once for both legs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal

from aiotrade.paper.accounts import Account, OrderCounter, OrderWindow
from aiotrade.paper.errors import (
    bad_combination,
    illegal_chars,
    order_does_not_exist,
    order_list_does_not_exist,
    order_rejected,
    unknown_order,
    unknown_order_list,
)
from aiotrade.paper.matching_book import funds_needed, plan_taking
from aiotrade.paper.matching_exec import Executor
from aiotrade.paper.matching_ledger import Ledger
from aiotrade.paper.matching_lists import parse_order_list_oco, parse_order_oco
from aiotrade.paper.matching_orders import OrderList, stop_triggered
from aiotrade.paper.matching_params import (
    CLIENT_ID_LEGAL,
    CLIENT_ID_RE,
    generated_id,
    parse_id,
    parse_limit,
    parse_order_request,
    parse_symbol,
    time_window,
)
from aiotrade.paper.matching_types import ZERO, PriceSource, SymbolFilters, exact, fmt

__all__ = ["MatchingEngine", "PriceSource", "SymbolFilters"]

_WOULD_TAKE = "Order would immediately match and take."
_WOULD_TRIGGER = "Order would trigger immediately."


class MatchingEngine:
    """Accounts, orders, order lists and trades of the paper exchange; see the module docstring."""

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
        self._now = 0
        self._ledger = Ledger()
        self._exec = Executor(
            self._ledger,
            prices,
            commission_rate=commission_rate,
            book_depth=book_depth,
            refund_on_fill=fills_refund_order_count,
        )

    # -- accounts -------------------------------------------------------------------------------------

    def open_account(self, api_key: str, balances: Mapping[str, Decimal]) -> None:
        """Create an account holding `balances` (all free). Refuses a key already in use."""
        if api_key in self._ledger.accounts:
            raise ValueError(f"account {api_key!r} already exists")
        account = Account(api_key, uid=len(self._ledger.accounts) + 1, orders=OrderCounter(self._windows))
        for asset, amount in balances.items():
            if amount < 0:
                raise ValueError(f"negative balance for {asset}")
            account.credit(asset, amount)
        self._ledger.accounts[api_key] = account

    @exact
    def account(self, api_key: str, *, omit_zero_balances: bool = False) -> dict[str, object]:
        """GET /api/v3/account."""
        account = self._ledger.account(api_key)
        self._exec.advance_all(self._tick())
        return account.render(self._rate, omit_zero_balances)

    def order_rate_limits(self, api_key: str) -> list[dict[str, object]]:
        """GET /api/v3/rateLimit/order: the account's unfilled order count in each window."""
        return self._ledger.account(api_key).orders.rate_limits(self._tick())

    def order_count_headers(self, api_key: str) -> dict[str, str]:
        """The X-MBX-ORDER-COUNT-10S / -1D headers Binance adds to order responses."""
        return self._ledger.account(api_key).orders.headers(self._tick())

    # -- orders ---------------------------------------------------------------------------------------

    @exact
    def place(self, api_key: str, params: Mapping[str, str]) -> dict[str, object]:
        """POST /api/v3/order. A refused order leaves no trace: no lock, no count, no ledger entry."""
        account = self._ledger.account(api_key)
        request = parse_order_request(params, self._prices.filters)
        rules = request.rules
        now = self._advance(rules.symbol)
        last = self._prices.last_price(rules.symbol, now)
        fills: list[tuple[Decimal, Decimal]] = []
        complete = False
        if request.is_stop:
            assert request.stop_price is not None
            if last is not None and stop_triggered(request.type, request.side, request.stop_price, last, last):
                raise order_rejected(_WOULD_TRIGGER)
        else:
            bids, asks = self._prices.book(rules.symbol, now, self._book_depth)
            fills, complete = plan_taking(request, asks if request.side == "BUY" else bids)
            if request.type == "LIMIT_MAKER" and fills:
                raise order_rejected(_WOULD_TAKE)
            if request.time_in_force == "FOK" and not complete:
                fills = []
        self._ledger.check_acceptable(account, [request], now)
        need = funds_needed(request, fills, last)
        account.lock(rules.quote_asset if request.side == "BUY" else rules.base_asset, need)

        order = self._ledger.new_order(account, request, now, locked=need, filled=fills)
        if request.is_stop:
            order.working = False
            self._exec.wait(order)
            trades = []
        else:
            trades = self._exec.execute(order, account, fills, complete, now)
        assert order.trades == trades  # what the FULL answer lists: the fills made while placing
        return order.report(request.resp_type, now)

    @exact
    def test_order(self, api_key: str, params: Mapping[str, str]) -> dict[str, object]:
        """POST /api/v3/order/test: the parameter and filter checks of `place`, with nothing placed."""
        self._ledger.account(api_key)
        parse_order_request(params, self._prices.filters)
        compute = params.get("computeCommissionRates", "false").lower()
        if compute not in ("true", "false"):
            raise illegal_chars("computeCommissionRates", "true, false")
        if compute == "false":
            return {}
        rate, zero = fmt(self._rate, 8), fmt(ZERO, 8)
        return {
            "standardCommissionForOrder": {"maker": rate, "taker": rate},
            "specialCommissionForOrder": {"maker": zero, "taker": zero},
            "taxCommissionForOrder": {"maker": zero, "taker": zero},
            "discount": {
                "enabledForAccount": False,
                "enabledForSymbol": False,
                "discountAsset": "BNB",
                "discount": fmt(Decimal("0.25"), 8),
            },
        }

    @exact
    def get(
        self, api_key: str, symbol: str, order_id: int | str | None = None, orig_client_order_id: str | None = None
    ) -> dict[str, object]:
        """GET /api/v3/order. By client id, the latest order that carried it."""
        self._ledger.account(api_key)
        rules = parse_symbol(symbol, self._prices.filters)
        self._advance(rules.symbol)
        order = self._ledger.find(api_key, rules.symbol, order_id, orig_client_order_id)
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
        """DELETE /api/v3/order: cancels an open order (and the rest of its OCO) and unlocks what it held."""
        account = self._ledger.account(api_key)
        rules = parse_symbol(symbol, self._prices.filters)
        now = self._advance(rules.symbol)
        order = self._ledger.find(api_key, rules.symbol, order_id, orig_client_order_id)
        if new_client_order_id and not CLIENT_ID_RE.match(new_client_order_id):
            raise illegal_chars("newClientOrderId", CLIENT_ID_LEGAL)
        if order is None or not order.is_open:
            raise unknown_order()
        return self._exec.cancel(order, account, now, new_client_order_id)

    @exact
    def open_orders(self, api_key: str, symbol: str | None = None) -> list[dict[str, object]]:
        """GET /api/v3/openOrders, for one symbol or all."""
        self._ledger.account(api_key)
        if symbol is None:
            self._exec.advance_all(self._tick())
            symbols = list(self._ledger.open)
        else:
            symbols = [parse_symbol(symbol, self._prices.filters).symbol]
            self._advance(symbols[0])
        orders = [order for s in symbols for order in self._ledger.open_of(api_key, s)]
        orders.sort(key=lambda order: (order.time, order.rules.symbol, order.order_id))
        return [order.query() for order in orders]

    @exact
    def cancel_all(self, api_key: str, symbol: str) -> list[dict[str, object]]:
        """DELETE /api/v3/openOrders: every open order of the symbol, single orders first, then each OCO as
        one list entry, as Binance answers. Binance answers -2011 when there is nothing to cancel."""
        account = self._ledger.account(api_key)
        rules = parse_symbol(symbol, self._prices.filters)
        now = self._advance(rules.symbol)
        orders = self._ledger.open_of(api_key, rules.symbol)
        if not orders:
            raise unknown_order()
        lists = {id(found): found for o in orders if (found := self._ledger.list_of(o)) is not None}
        singles = [o for o in orders if self._ledger.list_of(o) is None]
        answer = [self._exec.cancel(order, account, now, None) for order in singles]
        answer += [self._exec.cancel_list(found, account, now, None) for found in lists.values()]
        return answer

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
        self._ledger.account(api_key)
        rules = parse_symbol(symbol, self._prices.filters)
        self._advance(rules.symbol)
        first_id = parse_id("orderId", order_id)
        start, end = time_window(start_time, end_time)
        count = parse_limit(limit)
        orders = [
            order
            for order in self._ledger.history.get((api_key, rules.symbol), [])
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
        self._ledger.account(api_key)
        rules = parse_symbol(symbol, self._prices.filters)
        self._advance(rules.symbol)
        wanted_order = parse_id("orderId", order_id)
        first_id = parse_id("fromId", from_id)
        start, end = time_window(start_time, end_time)
        if (first_id is not None or wanted_order is not None) and (start is not None or end is not None):
            raise bad_combination()
        count = parse_limit(limit)
        trades = [
            trade
            for trade in self._ledger.trades.get((api_key, rules.symbol), [])
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
        return [{"apiKey": order.api_key, **order.query()} for order in self._ledger.accepted]

    # -- order lists (OCO) ----------------------------------------------------------------------------

    @exact
    def place_oco(self, api_key: str, params: Mapping[str, str], *, legacy: bool = False) -> dict[str, object]:
        """POST /api/v3/orderList/oco (or, `legacy`, the deprecated /api/v3/order/oco): two orders that
        rest together until one fills or triggers, which expires the other. Refused: no trace."""
        account = self._ledger.account(api_key)
        oco = (parse_order_oco if legacy else parse_order_list_oco)(params, self._prices.filters)
        rules = oco.rules
        now = self._advance(rules.symbol)
        last = self._prices.last_price(rules.symbol, now)
        oco.check_prices(last)
        for leg in oco.legs:
            if leg.type == "LIMIT_MAKER":
                bids, asks = self._prices.book(rules.symbol, now, self._book_depth)
                if plan_taking(leg, asks if leg.side == "BUY" else bids)[0]:
                    raise order_rejected(_WOULD_TAKE)
        self._ledger.check_acceptable(account, list(oco.legs), now, oco.list_client_order_id)
        reserves = [funds_needed(leg, [], last) for leg in oco.legs]
        locked = max(reserves)
        account.lock(rules.quote_asset if oco.side == "BUY" else rules.base_asset, locked)

        list_id = self._ledger.next_list_id()
        legs = tuple(self._ledger.new_order(account, leg, now, locked=ZERO, list_id=list_id) for leg in oco.legs)
        for leg, reserve in zip(legs, reserves, strict=True):
            leg.reserve = reserve
            leg.working = not leg.is_stop
            self._exec.wait(leg)
        first, second = legs
        order_list = OrderList(
            order_list_id=list_id,
            list_client_order_id=oco.list_client_order_id or generated_id(f"list/{api_key}/{rules.symbol}/{list_id}"),
            api_key=api_key,
            rules=rules,
            legs=(first, second),
            transaction_time=now,
            locked=locked,
        )
        self._ledger.add_list(order_list)
        return order_list.with_reports([leg.report(oco.resp_type, now) for leg in legs])

    @exact
    def get_order_list(
        self, api_key: str, order_list_id: int | str | None = None, orig_client_order_id: str | None = None
    ) -> dict[str, object]:
        """GET /api/v3/orderList: by orderListId or by its listClientOrderId (sent as origClientOrderId)."""
        self._ledger.account(api_key)
        found = self._ledger.find_list(api_key, order_list_id, orig_client_order_id, "origClientOrderId")
        if found is None:
            raise order_list_does_not_exist()
        self._advance(found.rules.symbol)
        return found.summary()

    @exact
    def cancel_order_list(
        self,
        api_key: str,
        symbol: str,
        order_list_id: int | str | None = None,
        list_client_order_id: str | None = None,
        new_client_order_id: str | None = None,
    ) -> dict[str, object]:
        """DELETE /api/v3/orderList: cancels both legs of an OCO that is still waiting."""
        account = self._ledger.account(api_key)
        rules = parse_symbol(symbol, self._prices.filters)
        now = self._advance(rules.symbol)
        found = self._ledger.find_list(api_key, order_list_id, list_client_order_id, "listClientOrderId")
        if new_client_order_id and not CLIENT_ID_RE.match(new_client_order_id):
            raise illegal_chars("newClientOrderId", CLIENT_ID_LEGAL)
        if found is None or found.rules.symbol != rules.symbol or not found.is_live:
            raise unknown_order_list()
        return self._exec.cancel_list(found, account, now, new_client_order_id)

    @exact
    def open_order_lists(self, api_key: str) -> list[dict[str, object]]:
        """GET /api/v3/openOrderList: the account's OCOs whose legs are both still waiting."""
        self._ledger.account(api_key)
        self._exec.advance_all(self._tick())
        return [found.summary() for found in self._ledger.lists_of(api_key) if found.is_live]

    @exact
    def all_order_lists(
        self,
        api_key: str,
        from_id: int | str | None = None,
        start_time: int | str | None = None,
        end_time: int | str | None = None,
        limit: int | str | None = 500,
    ) -> list[dict[str, object]]:
        """GET /api/v3/allOrderList: from fromId (or startTime) onward, else the most recent; oldest first."""
        self._ledger.account(api_key)
        self._exec.advance_all(self._tick())
        first_id = parse_id("fromId", from_id)
        start, end = time_window(start_time, end_time)
        if first_id is not None and (start is not None or end is not None):
            raise bad_combination()
        count = parse_limit(limit)
        lists = [
            found
            for found in self._ledger.lists_of(api_key)
            if (first_id is None or found.order_list_id >= first_id)
            and (start is None or found.legs[0].time >= start)
            and (end is None or found.legs[0].time <= end)
        ]
        chosen = lists[:count] if first_id is not None or start is not None else lists[-count:]
        return [found.summary() for found in chosen]

    def _advance(self, symbol: str) -> int:
        now = self._tick()
        self._exec.advance(symbol, now)
        return now

    def _tick(self) -> int:
        self._now = max(self._now, self._clock())  # the engine's time never runs backwards
        return self._now
