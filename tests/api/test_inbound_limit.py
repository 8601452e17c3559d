"""Inbound rate limits per API key: 429 problem+json with Retry-After and RateLimit-*, limited answers carry
RateLimit-*, unlimited keys none; through Redis one limit across replicas (control: without Redis each replica
lets the key send its full rate), and with Redis gone each replica counts in-process without an error."""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

from aiotrade.api.ratelimit import KEY_PREFIX, InboundLimiter, LocalInboundLimiter, RedisInboundLimiter
from aiotrade.paper.config import PaperConfig
from aiotrade.paper.server import PaperExchange
from tests.api.test_problems import assert_problem
from tests.support.servers import start_redis
from tests.support.stack import BASE_URL, Stack, app_instance, auth_headers, make_key, stack_settings

CHEAP = "/api/v1/exchanges"  # answered from the configuration: nothing reaches the venue


async def test_a_key_over_its_rate_gets_a_429_with_retry_after_and_ratelimit_headers(stack: Stack) -> None:
    limited = await stack.make_key("limited", "read", rate_limit=2)
    async with stack.client(limited.key) as client:
        first, second, third = [await client.get(CHEAP) for _ in range(3)]
    assert first.status_code == second.status_code == 200
    assert first.headers["RateLimit-Limit"] == "2" and first.headers["RateLimit-Policy"] == "2;w=1"
    assert (first.headers["RateLimit-Remaining"], second.headers["RateLimit-Remaining"]) == ("1", "0")
    assert "Retry-After" not in second.headers
    body = assert_problem(third, 429)
    assert "2 requests per second" in body["detail"] and limited.key not in third.text
    assert int(third.headers["Retry-After"]) >= 1
    assert third.headers["RateLimit-Remaining"] == "0" and int(third.headers["RateLimit-Reset"]) >= 1
    unlimited = await stack.api.get(CHEAP)  # the stack's key is made with rate limit 0
    assert unlimited.status_code == 200 and "RateLimit-Limit" not in unlimited.headers


async def test_a_refused_request_costs_nothing_and_the_bucket_refills() -> None:
    now = [0.0]
    limiter = LocalInboundLimiter(clock=lambda: now[0])
    assert [limiter.take_now("k", 4).allowed for _ in range(6)] == [True] * 4 + [False] * 2
    now[0] = 0.25  # one interval later: exactly one more
    assert [limiter.take_now("k", 4).allowed for _ in range(2)] == [True, False]
    assert limiter.take_now("other", 4).allowed  # keys are counted apart


async def test_the_redis_limiter_admits_what_the_local_one_does(redis_url: str) -> None:
    redis = Redis.from_url(redis_url)
    try:
        limiter = RedisInboundLimiter(redis)
        decisions = [await limiter.take("same-shape", 3) for _ in range(5)]
        assert [d.allowed for d in decisions] == [True, True, True, False, False]
        assert [d.remaining for d in decisions] == [2, 1, 0, 0, 0]
        assert 0 < decisions[-1].retry_after_s <= 1 / 3 and decisions[-1].headers()["Retry-After"] == "1"
        assert limiter.redis_errors == 0 and await redis.exists(KEY_PREFIX + "same-shape")
        assert 0 < await redis.pttl(KEY_PREFIX + "same-shape") <= 2_000  # an idle key's state expires
    finally:
        await redis.aclose()


@contextlib.asynccontextmanager
async def two_replicas(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, redis_url: str | None
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient, InboundLimiter, str]]:
    """Two apps on one database (and one Redis when given), a client on each sending one limited key (3/s),
    A's limiter and the key's id."""
    if redis_url is None:
        monkeypatch.delenv("AIOTRADE_REDIS_URL", raising=False)
    else:
        monkeypatch.setenv("AIOTRADE_REDIS_URL", redis_url)
    async with PaperExchange(PaperConfig(port=0, seed=7, weight_limit=500_000)) as paper:
        settings = stack_settings(paper.url, tmp_path)
        async with app_instance(settings) as (app_a, _), app_instance(settings) as (app_b, _):
            made = await make_key(app_a, "shared", "read", rate_limit=3)
            async with (
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app_a), base_url=BASE_URL, headers=auth_headers(made.key)
                ) as on_a,
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app_b), base_url=BASE_URL, headers=auth_headers(made.key)
                ) as on_b,
            ):
                yield on_a, on_b, app_a.state.inbound_limiter, made.key_id


async def alternate(on_a: httpx.AsyncClient, on_b: httpx.AsyncClient, count: int) -> tuple[list[int], float]:
    """``count`` requests at once, A and B in turn; their statuses and how long they took (s). At once, so
    that a loaded machine cannot spread them over enough seconds for the bucket to refill them all."""
    started = time.monotonic()
    answers = await asyncio.gather(*((on_a if i % 2 == 0 else on_b).get(CHEAP) for i in range(count)))
    return [answer.status_code for answer in answers], time.monotonic() - started


async def test_through_redis_a_keys_limit_holds_across_two_replicas(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, redis_url: str
) -> None:
    async with two_replicas(tmp_path, monkeypatch, redis_url) as (on_a, on_b, limiter, _):
        assert isinstance(limiter, RedisInboundLimiter)
        statuses, elapsed = await alternate(on_a, on_b, 12)
    assert set(statuses) == {200, 429}
    # One bucket of 3, refilled at 3 per second, whichever replica is asked.
    assert statuses.count(200) <= 3 + math.ceil(elapsed * 3), (statuses, elapsed)


async def test_control_without_redis_each_replica_lets_the_key_send_its_full_rate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with two_replicas(tmp_path, monkeypatch, None) as (on_a, on_b, limiter, _):
        assert isinstance(limiter, LocalInboundLimiter)
        statuses, _ = await alternate(on_a, on_b, 12)
    assert statuses.count(200) >= 6  # 3 on each: the test above can fail


async def test_with_redis_gone_each_replica_counts_in_process_and_no_caller_sees_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    redis = start_redis()
    try:
        async with two_replicas(tmp_path, monkeypatch, redis.url) as (on_a, _, limiter, key_id):
            assert isinstance(limiter, RedisInboundLimiter)
            assert (await on_a.get(CHEAP)).status_code == 200 and limiter.shared
            redis.stop()
            started = time.monotonic()
            statuses = [(await on_a.get(CHEAP)).status_code for _ in range(8)]
            elapsed = time.monotonic() - started
            assert set(statuses) == {200, 429}, statuses  # never a 500 or 503
            assert statuses.count(200) <= 3 + math.ceil(elapsed * 3)  # still limited, in this process
            assert limiter.redis_errors >= 1 and not limiter.shared

            redis = start_redis(redis.port)  # back on the same port: the limiter rejoins after its pause
            async with asyncio.timeout(10):
                while not limiter.shared:  # noqa: ASYNC110 (waiting out the limiter's own retry pause)
                    await asyncio.sleep(0.1)
            assert (await on_a.get(CHEAP)).status_code in (200, 429)
            back = Redis.from_url(redis.url)
            try:
                assert await back.exists(KEY_PREFIX + key_id)  # counted in Redis again
            finally:
                await back.aclose()
    finally:
        redis.stop()
