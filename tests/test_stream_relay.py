"""One live-stream computation per account across replicas, through a real Redis.

Two hubs stand for two replicas (each its own relay, holder id and compute); their subscribers are fake
peers, as in test_stream_hub.py. The promises: with subscribers on both, the account is computed once
per interval in total and both fan the frames out; when the producer's last subscriber leaves, the other
replica takes over; a newcomer on a replica that does not compute gets the latest frame at once; with
Redis gone, each replica computes for its own subscribers and nobody is left without frames.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from aiotrade.stream.hub import LiveHub
from aiotrade.stream.relay import RedisRelay
from tests.support.servers import start_redis
from tests.test_stream_hub import FakeCompute, eventually, leave_all, subscribe

INTERVAL = 0.05


class Replica:
    def __init__(self, url: str, name: str) -> None:
        self.redis = Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self.relay = RedisRelay(self.redis, holder=name, lease_ms=300)
        self.compute = FakeCompute()
        self.compute.bump_each_call = True
        self.hub = LiveHub(
            self.compute, accounts={"main"}, default_account="main", interval_s=INTERVAL, relay=self.relay
        )

    async def close(self) -> None:
        await self.hub.close()
        await self.relay.close()
        await self.redis.aclose()


@pytest.fixture
async def pair(redis_url: str) -> AsyncIterator[tuple[Replica, Replica]]:
    first, second = Replica(redis_url, "one"), Replica(redis_url, "two")
    await first.redis.flushdb()
    yield first, second
    await first.close()
    await second.close()


async def test_subscribers_on_two_replicas_share_one_computation_per_interval(pair: tuple[Replica, Replica]) -> None:
    one, two = pair
    streams = await subscribe(one.hub, 3) + await subscribe(two.hub, 3)
    await eventually(lambda: all(len(peer.raw) >= 2 for peer, _ in streams))
    calls = len(one.compute.calls) + len(two.compute.calls)
    await asyncio.sleep(20 * INTERVAL)
    made = len(one.compute.calls) + len(two.compute.calls) - calls
    assert made <= 22  # one per interval in all (with timer slack), not one per replica
    # Every subscriber on either replica sees the same, growing sequence of snapshots.
    equities = [[f["data"]["equity"] for f in peer.frames] for peer, _ in streams]
    assert all(seq == sorted(seq) and len(seq) >= 10 for seq in equities), equities
    await leave_all(streams)


async def test_when_the_producers_subscribers_leave_the_other_replica_takes_over(
    pair: tuple[Replica, Replica],
) -> None:
    one, two = pair
    first = await subscribe(one.hub, 1)
    await eventually(lambda: len(one.compute.calls) >= 2)  # one leads
    second = await subscribe(two.hub, 1)
    await eventually(lambda: len(second[0][0].raw) >= 2)
    assert len(two.compute.calls) == 0  # two follows
    await leave_all(first)
    before = len(second[0][0].raw)
    await eventually(lambda: len(two.compute.calls) >= 3 and len(second[0][0].raw) >= before + 3, within_s=3)
    await leave_all(second)


async def test_a_newcomer_on_a_following_replica_gets_the_latest_frame_at_once(pair: tuple[Replica, Replica]) -> None:
    one, two = pair
    one.compute.bump_each_call = False  # nothing changes: nothing is published after the first frame
    first = await subscribe(one.hub, 1)
    await eventually(lambda: len(first[0][0].raw) == 1 and len(one.compute.calls) >= 3)
    late = await subscribe(two.hub, 1)
    await eventually(lambda: len(late[0][0].raw) == 1, within_s=1)
    assert late[0][0].raw == first[0][0].raw and two.compute.calls == []
    await leave_all(first + late)


async def test_with_redis_gone_each_replica_computes_for_its_own_subscribers() -> None:
    server = start_redis()
    one, two = Replica(server.url, "one"), Replica(server.url, "two")
    try:
        streams = await subscribe(one.hub, 1) + await subscribe(two.hub, 1)
        await eventually(lambda: all(len(peer.raw) >= 2 for peer, _ in streams))
        server.stop()  # Redis dies
        counts = [len(peer.raw) for peer, _ in streams]
        await eventually(lambda: all(len(p.raw) >= c + 5 for (p, _), c in zip(streams, counts, strict=True)), 5)
        assert one.compute.calls and two.compute.calls  # both compute now
        await leave_all(streams)
    finally:
        await one.close()
        await two.close()
        server.stop()
