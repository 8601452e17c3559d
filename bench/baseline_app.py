"""The design we replace: sync ccxt called through ``run_in_executor`` behind FastAPI.

Used only by the benchmark (never imported from src/). One shared sync binance client, the default
thread pool, the same ticker endpoint shape. ccxt's own throttle is off so that the comparison is
about the concurrency model, not about a sleep; markets are loaded once at start-up.

Run: AIOTRADE_BASELINE_PAPER_URL=http://127.0.0.1:8100 uvicorn bench.baseline_app:app
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from decimal import Decimal

import ccxt  # sync ccxt: the point of this baseline
from fastapi import FastAPI

from aiotrade.exchange.pool import rewrite_api_urls

PAPER_URL = os.environ.get("AIOTRADE_BASELINE_PAPER_URL", "http://127.0.0.1:8100")


def _client() -> ccxt.binance:
    client = ccxt.binance(
        {
            "enableRateLimit": False,
            "options": {"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False, "fetchMargins": False},
        }
    )
    client.urls["api"], _ = rewrite_api_urls(client.urls["api"], PAPER_URL)
    return client


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    client = _client()
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, client.load_markets)
    app.state.client = client
    yield


app = FastAPI(lifespan=lifespan)


@app.get("/api/v1/exchanges/paper/ticker")
async def ticker(symbol: str) -> dict[str, str | None]:
    client = app.state.client
    loop = asyncio.get_running_loop()
    raw = await loop.run_in_executor(None, client.fetch_ticker, symbol)
    return {k: (str(Decimal(str(raw[k]))) if raw.get(k) is not None else None) for k in ("last", "bid", "ask")} | {
        "symbol": raw["symbol"]
    }
