"""One live-stream computation per account across replicas, through the real stack: two app instances on
one database and one Redis, the paper exchange as the venue. The venue's own ledger counts the account
reads the snapshots cost; subscribers on two replicas must cost what subscribers on one do. The control:
the same two apps without Redis compute once each."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest
from redis.asyncio import Redis

from aiotrade.paper.config import PaperConfig
from aiotrade.paper.server import PaperExchange
from tests.support.stack import app_instance, stack_settings
from tests.test_stream_hub import eventually, leave_all, subscribe

INTERVAL_S = 0.2
WINDOW_S = 3.0
ACCOUNT_READS = "/api/v3/account"


async def account_reads_in_a_window(paper: PaperExchange) -> int:
    before = paper.stats.requests.get(ACCOUNT_READS, 0)
    await asyncio.sleep(WINDOW_S)
    return paper.stats.requests.get(ACCOUNT_READS, 0) - before


async def reads_with_subscribers_on_one_then_two(tmp_path: Path, redis_url: str | None) -> tuple[int, int, list]:
    async with contextlib.AsyncExitStack() as stack:
        paper = await stack.enter_async_context(PaperExchange(PaperConfig(port=0, seed=7, weight_limit=500_000)))
        apps = []
        for _ in range(2):
            settings = stack_settings(
                paper.url,
                tmp_path,
                redis_url=redis_url,
                live_interval_s=INTERVAL_S,
            )
            app, _ = await stack.enter_async_context(app_instance(settings))
            apps.append(app)
        one, two = (app.state.live_hub for app in apps)
        first = await subscribe(one, 3, "paper")
        await eventually(lambda: all(peer.raw for peer, _ in first), 10)
        alone = await account_reads_in_a_window(paper)
        second = await subscribe(two, 3, "paper")
        await eventually(lambda: all(peer.raw for peer, _ in second), 10)
        together = await account_reads_in_a_window(paper)
        received = [len(peer.raw) for peer, _ in first + second]
        await leave_all(first + second)
    return alone, together, received


async def test_subscribers_on_two_replicas_cost_the_venue_what_subscribers_on_one_do(
    tmp_path: Path, redis_url: str
) -> None:
    redis = Redis.from_url(redis_url)
    await redis.flushdb()
    await redis.aclose()
    alone, together, received = await reads_with_subscribers_on_one_then_two(tmp_path / "shared", redis_url)
    assert alone >= 0.5 * WINDOW_S / INTERVAL_S  # the account is read for the stream, round after round
    assert together <= alone * 1.25 + 2, (alone, together)
    assert all(count >= 2 for count in received), received  # every subscriber on both replicas is fed


@pytest.mark.parametrize("redis_url", [None])
async def test_control_without_redis_each_replica_computes(tmp_path: Path, redis_url: None) -> None:
    alone, together, _ = await reads_with_subscribers_on_one_then_two(tmp_path / "apart", redis_url)
    assert together >= alone * 1.6, (alone, together)
