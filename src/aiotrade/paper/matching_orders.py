"""Paper orders, order lists and trades, and their Binance REST shapes (field names and number formats as
Binance's)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from aiotrade.paper.matching_params import STOP_TYPES
from aiotrade.paper.matching_types import ZERO, SymbolFilters, fmt

OPEN_STATUSES = frozenset({"NEW", "PARTIALLY_FILLED"})
# Stops that fire when the price rises to their stopPrice (Binance: "price above market price"); the other
# combinations fire when it falls to it.
_TRIGGERED_FROM_BELOW = frozenset(
    {("STOP_LOSS", "BUY"), ("STOP_LOSS_LIMIT", "BUY"), ("TAKE_PROFIT", "SELL"), ("TAKE_PROFIT_LIMIT", "SELL")}
)


def stop_triggered(order_type: str, side: str, stop_price: Decimal, low: Decimal, high: Decimal) -> bool:
    """Whether trades between `low` and `high` reach a stop of this type and side: STOP_LOSS buys and
    TAKE_PROFIT sells fire at or above their stopPrice, STOP_LOSS sells and TAKE_PROFIT buys at or below."""
    return high >= stop_price if (order_type, side) in _TRIGGERED_FROM_BELOW else low <= stop_price


@dataclass(slots=True, eq=False)
class Trade:
    rules: SymbolFilters
    trade_id: int
    order_id: int
    order_list_id: int
    price: Decimal
    qty: Decimal
    quote_qty: Decimal
    commission: Decimal
    commission_asset: str
    time: int
    is_buyer: bool
    is_maker: bool

    def fill_row(self) -> dict[str, object]:
        """One entry of a FULL order response's `fills`."""
        return {
            "price": fmt(self.price, self.rules.quote_asset_precision),
            "qty": fmt(self.qty, self.rules.base_asset_precision),
            "commission": fmt(self.commission, self._commission_precision),
            "commissionAsset": self.commission_asset,
            "tradeId": self.trade_id,
        }

    def my_trade_row(self) -> dict[str, object]:
        """One row of GET /api/v3/myTrades."""
        return {
            "symbol": self.rules.symbol,
            "id": self.trade_id,
            "orderId": self.order_id,
            "orderListId": self.order_list_id,
            "price": fmt(self.price, self.rules.quote_asset_precision),
            "qty": fmt(self.qty, self.rules.base_asset_precision),
            "quoteQty": fmt(self.quote_qty, self.rules.quote_asset_precision),
            "commission": fmt(self.commission, self._commission_precision),
            "commissionAsset": self.commission_asset,
            "time": self.time,
            "isBuyer": self.is_buyer,
            "isMaker": self.is_maker,
            "isBestMatch": True,
        }

    @property
    def _commission_precision(self) -> int:
        if self.commission_asset == self.rules.base_asset:
            return self.rules.base_asset_precision
        return self.rules.quote_asset_precision


@dataclass(slots=True, eq=False)
class Order:
    """One order's full state. `locked` is what it still holds of the asset it spends.

    A stop order rests untriggered (`working` False, `working_time` -1, status NEW) until the market reaches
    its `stop_price`; an OCO leg holds nothing itself while its list holds the lock for both (`reserve` is
    what the leg would hold alone).
    """

    api_key: str
    rules: SymbolFilters
    order_id: int
    client_order_id: str
    side: str  # BUY, SELL
    type: str  # MARKET, LIMIT, LIMIT_MAKER, STOP_LOSS(_LIMIT), TAKE_PROFIT(_LIMIT)
    time_in_force: str  # Binance echoes GTC for MARKET orders
    price: Decimal  # zero for MARKET, STOP_LOSS and TAKE_PROFIT
    orig_qty: Decimal
    orig_quote_qty: Decimal
    stp_mode: str
    time: int
    update_time: int
    stop_price: Decimal = ZERO
    working: bool = True
    working_time: int = -1
    order_list_id: int = -1
    status: str = "NEW"
    executed_qty: Decimal = ZERO
    cum_quote: Decimal = ZERO
    locked: Decimal = ZERO
    reserve: Decimal = ZERO
    trades: list[Trade] = field(default_factory=list)

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def remaining(self) -> Decimal:
        return self.orig_qty - self.executed_qty

    @property
    def buys(self) -> bool:
        return self.side == "BUY"

    @property
    def spent_asset(self) -> str:
        return self.rules.quote_asset if self.buys else self.rules.base_asset

    @property
    def is_stop(self) -> bool:
        return self.type in STOP_TYPES

    def triggered_by(self, low: Decimal, high: Decimal) -> bool:
        """Whether trades between `low` and `high` reach this stop's stop_price (see `stop_triggered`)."""
        return stop_triggered(self.type, self.side, self.stop_price, low, high)

    def ack(self, transact_time: int) -> dict[str, object]:
        """newOrderRespType=ACK."""
        return {
            "symbol": self.rules.symbol,
            "orderId": self.order_id,
            "orderListId": self.order_list_id,
            "clientOrderId": self.client_order_id,
            "transactTime": transact_time,
        }

    def result(self, transact_time: int) -> dict[str, object]:
        """newOrderRespType=RESULT."""
        return {
            **self.ack(transact_time),
            **self._amounts(),
            **self._stop_price(),
            "workingTime": self.working_time,
            "selfTradePreventionMode": self.stp_mode,
        }

    def full(self, transact_time: int, fills: list[Trade]) -> dict[str, object]:
        """newOrderRespType=FULL: RESULT plus the fills made while placing."""
        return {**self.result(transact_time), "fills": [trade.fill_row() for trade in fills]}

    def query(self) -> dict[str, object]:
        """GET /api/v3/order, and each row of openOrders and allOrders."""
        q = self.rules.quote_asset_precision
        amounts = self._amounts()
        return {
            "symbol": self.rules.symbol,
            "orderId": self.order_id,
            "orderListId": self.order_list_id,
            "clientOrderId": self.client_order_id,
            "price": amounts["price"],
            "origQty": amounts["origQty"],
            "executedQty": amounts["executedQty"],
            "cummulativeQuoteQty": amounts["cummulativeQuoteQty"],
            "status": self.status,
            "timeInForce": self.time_in_force,
            "type": self.type,
            "side": self.side,
            "stopPrice": fmt(self.stop_price, q),
            "icebergQty": fmt(ZERO, self.rules.base_asset_precision),
            "time": self.time,
            "updateTime": self.update_time,
            "isWorking": self.working,
            "workingTime": self.working_time,
            "origQuoteOrderQty": amounts["origQuoteOrderQty"],
            "selfTradePreventionMode": self.stp_mode,
        }

    def canceled(self, cancel_client_id: str, transact_time: int) -> dict[str, object]:
        """DELETE /api/v3/order: `clientOrderId` is the cancel request's own id, as on Binance."""
        return {
            "symbol": self.rules.symbol,
            "origClientOrderId": self.client_order_id,
            "orderId": self.order_id,
            "orderListId": self.order_list_id,
            "clientOrderId": cancel_client_id,
            "transactTime": transact_time,
            **self._amounts(),
            **self._stop_price(),
            "selfTradePreventionMode": self.stp_mode,
        }

    def report(self, resp_type: str, transact_time: int) -> dict[str, object]:
        """The order's entry in a placement answer, in the shape `resp_type` (ACK, RESULT, FULL) asks for."""
        if resp_type == "ACK":
            return self.ack(transact_time)
        if resp_type == "RESULT":
            return self.result(transact_time)
        return self.full(transact_time, list(self.trades))

    def _stop_price(self) -> dict[str, str]:
        # Binance adds stopPrice to these answers only for the four stop types
        return {"stopPrice": fmt(self.stop_price, self.rules.quote_asset_precision)} if self.is_stop else {}

    def _amounts(self) -> dict[str, object]:
        q, b = self.rules.quote_asset_precision, self.rules.base_asset_precision
        return {
            "price": fmt(self.price, q),
            "origQty": fmt(self.orig_qty, b),
            "executedQty": fmt(self.executed_qty, b),
            "origQuoteOrderQty": fmt(self.orig_quote_qty, q),
            "cummulativeQuoteQty": fmt(self.cum_quote, q),
            "status": self.status,
            "timeInForce": self.time_in_force,
            "type": self.type,
            "side": self.side,
        }


@dataclass(slots=True, eq=False)
class OrderList:
    """An OCO: two orders of one side and quantity; the first to fill or trigger expires the other.

    While both legs are live the list holds the lock (`locked`, the larger of the legs' reserves); once one
    leg acts, that leg takes its own reserve and the rest is released.
    """

    order_list_id: int
    list_client_order_id: str
    api_key: str
    rules: SymbolFilters
    legs: tuple[Order, Order]
    transaction_time: int
    locked: Decimal = ZERO
    status: str = "EXECUTING"  # listOrderStatus: EXECUTING until resolved, then ALL_DONE

    @property
    def is_live(self) -> bool:
        return self.status == "EXECUTING"

    def other(self, leg: Order) -> Order:
        first, second = self.legs
        return second if leg is first else first

    def summary(self) -> dict[str, object]:
        """GET /api/v3/orderList, openOrderList and allOrderList rows."""
        return {
            "orderListId": self.order_list_id,
            "contingencyType": "OCO",
            "listStatusType": "EXEC_STARTED" if self.is_live else "ALL_DONE",
            "listOrderStatus": self.status,
            "listClientOrderId": self.list_client_order_id,
            "transactionTime": self.transaction_time,
            "symbol": self.rules.symbol,
            "orders": [
                {"symbol": self.rules.symbol, "orderId": leg.order_id, "clientOrderId": leg.client_order_id}
                for leg in self.legs
            ],
        }

    def with_reports(self, reports: list[dict[str, object]]) -> dict[str, object]:
        """Placement and cancellation answers: the summary plus one report per leg."""
        return {**self.summary(), "orderReports": reports}
