"""The market-data cache: one upstream request for many identical reads (in a process and across processes
on a real Redis), TTLs and ages, errors never kept, and no trouble when Redis is gone."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time

import pytest
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from aiotrade.exchange.cache import MarketCache
from tests.support.servers import ROOT, free_port


class Upstream:
    """A fetch that counts its calls and takes a little while, like a venue round trip."""

    def __init__(self, delay_s: float = 0.05, fail: bool = False) -> None:
        self.calls = 0
        self.delay_s = delay_s
        self.fail = fail

    async def __call__(self) -> dict[str, str]:
        self.calls += 1
        await asyncio.sleep(self.delay_s)
        if self.fail:
            raise RuntimeError("venue down")
        return {"last": str(self.calls)}


def encode(value: dict[str, str]) -> bytes:
    return json.dumps(value).encode()


def decode(raw: bytes) -> dict[str, str]:
    return json.loads(raw)


async def test_a_thousand_identical_concurrent_reads_make_one_upstream_request() -> None:
    cache, upstream = MarketCache(), Upstream()
    results = await asyncio.gather(*(cache.get_or_fetch("paper:ticker:BTC/USDT", 1.0, upstream) for _ in range(1000)))
    assert upstream.calls == 1
    assert {r.value["last"] for r in results} == {"1"}
    assert cache.stats.misses == 1 and cache.stats.joined == 999


async def test_a_value_is_kept_for_its_ttl_with_its_age_then_fetched_again() -> None:
    cache, upstream = MarketCache(), Upstream(delay_s=0)
    first = await cache.get_or_fetch("k", 0.3, upstream)
    await asyncio.sleep(0.1)
    second = await cache.get_or_fetch("k", 0.3, upstream)
    assert (first.source, second.source) == ("fetched", "memory")
    assert first.age_s < 0.01 and 0.09 < second.age_s < 0.2
    assert second.value == first.value and upstream.calls == 1
    await asyncio.sleep(0.25)
    third = await cache.get_or_fetch("k", 0.3, upstream)
    assert third.source == "fetched" and third.value["last"] == "2"


async def test_ttl_zero_keeps_nothing_but_reads_in_flight_together_still_join() -> None:
    cache, upstream = MarketCache(), Upstream()
    together = await asyncio.gather(*(cache.get_or_fetch("k", 0, upstream) for _ in range(10)))
    assert upstream.calls == 1 and {r.value["last"] for r in together} == {"1"}
    later = await cache.get_or_fetch("k", 0, upstream)
    assert upstream.calls == 2 and later.value["last"] == "2"


async def test_an_error_is_shared_by_the_reads_that_joined_it_and_never_kept() -> None:
    cache, upstream = MarketCache(), Upstream(fail=True)
    results = await asyncio.gather(*(cache.get_or_fetch("k", 5, upstream) for _ in range(5)), return_exceptions=True)
    assert upstream.calls == 1 and all(isinstance(r, RuntimeError) for r in results)
    upstream.fail = False
    assert (await cache.get_or_fetch("k", 5, upstream)).value["last"] == "2"
    assert cache.stats.errors == 1


async def test_a_caller_that_gives_up_does_not_cancel_the_fetch_the_others_joined() -> None:
    cache, upstream = MarketCache(), Upstream(delay_s=0.2)
    impatient = asyncio.create_task(cache.get_or_fetch("k", 5, upstream))
    await asyncio.sleep(0.01)
    patient = asyncio.create_task(cache.get_or_fetch("k", 5, upstream))
    await asyncio.sleep(0.01)
    impatient.cancel()
    assert (await patient).value["last"] == "1" and upstream.calls == 1


async def test_switched_off_every_read_goes_upstream() -> None:
    cache, upstream = MarketCache(enabled=False), Upstream()
    await asyncio.gather(*(cache.get_or_fetch("k", 5, upstream) for _ in range(10)))
    assert upstream.calls == 10 and cache.mode == "off" and cache.stats.uncached == 10


async def test_another_process_gets_the_value_from_redis_with_its_true_age(redis: Redis, redis_url: str) -> None:
    async with Redis.from_url(redis_url) as one, Redis.from_url(redis_url) as other:
        first, second = MarketCache(redis=one), MarketCache(redis=other)
        upstream = Upstream(delay_s=0)
        await first.get_or_fetch("paper:ticker:ETH/USDT", 2.0, upstream, encode=encode, decode=decode)
        await asyncio.sleep(0.2)
        got = await second.get_or_fetch("paper:ticker:ETH/USDT", 2.0, upstream, encode=encode, decode=decode)
    assert got.source == "shared" and got.value == {"last": "1"} and upstream.calls == 1
    assert 0.15 < got.age_s < 0.5
    assert second.mode == "shared"


async def test_when_the_lock_holder_dies_another_process_fetches_after_the_lock_expires(redis: Redis) -> None:
    # A process took the lock and died: no value will come; the lock's expiry lets the next one fetch.
    cache = MarketCache(redis=redis, lock_ttl_s=0.5)
    _, lock_key = cache._keys("k")
    await redis.set(lock_key, "dead-process", px=500)
    started = time.monotonic()
    got = await cache.get_or_fetch("k", 5, Upstream(delay_s=0), encode=encode, decode=decode)
    assert got.source == "fetched" and 0.4 < time.monotonic() - started < 1.5


async def test_with_redis_out_of_reach_the_cache_works_in_process_without_errors() -> None:
    unreachable = Redis.from_url(
        f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0)
    )
    cache, upstream = MarketCache(redis=unreachable), Upstream()
    results = await asyncio.gather(
        *(cache.get_or_fetch("k", 5, upstream, encode=encode, decode=decode) for _ in range(50))
    )
    assert upstream.calls == 1 and len(results) == 50
    assert (await cache.get_or_fetch("k", 5, upstream, encode=encode, decode=decode)).source == "memory"
    assert cache.mode == "degraded" and cache.stats.redis_errors == 1
    await unreachable.aclose()


@pytest.mark.parametrize(("shared", "expected_fetches"), [(True, 1), (False, 3)], ids=["redis", "control-memory"])
async def test_three_processes_making_identical_reads_at_once_fetch_once_between_them(
    shared: bool, expected_fetches: int, clean_redis_url: str
) -> None:
    key, start_at = f"paper:ticker:BTC/USDT:{shared}", time.time() + 1.5  # all three started by then
    args = [clean_redis_url, key, str(start_at), "300", "1" if shared else "0"]
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.exchange.cache_worker", *args, cwd=ROOT, stdout=subprocess.PIPE
        )
        for _ in range(3)
    ]
    outputs = [await asyncio.wait_for(proc.communicate(), 30) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0, 0]
    stats = [json.loads(out) for out, _ in outputs]
    async with Redis.from_url(clean_redis_url) as ledger:
        fetches = int(await ledger.get(f"fetches:{key}") or 0)
    assert fetches == expected_fetches, stats
    assert all(s["misses"] <= 1 for s in stats)  # never more than one per process, whatever happens
    if shared:
        assert sum(s["shared_joined"] + s["shared_hits"] for s in stats) == 2, stats
