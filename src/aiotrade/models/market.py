"""Market-data models: the API contract. Money is Decimal (a JSON string on the wire); times are aware."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


class ExchangeSummary(_Model):
    name: str = Field(description="The venue name used in paths, e.g. `paper`.")
    exchange_class: str = Field(description="The ccxt class behind the venue, e.g. `binance`.")
    sandbox: bool
    markets_loaded: bool
    market_count: int


class ExchangeStatus(_Model):
    exchange: str
    status: Literal["ok", "maintenance", "shutdown", "error", "unknown"]
    updated: datetime | None = None
    eta: datetime | None = None
    checked_at: datetime


class MarketPrecision(_Model):
    amount: Decimal | None = Field(description="Amount step (lot size), e.g. `0.00001`.")
    price: Decimal | None = Field(description="Price step (tick size), e.g. `0.01`.")


class MarketLimits(_Model):
    amount_min: Decimal | None = None
    amount_max: Decimal | None = None
    price_min: Decimal | None = None
    price_max: Decimal | None = None
    cost_min: Decimal | None = Field(default=None, description="Minimum notional in the quote currency.")
    cost_max: Decimal | None = None


class Market(_Model):
    symbol: str
    base: str
    quote: str
    type: str
    active: bool | None
    precision: MarketPrecision
    limits: MarketLimits
    maker_fee: Decimal | None = None
    taker_fee: Decimal | None = None


class Ticker(_Model):
    exchange: str
    symbol: str
    timestamp: datetime | None
    last: Decimal | None
    bid: Decimal | None
    ask: Decimal | None
    bid_volume: Decimal | None = None
    ask_volume: Decimal | None = None
    open: Decimal | None = None
    high: Decimal | None = None
    low: Decimal | None = None
    vwap: Decimal | None = None
    base_volume: Decimal | None = None
    quote_volume: Decimal | None = None
    change: Decimal | None = None
    percentage: Decimal | None = None


class OrderBook(_Model):
    exchange: str
    symbol: str
    timestamp: datetime | None
    bids: list[tuple[Decimal, Decimal]] = Field(description="[price, amount], best (highest) first.")
    asks: list[tuple[Decimal, Decimal]] = Field(description="[price, amount], best (lowest) first.")
    nonce: int | None = None


class Trade(_Model):
    id: str | None
    timestamp: datetime
    side: Literal["buy", "sell"] | None
    price: Decimal
    amount: Decimal
    cost: Decimal | None


class Trades(_Model):
    exchange: str
    symbol: str
    trades: list[Trade]


class Candle(_Model):
    timestamp: datetime = Field(description="Open time of the candle.")
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal


class Ohlcv(_Model):
    exchange: str
    symbol: str
    timeframe: str
    candles: list[Candle]
