"""The matching engine's books of record: accounts, orders, order lists and trades, and how they are found.

Only bookkeeping lives here (registering and looking up); what happens to an order is `matching_exec`'s.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from aiotrade.paper.accounts import Account
from aiotrade.paper.errors import either_param, invalid_api_key
from aiotrade.paper.matching_orders import Order, OrderList, Trade
from aiotrade.paper.matching_params import parse_id


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


def _next(counters: dict[str, int], symbol: str) -> int:
    counters[symbol] = counters.get(symbol, 0) + 1
    return counters[symbol]
