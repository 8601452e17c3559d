"""Binance's request weights and its fixed one-minute weight window.

The weight charged for a request is Binance's documented weight, capped at 5x the `cost` ccxt's binance
charges its own limiter for the same request (ccxt counts 1 cost unit as 5 weight). So a client that keeps
its ccxt costs within the budget is never refused here, even where ccxt under-counts Binance (trades,
aggTrades, depth above 5000).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

WEIGHT_PER_CCXT_COST = 5
WINDOW_MS = 60_000


@dataclass(frozen=True, slots=True)
class CcxtCost:
    """Mirror of one entry of ccxt binance's `api.public.get` cost table (checked against ccxt by a test)."""

    units: float  # ccxt's cost units (1 unit = 5 Binance weight), not money
    no_symbol: float | None = None  # charged when the request has no `symbol` parameter
    by_limit: tuple[tuple[int, float], ...] = ()  # (max limit, cost), first match, when `limit` is sent

    def __call__(self, query: Mapping[str, str]) -> float:
        if self.no_symbol is not None and "symbol" not in query:
            return self.no_symbol
        if self.by_limit and "limit" in query:
            limit = _int_or_none(query["limit"])
            for bound, cost in self.by_limit:
                if limit is not None and limit <= bound:
                    return cost
        return self.units


def _depth(query: Mapping[str, str]) -> int:
    limit = _int_or_none(query.get("limit", "100"))
    if limit is None or limit <= 100:
        return 5
    if limit <= 500:
        return 25
    if limit <= 1000:
        return 50
    return 250


def _ticker_24hr(query: Mapping[str, str]) -> int:
    if "symbol" in query:
        return 2
    if "symbols" in query:
        count = query["symbols"].count(",") + 1
        return 2 if count <= 20 else 40 if count <= 100 else 80
    return 80


def _one_or_all(query: Mapping[str, str]) -> int:
    return 2 if "symbol" in query else 4


def _fixed(weight: int):
    return lambda _query: weight


# path -> (Binance's documented weight, ccxt's cost for the same request)
_TABLE = {
    "/api/v3/ping": (_fixed(1), CcxtCost(0.2)),
    "/api/v3/time": (_fixed(1), CcxtCost(0.2)),
    "/api/v3/exchangeInfo": (_fixed(20), CcxtCost(4)),
    "/api/v3/depth": (_depth, CcxtCost(1, by_limit=((100, 1), (500, 5), (1000, 10), (5000, 50)))),
    "/api/v3/trades": (_fixed(25), CcxtCost(2)),
    "/api/v3/aggTrades": (_fixed(4), CcxtCost(0.4)),
    "/api/v3/klines": (_fixed(2), CcxtCost(0.4)),
    "/api/v3/ticker/24hr": (_ticker_24hr, CcxtCost(0.4, no_symbol=16)),
    "/api/v3/ticker/price": (_one_or_all, CcxtCost(0.4, no_symbol=0.8)),
    "/api/v3/ticker/bookTicker": (_one_or_all, CcxtCost(0.4, no_symbol=0.8)),
    "/api/v3/avgPrice": (_fixed(2), CcxtCost(0.4)),
}
CCXT_COSTS: dict[str, CcxtCost] = {path: cost for path, (_, cost) in _TABLE.items()}

# The signed endpoints: (method, path) -> (Binance's weight, ccxt's `api.private` cost).
_PRIVATE_TABLE = {
    ("POST", "/api/v3/order"): (_fixed(1), CcxtCost(0.2)),
    ("GET", "/api/v3/order"): (_fixed(4), CcxtCost(0.8)),
    ("DELETE", "/api/v3/order"): (_fixed(1), CcxtCost(0.2)),
    ("GET", "/api/v3/openOrders"): (lambda q: 6 if "symbol" in q else 80, CcxtCost(1.2, no_symbol=16)),
    ("DELETE", "/api/v3/openOrders"): (_fixed(1), CcxtCost(0.2)),
    ("GET", "/api/v3/allOrders"): (_fixed(20), CcxtCost(4)),
    ("GET", "/api/v3/myTrades"): (_fixed(20), CcxtCost(4)),
    ("GET", "/api/v3/account"): (_fixed(20), CcxtCost(4)),
    ("GET", "/api/v3/rateLimit/order"): (_fixed(40), CcxtCost(8)),
    # Binance charges 20 with computeCommissionRates; that flag travels in the body, and ccxt pays 0.2 anyway
    ("POST", "/api/v3/order/test"): (_fixed(1), CcxtCost(0.2)),
    ("POST", "/api/v3/order/oco"): (_fixed(1), CcxtCost(0.2)),
    ("POST", "/api/v3/orderList/oco"): (_fixed(1), CcxtCost(0.2)),
    ("GET", "/api/v3/orderList"): (_fixed(4), CcxtCost(0.8)),
    ("DELETE", "/api/v3/orderList"): (_fixed(1), CcxtCost(0.2)),
    ("GET", "/api/v3/openOrderList"): (_fixed(6), CcxtCost(1.2)),
    ("GET", "/api/v3/allOrderList"): (_fixed(20), CcxtCost(4)),
}
PRIVATE_CCXT_COSTS: dict[tuple[str, str], CcxtCost] = {key: cost for key, (_, cost) in _PRIVATE_TABLE.items()}
UNKNOWN_API_WEIGHT = 1  # an /api path we do not serve (404) still costs a little, as on Binance


def request_weight(path: str, query: Mapping[str, str], method: str = "GET") -> int:
    """Weight charged against the /api REQUEST_WEIGHT budget: min(Binance's weight, 5 x ccxt's cost)."""
    entry = _PRIVATE_TABLE.get((method, path)) or _TABLE.get(path)
    if entry is None:
        return UNKNOWN_API_WEIGHT
    binance, ccxt_cost = entry
    return min(binance(query), math.floor(ccxt_cost(query) * WEIGHT_PER_CCXT_COST + 1e-9))


def interval_name(window_ms: int) -> tuple[int, str]:
    """A window's length as Binance names intervals: (intervalNum, interval), e.g. 60_000 -> (1, "MINUTE"),
    10_000 -> (10, "SECOND"). The window must be a whole number of seconds."""
    for unit_ms, name in ((86_400_000, "DAY"), (3_600_000, "HOUR"), (60_000, "MINUTE"), (1_000, "SECOND")):
        if window_ms % unit_ms == 0:
            return window_ms // unit_ms, name
    raise ValueError(f"a {window_ms} ms window has no Binance interval name")


def weight_headers(used: int, window_ms: int) -> dict[str, str]:
    """X-MBX-USED-WEIGHT-* of an /api answer: `-1M` always (Binance's one weight limit, here the count of the
    configured window), plus the header of the configured interval when it is not a minute (e.g. `-10S`)."""
    headers = {"X-MBX-USED-WEIGHT": str(used), "X-MBX-USED-WEIGHT-1M": str(used)}
    number, name = interval_name(window_ms)
    headers[f"X-MBX-USED-WEIGHT-{number}{name[0]}"] = str(used)
    return headers


class WeightWindow:
    """Weight used in the current UTC minute, as Binance counts it: a fixed window, reset on the minute."""

    def __init__(self, limit: int, window_ms: int = WINDOW_MS) -> None:
        self.limit = limit
        self.window_ms = window_ms
        self.window_start = 0
        self.used = 0

    def current(self, now_ms: int) -> int:
        self._roll(now_ms)
        return self.used

    def charge(self, weight: int, now_ms: int) -> None:
        """Count `weight` whatever the budget (for limits we observe without enforcing)."""
        self._roll(now_ms)
        self.used += weight

    def try_charge(self, weight: int, now_ms: int) -> bool:
        """Charge `weight` if it fits in what is left of this minute; refused requests are not charged."""
        self._roll(now_ms)
        if self.used + weight > self.limit:
            return False
        self.used += weight
        return True

    def retry_after_s(self, now_ms: int) -> int:
        """Whole seconds until the window resets (at least 1), as Binance's Retry-After."""
        return max(1, math.ceil((self.window_start + self.window_ms - now_ms) / 1000))

    def _roll(self, now_ms: int) -> None:
        start = now_ms - now_ms % self.window_ms
        if start != self.window_start:
            self.window_start, self.used = start, 0


def _int_or_none(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None
