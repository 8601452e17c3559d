"""Fixtures for the paper exchange: a pinned clock, a running server, and a real ccxt binance pointed at it."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import ccxt.async_support as ccxt
import pytest

from aiotrade.paper.config import PaperConfig
from aiotrade.paper.server import PaperExchange
from aiotrade.paper.urls import ccxt_config

SEED = 7
NOW = int(datetime(2025, 6, 15, 12, 34, 56, 789_000, tzinfo=UTC).timestamp() * 1000)
MINUTE = 60_000
DAY = 86_400_000


class ManualClock:
    """The exchange's clock, moved only by the test."""

    def __init__(self, now: int = NOW) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now

    def advance(self, ms: int) -> None:
        self.now += ms


API_KEY, SECRET = "paper-api-key", "paper-secret"  # the default paper account


def make_binance(url: str, **extra: Any) -> ccxt.binance:
    # timeout_on_exit: ccxt sleeps 250 ms in close() by default, for TLS sockets we do not have here.
    return ccxt.binance(ccxt_config(url, enableRateLimit=False, timeout_on_exit=0, **extra))


def make_trader(url: str, clock: ManualClock | None = None, **extra: Any) -> ccxt.binance:
    """A ccxt binance signed with the default paper account's key; with `clock`, its request timestamps are
    that clock's (a client in sync with a test-driven exchange)."""
    client = make_binance(url, apiKey=API_KEY, secret=SECRET, **extra)
    if clock is not None:
        client.nonce = clock  # ccxt stamps signed requests with self.nonce()
    return client


@contextlib.asynccontextmanager
async def running(clock: ManualClock | None = None, **config: Any) -> AsyncIterator[tuple[PaperExchange, ccxt.binance]]:
    """A paper exchange on a free port and a ccxt client for it (signed with the default account's key and
    stamped by `clock` when one is given), both closed on exit."""
    async with PaperExchange(PaperConfig(port=0, **{"seed": SEED, **config}), clock=clock) as paper:
        client = make_trader(paper.url, clock)
        try:
            yield paper, client
        finally:
            await client.close()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def paper_exchange(clock: ManualClock) -> AsyncIterator[PaperExchange]:
    async with PaperExchange(PaperConfig(port=0, seed=SEED), clock=clock) as paper:
        yield paper


@pytest.fixture
async def binance(paper_exchange: PaperExchange) -> AsyncIterator[ccxt.binance]:
    client = make_binance(paper_exchange.url)
    try:
        yield client
    finally:
        await client.close()
