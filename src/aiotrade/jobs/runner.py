"""Running background jobs: now, then at an interval; a failure is logged, never fatal."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from aiotrade.jobs.leadership import Leadership
from aiotrade.store.leases import LeaseStore

log = logging.getLogger(__name__)

Job = Callable[[], Awaitable[object]]


def start(name: str, job: Job, *, repeat_s: float | None, first_after_s: float = 0.0) -> asyncio.Task[None]:
    """Run ``job`` after ``first_after_s`` (now, by default) and then every ``repeat_s`` (once when None) in a
    task of its own."""

    async def loop() -> None:
        await asyncio.sleep(first_after_s)
        while True:
            try:
                await job()
            except Exception:
                log.exception("background job %s failed", name)
            if repeat_s is None:
                return
            await asyncio.sleep(repeat_s)

    return asyncio.create_task(loop(), name=f"aiotrade-{name}")


def start_led(
    name: str,
    job: Callable[[int], Awaitable[object]],
    *,
    interval_s: float,
    leadership: Leadership,
    leases: LeaseStore,
) -> asyncio.Task[None]:
    """Run ``job(interval)`` once per wall-clock interval of ``interval_s`` across every replica: only on
    the leader, and only if no replica has claimed that interval before (so a failover neither skips the
    current interval nor runs it twice)."""
    poll_s = min(interval_s, leadership.ttl.total_seconds() / 3)

    async def loop() -> None:
        while True:
            lease = leadership.current()
            try:
                # Numbered by the database's clock: a new leader whose own clock is off neither re-runs
                # intervals nor skips them.
                interval = int(lease.database_time().timestamp() // interval_s) if lease is not None else None
                if interval is not None and await leases.claim_interval(name, interval, leadership.holder, lease.token):
                    await job(interval)
            except Exception:
                log.exception("background job %s failed", name)
            now_s = lease.database_time().timestamp() if lease is not None else time.time()  # as numbered
            next_start = (int(now_s // interval_s) + 1) * interval_s
            await asyncio.sleep(max(0.0, min(poll_s, next_start - now_s)) + 0.001)

    return asyncio.create_task(loop(), name=f"aiotrade-{name}")


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
