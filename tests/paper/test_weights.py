"""Binance's weight accounting, and the promise that a client within its ccxt costs is never refused."""

from __future__ import annotations

import itertools
import json

import aiohttp
import ccxt.async_support as ccxt
import pytest

from aiotrade.paper.weights import CCXT_COSTS, PRIVATE_CCXT_COSTS, WeightWindow, request_weight
from tests.paper.conftest import MINUTE, NOW, ManualClock, running

_describe_client = ccxt.binance()  # opens no session: used only for describe() and its cost function
PUBLIC_GET = _describe_client.describe()["api"]["public"]["get"]

# Requests with every parameter shape that changes a weight on Binance or a cost in ccxt.
REQUESTS: list[tuple[str, dict[str, object]]] = [
    ("ping", {}),
    ("time", {}),
    ("exchangeInfo", {}),
    ("exchangeInfo", {"symbol": "BTCUSDT"}),
    *(("depth", {"symbol": "BTCUSDT", "limit": n}) for n in (1, 5, 100, 101, 500, 501, 1000, 1001, 5000, 5001)),
    ("depth", {"symbol": "BTCUSDT"}),
    ("trades", {"symbol": "BTCUSDT"}),
    ("trades", {"symbol": "BTCUSDT", "limit": 1000}),
    ("aggTrades", {"symbol": "BTCUSDT", "limit": 1000}),
    ("klines", {"symbol": "BTCUSDT", "interval": "1m", "limit": 1000}),
    ("ticker/24hr", {"symbol": "BTCUSDT"}),
    ("ticker/24hr", {}),
    *(("ticker/24hr", {"symbols": json.dumps([f"S{i}" for i in range(n)])}) for n in (1, 20, 21, 100, 101)),
    ("ticker/price", {"symbol": "BTCUSDT"}),
    ("ticker/price", {}),
    ("ticker/price", {"symbols": '["BTCUSDT","ETHUSDT"]'}),
    ("ticker/bookTicker", {"symbol": "BTCUSDT"}),
    ("ticker/bookTicker", {}),
    ("avgPrice", {"symbol": "BTCUSDT"}),
]


def ccxt_cost(path: str, params: dict[str, object]) -> float:
    return _describe_client.calculate_rate_limiter_cost("public", "GET", path, params, PUBLIC_GET[path])


@pytest.mark.parametrize(("path", "params"), REQUESTS)
def test_weight_never_exceeds_five_times_the_ccxt_cost(path: str, params: dict[str, object]) -> None:
    query = {k: str(v) for k, v in params.items()}
    weight = request_weight("/api/v3/" + path, query)

    assert 1 <= weight <= ccxt_cost(path, params) * 5
    # The mirror of ccxt's cost table is exact, so the bound above is the one ccxt really applies.
    assert CCXT_COSTS["/api/v3/" + path](query) == ccxt_cost(path, params)


@pytest.mark.parametrize(("method", "path"), sorted(PRIVATE_CCXT_COSTS))
def test_the_signed_endpoints_mirror_ccxts_private_costs_and_stay_within_them(method: str, path: str) -> None:
    entry = _describe_client.describe()["api"]["private"][method.lower()][path.removeprefix("/api/v3/")]
    mirror = PRIVATE_CCXT_COSTS[(method, path)]

    assert (mirror.units, mirror.no_symbol) == (entry["cost"], entry.get("noSymbol"))
    for query in ({"symbol": "BTCUSDT"}, {}):
        assert 1 <= request_weight(path, query, method) <= mirror(query) * 5


def test_weights_are_binances_where_ccxt_allows_them() -> None:
    assert request_weight("/api/v3/exchangeInfo", {}) == 20
    assert request_weight("/api/v3/depth", {"limit": "500"}) == 25
    assert request_weight("/api/v3/depth", {"limit": "5000"}) == 250
    assert request_weight("/api/v3/depth", {"limit": "5001"}) == 5  # ccxt counts its base cost above 5000
    assert request_weight("/api/v3/ticker/24hr", {}) == 80
    assert request_weight("/api/v3/ticker/24hr", {"symbols": '["A","B"]'}) == 2
    assert request_weight("/api/v3/trades", {}) == 10  # Binance says 25, ccxt pays 2 (= 10)
    assert request_weight("/api/v3/aggTrades", {}) == 2  # Binance says 4, ccxt pays 0.4 (= 2)
    assert request_weight("/api/v3/avgPrice", {"symbol": "BTCUSDT"}) == 2
    assert request_weight("/api/v3/openOrderList", {}, "GET") == 6
    assert request_weight("/api/v3/orderList/oco", {}, "POST") == 1


def test_the_window_is_the_utc_minute_and_refusals_are_not_charged() -> None:
    window = WeightWindow(limit=10)
    minute = NOW - NOW % MINUTE

    assert window.try_charge(8, minute + 59_000)
    assert not window.try_charge(3, minute + 59_500)
    assert window.current(minute + 59_500) == 8
    assert window.retry_after_s(minute + 59_500) == 1
    assert window.try_charge(10, minute + MINUTE)  # a new minute starts from zero
    assert window.retry_after_s(minute + MINUTE + 15_200) == 45


async def test_every_answer_carries_the_used_weight_headers(paper_exchange, clock: ManualClock) -> None:
    expected = [("ping", 1), ("klines?symbol=BTCUSDT&interval=1h", 3), ("depth?symbol=BTCUSDT&limit=500", 28)]
    async with aiohttp.ClientSession() as session:
        for path, used in expected:
            async with session.get(f"{paper_exchange.url}/api/v3/{path}") as response:
                assert response.status == 200
                assert response.headers["X-MBX-USED-WEIGHT-1M"] == str(used)
                assert response.headers["X-MBX-USED-WEIGHT"] == str(used)
        async with session.get(f"{paper_exchange.url}/api/v3/depth?symbol=NOPE") as response:
            assert response.status == 400 and response.headers["X-MBX-USED-WEIGHT-1M"] == "33"
        async with session.get(f"{paper_exchange.url}/sapi/v1/system/status") as response:
            assert "X-MBX-USED-WEIGHT-1M" not in response.headers
            assert response.headers["X-SAPI-USED-IP-WEIGHT-1M"] == "1"

    stats = paper_exchange.stats.snapshot(6000)
    assert stats["weight"] == [{"window_start": clock.now - clock.now % MINUTE, "used": 33}]
    assert stats["sapi_weight"][0]["used"] == 1
    assert stats["requests"]["/api/v3/depth"] == 2


async def test_a_burst_over_the_budget_gets_429_with_retry_after_and_ccxt_raises(clock: ManualClock) -> None:
    clock.now = NOW - NOW % MINUTE + 20_000
    async with running(clock, weight_limit=50) as (paper, binance):
        await binance.load_markets()  # exchangeInfo: 20
        for _ in range(15):  # 15 tickers x 2: the rest of the budget
            await binance.fetch_ticker("BTC/USDT")
        with pytest.raises(ccxt.DDoSProtection) as raised:
            await binance.fetch_ticker("BTC/USDT")
        headers = binance.last_response_headers
        clock.advance(40_000)
        after_reset = await binance.fetch_ticker("BTC/USDT")

    assert "429" in str(raised.value) and '"code":-1003' in str(raised.value)
    assert "current limit is 50 request weight per 1 MINUTE" in str(raised.value)
    assert headers["Retry-After"] == "40" and headers["X-MBX-USED-WEIGHT-1M"] == "50"
    assert after_reset["last"] > 0
    assert paper.stats.rate_limited == 1
    assert [w["used"] for w in paper.stats.snapshot(50)["weight"]] == [50, 2]


async def test_a_client_spending_its_ccxt_costs_within_budget_is_never_refused(clock: ManualClock) -> None:
    budget_weight = 200  # = 40 ccxt cost units a minute
    calls = [
        ("fetch_ticker", ("BTC/USDT",), "ticker/24hr", {"symbol": "BTCUSDT"}),
        ("fetch_order_book", ("ETH/USDT", 500), "depth", {"symbol": "ETHUSDT", "limit": 500}),
        ("fetch_order_book", ("ETH/USDT", 1000), "depth", {"symbol": "ETHUSDT", "limit": 1000}),
        ("fetch_trades", ("SOL/USDT",), "aggTrades", {"symbol": "SOLUSDT"}),
        ("fetch_ohlcv", ("BTC/USDT", "1d"), "klines", {"symbol": "BTCUSDT", "interval": "1d", "limit": 500}),
        ("fetch_tickers", (), "ticker/24hr", {}),
        ("publicGetTrades", ({"symbol": "BTCUSDT"},), "trades", {"symbol": "BTCUSDT"}),
        ("fetch_time", (), "time", {}),
    ]
    async with running(clock, weight_limit=budget_weight) as (paper, binance):
        await binance.load_markets()  # exchangeInfo: 4 cost units
        spent = ccxt_cost("exchangeInfo", {})
        refused = 0
        for method, args, path, params in itertools.islice(itertools.cycle(calls), 60):
            cost = ccxt_cost(path, params)
            if spent + cost > budget_weight / 5:  # what a ccxt-cost limiter would do: wait for the next minute
                clock.advance(MINUTE)
                spent = 0.0
            spent += cost
            try:
                await getattr(binance, method)(*args)
            except ccxt.DDoSProtection:
                refused += 1

    assert refused == 0 and paper.stats.rate_limited == 0
    assert sum(paper.stats.requests.values()) == 61
    windows = paper.stats.snapshot(budget_weight)["weight"]
    assert len(windows) > 3 and max(w["used"] for w in windows) <= budget_weight
