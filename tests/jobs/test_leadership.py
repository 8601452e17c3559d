"""One replica leads the background jobs at a time; a dead leader is replaced within 2 × TTL; an interval's
work runs once whoever leads. On SQLite and on a real PostgreSQL server, with the real lease table."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path

import pytest

from aiotrade.jobs import runner
from aiotrade.jobs.leadership import Leadership
from aiotrade.store import leases as store_leases
from aiotrade.store.db import make_sessions
from aiotrade.store.leases import LeaseStore
from tests.support.databases import database_url, migrated_engine

TTL = 1.0


@pytest.fixture(params=["sqlite", "postgresql"])
async def leases(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[LeaseStore]:
    engine = await migrated_engine(database_url(request, request.param, tmp_path))
    yield LeaseStore(make_sessions(engine))
    await engine.dispose()


def replica(leases: LeaseStore, name: str) -> Leadership:
    return Leadership(leases, "jobs", holder=name, ttl_s=TTL)


async def test_one_of_three_replicas_leads_and_renewing_keeps_it(leases: LeaseStore) -> None:
    replicas = [replica(leases, f"r{i}") for i in range(3)]
    await asyncio.gather(*(r.step() for r in replicas))
    assert sum(r.is_leader for r in replicas) == 1
    leader = next(r for r in replicas if r.is_leader)
    first = leader.current()
    for _ in range(3):
        await asyncio.sleep(TTL / 3)
        await asyncio.gather(*(r.step() for r in replicas))
        assert [r for r in replicas if r.is_leader] == [leader]
    assert leader.current().token == first.token  # renewed, not retaken


async def test_a_dead_leader_is_replaced_within_two_ttls_with_a_higher_token(leases: LeaseStore) -> None:
    dead, survivor = replica(leases, "dead"), replica(leases, "survivor")
    await dead.step()
    await survivor.step()
    assert dead.is_leader and not survivor.is_leader
    old_token = dead.current().token
    died_at = time.monotonic()  # the dead replica renews no more
    task = asyncio.create_task(survivor.run())
    try:
        while not survivor.is_leader:
            await asyncio.sleep(0.02)
            assert time.monotonic() - died_at < 2 * TTL, "no takeover within 2 × TTL"
    finally:
        task.cancel()
    assert survivor.current().token > old_token


async def test_a_clean_shutdown_hands_the_lease_over_at_once(leases: LeaseStore) -> None:
    first, second = replica(leases, "first"), replica(leases, "second")
    await first.step()
    await first.release()
    assert not first.is_leader
    await second.step()
    assert second.is_leader


async def test_each_interval_of_a_job_runs_once_across_replicas_and_failover(leases: LeaseStore) -> None:
    ran: list[tuple[str, int]] = []
    replicas = [replica(leases, f"r{i}") for i in range(3)]

    def job(name: str):  # type: ignore[no-untyped-def]
        async def run(interval: int) -> None:
            ran.append((name, interval))

        return run

    tasks = [asyncio.create_task(r.run()) for r in replicas]
    tasks += [runner.start_led("tick", job(r.holder), interval_s=0.2, leadership=r, leases=leases) for r in replicas]
    await asyncio.sleep(1.2)
    leader = next(r for r in replicas if r.is_leader)
    index = replicas.index(leader)
    tasks[index].cancel()  # the leader dies: it renews no more (its job loop goes on, but it leads no more)
    await asyncio.sleep(2.5)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    intervals = [interval for _, interval in ran]
    assert len(intervals) == len(set(intervals)), ran  # no interval twice
    assert {name for name, _ in ran} >= {leader.holder}
    assert len({name for name, _ in ran}) >= 2, ran  # someone else took over
    assert [i for i, _, _ in await leases.runs("tick")] == sorted(intervals)


class _AnHourAhead(datetime):
    @classmethod
    def now(cls, tz: tzinfo | None = None) -> datetime:  # type: ignore[override]
        return datetime.now(tz) + timedelta(hours=1)


async def test_a_replica_whose_clock_runs_an_hour_ahead_neither_steals_the_lease_nor_loses_its_own(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # On PostgreSQL a lease's times are the server's: replicas' clocks may disagree by more than the TTL.
    engine = await migrated_engine(postgres_url)
    leases = LeaseStore(make_sessions(engine))
    try:
        on_time, ahead = replica(leases, "on-time"), replica(leases, "ahead")
        await on_time.step()
        monkeypatch.setattr(store_leases, "datetime", _AnHourAhead)  # the other replica's clock
        await ahead.step()
        assert on_time.is_leader and not ahead.is_leader  # the live lease is not seen as an hour old
        monkeypatch.undo()

        await on_time.release()
        monkeypatch.setattr(store_leases, "datetime", _AnHourAhead)
        await ahead.step()  # free now: taken, and judged held although its clock is an hour ahead
        assert ahead.is_leader
        await asyncio.sleep(TTL / 2)
        await ahead.step()
        assert ahead.is_leader and ahead.current().token == 2  # renewed, not retaken
        # And it numbers job intervals by the database's time, not by its own clock.
        told = ahead.current().database_time()
        assert abs(told - datetime.now(UTC)) < timedelta(seconds=5), told
    finally:
        await engine.dispose()
