"""The market-data cache through the whole stack (httpx -> FastAPI -> gateway -> cache -> pool -> ccxt -> paper):
identical concurrent reads join one upstream request, every cached answer says its Age, TTLs per kind hold,
private data is never cached, and `AIOTRADE_CACHE__ENABLED=false` is the control that goes upstream every time."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from aiotrade.config import CacheConfig
from aiotrade.paper.config import PaperConfig
from tests.support.stack import Stack, running_stack

TICKER = "/api/v1/exchanges/paper/ticker"
UPSTREAM_TICKER = "/api/v3/ticker/24hr"
# 50 ms at the venue: a request in flight long enough for the others to arrive while it is.
SLOW_VENUE = PaperConfig(port=0, seed=7, weight_limit=500_000, latency_ms=50)


async def settled(stack: Stack) -> None:
    """Wait until the app's start-up work (equity recorder, warm-up) has stopped asking the venue anything."""
    last = -1
    for _ in range(50):
        total = sum(stack.paper.stats.requests.values())
        if total == last:
            return
        last = total
        await asyncio.sleep(0.3)


async def concurrently(api: httpx.AsyncClient, count: int, path: str, **params: object) -> list[httpx.Response]:
    return await asyncio.gather(*(api.get(path, params=params) for _ in range(count)))


async def test_a_thousand_identical_concurrent_ticker_requests_make_one_upstream_request(tmp_path: Path) -> None:
    async with running_stack(tmp_path, paper_config=SLOW_VENUE, cache=CacheConfig(ticker_ttl_s=5)) as stack:
        await stack.api.get("/api/v1/exchanges/paper/markets")  # markets loaded, the key verified and cached
        await settled(stack)
        before, stats_before = stack.paper_requests(UPSTREAM_TICKER), stack.app.state.market_cache.stats.snapshot()
        answers = await concurrently(stack.api, 1000, TICKER, symbol="ETH/BTC")
        upstream = stack.paper_requests(UPSTREAM_TICKER) - before
        stats = stack.app.state.market_cache.stats.snapshot()
    counted = {name: stats[name] - stats_before[name] for name in stats}
    assert {r.status_code for r in answers} == {200}
    assert upstream == 1, counted
    assert len({r.json()["last"] for r in answers}) == 1
    assert all("Age" in r.headers for r in answers)
    assert counted["misses"] == 1 and counted["hits"] + counted["joined"] == 999


async def test_control_with_the_cache_switched_off_every_request_goes_upstream(tmp_path: Path) -> None:
    async with running_stack(tmp_path, paper_config=SLOW_VENUE, cache=CacheConfig(enabled=False)) as stack:
        await stack.api.get("/api/v1/exchanges/paper/markets")
        before = stack.paper_requests(UPSTREAM_TICKER)
        answers = await concurrently(stack.api, 50, TICKER, symbol="ETH/BTC")
        upstream = stack.paper_requests(UPSTREAM_TICKER) - before
    assert {r.status_code for r in answers} == {200}
    assert upstream == 50
    assert not any("Age" in r.headers for r in answers)


async def test_a_cached_answer_says_its_age_and_is_fetched_again_after_its_ttl(tmp_path: Path) -> None:
    cache = CacheConfig(ticker_ttl_s=1.6, orderbook_ttl_s=0)
    async with running_stack(tmp_path, cache=cache) as stack:
        await stack.api.get("/api/v1/exchanges/paper/markets")
        await settled(stack)
        first = await stack.api.get(TICKER, params={"symbol": "ETH/BTC"})
        before = stack.paper_requests(UPSTREAM_TICKER)
        await asyncio.sleep(1.1)
        second = await stack.api.get(TICKER, params={"symbol": "ETH/BTC"})
        await asyncio.sleep(0.6)
        third = await stack.api.get(TICKER, params={"symbol": "ETH/BTC"})
        upstream = stack.paper_requests(UPSTREAM_TICKER) - before
        # TTL 0: nothing kept, every order book read goes upstream (identical reads in flight would still join).
        books_before = stack.paper_requests("/api/v3/depth")
        for _ in range(3):
            await stack.api.get("/api/v1/exchanges/paper/orderbook", params={"symbol": "ETH/USDT", "limit": 5})
        books = stack.paper_requests("/api/v3/depth") - books_before
    assert (first.headers["Age"], second.headers["Age"], third.headers["Age"]) == ("0", "1", "0")
    assert second.json() == first.json()
    assert upstream == 1  # the third only
    assert books == 3


async def test_closed_candles_are_kept_and_private_data_is_never_cached(tmp_path: Path) -> None:
    async with running_stack(tmp_path) as stack:
        await stack.api.get("/api/v1/exchanges/paper/markets")
        await settled(stack)
        klines_before = stack.paper_requests("/api/v3/klines")
        closed = {"symbol": "ETH/BTC", "timeframe": "1h", "limit": 24, "since": "2024-03-01T00:00:00Z"}
        for _ in range(3):
            candles = await stack.api.get("/api/v1/exchanges/paper/ohlcv", params=closed)
            assert candles.status_code == 200, candles.text
        assert stack.paper_requests("/api/v3/klines") - klines_before == 1  # closed candles never change
        accounts_before = stack.paper_requests("/api/v3/account")
        for _ in range(3):
            balances = await stack.api.get("/api/v1/accounts/paper/balances")
            assert balances.status_code == 200, balances.text
            assert "Age" not in balances.headers
        assert stack.paper_requests("/api/v3/account") - accounts_before == 3
