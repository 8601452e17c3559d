"""Bulk candles for binance-class venues: the raw klines endpoint, parsed into numpy columns in one pass.

ccxt's `fetch_ohlcv` turns each kline row into a list through half a dozen Python calls per value, then
sorts and filters the rows in Python: ~5 ms of event loop per 1,000 candles, and ~12,000 short-lived
objects that feed the garbage collector. `fetch_klines` asks the same endpoint through ccxt's implicit API
(`publicGetKlines`: the same `request` → `fetch2` path, so the same `throttle()` — our limiter — with the
same cost, the same signing, URL rewriting and error mapping) and converts the decoded JSON column by column
(~0.5 ms per 1,000 candles). The candles are those `fetch_ohlcv` returns for the same request — same open
times, same exact text per value (`tests/exchange/test_klines.py` shows it against the paper exchange):

- open time: `int(float(row[0]))`, rows sorted by it (stable), and with `since` only rows at or after it;
- open, high, low, close, volume: the venue's text as sent (`None` where it sent nothing or an empty string);
- at most `limit` rows: the first ones with `since`, else the last ones (ccxt caps a spot page at 1,000 and
  asks for 500 when no limit is given).

Floats are made here only to hand to `quant/` (the maths); the exact text is there for the API's Decimal
candles (`text=True`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import ccxt.async_support as ccxt
import numpy as np
from numpy.typing import NDArray

#: ccxt exchange ids whose `fetch_ohlcv` reads spot candles from `publicGetKlines` with binance's row format.
BULK_KLINE_VENUES = frozenset({"binance", "binanceus"})
#: Rows per request: binance's spot maximum, and ccxt's cap and default for `fetch_ohlcv`.
MAX_PAGE_ROWS = 1000
DEFAULT_PAGE_ROWS = 500

_VALUE_COLUMNS = range(1, 6)  # open, high, low, close, volume (spot: base volume at index 5)


@dataclass(frozen=True, slots=True)
class Klines:
    """Candles of one symbol, oldest first, one per open time.

    `ohlcv` holds open, high, low, close, volume as float64 (NaN where the venue sent nothing); `text`, when
    asked for, the same values as the venue's exact strings (an object array; None where it sent nothing).
    """

    timestamps: NDArray[np.int64]  # (n,) open times in ms
    ohlcv: NDArray[np.float64]  # (n, 5)
    text: NDArray[np.object_] | None = None  # (n, 5)

    def __len__(self) -> int:
        return int(self.timestamps.shape[0])

    def closes(self) -> NDArray[np.float64]:
        return self.ohlcv[:, 3]

    def head(self, count: int) -> Klines:
        """The first `count` candles."""
        text = None if self.text is None else self.text[:count]
        return Klines(self.timestamps[:count], self.ohlcv[:count], text)


def supports_bulk_klines(client: ccxt.Exchange, symbol: str | None = None) -> bool:
    """Whether `fetch_klines` gives this client's `fetch_ohlcv` candles (for `symbol`, once markets are loaded).

    True for binance-class clients that have the implicit `publicGetKlines`, and for a spot market (ccxt's
    `fetch_ohlcv` reads futures and options candles from other endpoints).
    """
    if client.id not in BULK_KLINE_VENUES or not callable(getattr(client, "publicGetKlines", None)):
        return False
    if symbol is None:
        return True
    market = (client.markets or {}).get(symbol)
    if market is None:
        return False
    return not any(market.get(kind) is True for kind in ("option", "linear", "inverse"))


async def fetch_klines(
    client: ccxt.Exchange,
    symbol: str,
    timeframe: str,
    *,
    since: int | None = None,
    limit: int | None = None,
    until: int | None = None,
    text: bool = False,
) -> Klines:
    """One page of `symbol`'s candles — the request `client.fetch_ohlcv(symbol, timeframe, since, limit,
    {"until": until})` would send, and the candles it would return — as numpy columns.

    Raises what ccxt raises (BadSymbol, NetworkError, ...), `NotSupported` when `supports_bulk_klines` is false.
    """
    if client.markets is None:
        await client.load_markets()
    if not supports_bulk_klines(client, symbol):
        raise ccxt.NotSupported(f"{client.id} {symbol}: bulk klines are for binance-class spot markets only")
    rows = min(limit, MAX_PAGE_ROWS) if limit is not None else DEFAULT_PAGE_ROWS
    request: dict[str, Any] = {
        "interval": client.safe_string(client.timeframes, timeframe, timeframe),
        "limit": rows,
        "symbol": client.market(symbol)["id"],
    }
    if since is not None:
        request["startTime"] = since
    if until is not None:
        request["endTime"] = until
    response = await client.publicGetKlines(request)
    return parse_klines(response, since=since, limit=rows, text=text)


def parse_klines(response: Sequence[Sequence[Any]], *, since: int | None, limit: int, text: bool = False) -> Klines:
    """Binance kline rows ([open time, open, high, low, close, volume, ...]) as `Klines`, filtered as ccxt does."""
    if not isinstance(response, list | tuple):
        raise ccxt.BadResponse(f"klines: expected a list of rows, got {type(response).__name__}")
    if not response:
        return _empty(text)
    try:
        columns = list(zip(*response, strict=False))  # rows have 12 fields; a short row truncates every column
        if len(columns) < 6:
            raise ValueError(f"rows of {len(columns)} fields")
        opened = columns[0]
        ints = all(type(t) is int for t in opened)  # binance sends ints; ccxt's rule is int(float(x))
        stamps = np.array(opened if ints else [int(float(t)) for t in opened], dtype=np.int64)
        raw = [columns[j] for j in _VALUE_COLUMNS]
        values = np.array(raw, dtype=np.float64).T if not _has_missing(raw) else _floats_with_gaps(raw)
    except (TypeError, ValueError) as exc:
        raise ccxt.BadResponse(f"klines: unreadable rows ({exc})") from exc
    keep = np.argsort(stamps, kind="stable")
    if since is not None:
        keep = keep[(stamps[keep] >= since) & (stamps[keep] != 0)]
    keep = keep[:limit] if since is not None else keep[-limit:]  # ccxt: from the start only with a since
    exact = None
    if text:
        exact = np.empty((len(columns[0]), 5), dtype=object)
        for k, column in enumerate(raw):
            exact[:, k] = column if not _has_missing([column]) and _all_text(column) else [_text(v) for v in column]
        exact = exact[keep]
    return Klines(stamps[keep], values[keep], exact)


def merge_klines(pages: Sequence[Klines]) -> Klines:
    """Pages of one symbol joined, oldest first, one candle per open time (the last page's copy wins)."""
    if not pages:
        return _empty(False)
    if len(pages) == 1:
        return pages[0]
    stamps = np.concatenate([p.timestamps for p in pages])
    values = np.concatenate([p.ohlcv for p in pages])
    with_text = all(p.text is not None for p in pages)
    # Reversed, np.unique's first index of each time is the original's last copy; it comes back sorted by time.
    _, first_reversed = np.unique(stamps[::-1], return_index=True)
    keep = len(stamps) - 1 - first_reversed
    text = np.concatenate([p.text for p in pages if p.text is not None])[keep] if with_text else None
    return Klines(stamps[keep], values[keep], text)


def _text(value: object) -> str | None:
    """ccxt's `safe_string`: a non-empty string as is, an int or float as `str`, anything else None."""
    if type(value) is str:
        return value or None
    if type(value) is int or type(value) is float:
        return str(value)
    return None


def _all_text(column: Sequence[Any]) -> bool:
    return all(type(v) is str for v in column)


def _has_missing(columns: Sequence[Sequence[Any]]) -> bool:
    return any(None in column or "" in column for column in columns)


def _floats_with_gaps(columns: Sequence[Sequence[Any]]) -> NDArray[np.float64]:
    return np.array([[np.nan if (t := _text(v)) is None else float(t) for v in column] for column in columns]).T


def _empty(text: bool) -> Klines:
    exact = np.empty((0, 5), dtype=object) if text else None
    return Klines(np.empty(0, dtype=np.int64), np.empty((0, 5), dtype=np.float64), exact)
