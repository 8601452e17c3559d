"""Public market data of the paper exchange, read by an unmodified ccxt binance over loopback HTTP."""

from __future__ import annotations

import itertools
from decimal import ROUND_DOWN, Decimal

import ccxt.async_support as ccxt
import pytest

from aiotrade.paper.server import PaperExchange
from tests.paper.conftest import DAY, MINUTE, NOW, ManualClock, running

SYMBOLS = {
    "BTC/USDT",
    "ETH/USDT",
    "ETH/BTC",
    "SOL/USDT",
    "BNB/USDT",
    "XRP/USDT",
    "ADA/USDT",
    "DOGE/USDT",
    "LTC/USDT",
    "DOT/USDT",
    "LINK/USDT",
    "SOL/BTC",
}


def d(text: str) -> Decimal:
    return Decimal(text)


async def raw_klines(client: ccxt.binance, symbol: str, interval: str, **params: int) -> list[list]:
    return await client.publicGetKlines({"symbol": symbol, "interval": interval, **params})


async def test_load_markets_lists_the_dozen_symbols_with_binance_precision_and_limits(
    binance: ccxt.binance,
) -> None:
    markets = await binance.load_markets()

    assert set(markets) == SYMBOLS
    btc = markets["BTC/USDT"]
    assert (btc["spot"], btc["active"], btc["type"]) == (True, True, "spot")
    assert btc["precision"]["price"] == 0.01 and btc["precision"]["amount"] == 0.00001
    assert btc["limits"]["amount"] == {"min": 0.00001, "max": 9000.0}
    assert btc["limits"]["cost"] == {"min": 5.0, "max": 9000000.0}
    assert btc["limits"]["price"]["min"] == 0.01
    eth_btc = markets["ETH/BTC"]
    assert (eth_btc["base"], eth_btc["quote"]) == ("ETH", "BTC")
    assert eth_btc["precision"]["price"] == 0.00001 and eth_btc["limits"]["cost"]["min"] == 0.0001
    assert markets["DOGE/USDT"]["precision"]["amount"] == 1.0
    assert markets["SOL/BTC"]["precision"]["price"] == 0.0000001
    assert binance.amount_to_precision("BTC/USDT", 0.123456789) == "0.12345"
    assert binance.price_to_precision("XRP/USDT", 0.612345) == "0.6123"


async def test_ticker_last_is_the_latest_trade_and_its_bid_ask_are_the_top_of_the_book(
    binance: ccxt.binance,
) -> None:
    for symbol in ("BTC/USDT", "ETH/BTC", "DOGE/USDT"):
        ticker = await binance.fetch_ticker(symbol)
        trades = await binance.fetch_trades(symbol, limit=5)
        book = await binance.fetch_order_book(symbol, limit=5)

        assert ticker["last"] == trades[-1]["price"]
        assert trades[-1]["timestamp"] <= NOW
        assert (ticker["bid"], ticker["ask"]) == (book["bids"][0][0], book["asks"][0][0])
        assert (ticker["bidVolume"], ticker["askVolume"]) == (book["bids"][0][1], book["asks"][0][1])
        assert ticker["bid"] <= ticker["last"] <= ticker["ask"] and ticker["bid"] < ticker["ask"]
        assert ticker["low"] <= ticker["last"] <= ticker["high"]
        assert ticker["timestamp"] == NOW


async def test_fetch_tickers_answers_one_many_or_all_symbols_alike(binance: ccxt.binance) -> None:
    some = await binance.fetch_tickers(["BTC/USDT", "ETH/BTC"])
    everything = await binance.fetch_tickers()
    single = await binance.fetch_ticker("ETH/BTC")

    assert set(some) == {"BTC/USDT", "ETH/BTC"}
    assert set(everything) == SYMBOLS
    assert some["ETH/BTC"]["info"] == single["info"] == everything["ETH/BTC"]["info"]


async def test_order_book_levels_are_sorted_on_the_tick_grid_and_sized_in_lots(binance: ccxt.binance) -> None:
    response = await binance.publicGetDepth({"symbol": "ETHUSDT", "limit": 1000})
    bids = [(d(p), d(q)) for p, q in response["bids"]]
    asks = [(d(p), d(q)) for p, q in response["asks"]]

    assert len(bids) == len(asks) == 1000
    assert [p for p, _ in bids] == sorted({p for p, _ in bids}, reverse=True)
    assert [p for p, _ in asks] == sorted({p for p, _ in asks})
    assert bids[0][0] < asks[0][0]
    for price, qty in bids + asks:
        assert price % d("0.01") == 0 and qty % d("0.0001") == 0 and qty > 0
    default = await binance.fetch_order_book("ETH/USDT")
    assert len(default["bids"]) == 100  # Binance's default depth


async def test_minute_candle_is_exactly_the_aggregate_of_its_trades(binance: ccxt.binance) -> None:
    minute = NOW - NOW % MINUTE - 7 * MINUTE
    for symbol, market_id in (("BTC/USDT", "BTCUSDT"), ("SOL/BTC", "SOLBTC")):
        (kline,) = await raw_klines(binance, market_id, "1m", startTime=minute, limit=1)
        trades = await binance.publicGetAggTrades(
            {"symbol": market_id, "startTime": minute, "endTime": minute + MINUTE - 1, "limit": 1000}
        )
        prices, qtys = [d(t["p"]) for t in trades], [d(t["q"]) for t in trades]

        assert kline[0] == minute and kline[6] == minute + MINUTE - 1
        assert [d(x) for x in kline[1:5]] == [prices[0], max(prices), min(prices), prices[-1]]
        assert d(kline[5]) == sum(qtys)
        quote = sum(p * q for p, q in zip(prices, qtys, strict=True))
        assert d(kline[7]) == quote.quantize(d("1e-8"), ROUND_DOWN)  # Binance prints 8 decimals
        assert kline[8] == len(trades)
        assert d(kline[9]) == sum(d(t["q"]) for t in trades if not t["m"])  # taker buys
        ids = [t["a"] for t in trades]
        assert ids == list(range(ids[0], ids[0] + len(ids)))
        unified = await binance.fetch_ohlcv(symbol, "1m", since=minute, limit=1)
        assert unified[0][:5] == [minute, *(float(x) for x in kline[1:5])]


async def test_daily_and_hourly_candles_are_exact_aggregates_of_their_minutes(binance: ccxt.binance) -> None:
    day = NOW - NOW % DAY - 3 * DAY
    minutes = await raw_klines(binance, "ETHBTC", "1m", startTime=day, limit=1000)
    minutes += await raw_klines(binance, "ETHBTC", "1m", startTime=day + 1000 * MINUTE, limit=1000)
    minutes = [m for m in minutes if m[0] < day + DAY]
    (daily,) = await raw_klines(binance, "ETHBTC", "1d", startTime=day, limit=1)
    hours = await raw_klines(binance, "ETHBTC", "4h", startTime=day, endTime=day + DAY - 1)

    def aggregate(rows: list[list]) -> list:
        return [
            d(rows[0][1]),
            max(d(r[2]) for r in rows),
            min(d(r[3]) for r in rows),
            d(rows[-1][4]),
            sum(d(r[5]) for r in rows),
            sum(r[8] for r in rows),
        ]

    def values(row: list) -> list:
        return [*(d(x) for x in row[1:6]), row[8]]

    def quote_matches(row: list, rows: list[list]) -> bool:
        # Each printed quote volume is truncated to 8 decimals, so the parts may lose < 1e-8 each.
        gap = d(row[7]) - sum(d(r[7]) for r in rows)
        return 0 <= gap < len(rows) * d("1e-8")

    assert len(minutes) == 1440 and daily[0] == day
    assert values(daily) == aggregate(minutes) and quote_matches(daily, minutes)
    assert len(hours) == 6
    for i, hour in enumerate(hours):
        part = minutes[i * 240 : (i + 1) * 240]
        assert values(hour) == aggregate(part) and quote_matches(hour, part)


async def test_24h_ticker_agrees_with_the_last_1440_minute_candles(binance: ccxt.binance, clock: ManualClock) -> None:
    clock.now = NOW - NOW % MINUTE + MINUTE - 1  # the end of a minute: the window is 1440 whole minutes
    ticker = (await binance.fetch_ticker("SOL/USDT"))["info"]
    minutes = await raw_klines(binance, "SOLUSDT", "1m", endTime=clock.now, limit=1000)
    minutes = await raw_klines(binance, "SOLUSDT", "1m", endTime=minutes[0][0] - 1, limit=440) + minutes

    assert len(minutes) == 1440 and minutes[-1][0] == clock.now - MINUTE + 1
    assert d(ticker["openPrice"]) == d(minutes[0][1])
    assert d(ticker["highPrice"]) == max(d(m[2]) for m in minutes)
    assert d(ticker["lowPrice"]) == min(d(m[3]) for m in minutes)
    assert d(ticker["lastPrice"]) == d(minutes[-1][4])
    assert d(ticker["volume"]) == sum(d(m[5]) for m in minutes)
    assert ticker["count"] == sum(m[8] for m in minutes)
    assert d(ticker["priceChange"]) == d(ticker["lastPrice"]) - d(ticker["openPrice"])


async def test_the_current_candle_only_counts_trades_up_to_now(binance: ccxt.binance, clock: ManualClock) -> None:
    minute = NOW - NOW % MINUTE
    clock.now = minute + 30_000
    (partial,) = await raw_klines(binance, "BTCUSDT", "1m", startTime=minute)
    so_far = await binance.publicGetAggTrades({"symbol": "BTCUSDT", "startTime": minute})
    last = (await binance.fetch_ticker("BTC/USDT"))["info"]["lastPrice"]
    clock.advance(MINUTE)
    (complete,) = await raw_klines(binance, "BTCUSDT", "1m", startTime=minute, limit=1)

    assert all(t["T"] <= minute + 30_000 for t in so_far)
    assert partial[8] == len(so_far) < complete[8]
    assert d(partial[5]) == sum(d(t["q"]) for t in so_far) < d(complete[5])
    assert d(partial[4]) == d(so_far[-1]["p"]) == d(last)
    assert partial[1] == complete[1]  # the open is the minute's first trade either way


async def test_daily_ohlcv_pages_back_six_months_and_stays_continuous(binance: ccxt.binance) -> None:
    since = NOW - NOW % DAY - 183 * DAY
    candles: list[list] = []
    cursor = since
    while True:  # page the way callers do: 50 at a time, from one past the last open time
        page = await binance.fetch_ohlcv("BTC/USDT", "1d", since=cursor, limit=50)
        candles += page
        if len(page) < 50:
            break
        cursor = page[-1][0] + 1

    assert len(candles) == 184
    assert [c[0] for c in candles] == [since + i * DAY for i in range(184)]
    for previous, current in itertools.pairwise(candles):
        assert current[1] == previous[4]  # each day opens at the previous close
    for _, o, h, low, c, v in candles:
        assert low <= min(o, c) <= max(o, c) <= h and v > 0
    closes = [c[4] for c in candles]
    assert len(set(closes)) == len(closes)  # the price moves from day to day
    assert min(closes) > 10_000 and max(closes) < 200_000


async def test_candles_honour_binance_limits_and_time_bounds(binance: ccxt.binance) -> None:
    assert len(await raw_klines(binance, "BTCUSDT", "1h")) == 500
    assert len(await raw_klines(binance, "BTCUSDT", "1h", limit=5000)) == 1000
    future = await raw_klines(binance, "BTCUSDT", "1m", startTime=NOW + MINUTE)
    assert future == []
    start = NOW - NOW % 3_600_000 - 5 * 3_600_000
    inside = await raw_klines(binance, "BTCUSDT", "1h", startTime=start + 1, endTime=start + 3 * 3_600_000)
    assert [k[0] for k in inside] == [start + 3_600_000, start + 2 * 3_600_000, start + 3 * 3_600_000]
    weeks = await raw_klines(binance, "BTCUSDT", "1w", limit=3)
    months = await raw_klines(binance, "BTCUSDT", "1M", limit=2)
    assert [(k[0] // DAY + 3) % 7 for k in weeks] == [0, 0, 0]  # weeks open on Mondays
    assert [k[0] for k in months] == [1746057600000, 1748736000000]  # 2025-05-01, 2025-06-01 UTC


async def test_the_same_seed_gives_the_same_market_and_another_seed_another(clock: ManualClock) -> None:
    async def sample(seed: int) -> tuple:
        async with running(clock, seed=seed) as (_, client):
            ticker = await client.fetch_ticker("ETH/USDT")
            candles = await client.fetch_ohlcv("ETH/USDT", "1h", limit=24)
            book = await client.fetch_order_book("ETH/USDT", limit=20)
            return ticker["info"], candles, book["bids"], book["asks"]

    first, again, other = await sample(7), await sample(7), await sample(8)

    assert first == again
    assert first[0]["lastPrice"] != other[0]["lastPrice"] and first[1] != other[1]


async def test_prices_move_with_time_while_the_past_stays_put(binance: ccxt.binance, clock: ManualClock) -> None:
    past = await binance.fetch_ohlcv("LINK/USDT", "5m", since=NOW - 6 * 3_600_000, limit=12)
    lasts = []
    for _ in range(4):
        lasts.append((await binance.fetch_ticker("BTC/USDT"))["last"])
        clock.advance(15 * MINUTE)
    later_past = await binance.fetch_ohlcv("LINK/USDT", "5m", since=NOW - 6 * 3_600_000, limit=12)

    assert len(set(lasts)) == 4
    assert later_past == past


async def test_server_time_and_system_status(binance: ccxt.binance, clock: ManualClock) -> None:
    assert await binance.fetch_time() == clock.now
    status = await binance.fetch_status()
    assert status["status"] == "ok" and status["info"] == {"status": 0, "msg": "normal"}


@pytest.mark.parametrize(
    ("call", "error", "code"),
    [
        (lambda c: c.publicGetTicker24hr({"symbol": "NOPEUSDT"}), ccxt.BadSymbol, -1121),
        (lambda c: c.publicGetDepth({"symbol": "NOPEUSDT"}), ccxt.BadSymbol, -1121),
        (lambda c: c.publicGetTicker24hr({"symbols": '["BTCUSDT","NOPE"]'}), ccxt.BadSymbol, -1121),
        (lambda c: c.fetch_ohlcv("BTC/USDT", "7m"), ccxt.BadRequest, -1120),
        (lambda c: c.publicGetKlines({"symbol": "BTCUSDT"}), ccxt.BadRequest, -1102),
        (lambda c: c.publicGetKlines({"symbol": "BTCUSDT", "interval": "1m", "limit": "x"}), ccxt.BadRequest, -1100),
        (lambda c: c.publicGetKlines({"symbol": "btcusdt", "interval": "1m"}), ccxt.BadRequest, -1100),
        (lambda c: c.publicGetDepth({"symbol": "BTCUSDT", "limit": 0}), ccxt.BadRequest, -1130),
        (lambda c: c.publicGetDepth({"symbol": "BTCUSDT", "extra": 1}), ccxt.BadRequest, -1104),
        (lambda c: c.publicGetTicker24hr({"symbol": "BTCUSDT", "symbols": '["BTCUSDT"]'}), ccxt.BadRequest, -1128),
        (lambda c: c.publicGetTicker24hr({"symbols": "BTCUSDT"}), ccxt.BadRequest, -1100),
    ],
)
async def test_bad_requests_answer_binance_codes_that_ccxt_maps(
    paper_exchange: PaperExchange, binance: ccxt.binance, call, error: type[Exception], code: int
) -> None:
    await binance.load_markets()
    with pytest.raises(error) as raised:
        await call(binance)
    assert f'"code":{code},' in str(raised.value)
    assert paper_exchange.stats.statuses[400] == 1
