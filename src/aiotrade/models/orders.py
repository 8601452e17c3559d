"""Order models: the request a client sends, the order it gets back, and the order state machine."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from aiotrade.models.common import Dec

log = logging.getLogger(__name__)

MAX_DECIMALS = 18
MAX_DIGITS = 36
MAX_MAGNITUDE = 15


def _exact_positive(value: Dec) -> Dec:
    if not value.is_finite():
        raise ValueError("must be a finite number")
    if value <= 0:
        raise ValueError("must be greater than zero")
    # Trailing zeros carry no precision: "1.50" has one meaningful decimal.
    _, digits, exponent = value.normalize().as_tuple()
    assert isinstance(exponent, int)
    if -exponent > MAX_DECIMALS:
        raise ValueError(f"at most {MAX_DECIMALS} decimal places")
    if value.adjusted() >= MAX_MAGNITUDE:
        raise ValueError(f"must be below 1e{MAX_MAGNITUDE}")
    if len(digits) > MAX_DIGITS:
        raise ValueError(f"at most {MAX_DIGITS} significant digits")
    return value


# Strings on the wire are recommended ("0.001"); JSON numbers are accepted but parsed exactly.
PositiveDecimal = Annotated[Dec, AfterValidator(_exact_positive)]


class OrderSide(StrEnum):
    BUY = "buy"
    SELL = "sell"


class OrderType(StrEnum):
    MARKET = "market"
    LIMIT = "limit"
    # Binance's protective types: a limit order at `price` placed when the last trade crosses `stop_price`
    # (a stop-loss below the market for a sell, above it for a buy; a take-profit the other way round).
    STOP_LOSS_LIMIT = "stop_loss_limit"
    TAKE_PROFIT_LIMIT = "take_profit_limit"
    LIMIT_MAKER = "limit_maker"  # post-only: refused by the exchange if it would take liquidity

    @property
    def is_limit(self) -> bool:
        """Has a limit price (and may rest on the book)."""
        return self is not OrderType.MARKET

    @property
    def is_stop(self) -> bool:
        return self in (OrderType.STOP_LOSS_LIMIT, OrderType.TAKE_PROFIT_LIMIT)


class TimeInForce(StrEnum):
    GTC = "GTC"
    IOC = "IOC"
    FOK = "FOK"


class OrderStatus(StrEnum):
    PENDING = "PENDING"  # recorded, request may be in flight
    OPEN = "OPEN"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"
    UNKNOWN = "UNKNOWN"  # the exchange could not be asked; the reconciler will settle it

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset({OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.REJECTED, OrderStatus.EXPIRED})
# Statuses in which an order may still be (or become) live on the exchange.
UNSETTLED_STATUSES = frozenset({OrderStatus.PENDING, OrderStatus.UNKNOWN})

_S = OrderStatus
_LIVE = frozenset({_S.OPEN, _S.PARTIALLY_FILLED, _S.FILLED, _S.CANCELED, _S.EXPIRED})
TRANSITIONS: Mapping[OrderStatus, frozenset[OrderStatus]] = {
    _S.PENDING: frozenset({*_LIVE, _S.REJECTED, _S.UNKNOWN}),
    # UNKNOWN -> PENDING: a retry with the same key found no order once the first send could no
    # longer land, and sends again under the same client id.
    _S.UNKNOWN: frozenset({*_LIVE, _S.REJECTED, _S.PENDING}),
    _S.OPEN: frozenset({_S.PARTIALLY_FILLED, _S.FILLED, _S.CANCELED, _S.EXPIRED}),
    _S.PARTIALLY_FILLED: frozenset({_S.FILLED, _S.CANCELED, _S.EXPIRED}),
    _S.FILLED: frozenset(),
    _S.CANCELED: frozenset(),
    _S.REJECTED: frozenset(),
    _S.EXPIRED: frozenset(),
}


class IllegalTransition(RuntimeError):
    """A status change the table does not declare: a bug or an exchange surprise, never silent."""


def check_transition(current: OrderStatus, new: OrderStatus, *, order_id: str) -> None:
    """Raise (and log loudly) unless ``current -> new`` is declared; staying put is always allowed."""
    if new == current or new in TRANSITIONS[current]:
        return
    log.error("illegal order transition %s -> %s for order %s", current, new, order_id)
    raise IllegalTransition(f"order {order_id}: {current} -> {new} is not a declared transition")


class CreateOrderRequest(BaseModel):
    """A new order. Exactly one of `amount` (base) and `quote_amount` (market buys only)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    symbol: str = Field(min_length=3, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9._-]+$")
    side: OrderSide
    type: OrderType
    amount: PositiveDecimal | None = Field(default=None, description='Base amount, e.g. `"0.001"`.')
    quote_amount: PositiveDecimal | None = Field(
        default=None, description='Quote amount to spend (market buys only), e.g. `"100"`.'
    )
    price: PositiveDecimal | None = Field(default=None, description="Limit price; must be on the tick.")
    stop_price: PositiveDecimal | None = Field(
        default=None, description="stop_loss_limit and take_profit_limit: the last price that triggers the order."
    )
    time_in_force: TimeInForce | None = Field(
        default=None, description="limit, stop_loss_limit, take_profit_limit; default GTC."
    )

    @model_validator(mode="after")
    def _consistent(self) -> CreateOrderRequest:
        if (self.amount is None) == (self.quote_amount is None):
            raise ValueError("give exactly one of amount and quote_amount")
        if self.quote_amount is not None and not (self.type is OrderType.MARKET and self.side is OrderSide.BUY):
            raise ValueError("quote_amount is only for market buys")
        if self.type.is_limit and self.price is None:
            raise ValueError(f"price is required for a {self.type.value} order")
        if self.type is OrderType.MARKET and self.price is not None:
            raise ValueError("price must not be given for a market order")
        if self.type.is_stop and self.stop_price is None:
            raise ValueError(f"stop_price is required for a {self.type.value} order")
        if not self.type.is_stop and self.stop_price is not None:
            raise ValueError("stop_price is only for stop_loss_limit and take_profit_limit orders")
        if self.type in (OrderType.MARKET, OrderType.LIMIT_MAKER) and self.time_in_force is not None:
            raise ValueError(f"time_in_force does not apply to a {self.type.value} order")
        return self


class Fee(BaseModel):
    model_config = ConfigDict(frozen=True)

    cost: Dec
    currency: str | None


class Order(BaseModel):
    """An order as we know it; `id` is our client order id, fixed before the request left."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(description="The client order id (ours, stable from creation).")
    exchange_order_id: str | None
    account: str
    venue: str
    symbol: str
    side: OrderSide
    type: OrderType
    time_in_force: TimeInForce | None
    amount: Dec | None
    quote_amount: Dec | None
    price: Dec | None
    stop_price: Dec | None = None
    status: OrderStatus
    filled: Dec
    remaining: Dec | None
    average_price: Dec | None
    cost: Dec
    fee: Fee | None
    error: str | None = None
    order_list_id: str | None = Field(default=None, description="The OCO this order is a leg of, if any.")
    created_at: datetime
    updated_at: datetime
    venue_confirmed: bool = Field(
        default=True,
        description="False: the venue did not confirm this copy just now (it was unreachable, or no longer knows "
        "the order); this is what the store holds.",
    )


class CreateOcoRequest(BaseModel):
    """An OCO (Binance semantics): a post-only limit order at `price` and a stop-loss-limit (`stop_price`,
    then a limit at `stop_limit_price`) for the same `amount`; when either fills or triggers, the other
    expires. A sell rests its limit above the market and its stop below; a buy the other way round."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    symbol: str = Field(min_length=3, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9._-]+$")
    side: OrderSide
    amount: PositiveDecimal = Field(description='Base amount of each leg, e.g. `"0.01"`.')
    price: PositiveDecimal = Field(description="The limit leg's price (post-only: refused if it would take).")
    stop_price: PositiveDecimal = Field(description="The last price that triggers the stop leg.")
    stop_limit_price: PositiveDecimal = Field(description="The stop leg's limit price once triggered.")

    @model_validator(mode="after")
    def _legs_on_either_side(self) -> CreateOcoRequest:
        if self.side is OrderSide.SELL and not self.price > self.stop_price:
            raise ValueError("a sell OCO needs price above stop_price (take profit above, stop below)")
        if self.side is OrderSide.BUY and not self.price < self.stop_price:
            raise ValueError("a buy OCO needs price below stop_price (limit below, stop above)")
        return self

    def legs(self) -> tuple[CreateOrderRequest, CreateOrderRequest]:
        """The limit leg and the stop leg, as the gate judges each."""
        limit = CreateOrderRequest(
            symbol=self.symbol, side=self.side, type=OrderType.LIMIT_MAKER, amount=self.amount, price=self.price
        )
        stop = CreateOrderRequest(
            symbol=self.symbol,
            side=self.side,
            type=OrderType.STOP_LOSS_LIMIT,
            amount=self.amount,
            price=self.stop_limit_price,
            stop_price=self.stop_price,
        )
        return limit, stop


class OrderList(BaseModel):
    """An OCO as we know it: its two legs, each an order of its own (get, cancel, history as any order)."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(description="Our list id (Binance's listClientOrderId), fixed before the request left.")
    account: str
    symbol: str
    side: OrderSide
    contingency_type: Literal["OCO"] = "OCO"
    orders: list[Order] = Field(description="The limit leg, then the stop leg.")


# A leg's client id is its list's id plus a suffix: any replica (and the store) tells a leg's list and
# sibling from its id alone. Our ids are 32 characters; Binance allows 36.
LEG_SUFFIXES = ("-l", "-s")  # the limit leg, the stop leg
_LEG_ID = re.compile(r"^(at[0-9a-f]{30})-[ls]$")


def leg_ids(list_id: str) -> tuple[str, str]:
    """The client ids of an OCO's limit leg and stop leg."""
    return list_id + LEG_SUFFIXES[0], list_id + LEG_SUFFIXES[1]


def list_id_of(client_order_id: str) -> str | None:
    """The OCO a client id belongs to, if it is a leg's."""
    found = _LEG_ID.match(client_order_id)
    return found.group(1) if found else None


class OrderPage(BaseModel):
    model_config = ConfigDict(frozen=True)

    orders: list[Order]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null at the end.")


class CancelOutcome(BaseModel):
    """What became of one open order a cancel-all or a halt asked the exchange to cancel."""

    model_config = ConfigDict(frozen=True)

    id: str | None = Field(description="Our order id, when we placed it; null for orders placed elsewhere.")
    exchange_order_id: str
    symbol: str
    outcome: Literal["canceled", "already_closed", "failed"]
    status: OrderStatus | None = None
    error: str | None = None


class CancelAllReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    account: str
    symbol: str | None
    outcomes: list[CancelOutcome]


class HaltRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    reason: str | None = Field(default=None, min_length=1, max_length=200, description="Kept with the state.")


class ResumeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    reason: str | None = Field(default=None, min_length=1, max_length=200, description="Kept with the state.")


class HaltReport(BaseModel):
    """The kill switch's answer: the account is HALTED; every open order and what became of it."""

    model_config = ConfigDict(frozen=True)

    account: str
    state: str = Field(description="HALTED (only an admin key may resume).")
    reason: str | None
    outcomes: list[CancelOutcome]
    still_in_flight: list[str] = Field(
        description="Our orders whose send had not settled when the halt gave up waiting: each is cancelled "
        "as soon as the exchange acknowledges it."
    )
