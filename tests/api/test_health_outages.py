"""Outages through the real stack (httpx -> app -> pool -> ccxt -> paper exchange over HTTP): the venue killed and
brought back on the same port, the venue frozen, Redis killed — with no restart of the API.

- killed: a few fast 503s (with Retry-After), then the circuit opens: 503 at once, nothing sent; `/readyz` 503
  naming the venue while `/healthz` stays 200; no cached ticker outlives its TTL; back on its port, the
  half-open probe (made by `/readyz` itself) closes the circuit and everything answers again;
- frozen (accepts connections, never answers): each read is cut at the read deadline, then the circuit opens;
- Redis gone: `/readyz` stays 200 and says `degraded`; market data keeps coming, from in-process fallbacks.
"""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import httpx

from aiotrade.config import BreakerConfig, CacheConfig
from tests.support.servers import start_redis
from tests.support.stack import Stack, running_stack

TICKER = "/api/v1/exchanges/paper/ticker"
ORDERS = "/api/v1/accounts/paper/orders"


async def ticker(stack: Stack, symbol: str = "BTC/USDT") -> tuple[httpx.Response, float]:
    started = time.perf_counter()
    response = await stack.api.get(TICKER, params={"symbol": symbol})
    return response, time.perf_counter() - started


async def until_ready(stack: Stack, within_s: float) -> httpx.Response:
    give_up = time.monotonic() + within_s
    while True:
        ready = await stack.api.get("/readyz")
        if ready.status_code == 200 or time.monotonic() > give_up:
            return ready
        await asyncio.sleep(0.2)


async def test_killed_venue_fails_fast_with_retry_after_and_recovers_on_the_same_port(tmp_path: Path) -> None:
    cache = CacheConfig(ticker_ttl_s=0.25)
    async with running_stack(tmp_path, cache=cache) as stack:
        assert (await ticker(stack))[0].status_code == 200
        assert (await until_ready(stack, 10)).status_code == 200
        await stack.paper.stop()
        await asyncio.sleep(0.3)  # the cached ticker is past its TTL: it must not be served now

        answers = [await ticker(stack) for _ in range(8)]
        assert all(r.status_code == 503 and int(r.headers["Retry-After"]) >= 1 for r, _ in answers), [
            (r.status_code, r.text) for r, _ in answers
        ]
        opened = [r for r, _ in answers if r.json()["type"].endswith("exchange-circuit-open")]
        assert len(opened) >= 5  # at most 3 failures before it opens
        assert all(seconds < 1.0 for r, seconds in answers if r in opened)  # refused, not waited for
        assert stack.pool.breaker("paper").stats().rejected >= 5

        not_ready = await stack.api.get("/readyz")
        assert not_ready.status_code == 503 and "circuit open" in not_ready.json()["checks"]["venue:paper"]
        assert "Retry-After" in not_ready.headers
        assert (await stack.api.get("/healthz")).status_code == 200

        # A new order while the circuit is open: refused at once (the gate's reads go through the breaker: a
        # 503 to retry, not a risk refusal), nothing sent and nothing settled for the key, so the same key
        # places it once the venue is back.
        order, key = {"symbol": "BTC/USDT", "side": "buy", "type": "market", "amount": "0.001"}, "outage-1"
        started = time.perf_counter()
        refused = await stack.api.post(ORDERS, json=order, headers={"Idempotency-Key": key})
        assert refused.status_code == 503 and int(refused.headers["Retry-After"]) >= 1, refused.text
        assert refused.json()["type"].endswith("exchange-circuit-open")  # the venue's outage, not the order's fault
        assert time.perf_counter() - started < 1.0

        await stack.paper.start()  # the same port, as a restarted venue; the API is not restarted
        ready = await until_ready(stack, 10)
        assert ready.status_code == 200, ready.text
        assert (await ticker(stack))[0].status_code == 200
        placed = await stack.api.post(ORDERS, json=order, headers={"Idempotency-Key": key})
        assert placed.status_code == 201, placed.text
        assert placed.json()["status"] in ("open", "closed", "filled", "FILLED", "OPEN", "CLOSED")


async def test_frozen_venue_holds_a_read_for_its_deadline_then_the_circuit_opens(tmp_path: Path) -> None:
    breaker = BreakerConfig(read_deadline_s=0.5)
    async with running_stack(tmp_path, breaker=breaker, cache=CacheConfig(enabled=False)) as stack:
        assert (await ticker(stack))[0].status_code == 200
        stack.paper.freeze()  # ccxt alone would wait its whole timeout (3 s here, 10 s by default), per attempt
        try:
            answers = [await ticker(stack) for _ in range(5)]
        finally:
            stack.paper.unfreeze()
    statuses = [r.status_code for r, _ in answers]
    timed_out = statuses.count(504)  # background reads (the equity recorder) may count towards opening too
    assert statuses[0] == 504 and timed_out <= 3 and statuses[timed_out:] == [503] * (5 - timed_out), statuses
    assert all(seconds < 1.5 for _, seconds in answers[:timed_out])  # the read deadline, not ccxt's timeout
    refused = answers[timed_out:]
    assert all(r.json()["type"].endswith("exchange-circuit-open") and seconds < 0.5 for r, seconds in refused)
    assert all("Retry-After" in r.headers for r, _ in refused)


async def test_readiness_reports_redis_and_stays_ready_but_degraded_while_it_is_gone(tmp_path: Path) -> None:
    redis = start_redis()
    try:
        async with running_stack(tmp_path, redis_url=redis.url) as stack:
            ready = await until_ready(stack, 10)
            assert ready.json()["checks"]["redis"] == "ok" and ready.json()["status"] == "ready"
            redis.stop(signal.SIGKILL)
            degraded = await stack.api.get("/readyz")
            assert degraded.status_code == 200, degraded.text
            assert degraded.json()["status"] == "degraded"
            assert degraded.json()["checks"]["redis"].startswith("degraded")
            for symbol in ("BTC/USDT", "ETH/USDT", "SOL/USDT"):  # market data keeps coming
                assert (await ticker(stack, symbol))[0].status_code == 200
    finally:
        redis.stop(signal.SIGKILL)
