"""Bulk klines give exactly the candles ccxt's `fetch_ohlcv` gives, page for page, against the paper exchange.

The client is built the way `exchange/pool.py` builds one: ccxt's binance class, our default options,
`rewrite_api_urls` onto the paper exchange, `number = str` (exact text in unified structures). It records
every `throttle(cost)` call and request URL, so the tests also show the bulk path asks the same thing
through the same rate-limit hook.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import ccxt.async_support as ccxt
import numpy as np
import pytest

from aiotrade.config import DEFAULT_CCXT_OPTIONS
from aiotrade.exchange.klines import Klines, fetch_klines, merge_klines, parse_klines, supports_bulk_klines
from aiotrade.exchange.pool import rewrite_api_urls
from aiotrade.paper.config import ORIGIN_MS, PaperConfig
from aiotrade.paper.server import PaperExchange

NOW = int(datetime(2025, 6, 15, 12, 34, 56, 789_000, tzinfo=UTC).timestamp() * 1000)
MINUTE, HOUR, DAY = 60_000, 3_600_000, 86_400_000


class RecordingBinance(ccxt.binance):  # type: ignore[misc]
    """binance that records what its throttle is asked to pay and which URLs it requests."""

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        self.costs: list[float] = []
        self.urls_requested: list[str] = []

    async def throttle(self, cost: float | None = None) -> None:  # the hook ExchangePool's limiter lives in
        self.costs.append(cost)

    def set_last_request(self, request: dict[str, Any]) -> None:
        super().set_last_request(request)
        self.urls_requested.append(request["url"])


@pytest.fixture
async def paper() -> AsyncIterator[PaperExchange]:
    async with PaperExchange(PaperConfig(port=0, seed=7), clock=lambda: NOW) as exchange:
        yield exchange


@pytest.fixture
async def client(paper: PaperExchange) -> AsyncIterator[RecordingBinance]:
    binance = RecordingBinance(
        {"enableRateLimit": True, "timeout": 5_000, "options": {**DEFAULT_CCXT_OPTIONS["binance"]}}
    )
    binance.urls["api"], _ = rewrite_api_urls(binance.urls["api"], paper.url)
    binance.number = str
    binance.timeout_on_exit = 0
    try:
        await binance.load_markets()
        binance.costs.clear()
        binance.urls_requested.clear()
        yield binance
    finally:
        await binance.close()


PAGES = [
    # (timeframe, since, limit, until): what the gateway asks (a window with until), ccxt's defaults, edges
    pytest.param("1m", NOW - 1000 * MINUTE, 1000, NOW - 1, id="1m-full-window-with-until"),
    pytest.param("1h", None, None, None, id="1h-latest-default-limit"),
    pytest.param("1d", ORIGIN_MS - 30 * DAY, 1000, None, id="1d-from-before-the-history"),
    pytest.param("15m", NOW - 700 * 15 * MINUTE + 12_345, 700, None, id="15m-unaligned-since"),
    pytest.param("1m", NOW - 10 * MINUTE, 1000, None, id="1m-page-ending-at-the-open-candle"),
    pytest.param("4h", None, 1000, NOW - 90 * DAY, id="4h-latest-before-until"),
]


@pytest.mark.parametrize(("timeframe", "since", "limit", "until"), PAGES)
async def test_bulk_klines_are_the_candles_fetch_ohlcv_returns_with_the_same_exact_text(
    client: RecordingBinance, timeframe: str, since: int | None, limit: int | None, until: int | None
) -> None:
    params = {} if until is None else {"until": until}
    expected = await client.fetch_ohlcv("BTC/USDT", timeframe, since, limit, params)
    ccxt_costs, ccxt_urls = list(client.costs), list(client.urls_requested)
    client.costs.clear()
    client.urls_requested.clear()

    bulk = await fetch_klines(client, "BTC/USDT", timeframe, since=since, limit=limit, until=until, text=True)

    assert expected, "the page must hold candles for the comparison to mean anything"
    assert bulk.timestamps.dtype == np.int64 and bulk.ohlcv.dtype == np.float64
    assert bulk.timestamps.tolist() == [row[0] for row in expected]
    assert bulk.text is not None
    assert bulk.text.tolist() == [row[1:6] for row in expected]
    assert bulk.ohlcv.tolist() == [[float(v) for v in row[1:6]] for row in expected]
    # The same request, through the same throttle hook at the same cost.
    assert client.urls_requested == ccxt_urls
    assert client.costs == ccxt_costs and len(ccxt_costs) == 1


async def test_the_float_only_page_has_the_same_candles_and_no_text(client: RecordingBinance) -> None:
    since = NOW - 500 * HOUR
    expected = await client.fetch_ohlcv("ETH/USDT", "1h", since, 500)
    bulk = await fetch_klines(client, "ETH/USDT", "1h", since=since, limit=500)
    assert bulk.text is None
    assert bulk.timestamps.tolist() == [row[0] for row in expected]
    assert bulk.closes().tolist() == [float(row[4]) for row in expected]


async def test_a_symbol_the_venue_refuses_raises_the_error_fetch_ohlcv_raises(client: RecordingBinance) -> None:
    markets = copy.deepcopy(client.markets)
    markets["BTC/USDT"]["id"] = "NOPEUSDT"  # the venue answers -1121 Invalid symbol
    client.markets = markets
    with pytest.raises(ccxt.BaseError) as by_ccxt:
        await client.fetch_ohlcv("BTC/USDT", "1h", None, 10)
    with pytest.raises(ccxt.BaseError) as by_bulk:
        await fetch_klines(client, "BTC/USDT", "1h", limit=10)
    assert type(by_bulk.value) is type(by_ccxt.value)
    assert isinstance(by_bulk.value, ccxt.BadSymbol)


def test_parse_klines_sorts_filters_and_limits_rows_as_ccxt_parse_ohlcvs_does() -> None:
    binance = ccxt.binance()  # parsing only: no session is opened
    binance.number = str
    market = {"id": "BTCUSDT", "symbol": "BTC/USDT", "inverse": None}
    t = 1_700_000_000_000
    rows: list[list[Any]] = [
        [t + 3 * MINUTE, "4.0", "4.5", "3.5", "4.25", "", t + 4 * MINUTE - 1],  # no volume
        [t + 1 * MINUTE, "2.00000000", "2.5", "1.5", "2.1", "10.5", 0],
        [t, "1.0", "1.5", "0.5", "1.1", "7", 0],  # before since: filtered out
        [t + 2 * MINUTE, 3, 3.5, "2.5", "3.1", None, 0],  # numbers, not strings, and a missing volume
        [t + 4 * MINUTE, "5.0", "5.5", "4.5", "5.1", "1e-8", 0],
    ]
    for since, limit in ((t + 1, 3), (None, 2), (None, 1000), (t + 2 * MINUTE, 1000)):
        expected = binance.parse_ohlcvs(copy.deepcopy(rows), market, "1m", since, limit)
        parsed = parse_klines(rows, since=since, limit=limit, text=True)
        assert parsed.timestamps.tolist() == [row[0] for row in expected], (since, limit)
        assert parsed.text is not None and parsed.text.tolist() == [row[1:6] for row in expected], (since, limit)
        floats = [[np.nan if v is None else float(v) for v in row[1:6]] for row in expected]
        np.testing.assert_array_equal(parsed.ohlcv, np.array(floats).reshape(-1, 5))


def test_merged_pages_keep_one_candle_per_open_time_the_last_page_winning() -> None:
    def page(stamps: list[int], close: float) -> Klines:
        values = np.full((len(stamps), 5), close)
        text = np.full((len(stamps), 5), str(close), dtype=object)
        return Klines(np.array(stamps, dtype=np.int64), values, text)

    merged = merge_klines([page([3, 4, 5], 2.0), page([1, 2, 3], 1.0)])
    assert merged.timestamps.tolist() == [1, 2, 3, 4, 5]
    assert merged.closes().tolist() == [1.0, 1.0, 1.0, 2.0, 2.0]  # time 3: the second page's copy
    assert merged.text is not None and merged.text[:, 3].tolist() == ["1.0", "1.0", "1.0", "2.0", "2.0"]
    assert merged.head(2).timestamps.tolist() == [1, 2]


async def test_only_binance_class_spot_markets_take_the_bulk_path(client: RecordingBinance) -> None:
    assert supports_bulk_klines(client)
    assert supports_bulk_klines(client, "BTC/USDT")
    assert not supports_bulk_klines(client, "NOPE/USDT")
    futures = copy.deepcopy(client.markets["BTC/USDT"]) | {"linear": True, "spot": False, "swap": True}
    client.markets = {**client.markets, "BTC/USDT:USDT": futures}
    assert not supports_bulk_klines(client, "BTC/USDT:USDT")
    assert not supports_bulk_klines(ccxt.kraken())  # another venue: no session is opened
    assert not supports_bulk_klines(ccxt.binanceusdm())  # futures: fetch_ohlcv reads fapi klines
    with pytest.raises(ccxt.NotSupported):
        await fetch_klines(client, "BTC/USDT:USDT", "1h", limit=10)
