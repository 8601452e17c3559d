"""Fault injection, seen from ccxt, and changed at run time from Python and over HTTP."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import aiohttp
import ccxt.async_support as ccxt
import pytest

from aiotrade.paper.config import FaultConfig, PaperConfig
from aiotrade.paper.faults import FaultKind, RandomFaults
from aiotrade.paper.server import PaperExchange
from tests.paper.conftest import ManualClock, make_binance, running


async def test_a_5xx_gateway_page_surfaces_as_exchange_not_available(
    paper_exchange: PaperExchange, binance: ccxt.binance
) -> None:
    await binance.load_markets()
    paper_exchange.set_faults(error_rate=1.0, error_statuses=(502,))

    with pytest.raises(ccxt.ExchangeNotAvailable, match="502 Bad Gateway"):
        await binance.fetch_ticker("BTC/USDT")
    assert paper_exchange.stats.faults == Counter({"server_error": 1})
    assert paper_exchange.stats.statuses[502] == 1


async def test_a_5xx_with_binances_json_body_surfaces_as_what_ccxt_maps_its_code_to(
    paper_exchange: PaperExchange, binance: ccxt.binance
) -> None:
    await binance.load_markets()
    paper_exchange.set_faults(error_rate=1.0, error_body="json", error_statuses=(500,))

    # ccxt reads the body's code before the HTTP status: -1001 is OperationFailed, not a NetworkError.
    with pytest.raises(ccxt.OperationFailed, match='"code":-1001') as raised:
        await binance.fetch_ticker("BTC/USDT")
    assert not isinstance(raised.value, ccxt.NetworkError)


async def test_a_dropped_connection_surfaces_as_a_network_error_and_is_not_charged(
    paper_exchange: PaperExchange, binance: ccxt.binance
) -> None:
    await binance.load_markets()
    paper_exchange.set_faults(drop_rate=1.0)

    with pytest.raises(ccxt.NetworkError) as raised:
        await binance.fetch_order_book("BTC/USDT")
    assert isinstance(raised.value, ccxt.ExchangeNotAvailable)
    # aiohttp resends an idempotent request once on a fresh connection when the server drops it.
    assert paper_exchange.stats.faults == Counter({"drop": 2})
    assert paper_exchange.stats.snapshot(6000)["weight"][0]["used"] == 20  # exchangeInfo only


async def test_a_slow_answer_surfaces_as_request_timeout_without_holding_up_shutdown(clock: ManualClock) -> None:
    started = time.monotonic()
    async with PaperExchange(PaperConfig(port=0), clock=clock) as paper:
        binance = make_binance(paper.url, timeout=200)
        try:
            await binance.load_markets()
            paper.set_faults(slow_rate=1.0, slow_delay_ms=30_000)
            with pytest.raises(ccxt.RequestTimeout):
                await binance.fetch_ticker("BTC/USDT")
        finally:
            await binance.close()
    assert time.monotonic() - started < 3
    assert paper.stats.faults == Counter({"slow": 1})


async def test_an_injected_429_carries_retry_after_and_surfaces_as_ddos_protection(
    paper_exchange: PaperExchange, binance: ccxt.binance
) -> None:
    await binance.load_markets()
    paper_exchange.set_faults(rate_limit_rate=1.0, rate_limit_retry_after_s=7)

    with pytest.raises(ccxt.DDoSProtection, match='"code":-1003'):
        await binance.fetch_trades("BTC/USDT")
    assert binance.last_response_headers["Retry-After"] == "7"
    assert paper_exchange.stats.rate_limited == 0  # injected, not earned
    assert paper_exchange.stats.faults == Counter({"rate_limit": 1})


async def test_faults_scoped_to_a_path_leave_every_other_path_alone(
    paper_exchange: PaperExchange, binance: ccxt.binance
) -> None:
    await binance.load_markets()
    paper_exchange.set_faults(error_rate=1.0, paths=frozenset({"/api/v3/ticker/24hr"}))

    book = await binance.fetch_order_book("BTC/USDT")
    candles = await binance.fetch_ohlcv("BTC/USDT", "1h", limit=3)
    with pytest.raises(ccxt.ExchangeNotAvailable):
        await binance.fetch_ticker("BTC/USDT")
    paper_exchange.set_faults()
    ticker = await binance.fetch_ticker("BTC/USDT")

    assert book["bids"] and len(candles) == 3 and ticker["last"] > 0


async def test_the_admin_endpoints_set_faults_and_report_counters(
    paper_exchange: PaperExchange, binance: ccxt.binance
) -> None:
    admin = paper_exchange.url + "/__paper"
    await binance.load_markets()
    async with aiohttp.ClientSession() as session:
        faults = {"error_rate": 1.0, "error_statuses": [503], "paths": ["/api/v3/depth"]}
        async with session.post(admin + "/faults", json=faults) as response:
            assert response.status == 200 and (await response.json())["error_rate"] == 1.0
        with pytest.raises(ccxt.ExchangeNotAvailable):
            await binance.fetch_order_book("ETH/USDT")
        await binance.fetch_ticker("ETH/USDT")
        async with session.get(admin + "/stats") as response:
            stats = await response.json()
        async with session.post(admin + "/faults", json={"drop_rate": 2}) as response:
            assert response.status == 400
        async with session.post(admin + "/faults", json={}) as response:
            assert (await response.json())["error_rate"] == 0.0
        async with session.get(admin + "/faults") as response:
            assert (await response.json())["paths"] is None
        async with session.post(admin + "/stats/reset") as response:
            assert (await response.json())["requests_total"] == 0
    await binance.fetch_order_book("ETH/USDT")

    assert stats["faults"] == {"server_error": 1}
    assert stats["requests"] == {"/api/v3/exchangeInfo": 1, "/api/v3/depth": 1, "/api/v3/ticker/24hr": 1}
    assert stats["statuses"] == {"200": 2, "503": 1}
    assert stats["weight"][0]["used"] == 20 + 5 + 2 and stats["rate_limited"] == 0
    assert paper_exchange.stats.requests == Counter({"/api/v3/depth": 1})  # counting again after the reset


def test_random_faults_follow_their_rates_and_repeat_with_the_seed() -> None:
    config = FaultConfig(error_rate=0.1, rate_limit_rate=0.1, slow_rate=0.1, drop_rate=0.2)

    def draws(seed: int) -> list[FaultKind | None]:
        policy = RandomFaults(config, seed=seed)
        return [getattr(policy.decide("GET", "/api/v3/depth"), "kind", None) for _ in range(2000)]

    counts = Counter(draws(1))
    assert draws(1) == draws(1) != draws(2)
    assert 150 < counts[FaultKind.SERVER_ERROR] < 250 and 300 < counts[FaultKind.DROP] < 500
    assert 900 < counts[None] < 1100


def test_fault_rates_are_validated() -> None:
    with pytest.raises(ValueError, match="add up to"):
        FaultConfig(error_rate=0.6, drop_rate=0.6)
    with pytest.raises(ValueError, match="5xx"):
        FaultConfig(error_statuses=(404,))


async def test_latency_is_added_to_every_exchange_request(clock: ManualClock) -> None:
    async with running(clock, latency_ms=40, jitter_ms=20) as (_, binance):
        await binance.load_markets()
        started = time.perf_counter()
        await asyncio.gather(*(binance.fetch_time() for _ in range(5)))
        elapsed = time.perf_counter() - started
    assert 0.04 <= elapsed < 0.5
