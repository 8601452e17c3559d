"""Market-data models: the API contract. Money is Decimal (a JSON string on the wire); times are aware."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from aiotrade.models.common import Dec


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
    amount: Dec | None = Field(description="Amount step (lot size), e.g. `0.00001`.")
    price: Dec | None = Field(description="Price step (tick size), e.g. `0.01`.")


class MarketLimits(_Model):
    amount_min: Dec | None = None
    amount_max: Dec | None = None
    price_min: Dec | None = None
    price_max: Dec | None = None
    cost_min: Dec | None = Field(default=None, description="Minimum notional in the quote currency.")
    cost_max: Dec | None = None


class Market(_Model):
    symbol: str
    base: str
    quote: str
    type: str
    active: bool | None
    precision: MarketPrecision
    limits: MarketLimits
    maker_fee: Dec | None = None
    taker_fee: Dec | None = None


class Ticker(_Model):
    exchange: str
    symbol: str
    timestamp: datetime | None
    last: Dec | None
    bid: Dec | None
    ask: Dec | None
    bid_volume: Dec | None = None
    ask_volume: Dec | None = None
    open: Dec | None = None
    high: Dec | None = None
    low: Dec | None = None
    vwap: Dec | None = None
    base_volume: Dec | None = None
    quote_volume: Dec | None = None
    change: Dec | None = None
    percentage: Dec | None = None


class OrderBook(_Model):
    exchange: str
    symbol: str
    timestamp: datetime | None
    bids: list[tuple[Dec, Dec]] = Field(description="[price, amount], best (highest) first.")
    asks: list[tuple[Dec, Dec]] = Field(description="[price, amount], best (lowest) first.")
    nonce: int | None = None


class Trade(_Model):
    id: str | None
    timestamp: datetime
    side: Literal["buy", "sell"] | None
    price: Dec
    amount: Dec
    cost: Dec | None


class Trades(_Model):
    exchange: str
    symbol: str
    trades: list[Trade]


class Candle(_Model):
    timestamp: datetime = Field(description="Open time of the candle.")
    open: Dec
    high: Dec
    low: Dec
    close: Dec
    volume: Dec


class Ohlcv(_Model):
    exchange: str
    symbol: str
    timeframe: str
    candles: list[Candle]
