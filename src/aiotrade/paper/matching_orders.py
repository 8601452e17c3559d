"""Paper orders and trades, and their Binance REST shapes (field names and number formats as Binance's)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from aiotrade.paper.matching_types import ZERO, SymbolFilters, fmt

OPEN_STATUSES = frozenset({"NEW", "PARTIALLY_FILLED"})


@dataclass(slots=True, eq=False)
class Trade:
    rules: SymbolFilters
    trade_id: int
    order_id: int
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
            "orderListId": -1,
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
    """One order's full state. `locked` is what it still holds of the asset it spends."""

    api_key: str
    rules: SymbolFilters
    order_id: int
    client_order_id: str
    side: str  # BUY, SELL
    type: str  # MARKET, LIMIT, LIMIT_MAKER
    time_in_force: str  # Binance echoes GTC for MARKET orders
    price: Decimal  # zero for MARKET
    orig_qty: Decimal
    orig_quote_qty: Decimal
    stp_mode: str
    time: int
    update_time: int
    status: str = "NEW"
    executed_qty: Decimal = ZERO
    cum_quote: Decimal = ZERO
    locked: Decimal = ZERO
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

    def ack(self, transact_time: int) -> dict[str, object]:
        """newOrderRespType=ACK."""
        return {
            "symbol": self.rules.symbol,
            "orderId": self.order_id,
            "orderListId": -1,
            "clientOrderId": self.client_order_id,
            "transactTime": transact_time,
        }

    def result(self, transact_time: int) -> dict[str, object]:
        """newOrderRespType=RESULT."""
        return {
            **self.ack(transact_time),
            **self._amounts(),
            "workingTime": self.time,
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
            "orderListId": -1,
            "clientOrderId": self.client_order_id,
            "price": amounts["price"],
            "origQty": amounts["origQty"],
            "executedQty": amounts["executedQty"],
            "cummulativeQuoteQty": amounts["cummulativeQuoteQty"],
            "status": self.status,
            "timeInForce": self.time_in_force,
            "type": self.type,
            "side": self.side,
            "stopPrice": fmt(ZERO, q),
            "icebergQty": fmt(ZERO, self.rules.base_asset_precision),
            "time": self.time,
            "updateTime": self.update_time,
            "isWorking": True,
            "workingTime": self.time,
            "origQuoteOrderQty": amounts["origQuoteOrderQty"],
            "selfTradePreventionMode": self.stp_mode,
        }

    def canceled(self, cancel_client_id: str, transact_time: int) -> dict[str, object]:
        """DELETE /api/v3/order: `clientOrderId` is the cancel request's own id, as on Binance."""
        return {
            "symbol": self.rules.symbol,
            "origClientOrderId": self.client_order_id,
            "orderId": self.order_id,
            "orderListId": -1,
            "clientOrderId": cancel_client_id,
            "transactTime": transact_time,
            **self._amounts(),
            "selfTradePreventionMode": self.stp_mode,
        }

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
