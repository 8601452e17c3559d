"""Running background jobs: now, then at an interval; a failure is logged, never fatal."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

Job = Callable[[], Awaitable[object]]


def start(name: str, job: Job, *, repeat_s: float | None) -> asyncio.Task[None]:
    """Run ``job`` now and then every ``repeat_s`` (once when None) in a task of its own."""

    async def loop() -> None:
        while True:
            try:
                await job()
            except Exception:
                log.exception("background job %s failed", name)
            if repeat_s is None:
                return
            await asyncio.sleep(repeat_s)

    return asyncio.create_task(loop(), name=f"aiotrade-{name}")


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
