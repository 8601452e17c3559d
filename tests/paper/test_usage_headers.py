"""Binance's usage headers and rate-limit answers: used weight on every answer, unfilled-order counts on order
answers, Retry-After on every 429 and on the 418 of an IP ban, and Binance's JSON error for unknown paths."""

from __future__ import annotations

import aiohttp
import ccxt.async_support as ccxt
import pytest

from tests.paper.conftest import MINUTE, NOW, ManualClock, running

WINDOW_START = NOW - NOW % 10_000  # a 10 s window boundary


async def test_every_answer_carries_the_used_weight_of_the_configured_window_under_both_names(
    clock: ManualClock,
) -> None:
    clock.now = WINDOW_START + 2_000
    async with running(clock, weight_limit=30, weight_window_ms=10_000) as (paper, _):
        base = paper.url + "/api/v3"
        async with aiohttp.ClientSession() as session:
            answers = []
            for method, path in [
                ("GET", "/ping"),  # 200
                ("GET", "/depth?symbol=NOPE"),  # 400
                ("GET", "/nowhere"),  # 404
                ("POST", "/ping"),  # 405
                ("GET", "/exchangeInfo"),  # 200, weight 20
                ("GET", "/exchangeInfo"),  # 429: over the 30 of this window
            ]:
                async with session.request(method, base + path) as response:
                    answers.append((response.status, dict(response.headers)))
            async with session.get(base + "/exchangeInfo") as response:
                rate_limits = (await response.json())["rateLimits"] if response.status == 200 else None

    assert [status for status, _ in answers] == [200, 400, 404, 405, 200, 429]
    for _, headers in answers:
        assert headers["X-MBX-USED-WEIGHT-10S"] == headers["X-MBX-USED-WEIGHT-1M"] == headers["X-MBX-USED-WEIGHT"]
    assert [int(headers["X-MBX-USED-WEIGHT-1M"]) for _, headers in answers] == [1, 6, 7, 8, 28, 28]
    assert answers[-1][1]["Retry-After"] == "8"  # the 10 s window started 2 s ago
    assert rate_limits is None  # still refused: the window has not rolled


async def test_a_minute_window_sends_only_the_1m_header_and_exchange_info_states_the_window(
    clock: ManualClock,
) -> None:
    async with running(clock, weight_window_ms=10_000) as (_, short), running(clock) as (_, minute):
        short_limits = (await short.publicGetExchangeInfo())["rateLimits"][0]
        await minute.fetch_time()
        minute_headers = minute.last_response_headers

    assert (short_limits["interval"], short_limits["intervalNum"]) == ("SECOND", 10)
    assert not any(name.startswith("X-MBX-USED-WEIGHT-") and name.endswith("S") for name in minute_headers)
    assert minute_headers["X-MBX-USED-WEIGHT-1M"] == "1"


async def test_unknown_paths_and_methods_answer_binances_json_error_never_plain_text(clock: ManualClock) -> None:
    async with running(clock) as (paper, binance), aiohttp.ClientSession() as session:
        async with session.get(paper.url + "/api/v3/nowhere") as missing:
            assert (missing.status, missing.content_type) == (404, "application/json")
            assert await missing.json() == {"code": -1020, "msg": "This operation is not supported."}
        async with session.delete(paper.url + "/api/v3/time") as wrong_method:
            assert (wrong_method.status, (await wrong_method.json())["code"]) == (405, -1020)
        async with session.get(paper.url + "/__paper/nowhere") as admin_missing:
            assert (admin_missing.status, (await admin_missing.json())["code"]) == (404, -1020)
        # ccxt reads the code like any Binance refusal: a bad request, not an outage
        with pytest.raises(ccxt.BadRequest, match='"code":-1020'):
            await binance.publicGetUiKlines({"symbol": "BTCUSDT", "interval": "1m"})


async def test_order_answers_carry_the_unfilled_order_count_of_each_window(clock: ManualClock) -> None:
    async with running(clock) as (_, binance):
        await binance.load_markets()
        counts = []
        await binance.create_order("BTC/USDT", "limit", "buy", 0.001, 20_000)  # rests: counts
        counts.append(binance.last_response_headers)
        await binance.create_order("BTC/USDT", "market", "buy", 0.001)  # fills: its count is given back
        counts.append(binance.last_response_headers)
        await binance.privatePostOrderListOco(
            {
                "symbol": "BTCUSDT",
                "side": "SELL",
                "quantity": "0.01",
                "aboveType": "LIMIT_MAKER",
                "abovePrice": "90000",
                "belowType": "STOP_LOSS",
                "belowStopPrice": "20000",
            }
        )
        counts.append(binance.last_response_headers)
        await binance.fetch_open_orders("BTC/USDT")
        query_headers = binance.last_response_headers

    assert [(h["X-MBX-ORDER-COUNT-10S"], h["X-MBX-ORDER-COUNT-1D"]) for h in counts] == [
        ("1", "1"),
        ("1", "1"),
        ("3", "3"),  # an OCO counts two orders
    ]
    assert "X-MBX-ORDER-COUNT-10S" not in query_headers


async def test_the_order_rate_limit_answers_429_with_retry_after_until_its_window_ends(clock: ManualClock) -> None:
    clock.now = WINDOW_START + 3_500
    async with running(clock, orders_per_10s=2) as (paper, binance):
        await binance.load_markets()
        for price in (20_000, 20_001):
            await binance.create_order("BTC/USDT", "limit", "buy", 0.001, price)
        with pytest.raises(ccxt.DDoSProtection, match='"code":-1015'):  # ccxt maps any 429 to DDoSProtection
            await binance.create_order("BTC/USDT", "limit", "buy", 0.001, 20_002)
        refused = binance.last_response_headers
        clock.advance(6_500)
        await binance.create_order("BTC/USDT", "limit", "buy", 0.001, 20_003)

    assert refused["Retry-After"] == "7"  # 6.5 s to the next 10 s window, rounded up
    assert refused["X-MBX-ORDER-COUNT-10S"] == "2"
    assert len(paper.engine.ledger()) == 3


async def test_repeated_weight_429s_earn_a_418_ban_with_retry_after_until_it_ends(clock: ManualClock) -> None:
    clock.now = NOW - NOW % MINUTE + 1_000
    async with running(clock, weight_limit=24, ban_after_429s=2, ban_ms=120_000) as (paper, binance):
        await binance.load_markets()  # 20
        await binance.fetch_ticker("BTC/USDT")  # 22
        await binance.fetch_ticker("BTC/USDT")  # 24: the budget is spent
        for _ in range(2):
            with pytest.raises(ccxt.DDoSProtection, match="429"):
                await binance.fetch_ticker("BTC/USDT")
        with pytest.raises(ccxt.DDoSProtection, match="418") as banned:
            await binance.fetch_ticker("BTC/USDT")
        ban_headers = binance.last_response_headers
        clock.advance(60_000)  # a new weight window, but still banned
        with pytest.raises(ccxt.DDoSProtection, match="418"):
            await binance.fetch_time()
        clock.advance(60_000)
        assert (await binance.fetch_ticker("BTC/USDT"))["last"] > 0

    assert "IP banned until" in str(banned.value) and '"code":-1003' in str(banned.value)
    assert ban_headers["Retry-After"] == "120"
    assert (paper.stats.rate_limited, paper.stats.banned) == (2, 2)
    assert paper.stats.statuses[418] == 2
