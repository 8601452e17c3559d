"""Pointing an unmodified `ccxt.async_support.binance` at the paper exchange."""

from __future__ import annotations

import functools
from typing import Any
from urllib.parse import urlsplit

from ccxt.async_support import binance as _AsyncBinance

CCXT_OPTIONS: dict[str, Any] = {
    # load_markets then asks only GET /api/v3/exchangeInfo (no futures, margin or currency endpoints).
    "fetchMarkets": {"types": ["spot"]},
    "fetchCurrencies": False,
    "fetchMargins": False,
}


def binance_urls(base_url: str) -> dict[str, str]:
    """ccxt binance's `urls['api']`, every entry moved to `base_url` (scheme and host; paths kept).

    e.g. "https://api.binance.com/api/v3" -> "http://127.0.0.1:8765/api/v3".
    """
    root = base_url.rstrip("/")
    return {name: root + urlsplit(url).path for name, url in _binance_api_urls().items()}


def ccxt_config(base_url: str, **extra: Any) -> dict[str, Any]:
    """Constructor config for `ccxt.async_support.binance` against the paper exchange at `base_url`."""
    options = {**CCXT_OPTIONS, **extra.pop("options", {})}
    return {"urls": {"api": binance_urls(base_url)}, "options": options, **extra}


@functools.cache
def _binance_api_urls() -> dict[str, str]:
    # describe() needs an instance; a fresh one opens no session, so there is nothing to close.
    return dict(_AsyncBinance().describe()["urls"]["api"])
