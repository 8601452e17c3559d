"""The matching engine's books of record: accounts, orders, order lists and trades, and how they are found.

Only bookkeeping lives here (registering, looking up, and the admission checks that need nothing but the
books); what happens to an order is `matching_exec`'s.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from aiotrade.paper.accounts import Account
from aiotrade.paper.errors import duplicate_order, either_param, invalid_api_key, order_rejected
from aiotrade.paper.matching_orders import Order, OrderList, Trade
from aiotrade.paper.matching_params import STOP_TYPES, OrderRequest, generated_id, parse_id
from aiotrade.paper.matching_types import ZERO


@dataclass(slots=True)
class Ledger:
    """Everything the engine knows. Order and trade ids run per symbol across accounts, as on Binance;
    order list ids run across the whole exchange (GET /api/v3/orderList names no symbol)."""

    accounts: dict[str, Account] = field(default_factory=dict)
    orders: dict[tuple[str, int], Order] = field(default_factory=dict)  # (symbol, orderId)
    by_client_id: dict[tuple[str, str, str], Order] = field(default_factory=dict)  # (key, symbol, id): latest
    history: dict[tuple[str, str], list[Order]] = field(default_factory=dict)  # (key, symbol)
    trades: dict[tuple[str, str], list[Trade]] = field(default_factory=dict)  # (key, symbol)
    open: dict[str, dict[int, Order]] = field(default_factory=dict)  # symbol -> open orders by id, all keys
    lists: dict[int, OrderList] = field(default_factory=dict)
    lists_by_client_id: dict[tuple[str, str], OrderList] = field(default_factory=dict)  # (key, id): latest
    accepted: list[Order] = field(default_factory=list)  # every order, in acceptance order
    _order_ids: dict[str, int] = field(default_factory=dict)
    _trade_ids: dict[str, int] = field(default_factory=dict)
    _list_id: int = -1

    def account(self, api_key: str) -> Account:
        """The key's account, or Binance's -2015 (HTTP 401)."""
        account = self.accounts.get(api_key)
        if account is None:
            raise invalid_api_key()
        return account

    def next_order_id(self, symbol: str) -> int:
        return _next(self._order_ids, symbol)

    def next_trade_id(self, symbol: str) -> int:
        return _next(self._trade_ids, symbol)

    def next_list_id(self) -> int:
        self._list_id += 1  # Binance numbers order lists from 0
        return self._list_id

    def check_acceptable(
        self, account: Account, requests: list[OrderRequest], now: int, list_client_order_id: str | None = None
    ) -> None:
        """The checks that need the account: open-order filters, the order rate limit, client id reuse."""
        rules = requests[0].rules
        symbol = rules.symbol
        if len(self.open_of(account.api_key, symbol)) + len(requests) > rules.max_num_orders:
            raise order_rejected("Filter failure: MAX_NUM_ORDERS")
        algo = sum(1 for request in requests if request.is_stop)
        if algo and len(self.open_of(account.api_key, symbol, _is_algo)) + algo > rules.max_num_algo_orders:
            raise order_rejected("Filter failure: MAX_NUM_ALGO_ORDERS")
        account.orders.check(now, len(requests))
        ids = [request.client_order_id for request in requests if request.client_order_id is not None]
        if len(set(ids)) < len(ids):
            raise duplicate_order()
        for client_id in ids:
            previous = self.by_client_id.get((account.api_key, symbol, client_id))
            if previous is not None and previous.is_open:
                raise duplicate_order()
        if list_client_order_id is not None:
            previous_list = self.lists_by_client_id.get((account.api_key, list_client_order_id))
            if previous_list is not None and previous_list.is_live:
                raise duplicate_order()

    def new_order(
        self,
        account: Account,
        request: OrderRequest,
        now: int,
        *,
        locked: Decimal,
        filled: list[tuple[Decimal, Decimal]] | None = None,
        list_id: int = -1,
    ) -> Order:
        """Register an accepted order (it counts against the order rate limit from now on)."""
        rules = request.rules
        order_id = self.next_order_id(rules.symbol)
        client_id = request.client_order_id or generated_id(f"order/{account.api_key}/{rules.symbol}/{order_id}")
        quantity = request.quantity
        if quantity is None:  # a MARKET order by quoteOrderQty is as big as what it takes
            quantity = sum((qty for _, qty in filled or []), ZERO)
        order = Order(
            api_key=account.api_key,
            rules=rules,
            order_id=order_id,
            client_order_id=client_id,
            side=request.side,
            type=request.type,
            time_in_force=request.time_in_force,
            price=request.price or ZERO,
            orig_qty=quantity,
            orig_quote_qty=request.quote_qty or ZERO,
            stp_mode=request.stp_mode,
            time=now,
            update_time=now,
            stop_price=request.stop_price or ZERO,
            working_time=-1 if request.is_stop else now,
            order_list_id=list_id,
            locked=locked,
        )
        account.orders.add(now, 1)
        account.update_time = now
        self.add_order(order)
        return order

    def add_order(self, order: Order) -> None:
        symbol = order.rules.symbol
        self.orders[(symbol, order.order_id)] = order
        self.by_client_id[(order.api_key, symbol, order.client_order_id)] = order
        self.history.setdefault((order.api_key, symbol), []).append(order)
        self.accepted.append(order)

    def add_list(self, order_list: OrderList) -> None:
        self.lists[order_list.order_list_id] = order_list
        self.lists_by_client_id[(order_list.api_key, order_list.list_client_order_id)] = order_list

    def add_trade(self, order: Order, trade: Trade) -> None:
        order.trades.append(trade)
        self.trades.setdefault((order.api_key, order.rules.symbol), []).append(trade)

    def find(self, api_key: str, symbol: str, order_id: int | str | None, client_id: str | None) -> Order | None:
        """Binance's lookup: by orderId (then checked against the client id if both are sent), else by the
        client id (the latest order that carried it)."""
        wanted = parse_id("orderId", order_id)
        if wanted is None and not client_id:
            raise either_param("orderId", "origClientOrderId")
        if wanted is None:
            assert client_id is not None
            return self.by_client_id.get((api_key, symbol, client_id))
        order = self.orders.get((symbol, wanted))
        if order is None or order.api_key != api_key:
            return None
        if client_id and order.client_order_id != client_id:
            return None
        return order

    def find_list(
        self, api_key: str, order_list_id: int | str | None, client_id: str | None, id_name: str
    ) -> OrderList | None:
        """An order list by orderListId (checked against the client id if both are sent), else by client id."""
        wanted = parse_id("orderListId", order_list_id)
        if wanted is None and not client_id:
            raise either_param("orderListId", id_name)
        if wanted is None:
            assert client_id is not None
            return self.lists_by_client_id.get((api_key, client_id))
        found = self.lists.get(wanted)
        if found is None or found.api_key != api_key:
            return None
        if client_id and found.list_client_order_id != client_id:
            return None
        return found

    def list_of(self, order: Order) -> OrderList | None:
        """The order's list while that list is live (both legs waiting), else None."""
        found = self.lists.get(order.order_list_id) if order.order_list_id >= 0 else None
        return found if found is not None and found.is_live else None

    def open_of(self, api_key: str, symbol: str, wanted: Callable[[Order], bool] = lambda _: True) -> list[Order]:
        return [o for o in self.open.get(symbol, {}).values() if o.api_key == api_key and wanted(o)]

    def lists_of(self, api_key: str) -> list[OrderList]:
        return [found for found in self.lists.values() if found.api_key == api_key]


def _is_algo(order: Order) -> bool:
    return order.type in STOP_TYPES


def _next(counters: dict[str, int], symbol: str) -> int:
    counters[symbol] = counters.get(symbol, 0) + 1
    return counters[symbol]
