"""The shared limiter on a real redis-server: one budget for several processes (each with its own Redis
connection, as separate processes have), pauses that reach everyone, orders ahead of reads, a safe share
while Redis is gone and a return when it is back."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import AsyncIterator
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from aiotrade.exchange.limiter_redis import SharedVenueLimiter
from tests.support.servers import free_port, start_redis


def client(url: str) -> Redis:
    return Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0))


@contextlib.asynccontextmanager
async def limiters(url: str, count: int, budget: float, **options: Any) -> AsyncIterator[list[SharedVenueLimiter]]:
    """``count`` limiters of one venue, each on its own connection (one per process)."""
    clients = [client(url) for _ in range(count)]
    started = [SharedVenueLimiter(c, budget, scope="venue", fallback_share=count, **options) for c in clients]
    try:
        for limiter in started:
            await limiter.start()
        yield started
    finally:
        for limiter in started:
            await limiter.close()
        for c in clients:
            await c.aclose()


async def saturate(limiter: SharedVenueLimiter, cost: float, until: float, stamps: list[tuple[float, float]]) -> None:
    while time.monotonic() < until:
        await limiter.acquire(cost)
        stamps.append((time.monotonic(), cost))


def busiest(stamps: list[tuple[float, float]], span: float) -> float:
    return max(sum(c for t, c in stamps if start <= t < start + span) for start, _ in stamps)


async def test_three_processes_together_keep_one_budget_and_use_it(redis: Redis, redis_url: str) -> None:
    budget, window_s, allowance = 60.0, 1.0, 0.1
    async with limiters(redis_url, 3, budget, window_s=window_s, latency_allowance_s=allowance, burst=0.05) as three:
        stamps: list[tuple[float, float]] = []
        until = time.monotonic() + 3.2
        await asyncio.gather(*(saturate(limiter, 0.4, until, stamps) for limiter in three for _ in range(8)))
        assert {limiter.mode for limiter in three} == {"shared"}
        assert {limiter.stats().live_processes for limiter in three} == {3}
    # Admission times seen by the processes (after Redis's answer): any window holds at most headroom x budget.
    assert busiest(stamps, window_s) <= 0.99 * budget + 1e-6
    steady = [s for s in stamps if s[0] >= stamps[0][0] + 1.0]
    rate = sum(c for _, c in steady) / (steady[-1][0] - steady[0][0])
    assert rate >= 0.95 * (0.99 - 0.05) * budget / (window_s + allowance)  # each got a part, together all of it
    assert len({id(limiter) for limiter in three}) == 3


async def test_without_the_shared_bucket_three_processes_spend_three_budgets(redis_url: str) -> None:
    # The control: three limiters whose scopes differ share nothing, so together they overrun one budget.
    clients = [client(redis_url) for _ in range(3)]
    three = [SharedVenueLimiter(c, 60.0, scope=f"venue-{i}", window_s=1.0, burst=0.05) for i, c in enumerate(clients)]
    stamps: list[tuple[float, float]] = []
    try:
        until = time.monotonic() + 1.5
        await asyncio.gather(*(saturate(limiter, 0.4, until, stamps) for limiter in three for _ in range(8)))
    finally:
        for limiter in three:
            await limiter.close()
        for c in clients:
            await c.aclose()
    assert busiest(stamps, 1.0) > 1.5 * 60.0


async def test_a_retry_after_seen_by_one_process_pauses_every_process(redis: Redis, redis_url: str) -> None:
    async with limiters(redis_url, 2, 10_000) as (first, second):
        await second.acquire(1)
        first.pause_for(1.0)
        started = time.monotonic()
        await asyncio.sleep(0.05)
        assert second.pause_remaining() == 0  # it has not heard yet: it learns from Redis, not from us
        await second.acquire(1)  # ...on its next admission
        assert time.monotonic() - started >= 0.9
        assert first.stats().retry_after_events == 1


async def test_a_process_that_is_not_sending_learns_the_pause_from_its_heartbeat(redis: Redis, redis_url: str) -> None:
    async with limiters(redis_url, 2, 10_000, heartbeat_s=0.1, stale_s=1.0) as (first, second):
        first.pause_for(2.0)
        await asyncio.sleep(0.4)
        assert 1.0 < second.pause_remaining() <= 2.0


async def test_saturating_reads_in_one_process_do_not_hold_back_orders_in_another(redis: Redis, redis_url: str) -> None:
    async with limiters(redis_url, 2, 100, window_s=1.0, burst=0.05, latency_allowance_s=0.1) as (reader, trader):
        read_waits: list[float] = []

        async def read_in_a_loop(until: float) -> None:
            while time.monotonic() < until:
                started = time.monotonic()
                await reader.acquire(0.4)
                read_waits.append(time.monotonic() - started)

        load = asyncio.gather(*(read_in_a_loop(time.monotonic() + 2.0) for _ in range(64)))
        await asyncio.sleep(0.5)
        order_waits = []
        for _ in range(5):
            started = time.monotonic()
            await trader.acquire(0.2, orders=1, account="paper", priority="order")
            order_waits.append(time.monotonic() - started)
            await asyncio.sleep(0.1)
        await load
    assert sum(read_waits[100:]) / len(read_waits[100:]) > 0.3  # the reads do queue: ~64 x 0.4 units at ~28/s
    assert max(order_waits) < 0.05, order_waits
    assert trader.stats().order_requests == 5


async def test_with_redis_gone_each_process_takes_its_share_and_rejoins_when_it_returns() -> None:
    budget, window_s = 30.0, 1.0
    options = {"window_s": window_s, "burst": 0.1, "latency_allowance_s": 0.1, "heartbeat_s": 0.1, "stale_s": 0.5}
    server = start_redis()
    try:
        async with limiters(server.url, 3, budget, **options) as three:
            limiter = three[0]
            await limiter.acquire(1)
            assert limiter.mode == "shared"
            server.stop(signal.SIGKILL)
            # No error reaches the caller: it waits out the others' view of it, then takes a third.
            started = time.monotonic()
            await asyncio.wait_for(limiter.acquire(1), 3)
            assert limiter.mode == "fallback"
            assert time.monotonic() - started >= 0.4  # silent until the others stop counting it (stale_s)
            stats = limiter.stats()
            assert stats.share == 3 and stats.fallbacks == 1
            stamps: list[tuple[float, float]] = []
            until = time.monotonic() + 2.0
            await asyncio.gather(*(saturate(limiter, 0.5, until, stamps) for _ in range(8)))
            assert busiest(stamps, window_s) <= 0.99 * budget / 3 + 1e-6  # its share: never more
            assert busiest(stamps, window_s) >= 0.8 * (0.99 - 0.1) * budget / 3 / 1.1
            assert all(other.mode == "fallback" for other in three)  # the idle ones noticed by heartbeat
            server = start_redis(server.port)  # Redis is back (empty, as after a crash)
            deadline = time.monotonic() + 3
            while any(other.mode != "shared" for other in three) and time.monotonic() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            assert [other.mode for other in three] == ["shared"] * 3
            assert limiter.stats().rejoins == 1
            await asyncio.wait_for(limiter.acquire(1), 2)
            assert limiter.stats().live_processes == 3
    finally:
        server.stop()


async def test_starting_while_redis_is_down_serves_from_the_fallback_share_at_once() -> None:
    port = free_port()  # nothing listens there
    async with limiters(f"redis://127.0.0.1:{port}/0", 1, 100, window_s=1.0) as (limiter,):
        assert limiter.mode == "fallback"
        started = time.monotonic()
        await limiter.acquire(0.4)
        assert time.monotonic() - started < 0.6  # never heard of by anyone: nothing to wait out
        assert limiter.stats().redis_errors >= 1
