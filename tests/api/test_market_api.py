"""Market data through the whole stack: httpx -> FastAPI -> pool -> real ccxt -> paper exchange."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from tests.support.stack import Stack

pytestmark = pytest.mark.asyncio


async def test_ticker_carries_decimal_strings(stack: Stack) -> None:
    response = await stack.api.get("/api/v1/exchanges/paper/ticker", params={"symbol": "BTC/USDT"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["symbol"] == "BTC/USDT" and body["exchange"] == "paper"
    for field in ("last", "bid", "ask", "high", "low", "base_volume"):
        assert isinstance(body[field], str), (field, body[field])
        Decimal(body[field])
    assert Decimal(body["bid"]) <= Decimal(body["last"]) <= Decimal(body["ask"]) or Decimal(body["bid"]) < Decimal(
        body["ask"]
    )
    assert datetime.fromisoformat(body["timestamp"]).tzinfo is not None


async def test_markets_list_precision_and_limits(stack: Stack) -> None:
    response = await stack.api.get("/api/v1/exchanges/paper/markets")
    assert response.status_code == 200
    markets = {m["symbol"]: m for m in response.json()}
    assert {"BTC/USDT", "ETH/USDT", "ETH/BTC", "SOL/USDT"} <= set(markets)
    btc = markets["BTC/USDT"]
    assert Decimal(btc["precision"]["price"]) > 0 and Decimal(btc["precision"]["amount"]) > 0
    assert Decimal(btc["limits"]["cost_min"]) > 0


async def test_markets_are_loaded_once_for_many_concurrent_callers(stack: Stack) -> None:
    import asyncio

    before = stack.paper_requests("/api/v3/exchangeInfo")
    responses = await asyncio.gather(
        *(stack.api.get("/api/v1/exchanges/paper/ticker", params={"symbol": "ETH/USDT"}) for _ in range(20))
    )
    assert all(r.status_code == 200 for r in responses)
    assert stack.paper_requests("/api/v3/exchangeInfo") - before <= 1


async def test_tickers_for_several_symbols(stack: Stack) -> None:
    response = await stack.api.get("/api/v1/exchanges/paper/tickers", params={"symbols": "BTC/USDT,ETH/USDT,ETH/BTC"})
    assert response.status_code == 200, response.text
    assert [t["symbol"] for t in response.json()] == ["BTC/USDT", "ETH/USDT", "ETH/BTC"]


async def test_order_book_is_sorted_and_consistent(stack: Stack) -> None:
    response = await stack.api.get("/api/v1/exchanges/paper/orderbook", params={"symbol": "BTC/USDT", "limit": 20})
    assert response.status_code == 200, response.text
    book = response.json()
    bids = [Decimal(p) for p, _ in book["bids"]]
    asks = [Decimal(p) for p, _ in book["asks"]]
    assert 0 < len(bids) <= 20 and 0 < len(asks) <= 20
    assert bids == sorted(bids, reverse=True) and asks == sorted(asks)
    assert bids[0] < asks[0]


async def test_recent_trades(stack: Stack) -> None:
    response = await stack.api.get("/api/v1/exchanges/paper/trades", params={"symbol": "ETH/USDT", "limit": 50})
    assert response.status_code == 200, response.text
    trades = response.json()["trades"]
    assert 0 < len(trades) <= 50
    assert all(Decimal(t["price"]) > 0 and Decimal(t["amount"]) > 0 for t in trades)


async def test_ohlcv_pages_past_the_exchange_limit_without_gaps(stack: Stack) -> None:
    since = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=3000)
    response = await stack.api.get(
        "/api/v1/exchanges/paper/ohlcv",
        params={"symbol": "BTC/USDT", "timeframe": "1m", "limit": 2500, "since": since.isoformat()},
    )
    assert response.status_code == 200, response.text
    candles = response.json()["candles"]
    assert len(candles) == 2500
    times = [datetime.fromisoformat(c["timestamp"]) for c in candles]
    assert times[0] == since
    assert all(b - a == timedelta(minutes=1) for a, b in itertools.pairwise(times))
    for c in candles:
        low, high = Decimal(c["low"]), Decimal(c["high"])
        assert low <= Decimal(c["open"]) <= high and low <= Decimal(c["close"]) <= high


async def test_ohlcv_latest_daily_candles_go_back_months(stack: Stack) -> None:
    response = await stack.api.get(
        "/api/v1/exchanges/paper/ohlcv", params={"symbol": "SOL/USDT", "timeframe": "1d", "limit": 180}
    )
    assert response.status_code == 200, response.text
    candles = response.json()["candles"]
    assert len(candles) == 180
    last = datetime.fromisoformat(candles[-1]["timestamp"])
    assert datetime.now(UTC) - last < timedelta(days=1)


async def test_exchange_status_and_list(stack: Stack) -> None:
    status = await stack.api.get("/api/v1/exchanges/paper/status")
    assert status.status_code == 200 and status.json()["status"] == "ok"
    venues = (await stack.api.get("/api/v1/exchanges")).json()
    assert venues[0]["name"] == "paper" and venues[0]["exchange_class"] == "binance"


async def test_health_and_readiness(stack: Stack) -> None:
    assert (await stack.api.get("/healthz")).json() == {"status": "ok"}
    await stack.api.get("/api/v1/exchanges/paper/markets")
    ready = await stack.api.get("/readyz")
    assert ready.status_code == 200, ready.text


async def test_openapi_has_stable_operation_ids(stack: Stack) -> None:
    spec = (await stack.api.get("/openapi.json")).json()
    ids = {op["operationId"] for path in spec["paths"].values() for op in path.values()}
    assert {
        "list_exchanges", "get_exchange_status", "list_markets", "get_ticker", "get_tickers",
        "get_order_book", "get_recent_trades", "get_ohlcv", "healthz", "readyz",
    } <= ids  # fmt: skip
