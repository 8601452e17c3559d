"""The matching engine's test bench: a fake market with a fixed book and a traded range the test sets."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

import pytest

from aiotrade.paper.errors import BinanceError
from aiotrade.paper.matching import MatchingEngine, SymbolFilters

D = Decimal
T0 = 1_700_000_000_000  # a round 10 s boundary: 1_700_000_000_000 % 10_000 == 0

BTCUSDT = SymbolFilters(
    symbol="BTCUSDT",
    base_asset="BTC",
    quote_asset="USDT",
    tick_size=D("0.01"),
    min_price=D("0.01"),
    max_price=D("1000000"),
    step_size=D("0.00001"),
    min_qty=D("0.00001"),
    max_qty=D("9000"),
    min_notional=D("5"),
    market_max_qty=D("100"),
)
# Binance's ETHBTC: tick × step has 9 decimals, one more than BTC's precision
ETHBTC = SymbolFilters(
    symbol="ETHBTC",
    base_asset="ETH",
    quote_asset="BTC",
    tick_size=D("0.00001"),
    min_price=D("0.00001"),
    max_price=D("1000"),
    step_size=D("0.0001"),
    min_qty=D("0.0001"),
    max_qty=D("100000"),
    min_notional=D("0.0001"),
)

LIMIT = {"side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.1", "price": "29000"}
MARKET = {"side": "BUY", "type": "MARKET", "quantity": "0.1"}
MANDATORY = "Mandatory parameter '{}' was not sent, was empty/null, or malformed."
ILLEGAL = "Illegal characters found in parameter '{}'; legal range is '{}'."


def levels(*pairs: tuple[str, str]) -> list[tuple[Decimal, Decimal]]:
    return [(D(price), D(qty)) for price, qty in pairs]


@dataclass
class FakeMarket:
    """A fixed book per symbol and a traded range the test sets; records the ranges asked for."""

    books: dict[str, tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]] = field(
        default_factory=lambda: {
            "BTCUSDT": (
                levels(("29990", "0.5"), ("29980", "1"), ("29970", "2")),
                levels(("30000", "0.5"), ("30010", "1"), ("30020", "2")),
            ),
            "ETHBTC": (levels(("0.05000", "10")), levels(("0.05200", "10"))),
        }
    )
    range: tuple[Decimal, Decimal] | None = None
    range_calls: list[tuple[str, int, int]] = field(default_factory=list)
    last: Decimal | None = Decimal("29995")  # between the best bid and ask
    tape: list[tuple[int, Decimal]] | None = None  # (time, price) trades; when set, ranges come from it

    def book(self, symbol: str, now_ms: int, depth: int) -> tuple[list, list]:
        bids, asks = self.books[symbol]
        return bids[:depth], asks[:depth]

    def price_range(self, symbol: str, start_ms: int, end_ms: int) -> tuple[Decimal, Decimal] | None:
        self.range_calls.append((symbol, start_ms, end_ms))
        if self.tape is not None:
            prices = [price for time, price in self.tape if start_ms < time <= end_ms]
            return (min(prices), max(prices)) if prices else None
        return self.range

    def last_price(self, symbol: str, now_ms: int) -> Decimal | None:
        return self.last

    def filters(self, symbol: str) -> SymbolFilters | None:
        return {"BTCUSDT": BTCUSDT, "ETHBTC": ETHBTC}.get(symbol)


@dataclass
class Clock:
    now: int = T0

    def __call__(self) -> int:
        return self.now


@dataclass
class Paper:
    engine: MatchingEngine
    market: FakeMarket
    clock: Clock

    def balance(self, asset: str, key: str = "alice") -> tuple[str, str]:
        rows = {row["asset"]: row for row in self.engine.account(key)["balances"]}
        return rows[asset]["free"], rows[asset]["locked"]

    def place(self, key: str = "alice", **params: str) -> dict:
        return self.engine.place(key, {"symbol": "BTCUSDT", **params})

    def oco(self, key: str = "alice", *, legacy: bool = False, **params: str) -> dict:
        return self.engine.place_oco(key, {"symbol": "BTCUSDT", **params}, legacy=legacy)

    def order(self, order_id: int, key: str = "alice") -> dict:
        return self.engine.get(key, "BTCUSDT", order_id=order_id)

    def cross(self, low: str, high: str, after_ms: int = 1_000) -> None:
        """Let time pass during which the market traded between `low` and `high`."""
        self.market.range = (D(low), D(high))
        self.clock.now += after_ms

    def trade(self, *tape: tuple[int, str]) -> None:
        """Let time pass during which these (ms after now, price) trades happened, in that order."""
        self.market.tape = [(self.clock.now + after, D(price)) for after, price in tape]
        self.clock.now += max(after for after, _ in tape)


def make_paper(**engine_options: object) -> Paper:
    market, clock = FakeMarket(), Clock()
    engine = MatchingEngine(market, clock=clock, **engine_options)  # type: ignore[arg-type]
    engine.open_account("alice", {"USDT": D("100000"), "BTC": D("2")})
    engine.open_account("bob", {"USDT": D("100000"), "BTC": D("10"), "ETH": D("5")})
    return Paper(engine, market, clock)


def refused(call, *args, **kwargs) -> BinanceError:
    with pytest.raises(BinanceError) as caught:
        call(*args, **kwargs)
    return caught.value
