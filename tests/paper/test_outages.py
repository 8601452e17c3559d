"""Outages on purpose: a frozen venue that accepts connections but never answers, and a venue killed and brought
back on the same port."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import ccxt.async_support as ccxt
import pytest

from aiotrade.paper.config import PaperConfig
from aiotrade.paper.server import PaperExchange
from tests.paper.conftest import SEED, ManualClock, make_trader


async def test_a_frozen_exchange_holds_requests_unanswered_and_unexecuted_until_it_thaws(clock: ManualClock) -> None:
    async with PaperExchange(PaperConfig(port=0, seed=SEED), clock=clock) as paper, aiohttp.ClientSession() as admin:
        binance = make_trader(paper.url, clock, timeout=300)
        try:
            await binance.load_markets()
            async with admin.post(paper.url + "/__paper/freeze", json={"frozen": True}) as frozen:
                assert await frozen.json() == {"frozen": True}
            with pytest.raises(ccxt.RequestTimeout):  # connected, then silence: not a refused connection
                await binance.fetch_ticker("BTC/USDT")
            with pytest.raises(ccxt.RequestTimeout):
                await binance.create_order("BTC/USDT", "market", "buy", 0.001)
            async with admin.get(paper.url + "/__paper/freeze") as state:
                assert await state.json() == {"frozen": True}  # the controls keep answering

            paper.unfreeze()
            assert (await binance.fetch_ticker("BTC/USDT"))["last"] > 0
            await asyncio.sleep(0.05)  # let the held requests see the thaw
        finally:
            await binance.close()
    assert paper.engine.ledger() == []  # the order sent while frozen was never executed
    assert paper.stats.faults["frozen"] == 2


async def test_stopping_a_frozen_exchange_does_not_wait_for_its_held_requests(clock: ManualClock) -> None:
    paper = PaperExchange(PaperConfig(port=0), clock=clock, shutdown_timeout=5)
    await paper.start()
    binance = make_trader(paper.url, clock, timeout=10_000)
    try:
        await binance.load_markets()
        paper.freeze()
        held = asyncio.create_task(binance.fetch_ticker("BTC/USDT"))
        await asyncio.sleep(0.1)
        started = time.monotonic()
        await paper.stop()
        assert time.monotonic() - started < 2
        with pytest.raises(ccxt.NetworkError):
            await held
    finally:
        await binance.close()
        await paper.stop()


async def test_a_new_exchange_on_the_same_port_serves_a_client_of_the_old_one(clock: ManualClock) -> None:
    first = PaperExchange(PaperConfig(port=0, seed=SEED), clock=clock)
    await first.start()
    port = first.port
    binance = make_trader(first.url, clock, timeout=2_000)
    try:
        await binance.load_markets()
        await binance.create_order("BTC/USDT", "limit", "buy", 0.001, 20_000)
        await first.stop()
        with pytest.raises(ccxt.ExchangeNotAvailable):  # nobody listens: the connection is refused
            await binance.fetch_ticker("BTC/USDT")

        async with PaperExchange(PaperConfig(port=port, seed=SEED), clock=clock) as second:
            assert second.port == port
            assert (await binance.fetch_ticker("BTC/USDT"))["last"] > 0
            assert await binance.fetch_open_orders("BTC/USDT") == []  # a new venue starts afresh
            await binance.create_order("BTC/USDT", "limit", "buy", 0.001, 20_000)
            assert len(second.engine.ledger()) == 1
    finally:
        await binance.close()
        await first.stop()


async def test_restarting_the_same_exchange_keeps_its_port_and_its_books(clock: ManualClock) -> None:
    paper = PaperExchange(PaperConfig(port=0, seed=SEED), clock=clock)
    await paper.start()
    port = paper.port
    binance = make_trader(paper.url, clock)
    try:
        await binance.load_markets()
        placed = await binance.create_order("BTC/USDT", "limit", "buy", 0.001, 20_000)
        await paper.stop()
        with pytest.raises(RuntimeError, match="not running"):
            _ = paper.url
        await paper.start()
        assert paper.port == port
        [resting] = await binance.fetch_open_orders("BTC/USDT")
        assert resting["id"] == placed["id"]
    finally:
        await binance.close()
        await paper.stop()
