"""A deterministic synthetic spot market: the same seed gives the same trades, candles and books at the same times.

How it is built, top down:
- Each asset's USDT price has a daily close path: a seeded Gaussian random walk in log space, with shocks
  partly shared through a common market factor. Cross pairs (ETH/BTC) are ratios of USDT prices.
- Within a day, the minute path is a seeded Brownian bridge (log space) between the two daily closes, so
  days can be generated independently and lazily, in any order.
- Each minute gets OHLC in whole ticks plus a few integers that fix its trades: `a` lots traded at each of
  open/high/low/close, and buy/sell "pairs" of equal size mirrored around the mid tick. Volume, quote volume
  and taker-buy volumes therefore have closed forms, and the trades generated later (from a per-minute seed)
  add up to exactly those numbers: first trade = open, last = close, one at the high, one at the low.
- Candles of any interval aggregate minutes (complete days are cached for good); the current minute only
  counts trades with a timestamp <= now.

Prices are integers of ticks and quantities integers of lots; `symbols.fmt_e8` turns them into Binance strings.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Generic, NamedTuple, TypeVar

import numpy as np

from aiotrade.paper.config import ORIGIN_MS
from aiotrade.paper.symbols import ASSETS, E8, SYMBOLS, Asset, SymbolSpec, minute_sigma

MINUTE_MS = 60_000
DAY_MS = 86_400_000
MINUTES_PER_DAY = 1440
ID_STRIDE = 1_000_000
"""Trade ids are `day * ID_STRIDE + index of the trade within its day`: increasing, dense within a day."""
MAX_BOOK_DEPTH = 5000

# Shape constants of the model; changing any of them changes every seeded market.
_DAILY_BLOCK = 512  # daily shocks are drawn in blocks, so extending the history never changes its past
_HIGH_LOW_REACH = 0.6  # how far, in minute sigmas, highs and lows stray beyond the open/close (exp. mean)
_MAX_PAIRS = 98  # bound on mid-range trade pairs per minute: at most 4 + 2*99 trades a minute
_BOOK_LEVEL_GAP = 1.5e-5  # mean gap between book levels, as a fraction of the price
_DAY_BATCH = 8  # days generated together for daily candles: vectorised, yet small enough to stay in cache
_NOISE_BLOCK = 16  # minute-level noise is drawn for 16 days at once: one stream set-up per block
_KIND_DAILY, _KIND_DAILY_MARKET, _KIND_MINUTE, _KIND_SHAPE, _KIND_TRADES, _KIND_BOOK = range(1, 7)


class Trade(NamedTuple):
    id: int
    time: int
    price: int  # ticks
    qty: int  # lots
    buyer_maker: bool


class Candle(NamedTuple):
    open_time: int
    close_time: int
    open: int  # ticks
    high: int
    low: int
    close: int
    volume: int  # lots
    quote_volume: int  # ticks x lots
    count: int
    taker_buy_volume: int  # lots
    taker_buy_quote_volume: int  # ticks x lots


class Ticker(NamedTuple):
    """Rolling 24 h statistics over the trades with `open_time < time <= close_time`."""

    open_time: int
    close_time: int
    open: int
    high: int
    low: int
    last: int
    last_qty: int
    prev_close: int
    volume: int
    quote_volume: int
    count: int
    first_id: int
    last_id: int
    bid: int
    bid_qty: int
    ask: int
    ask_qty: int


class OrderBook(NamedTuple):
    last_update_id: int
    bids: list[tuple[int, int]]  # (ticks, lots), best first
    asks: list[tuple[int, int]]


@dataclass(frozen=True, slots=True)
class Interval:
    name: str
    minutes: int  # 0 for calendar months
    anchor_ms: int = 0  # candle open times are anchor + k * length (weeks open on Mondays)

    @property
    def ms(self) -> int:
        return self.minutes * MINUTE_MS


INTERVALS: dict[str, Interval] = {
    i.name: i
    for i in (
        Interval("1m", 1),
        Interval("3m", 3),
        Interval("5m", 5),
        Interval("15m", 15),
        Interval("30m", 30),
        Interval("1h", 60),
        Interval("2h", 120),
        Interval("4h", 240),
        Interval("6h", 360),
        Interval("8h", 480),
        Interval("12h", 720),
        Interval("1d", 1440),
        Interval("3d", 4320),
        Interval("1w", 10080, anchor_ms=4 * DAY_MS),  # 1970-01-05 was a Monday
        Interval("1M", 0),
    )
}


class SyntheticMarket:
    """Market data as a pure function of (seed, symbol, time); `now` is always passed in, never read."""

    def __init__(
        self,
        seed: int,
        *,
        origin_ms: int = ORIGIN_MS,
        symbols: tuple[SymbolSpec, ...] = SYMBOLS,
        assets: tuple[Asset, ...] = ASSETS,
        cached_days: int = 256,
    ) -> None:
        if origin_ms % DAY_MS:
            raise ValueError("origin_ms must be a UTC midnight")
        self.seed = seed
        self.origin_ms = origin_ms
        self.symbols: dict[str, SymbolSpec] = {spec.id: spec for spec in symbols}
        self._specs = symbols
        self._assets = assets
        self._asset_index = {asset.code: i for i, asset in enumerate(assets)}
        self._symbol_index = {spec.id: i for i, spec in enumerate(symbols)}
        self._daily: dict[int, np.ndarray] = {}  # asset -> log closes (relative to start) of days 0..n-1
        self._daily_market: list[np.ndarray] = []
        self._day_candles: dict[tuple[int, int], Candle] = {}  # complete days, kept for good: 100 bytes each
        self._noise_blocks: _Lru[tuple[int, int, int], np.ndarray] = _Lru(48, self._draw_noise)
        self._blocks: _Lru[tuple[int, int], _MinuteBlock] = _Lru(cached_days, self._compute_block)
        self._trades: _Lru[tuple[int, int], _Trades] = _Lru(4096, self._compute_trades)
        self._books: _Lru[tuple[int, int, int, bool], _Book] = _Lru(256, self._compute_book)

    # ---- public queries ------------------------------------------------------------------------------------

    def klines(
        self,
        symbol: str,
        interval: Interval,
        now: int,
        *,
        start: int | None = None,
        end: int | None = None,
        limit: int = 500,
    ) -> list[Candle]:
        """Candles by open time like Binance: with `start`, the first `limit` opening at or after it; otherwise
        the last `limit` opening at or before `end` (default now). Never a candle opening after now."""
        s = self._symbol_index[symbol]
        opens = _candle_opens(interval, self.origin_ms, now, start, end, limit)
        if not opens:
            return []
        if interval.minutes and interval.minutes < MINUTES_PER_DAY:
            return self._intraday_candles(s, interval, opens, now)
        first_day = max((opens[0] - self.origin_ms) // DAY_MS, 0)
        last_day = (_candle_close(interval, opens[-1]) - self.origin_ms) // DAY_MS
        self._cache_complete_days(s, first_day, min(last_day, self._minute_of(now) // MINUTES_PER_DAY - 1))
        return [self._multi_day_candle(s, interval, t, now) for t in opens]

    def ticker(self, symbol: str, now: int) -> Ticker:
        """24 h rolling statistics; bid/ask are the top of `order_book` at the same instant."""
        s = self._symbol_index[symbol]
        window_start = now - DAY_MS
        last_trade = self.last_trade(symbol, now)
        before = self.last_trade(symbol, window_start)
        book = self._book_at(s, last_trade)
        start_price = self._start_ticks(s)
        last = last_trade.price if last_trade else start_price
        total = self._window(s, window_start, now) or _Piece(last, last, last, last, 0, 0, 0, -1, -1, 0, 0)
        return Ticker(
            open_time=window_start,
            close_time=now,
            open=total.open,
            high=total.high,
            low=total.low,
            last=last,
            last_qty=last_trade.qty if last_trade else 0,
            prev_close=before.price if before else start_price,
            volume=total.volume,
            quote_volume=total.quote,
            count=total.count,
            first_id=total.first_id,
            last_id=total.last_id,
            bid=int(book.bid_prices[0]),
            bid_qty=int(book.bid_qtys[0]),
            ask=int(book.ask_prices[0]),
            ask_qty=int(book.ask_qtys[0]),
        )

    def traded_range(self, symbol: str, after: int, until: int) -> tuple[int, int] | None:
        """(low, high) in ticks of the trades with after < time <= until; None if nothing traded."""
        piece = self._window(self._symbol_index[symbol], after, until)
        return (piece.low, piece.high) if piece else None

    def traded_totals(self, symbol: str, after: int, until: int) -> tuple[int, int] | None:
        """(quote volume in ticks x lots, volume in lots) of the trades with after < time <= until; None if
        nothing traded. Their ratio is the volume-weighted price in ticks."""
        piece = self._window(self._symbol_index[symbol], after, until)
        return (piece.quote, piece.volume) if piece else None

    def last_trade(self, symbol: str, now: int) -> Trade | None:
        """The latest trade with time <= now (None before the market opens)."""
        trades = self.recent_trades(symbol, now, 1)
        return trades[0] if trades else None

    def recent_trades(self, symbol: str, now: int, limit: int) -> list[Trade]:
        """The `limit` latest trades with time <= now, oldest first."""
        return self._trades_backwards(self._symbol_index[symbol], now, limit)

    def trades_between(self, symbol: str, now: int, *, start: int | None, end: int | None, limit: int) -> list[Trade]:
        """Trades with start <= time <= min(end, now), oldest first: the first `limit` from `start`, or the
        last `limit` up to `end` when there is no start."""
        s = self._symbol_index[symbol]
        until = now if end is None else min(end, now)
        if start is None:
            return self._trades_backwards(s, until, limit)
        return self._trades_forwards(s, until, limit, from_time=start)

    def trades_from_id(self, symbol: str, now: int, from_id: int, limit: int) -> list[Trade]:
        """Trades with id >= from_id and time <= now, oldest first, at most `limit`."""
        s = self._symbol_index[symbol]
        day, offset = divmod(max(from_id, 0), ID_STRIDE)
        if day * MINUTES_PER_DAY > self._minute_of(now):
            return []
        first = self._blocks((s, day)).first
        minute = int(np.searchsorted(first, offset, side="right")) - 1
        return self._trades_forwards(s, now, limit, from_minute=day * MINUTES_PER_DAY + minute, from_id=from_id)

    def order_book(self, symbol: str, now: int, limit: int) -> OrderBook:
        """A deterministic book around the last trade: bid <= last <= ask, the traded side at the last price."""
        s = self._symbol_index[symbol]
        last = self.last_trade(symbol, now)
        book = self._book_at(s, last)
        depth = min(limit, MAX_BOOK_DEPTH)
        return OrderBook(
            last_update_id=book.update_id,
            bids=list(zip(book.bid_prices[:depth].tolist(), book.bid_qtys[:depth].tolist(), strict=True)),
            asks=list(zip(book.ask_prices[:depth].tolist(), book.ask_qtys[:depth].tolist(), strict=True)),
        )

    # ---- candles ----------------------------------------------------------------------------------------------

    def _intraday_candles(self, s: int, interval: Interval, opens: list[int], now: int) -> list[Candle]:
        width = interval.minutes
        by_day: dict[int, list[int]] = {}
        for t in opens:
            by_day.setdefault((t - self.origin_ms) // DAY_MS, []).append(t)
        candles: list[Candle] = []
        for day, day_opens in by_day.items():
            view = self._day_view(s, day, now)
            starts = np.arange(0, len(view.open), width)
            agg = view.aggregate(starts, width)
            day_ms = self.origin_ms + day * DAY_MS
            for t in day_opens:
                i = (t - day_ms) // (width * MINUTE_MS)
                candles.append(agg.candle(i, t, t + interval.ms - 1))
        return candles

    def _multi_day_candle(self, s: int, interval: Interval, open_ms: int, now: int) -> Candle:
        close_ms = _candle_close(interval, open_ms)
        first_day = max((open_ms - self.origin_ms) // DAY_MS, 0)
        last_day = min((close_ms - self.origin_ms) // DAY_MS, (now - self.origin_ms) // DAY_MS)
        days = [self._day_candle(s, d, now) for d in range(first_day, last_day + 1)]
        return Candle(
            open_time=open_ms,
            close_time=close_ms,
            open=days[0].open,
            high=max(d.high for d in days),
            low=min(d.low for d in days),
            close=days[-1].close,
            volume=sum(d.volume for d in days),
            quote_volume=sum(d.quote_volume for d in days),
            count=sum(d.count for d in days),
            taker_buy_volume=sum(d.taker_buy_volume for d in days),
            taker_buy_quote_volume=sum(d.taker_buy_quote_volume for d in days),
        )

    def _cache_complete_days(self, s: int, first_day: int, last_day: int) -> None:
        """Generate the missing day candles of first_day..last_day in vectorised batches."""
        missing = [d for d in range(first_day, last_day + 1) if (s, d) not in self._day_candles]
        # Whole aligned batches, so their noise comes in whole blocks; a day never depends on its batch.
        for batch in sorted({d // _DAY_BATCH for d in missing}):
            days = np.arange(batch * _DAY_BATCH, (batch + 1) * _DAY_BATCH)
            opens = [self.origin_ms + d * DAY_MS for d in days.tolist()]
            candles = self._generate(s, days).day_candles(opens)
            self._day_candles.update(zip(((s, d) for d in days.tolist()), candles, strict=True))

    def _day_candle(self, s: int, day: int, now: int) -> Candle:
        complete = (day + 1) * MINUTES_PER_DAY <= self._minute_of(now)
        if complete and (s, day) in self._day_candles:
            return self._day_candles[(s, day)]
        day_ms = self.origin_ms + day * DAY_MS
        candle = (
            self._day_view(s, day, now)
            .aggregate(np.zeros(1, np.int64), MINUTES_PER_DAY)
            .candle(0, day_ms, day_ms + DAY_MS - 1)
        )
        if complete:
            self._day_candles[(s, day)] = candle
        return candle

    def _day_view(self, s: int, day: int, now: int) -> _MinuteBlock:
        """The day's minutes up to now; the current minute only holds its trades so far."""
        block = self._blocks((s, day))
        gm_now = self._minute_of(now)
        if (day + 1) * MINUTES_PER_DAY <= gm_now:
            return block
        count = gm_now - day * MINUTES_PER_DAY + 1
        trades = self._trades((s, gm_now))
        return block.truncated(count, _Piece.of_trades(trades, trades.time <= now))

    def _window(self, s: int, after: int, until: int) -> _Piece | None:
        """Aggregate of the trades with after < time <= until: whole minutes from their blocks, the two
        edge minutes from their trades."""
        gm_first, gm_last = self._minute_of(after), self._minute_of(until)
        if gm_last < 0 or until <= after:
            return None
        if gm_first == gm_last:
            trades = self._trades((s, gm_last))
            return _Piece.of_trades(trades, (trades.time > after) & (trades.time <= until))
        pieces: list[_Piece | None] = []
        if gm_first >= 0:
            first = self._trades((s, gm_first))
            pieces.append(_Piece.of_trades(first, first.time > after))
        pieces.extend(self._full_minutes(s, max(gm_first + 1, 0), gm_last))
        last = self._trades((s, gm_last))
        pieces.append(_Piece.of_trades(last, last.time <= until))
        return _Piece.combine(pieces)

    def _full_minutes(self, s: int, gm_from: int, gm_to: int) -> list[_Piece]:
        """Aggregates of the complete minutes gm_from..gm_to-1, one piece per day touched."""
        pieces = []
        gm = gm_from
        while gm < gm_to:
            day, m = divmod(gm, MINUTES_PER_DAY)
            m_end = min(MINUTES_PER_DAY, gm_to - day * MINUTES_PER_DAY)
            pieces.append(self._blocks((s, day)).piece(m, m_end, day))
            gm = day * MINUTES_PER_DAY + m_end
        return pieces

    # ---- trades -----------------------------------------------------------------------------------------------

    def _trades_backwards(self, s: int, until: int, limit: int) -> list[Trade]:
        chunks: list[list[Trade]] = []
        found = 0
        gm = self._minute_of(until)
        while found < limit and gm >= 0:
            trades = self._trades((s, gm))
            chunk = trades.select(trades.time <= until)
            chunks.append(chunk)
            found += len(chunk)
            gm -= 1
        flat = [t for chunk in reversed(chunks) for t in chunk]
        return flat[-limit:] if limit else []

    def _trades_forwards(
        self,
        s: int,
        until: int,
        limit: int,
        *,
        from_time: int | None = None,
        from_minute: int | None = None,
        from_id: int = 0,
    ) -> list[Trade]:
        if from_minute is None:
            assert from_time is not None
            from_minute = self._minute_of(max(from_time, self.origin_ms))
        lower = from_time if from_time is not None else self.origin_ms
        out: list[Trade] = []
        gm, gm_last = from_minute, self._minute_of(until)
        while len(out) < limit and gm <= gm_last:
            trades = self._trades((s, gm))
            out.extend(trades.select((trades.time >= lower) & (trades.time <= until) & (trades.id >= from_id)))
            gm += 1
        return out[:limit]

    # ---- the order book ---------------------------------------------------------------------------------------

    def _book_at(self, s: int, last: Trade | None) -> _Book:
        if last is None:  # before the first trade: a book around the start price
            return self._books((s, -1, self._start_ticks(s), False))
        return self._books((s, last.id, last.price, last.buyer_maker))

    def _compute_book(self, key: tuple[int, int, int, bool]) -> _Book:
        s, last_id, last_price, buyer_maker = key
        spec = self._specs[s]
        rng = self._rng(_KIND_BOOK, s, last_id + 1)
        spread = int(rng.geometric(0.75))  # ticks; mostly one
        # The side the last trade took from keeps its level at the last price (a buyer lifted the ask...).
        ask0 = last_price if not buyer_maker else last_price + spread
        bid0 = max(ask0 - spread, 1)
        mean_gap = last_price * _BOOK_LEVEL_GAP
        n = MAX_BOOK_DEPTH
        gaps = 1 + np.floor(rng.standard_exponential((2, n - 1)) * mean_gap).astype(np.int64)
        asks = ask0 + np.concatenate(([0], np.cumsum(gaps[0])))
        bids = bid0 - np.concatenate(([0], np.cumsum(gaps[1])))
        bids = bids[bids > 0]
        typical_lots = self._lots_per_minute(spec, last_price) / (4 + 2 * spec.pairs_per_minute)
        depth_factor = 1.0 + np.arange(n) / 10.0  # the book thickens away from the touch
        sizes = typical_lots * rng.lognormal(0.0, 1.0, (2, n)) * depth_factor
        qtys = np.maximum(np.rint(sizes), 1).astype(np.int64)
        return _Book(
            update_id=max(last_id, 0) * 3 + 1,
            bid_prices=_frozen(bids),
            bid_qtys=_frozen(qtys[1, : len(bids)]),
            ask_prices=_frozen(asks),
            ask_qtys=_frozen(qtys[0]),
        )

    # ---- generation -------------------------------------------------------------------------------------------

    def _rng(self, kind: int, a: int, b: int) -> np.random.Generator:
        """An independent stream per (seed, kind, a, b) (PCG64 through SeedSequence, which mixes the key)."""
        return np.random.default_rng((self.seed << 96) | (kind << 88) | (a << 64) | b)

    def _daily_closes(self, asset: int, last_day: int) -> np.ndarray:
        """log(price / start price) at the end of each day 0..last_day (at least), day 0 the origin day."""
        closes = self._daily.get(asset, np.zeros(0))
        while len(closes) <= last_day:
            block = len(closes) // _DAILY_BLOCK
            while len(self._daily_market) <= block:
                n = len(self._daily_market)
                self._daily_market.append(self._rng(_KIND_DAILY_MARKET, 0, n).standard_normal(_DAILY_BLOCK))
            spec = self._assets[asset]
            own = self._rng(_KIND_DAILY, asset, block).standard_normal(_DAILY_BLOCK)
            rho = spec.market_loading
            shocks = rho * self._daily_market[block] + math.sqrt(1 - rho * rho) * own
            sigma = spec.annual_vol / math.sqrt(365.0)
            start = closes[-1] if len(closes) else 0.0
            closes = np.concatenate((closes, start + np.cumsum(shocks * sigma)))
            self._daily[asset] = closes
        return closes

    def _noise(self, kind: int, a: int, days: np.ndarray) -> np.ndarray:
        """Per-day random rows, drawn `_NOISE_BLOCK` days at a time from one stream per block."""
        blocks = days // _NOISE_BLOCK
        if len(days) % _NOISE_BLOCK == 0 and days[0] % _NOISE_BLOCK == 0 and np.all(np.diff(days) == 1):
            # Whole aligned blocks (the batched path): concatenate the draws as they are.
            return np.concatenate([self._draw_noise((kind, a, b)) for b in blocks[::_NOISE_BLOCK].tolist()])
        return np.stack([self._noise_blocks((kind, a, d // _NOISE_BLOCK))[d % _NOISE_BLOCK] for d in days.tolist()])

    def _draw_noise(self, key: tuple[int, int, int]) -> np.ndarray:
        kind, a, block = key
        rng = self._rng(kind, a, block)
        if kind == _KIND_SHAPE:  # uniforms, six per minute
            return _frozen(rng.random((_NOISE_BLOCK, 6, MINUTES_PER_DAY)))
        return _frozen(rng.standard_normal((_NOISE_BLOCK, MINUTES_PER_DAY)))

    def _log_paths(self, asset: int, days: np.ndarray) -> np.ndarray:
        """Per day, 1441 log prices (relative to start) at the minute boundaries: Brownian bridges between
        consecutive daily closes."""
        spec = self._assets[asset]
        if spec.annual_vol == 0.0:
            return np.zeros((len(days), MINUTES_PER_DAY + 1))
        closes = self._daily_closes(asset, int(days.max()))
        close = closes[days]
        open_ = np.where(days > 0, closes[np.maximum(days - 1, 0)], 0.0)
        # Assets co-move through their daily closes; within a day their shocks are independent.
        shocks = self._noise(_KIND_MINUTE, asset, days)
        walk = np.zeros((len(days), MINUTES_PER_DAY + 1))
        np.cumsum(shocks * minute_sigma(spec), axis=1, out=walk[:, 1:])
        frac = np.arange(MINUTES_PER_DAY + 1) / MINUTES_PER_DAY
        path = open_[:, None] + (close - open_)[:, None] * frac + walk - frac * walk[:, -1:]
        path[:, 0], path[:, -1] = open_, close  # exact ends: day d's last close is day d+1's first open
        return path

    def _compute_block(self, key: tuple[int, int]) -> _MinuteBlock:
        s, day = key
        return self._generate(s, np.array([day])).row(0)

    def _generate(self, s: int, days: np.ndarray) -> _MinuteBlock:
        """The minutes of `days` (one row per day). Element-wise maths only, so a day comes out the same
        whether it is generated alone or in a batch."""
        spec = self._specs[s]
        base, quote = self._asset_index[spec.base], self._asset_index[spec.quote]
        log_start = math.log(self._assets[base].start_usdt / self._assets[quote].start_usdt)
        log_price = log_start + self._log_paths(base, days) - self._log_paths(quote, days)
        ticks_f = np.exp(log_price) * (E8 / spec.tick_e8)
        ticks = np.maximum(np.rint(ticks_f), 1).astype(np.int64)
        o, c = ticks[:, :-1], ticks[:, 1:]
        noise = self._noise(_KIND_SHAPE, s, days)
        reach_high, reach_low, surprise = -np.log1p(-noise[:, :3]).transpose(1, 0, 2)  # Exp(1) each
        u_corner, u_buy, u_pairs = noise[:, 3], noise[:, 4], noise[:, 5]

        sigma = minute_sigma(self._assets[base])
        move = np.diff(log_price, axis=1) / sigma  # each minute's return, in sigmas
        # Highs and lows stray a little beyond open/close (a first-order exp: the reach is ~1e-3).
        high_f = np.maximum(ticks_f[:, :-1], ticks_f[:, 1:]) * (1 + _HIGH_LOW_REACH * sigma * reach_high)
        low_f = np.minimum(ticks_f[:, :-1], ticks_f[:, 1:]) * (1 - _HIGH_LOW_REACH * sigma * reach_low)
        h = np.maximum(np.maximum(o, c), np.rint(high_f).astype(np.int64))
        low = np.maximum(np.minimum(np.minimum(o, c), np.rint(low_f).astype(np.int64)), 1)

        # Volume follows volatility (busy minutes move more) times an Exp(1) surprise: mean about 1x.
        activity = (0.5 + 0.625 * np.abs(move)) * surprise
        target = self._lots_per_minute(spec, (ticks_f[:, :-1] + ticks_f[:, 1:]) / 2) * activity
        corner = np.maximum(np.floor(target * (0.1 + 0.2 * u_corner) / 4), 1).astype(np.int64)
        pair_lots = np.maximum(np.floor((target - 4 * corner) / 2), 0).astype(np.int64)
        buy_share = np.clip(0.5 + 0.3 * np.clip(move, -1, 1) + 0.3 * (u_buy - 0.5), 0.02, 0.98)
        buy_lots = np.rint(pair_lots * buy_share).astype(np.int64)
        sell_lots = pair_lots - buy_lots
        pairs = np.clip(np.rint(spec.pairs_per_minute * activity * (0.75 + 0.5 * u_pairs)), 0, _MAX_PAIRS)
        buy_pairs_f = np.rint(pairs * buy_share)
        # Every lot must land in some trade: a side with lots has at least one pair, and never more than lots.
        buy_pairs = np.where(buy_lots > 0, np.clip(buy_pairs_f, 1, buy_lots), 0).astype(np.int64)
        sell_pairs = np.where(sell_lots > 0, np.clip(pairs - buy_pairs_f, 1, sell_lots), 0).astype(np.int64)
        return _MinuteBlock.build(o, h, low, c, corner, buy_lots, sell_lots, buy_pairs, sell_pairs)

    def _compute_trades(self, key: tuple[int, int]) -> _Trades:
        """The trades of one complete minute, consistent with its block row (see the module docstring)."""
        s, gm = key
        day, m = divmod(gm, MINUTES_PER_DAY)
        b = self._blocks((s, day))
        o, h, low, c = int(b.open[m]), int(b.high[m]), int(b.low[m]), int(b.close[m])
        a, mid = int(b.corner[m]), (h + low) // 2
        n_buy, n_sell = int(b.buy_pairs[m]), int(b.sell_pairs[m])
        rng = self._rng(_KIND_TRADES, s, gm)
        pair_qty = np.concatenate((_split(rng, int(b.buy_lots[m]), n_buy), _split(rng, int(b.sell_lots[m]), n_sell)))
        pair_buy = np.concatenate((np.ones(n_buy, bool), np.zeros(n_sell, bool)))
        offsets = rng.integers(0, min(h - mid, mid - low) + 1, n_buy + n_sell)
        # Everything between the first (open) and last (close) trade, shuffled: the high, the low, the pairs.
        mid_price = np.concatenate(([h, low], mid + offsets, mid - offsets))
        mid_qty = np.concatenate(([a, a], pair_qty, pair_qty))
        mid_buy = np.concatenate(([True, False], pair_buy, pair_buy))
        order = rng.permutation(len(mid_price))
        count = len(mid_price) + 2
        times = np.sort(rng.integers(0, MINUTE_MS, count)) + self.origin_ms + gm * MINUTE_MS
        first_id = day * ID_STRIDE + int(b.first[m])
        return _Trades(
            id=_frozen(np.arange(first_id, first_id + count, dtype=np.int64)),
            time=_frozen(times.astype(np.int64)),
            price=_frozen(np.concatenate(([o], mid_price[order], [c])).astype(np.int64)),
            qty=_frozen(np.concatenate(([a], mid_qty[order], [a])).astype(np.int64)),
            buyer_maker=_frozen(~np.concatenate(([False], mid_buy[order], [c >= o]))),
        )

    # ---- small helpers ---------------------------------------------------------------------------------------

    def _minute_of(self, ms: int) -> int:
        return (ms - self.origin_ms) // MINUTE_MS

    def _start_ticks(self, s: int) -> int:
        spec = self._specs[s]
        price = self._assets[self._asset_index[spec.base]].start_usdt
        price /= self._assets[self._asset_index[spec.quote]].start_usdt
        return max(round(price * E8 / spec.tick_e8), 1)

    @staticmethod
    def _lots_per_minute(spec: SymbolSpec, price_ticks: np.ndarray | float) -> np.ndarray | float:
        quote_per_minute = spec.quote_volume_per_day / MINUTES_PER_DAY
        return quote_per_minute / (price_ticks * spec.tick) / spec.step


# ---- candle open times -----------------------------------------------------------------------------------------


def _candle_opens(
    interval: Interval, origin: int, now: int, start: int | None, end: int | None, limit: int
) -> list[int]:
    """Open times of the candles to return, oldest first (see `SyntheticMarket.klines`)."""
    if interval.minutes:
        length, anchor = interval.ms, interval.anchor_ms
        index = lambda t: (t - anchor) // length  # noqa: E731
        open_of = lambda k: anchor + k * length  # noqa: E731
    else:
        index, open_of = _month_index, _month_open
    lo, hi = index(origin), index(now)
    if end is not None:
        hi = min(hi, index(end))
    if start is not None:
        k = index(start)
        lo = max(lo, k if open_of(k) >= start else k + 1)
        hi = min(hi, lo + limit - 1)
    else:
        lo = max(lo, hi - limit + 1)
    return [open_of(k) for k in range(lo, hi + 1)]


def _candle_close(interval: Interval, open_ms: int) -> int:
    if interval.minutes:
        return open_ms + interval.ms - 1
    return _month_open(_month_index(open_ms) + 1) - 1


def _month_index(ms: int) -> int:
    t = datetime.fromtimestamp(ms / 1000, UTC)
    return t.year * 12 + t.month - 1


def _month_open(k: int) -> int:
    return int(datetime(k // 12, k % 12 + 1, 1, tzinfo=UTC).timestamp() * 1000)


# ---- internal structures -----------------------------------------------------------------------------------------


def _frozen(array: np.ndarray) -> np.ndarray:
    """Cached arrays are shared between requests: make accidental writes fail loudly."""
    array.setflags(write=False)
    return array


def _split(rng: np.random.Generator, lots: int, parts: int) -> np.ndarray:
    """`lots` split into `parts` positive integers of random sizes that add up exactly."""
    if parts == 0:
        return np.zeros(0, np.int64)
    return 1 + rng.multinomial(lots - parts, rng.dirichlet(np.full(parts, 0.8)))


class _Piece(NamedTuple):
    """Aggregate of a run of consecutive trades; combined in time order."""

    open: int
    high: int
    low: int
    close: int
    volume: int
    quote: int
    count: int
    first_id: int
    last_id: int
    taker_buy: int
    taker_buy_quote: int

    @classmethod
    def of_trades(cls, trades: _Trades, mask: np.ndarray) -> _Piece | None:
        if not mask.any():
            return None
        price, qty, ids = trades.price[mask], trades.qty[mask], trades.id[mask]
        buy = ~trades.buyer_maker[mask]
        quote = price * qty
        return cls(
            open=int(price[0]),
            high=int(price.max()),
            low=int(price.min()),
            close=int(price[-1]),
            volume=int(qty.sum()),
            quote=int(quote.sum()),
            count=len(price),
            first_id=int(ids[0]),
            last_id=int(ids[-1]),
            taker_buy=int(qty[buy].sum()),
            taker_buy_quote=int(quote[buy].sum()),
        )

    @classmethod
    def combine(cls, pieces: list[_Piece | None]) -> _Piece | None:
        present = [p for p in pieces if p is not None]
        if not present:
            return None
        return cls(
            open=present[0].open,
            high=max(p.high for p in present),
            low=min(p.low for p in present),
            close=present[-1].close,
            volume=sum(p.volume for p in present),
            quote=sum(p.quote for p in present),
            count=sum(p.count for p in present),
            first_id=present[0].first_id,
            last_id=present[-1].last_id,
            taker_buy=sum(p.taker_buy for p in present),
            taker_buy_quote=sum(p.taker_buy_quote for p in present),
        )


@dataclass(frozen=True, slots=True)
class _Trades:
    """One minute's trades as parallel arrays, in time order."""

    id: np.ndarray
    time: np.ndarray
    price: np.ndarray
    qty: np.ndarray
    buyer_maker: np.ndarray

    def select(self, mask: np.ndarray) -> list[Trade]:
        return [
            Trade(*row)
            for row in zip(
                self.id[mask].tolist(),
                self.time[mask].tolist(),
                self.price[mask].tolist(),
                self.qty[mask].tolist(),
                self.buyer_maker[mask].tolist(),
                strict=True,
            )
        ]


@dataclass(frozen=True, slots=True)
class _Book:
    update_id: int
    bid_prices: np.ndarray
    bid_qtys: np.ndarray
    ask_prices: np.ndarray
    ask_qtys: np.ndarray


@dataclass(frozen=True, slots=True)
class _MinuteBlock:
    """Per-minute integers of one day (or of its minutes so far); see the module docstring for their meaning."""

    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    quote: np.ndarray  # ticks x lots
    count: np.ndarray
    taker_buy: np.ndarray
    taker_buy_quote: np.ndarray
    first: np.ndarray  # index within the day of each minute's first trade
    corner: np.ndarray  # lots traded at each of open, high, low and close
    buy_lots: np.ndarray
    sell_lots: np.ndarray
    buy_pairs: np.ndarray
    sell_pairs: np.ndarray

    @classmethod
    def build(
        cls,
        o: np.ndarray,
        h: np.ndarray,
        low: np.ndarray,
        c: np.ndarray,
        corner: np.ndarray,
        buy_lots: np.ndarray,
        sell_lots: np.ndarray,
        buy_pairs: np.ndarray,
        sell_pairs: np.ndarray,
    ) -> _MinuteBlock:
        # Closed forms of the trades' sums: pairs mirror around `mid`, so their quote is 2*mid*lots; the high
        # trade and pair buys are taker buys, and the close trade is one when the minute closed up.
        mid = (h + low) // 2
        up = (c >= o).astype(np.int64)
        pair_lots = buy_lots + sell_lots
        count = 4 + 2 * (buy_pairs + sell_pairs)
        arrays = dict(
            open=o,
            high=h,
            low=low,
            close=c,
            volume=4 * corner + 2 * pair_lots,
            quote=corner * (o + h + low + c) + 2 * mid * pair_lots,
            count=count,
            taker_buy=corner * (1 + up) + 2 * buy_lots,
            taker_buy_quote=corner * h + corner * c * up + 2 * mid * buy_lots,
            first=np.cumsum(count, axis=-1) - count,
            corner=corner,
            buy_lots=buy_lots,
            sell_lots=sell_lots,
            buy_pairs=buy_pairs,
            sell_pairs=sell_pairs,
        )
        return cls(**{k: _frozen(np.ascontiguousarray(v, dtype=np.int64)) for k, v in arrays.items()})

    def row(self, i: int) -> _MinuteBlock:
        """One day of a multi-day block."""
        return _MinuteBlock(**{name: _frozen(getattr(self, name)[i].copy()) for name in self.__slots__})

    def day_candles(self, opens: list[int]) -> list[Candle]:
        """One candle per row (day) of a multi-day block, the rows opening at `opens`."""
        columns = (
            self.open[:, 0],
            self.high.max(axis=1),
            self.low.min(axis=1),
            self.close[:, -1],
            *(getattr(self, name).sum(axis=1) for name in ("volume", "quote", "count")),
            *(getattr(self, name).sum(axis=1) for name in ("taker_buy", "taker_buy_quote")),
        )
        rows = zip(*(column.tolist() for column in columns), strict=True)
        return [Candle(t, t + DAY_MS - 1, *row) for t, row in zip(opens, rows, strict=True)]

    def truncated(self, count: int, last: _Piece | None) -> _MinuteBlock:
        """The first `count` minutes, the last replaced by `last` (its trades so far; None: none yet)."""
        fields = {name: getattr(self, name)[:count].copy() for name in self.__slots__}
        i = count - 1
        if last is None:
            price = fields["open"][i]
            values = dict(high=price, low=price, close=price, volume=0, quote=0, count=0)
            values.update(taker_buy=0, taker_buy_quote=0)
        else:
            values = dict(high=last.high, low=last.low, close=last.close, volume=last.volume, quote=last.quote)
            values.update(count=last.count, taker_buy=last.taker_buy, taker_buy_quote=last.taker_buy_quote)
        for name, value in values.items():
            fields[name][i] = value
        return _MinuteBlock(**fields)

    def aggregate(self, starts: np.ndarray, width: int) -> _Aggregate:
        """Candles of `width` minutes opening at minute indices `starts` (the last may be cut short)."""
        ends = np.minimum(starts + width, len(self.open)) - 1
        return _Aggregate(
            open=self.open[starts],
            high=np.maximum.reduceat(self.high, starts),
            low=np.minimum.reduceat(self.low, starts),
            close=self.close[ends],
            volume=np.add.reduceat(self.volume, starts),
            quote=np.add.reduceat(self.quote, starts),
            count=np.add.reduceat(self.count, starts),
            taker_buy=np.add.reduceat(self.taker_buy, starts),
            taker_buy_quote=np.add.reduceat(self.taker_buy_quote, starts),
        )

    def piece(self, m_from: int, m_to: int, day: int) -> _Piece:
        """Aggregate of the complete minutes m_from..m_to-1, with the ids of their first and last trades."""
        sl = slice(m_from, m_to)
        last = m_to - 1
        return _Piece(
            open=int(self.open[m_from]),
            high=int(self.high[sl].max()),
            low=int(self.low[sl].min()),
            close=int(self.close[last]),
            volume=int(self.volume[sl].sum()),
            quote=int(self.quote[sl].sum()),
            count=int(self.count[sl].sum()),
            first_id=day * ID_STRIDE + int(self.first[m_from]),
            last_id=day * ID_STRIDE + int(self.first[last] + self.count[last]) - 1,
            taker_buy=int(self.taker_buy[sl].sum()),
            taker_buy_quote=int(self.taker_buy_quote[sl].sum()),
        )


@dataclass(frozen=True, slots=True)
class _Aggregate:
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    quote: np.ndarray
    count: np.ndarray
    taker_buy: np.ndarray
    taker_buy_quote: np.ndarray

    def candle(self, i: int, open_ms: int, close_ms: int) -> Candle:
        return Candle(
            open_ms,
            close_ms,
            int(self.open[i]),
            int(self.high[i]),
            int(self.low[i]),
            int(self.close[i]),
            int(self.volume[i]),
            int(self.quote[i]),
            int(self.count[i]),
            int(self.taker_buy[i]),
            int(self.taker_buy_quote[i]),
        )


K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class _Lru(Generic[K, V]):
    """A bounded memo for one compute function (the market is single-threaded: no locking)."""

    def __init__(self, size: int, compute: Callable[[K], V]) -> None:
        self._size, self._compute = size, compute
        self._items: OrderedDict[K, V] = OrderedDict()

    def __call__(self, key: K) -> V:
        try:
            self._items.move_to_end(key)
            return self._items[key]
        except KeyError:
            value = self._compute(key)
            self._items[key] = value
            if len(self._items) > self._size:
                self._items.popitem(last=False)
            return value
