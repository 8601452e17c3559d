"""What the venue tells us about orders and fills, as typed records (built once, in `exchange/`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from aiotrade.models.orders import OrderStatus


@dataclass(frozen=True, slots=True)
class VenueOrder:
    """One order as the venue knows it, in our vocabulary (status mapped, numbers exact)."""

    exchange_order_id: str
    client_order_id: str | None
    symbol: str
    side: str
    type: str | None
    status: OrderStatus
    amount: Decimal | None
    price: Decimal | None
    filled: Decimal
    average_price: Decimal | None
    cost: Decimal
    fee_cost: Decimal | None
    fee_currency: str | None
    updated_at: datetime | None
    fills: tuple[VenueFill, ...] = ()  # executions the venue reported with the order itself


@dataclass(frozen=True, slots=True)
class VenueFill:
    """One execution of one of the account's orders."""

    trade_id: str
    exchange_order_id: str | None
    symbol: str
    side: str
    price: Decimal
    amount: Decimal
    cost: Decimal
    fee_cost: Decimal | None
    fee_currency: str | None
    taker_or_maker: str | None
    executed_at: datetime


@dataclass(frozen=True, slots=True)
class KeyRestrictions:
    """What the venue says an account's API key may do (Binance: GET /sapi/v1/account/apiRestrictions)."""

    withdrawals: bool
    trading: bool
    ip_restricted: bool
