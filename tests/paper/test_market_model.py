"""The synthetic market's maths, without HTTP: consistency, realism, determinism, speed."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from aiotrade.paper.config import ORIGIN_MS, PaperConfig, PaperSettings
from aiotrade.paper.market import INTERVALS, SyntheticMarket
from tests.paper.conftest import DAY, MINUTE, NOW


@pytest.fixture(scope="module")
def market() -> SyntheticMarket:
    return SyntheticMarket(7)


def test_trades_add_up_to_their_minute_candles_across_symbols_and_days(market: SyntheticMarket) -> None:
    rng = np.random.default_rng(0)
    for symbol in market.symbols:
        for minute in rng.integers(0, (NOW - ORIGIN_MS) // MINUTE - 1, 3).tolist():
            start = ORIGIN_MS + minute * MINUTE
            (candle,) = market.klines(symbol, INTERVALS["1m"], NOW, start=start, limit=1)
            trades = market.trades_between(symbol, NOW, start=start, end=start + MINUTE - 1, limit=1000)
            prices = [t.price for t in trades]
            assert candle.open_time == start and candle.count == len(trades) >= 4
            assert (candle.open, candle.high, candle.low, candle.close) == (
                prices[0],
                max(prices),
                min(prices),
                prices[-1],
            )
            assert candle.volume == sum(t.qty for t in trades)
            assert candle.quote_volume == sum(t.price * t.qty for t in trades)
            assert candle.taker_buy_volume == sum(t.qty for t in trades if not t.buyer_maker)
            assert candle.taker_buy_quote_volume == sum(t.price * t.qty for t in trades if not t.buyer_maker)


def test_trade_ids_page_forward_without_gaps_or_repeats(market: SyntheticMarket) -> None:
    first = market.trades_between("ETHUSDT", NOW, start=NOW - 3 * DAY, end=None, limit=1000)
    second = market.trades_from_id("ETHUSDT", NOW, first[-1].id + 1, 1000)
    again = market.trades_from_id("ETHUSDT", NOW, first[500].id, 500)

    ids = [t.id for t in first + second]
    assert ids == list(range(ids[0], ids[0] + 2000))
    assert again == first[500:]
    times = [t.time for t in first + second]
    assert times == sorted(times)


def test_cross_pairs_are_the_ratio_of_their_usdt_pairs(market: SyntheticMarket) -> None:
    for cross, base in (("ETHBTC", "ETHUSDT"), ("SOLBTC", "SOLUSDT")):
        days = market.klines(cross, INTERVALS["1d"], NOW, limit=200)
        bases = market.klines(base, INTERVALS["1d"], NOW, limit=200)
        btcs = market.klines("BTCUSDT", INTERVALS["1d"], NOW, limit=200)
        tick, base_tick = market.symbols[cross].tick, market.symbols[base].tick
        for c, b, btc in zip(days[:-1], bases[:-1], btcs[:-1], strict=True):
            implied = b.close * base_tick / (btc.close * 0.01)
            assert abs(c.close * tick - implied) <= tick + implied * 2e-4


def test_volatility_and_volume_are_of_realistic_size(market: SyntheticMarket) -> None:
    days = market.klines("BTCUSDT", INTERVALS["1d"], NOW, limit=500)
    closes = np.array([d.close for d in days[:-1]], dtype=float)
    annual = np.diff(np.log(closes)).std() * math.sqrt(365)
    minutes = market.klines("BTCUSDT", INTERVALS["1m"], NOW, limit=1000)
    minute_closes = np.array([m.close for m in minutes[:-1]], dtype=float)
    minute_annual = np.diff(np.log(minute_closes)).std() * math.sqrt(365 * 1440)
    btc_per_day = np.mean([d.volume for d in days[:-1]]) * 1e-5
    ranges = np.mean([(d.high - d.low) / d.open for d in days[:-1]])

    assert 0.35 < annual < 0.65 and 0.35 < minute_annual < 0.75
    assert 10_000 < btc_per_day < 100_000
    assert 0.015 < ranges < 0.08  # an average day's high-low range, as a fraction of the price


def test_a_day_generated_in_a_batch_equals_the_same_day_generated_alone() -> None:
    batched, alone = SyntheticMarket(11), SyntheticMarket(11)
    day = 300
    start = ORIGIN_MS + day * DAY
    daily = batched.klines("DOGEUSDT", INTERVALS["1d"], NOW, start=ORIGIN_MS + 280 * DAY, limit=40)
    hourly = alone.klines("DOGEUSDT", INTERVALS["1h"], NOW, start=start, limit=24)

    (that_day,) = [d for d in daily if d.open_time == start]
    assert that_day.open == hourly[0].open and that_day.close == hourly[-1].close
    assert that_day.high == max(h.high for h in hourly) and that_day.low == min(h.low for h in hourly)
    assert that_day.volume == sum(h.volume for h in hourly)
    assert that_day.quote_volume == sum(h.quote_volume for h in hourly)


def test_nothing_trades_before_the_origin_or_after_now(market: SyntheticMarket) -> None:
    assert market.klines("BTCUSDT", INTERVALS["1m"], ORIGIN_MS - 1) == []
    assert market.recent_trades("BTCUSDT", ORIGIN_MS - 1, 10) == []
    first = market.klines("BTCUSDT", INTERVALS["1d"], NOW, start=0, limit=2)
    assert first[0].open_time == ORIGIN_MS
    assert market.trades_between("BTCUSDT", NOW, start=NOW + 1, end=None, limit=10) == []
    weekly = market.klines("BTCUSDT", INTERVALS["1w"], NOW, start=0, limit=1)
    assert weekly[0].open_time == ORIGIN_MS  # 2024-01-01 was a Monday


def test_500_daily_candles_are_cheap_and_cached() -> None:
    market = SyntheticMarket(3)
    started = time.perf_counter()
    cold = market.klines("ADAUSDT", INTERVALS["1d"], NOW, limit=500)
    cold_s = time.perf_counter() - started
    started = time.perf_counter()
    warm = market.klines("ADAUSDT", INTERVALS["1d"], NOW, limit=500)
    warm_s = time.perf_counter() - started

    assert cold == warm and len(cold) == 500
    assert cold_s < 1.0 and warm_s < 0.05  # typically ~60 ms and ~2 ms; generous for slow CI machines


def test_settings_read_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIOTRADE_PAPER_SEED", "42")
    monkeypatch.setenv("AIOTRADE_PAPER_PORT", "0")
    monkeypatch.setenv("AIOTRADE_PAPER_WEIGHT_LIMIT", "1200")
    monkeypatch.setenv("AIOTRADE_PAPER_FAULTS__DROP_RATE", "0.05")
    monkeypatch.setenv("AIOTRADE_PAPER_FAULTS__PATHS", '["/api/v3/depth"]')

    config = PaperSettings().to_config()

    assert type(config) is PaperConfig
    assert (config.seed, config.port, config.weight_limit) == (42, 0, 1200)
    assert config.faults.drop_rate == 0.05 and config.faults.paths == frozenset({"/api/v3/depth"})
