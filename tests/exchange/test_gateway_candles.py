"""The gateway's candles for a binance-class venue come from the raw klines, parsed in bulk (issue 10): the
same candles, to the letter, as ccxt's `fetch_ohlcv` pages, without ccxt's per-row parsing on the loop;
the page cache keeps them exactly through its bytes form (what Redis holds)."""

from __future__ import annotations

import ccxt.async_support as ccxt
import numpy as np
import pytest

from aiotrade.domain.candles import CandleSeries
from aiotrade.exchange import gateway as gateway_module
from tests.support.stack import Stack

HOUR_MS = 3_600_000


async def ccxt_candles(stack: Stack, symbol: str, start_ms: int, limit: int) -> CandleSeries:
    rows: list[list[object]] = []
    since = start_ms
    while len(rows) < limit:
        count = min(1000, limit - len(rows))
        page = await stack.pool.read("paper", lambda c, s=since, n=count: c.fetch_ohlcv(symbol, "1h", s, n))
        rows += page
        since = int(page[-1][0]) + HOUR_MS
    return CandleSeries.from_rows(rows[:limit])


async def test_bulk_candles_equal_ccxt_pages_to_the_letter_without_ccxt_row_parsing(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    start_ms = 1_704_067_200_000  # 2024-01-01, the paper market's first candle
    expected = await ccxt_candles(stack, "ETH/USDT", start_ms, 2_500)

    def no_row_parsing(*args: object, **kwargs: object) -> list:
        raise AssertionError("ccxt parsed the rows: the bulk path was not taken")

    monkeypatch.setattr(ccxt.binance, "parse_ohlcvs", no_row_parsing)  # the paper venue's class
    series = await stack.gateway.candles("paper", "ETH/USDT", "1h", start_ms=start_ms, limit=2_500)

    assert len(series) == 2_500
    assert np.array_equal(series.timestamps, expected.timestamps)
    assert series.values.tolist() == expected.values.tolist()  # the venue's exact text, value for value


def test_a_page_survives_the_cache_bytes_exactly() -> None:
    page = (np.array([1, 2], dtype=np.int64), np.array([["1.10", "2", "0.9", "1.0", None]] * 2, dtype=object))
    back = gateway_module._decode_page(gateway_module._encode_page(page))
    assert back[0].dtype == np.int64 and back[0].tolist() == [1, 2]
    assert back[1].tolist() == page[1].tolist()
    empty = gateway_module._decode_page(gateway_module._encode_page((np.empty(0, np.int64), np.empty((0, 5), object))))
    assert empty[0].shape == (0,) and empty[1].shape == (0, 5)


def test_pages_join_in_time_order_and_the_last_copy_wins() -> None:
    first = (np.array([3, 1], dtype=np.int64), np.array([["c"] * 5, ["a"] * 5], dtype=object))
    second = (np.array([3, 2], dtype=np.int64), np.array([["C"] * 5, ["b"] * 5], dtype=object))
    series = CandleSeries.from_pages([first, second])
    assert series.timestamps.tolist() == [1, 2, 3]
    assert [row[0] for row in series.values.tolist()] == ["a", "b", "C"]
