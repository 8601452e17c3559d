"""The compute pool's promises (see `aiotrade.compute`): bounded admission with 503 + Retry-After, no leaked
slot on cancellation, quiet workers, clean shutdown with no process left, request budgets as 422s.

Jobs are builtins (`time.sleep`, `os.getpid`, `signal.getsignal`) so that nothing of the tests has to be
importable in a worker. The admission tests share one pool (starting one costs about a second); tests that
close or break a pool start their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import AsyncIterator

import httpx
import numpy as np
import psutil
import pytest
import pytest_asyncio
from fastapi import FastAPI

from aiotrade.api.problems import install_problem_handlers
from aiotrade.compute import ComputePool, ComputeSettings, check_budget
from aiotrade.errors import ComputeBusy, ComputeInterrupted, InvalidInput
from aiotrade.observability.metrics import COMPUTE_JOBS
from aiotrade.quant import jobs
from aiotrade.quant.errors import QuantInputError

pytestmark = pytest.mark.asyncio(loop_scope="module")

ADMISSION = ComputeSettings(workers=2, max_jobs=2, queue_size=2, queue_timeout_s=1.0, shutdown_grace_s=1.0)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def pool() -> AsyncIterator[ComputePool]:
    async with ComputePool(ADMISSION) as running:
        yield running


def http_app(pool: ComputePool, settings: ComputeSettings) -> httpx.AsyncClient:
    """Routes over the pool and the budgets, with the app's own problem+json rendering."""
    app = FastAPI()
    install_problem_handlers(app)

    @app.post("/sleep")
    async def sleep(seconds: float) -> dict[str, float]:
        await pool.run(time.sleep, seconds)
        return {"slept": seconds}

    @app.post("/probability")
    async def probability(paths: int, horizon_bars: int) -> dict[str, bool]:
        settings.check_path_steps(paths, horizon_bars)
        return {"admitted": True}

    @app.post("/portfolio")
    async def portfolio(symbols: int, lookback: int) -> dict[str, bool]:
        settings.check_candles(symbols, lookback)
        return {"admitted": True}

    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://compute.test")


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


async def settle(pool: ComputePool) -> None:
    """Wait until the shared pool is idle again (a test's leftover jobs must not leak into the next)."""
    for _ in range(500):
        if pool.stats().running == 0 and pool.stats().queued == 0:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"pool still busy: {pool.stats()}")


# ----- admission -----------------------------------------------------------------------------------


async def test_third_heavy_job_waits_and_fifth_gets_503_with_retry_after(pool: ComputePool) -> None:
    async with http_app(pool, ADMISSION) as api:
        started = time.monotonic()
        finished: list[float] = []

        async def request() -> httpx.Response:
            response = await api.post("/sleep", params={"seconds": 0.5})
            finished.append(time.monotonic() - started)
            return response

        admitted = [asyncio.create_task(request()) for _ in range(4)]
        await asyncio.sleep(0.1)
        assert (pool.stats().running, pool.stats().queued) == (2, 2)
        rejected_before = pool.stats().rejected

        refused = await api.post("/sleep", params={"seconds": 0.5})

        assert refused.status_code == 503
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert refused.json()["type"].endswith(":compute-busy")
        assert int(refused.headers["Retry-After"]) >= 1
        assert pool.stats().rejected == rejected_before + 1
        assert [r.status_code for r in await asyncio.gather(*admitted)] == [200] * 4
        finished.sort()
        # Two at a time: the two that waited finish a whole job after the first two.
        assert finished[1] < 0.9 and finished[2] >= 0.95, finished
    await settle(pool)


async def test_a_job_waiting_past_the_queue_timeout_gets_503_and_computes_nothing(pool: ComputePool) -> None:
    busy = [asyncio.create_task(pool.run(time.sleep, 1.6)) for _ in range(2)]
    await asyncio.sleep(0.1)
    completed = pool.stats().completed
    waited = time.monotonic()
    with pytest.raises(ComputeBusy, match="no compute slot within 1 s") as refused:
        await pool.run(os.getpid)
    assert 0.9 <= time.monotonic() - waited < 1.4
    assert refused.value.status == 503 and refused.value.retry_after_s is not None
    assert pool.stats().queued == 0
    await asyncio.gather(*busy)
    assert pool.stats().completed == completed + 2  # only the two sleeps ran
    await settle(pool)


async def test_cancelled_waiter_leaves_the_queue_and_cancelled_runner_holds_its_slot_until_the_job_ends(
    pool: ComputePool,
) -> None:
    running = [asyncio.create_task(pool.run(time.sleep, 0.8)) for _ in range(2)]
    waiting = asyncio.create_task(pool.run(os.getpid))
    await asyncio.sleep(0.1)
    assert (pool.stats().running, pool.stats().queued) == (2, 1)
    assert jobs_metric("running") == 2 and jobs_metric("queued") == 1  # what /metrics shows

    waiting.cancel()
    running[0].cancel()
    await asyncio.sleep(0.1)
    assert waiting.cancelled() and running[0].cancelled()
    # The waiter is gone; the cancelled runner's job still occupies its worker, so its slot stays taken.
    assert (pool.stats().running, pool.stats().queued) == (2, 0)
    assert jobs_metric("queued") == 0

    await running[1]
    await settle(pool)
    # Both slots are free again: two jobs run at once without waiting.
    both = [asyncio.create_task(pool.run(time.sleep, 0.3)) for _ in range(2)]
    await asyncio.sleep(0.1)
    assert (pool.stats().running, pool.stats().queued) == (2, 0)
    await asyncio.gather(*both)
    await settle(pool)
    assert jobs_metric("running") == 0


async def test_a_job_gives_the_numbers_of_the_same_call_on_the_loop_and_its_errors_unchanged(
    pool: ComputePool,
) -> None:
    rng = np.random.default_rng(3)
    closes = 100.0 * np.exp(np.cumsum(rng.normal(0.0004, 0.02, 366)))
    kwargs = {"entry": 100.0, "take_profit": 125.0, "stop_loss": 85.0, "side": "long", "horizon_bars": 200}
    in_worker = await pool.run(jobs.probability_job, closes, paths=20_000, seed=9, **kwargs)
    assert in_worker == jobs.probability_job(closes, paths=20_000, seed=9, **kwargs)
    with pytest.raises(QuantInputError, match="n_paths"):
        await pool.run(jobs.probability_job, closes, paths=5, seed=9, **kwargs)
    await settle(pool)


async def test_workers_ignore_sigint_and_keep_serving(pool: ComputePool) -> None:
    pids = pool.worker_pids()
    assert len(pids) == 2
    assert await pool.run(signal.getsignal, signal.SIGINT) == signal.SIG_IGN
    for pid in pids:
        os.kill(pid, signal.SIGINT)
    await asyncio.sleep(0.2)
    assert all(alive(pid) for pid in pids)
    served_by = set(await asyncio.gather(*(pool.run(os.getpid) for _ in range(4))))
    assert served_by <= pids
    await settle(pool)


async def test_heavy_requests_beyond_the_places_are_refused_at_once_and_places_come_back(pool: ComputePool) -> None:
    places = pool.max_jobs + pool.settings.queue_size
    async with contextlib.AsyncExitStack() as held:
        for _ in range(places):
            await held.enter_async_context(pool.reserve())
        assert pool.stats().in_progress == places
        started = time.monotonic()
        with pytest.raises(ComputeBusy, match=f"all {places} places") as refused:
            async with pool.reserve():
                pass
        assert time.monotonic() - started < 0.1 and refused.value.retry_after_s is not None
    assert pool.stats().in_progress == 0
    async with pool.reserve():  # free again
        assert await pool.run(os.getpid) in pool.worker_pids()


# ----- budgets ---------------------------------------------------------------------------------------


async def test_requests_over_budget_are_422_naming_their_fields_and_documented_maxima_pass(
    pool: ComputePool,
) -> None:
    settings = ComputeSettings()
    async with http_app(pool, settings) as api:
        admitted = await api.post("/probability", params={"paths": 100_000, "horizon_bars": 1_000})
        refused = await api.post("/probability", params={"paths": 100_000, "horizon_bars": 1_001})
        portfolio_ok = await api.post("/portfolio", params={"symbols": 100, "lookback": 5_000})
        portfolio_big = await api.post("/portfolio", params={"symbols": 100, "lookback": 5_001})
    assert admitted.status_code == 200 and portfolio_ok.status_code == 200
    assert refused.status_code == 422
    assert [e["name"] for e in refused.json()["errors"]] == ["paths", "horizon_bars"]
    assert "100,100,000 exceeds the budget of 100,000,000" in refused.json()["detail"]
    assert portfolio_big.status_code == 422
    assert [e["name"] for e in portfolio_big.json()["errors"]] == ["symbols", "lookback"]
    with pytest.raises(InvalidInput) as small:
        check_budget(("a", "b", "c"), 9, 8)
    assert [p.name for p in small.value.invalid_params] == ["a", "b", "c"]


async def test_workers_default_to_the_cpus_shared_among_uvicorn_workers_and_max_jobs_cannot_exceed_them() -> None:
    cpus = len(os.sched_getaffinity(0))
    assert ComputeSettings().resolved_workers(1) == cpus
    assert ComputeSettings().resolved_workers(cpus * 4) == 1
    assert ComputeSettings(workers=3).resolved_max_jobs() == 3
    assert ComputeSettings(workers=3, max_jobs=2).resolved_max_jobs() == 2
    assert ComputeSettings(max_jobs=64).resolved_max_jobs(1) == cpus  # capped by the workers
    with pytest.raises(ValueError, match="max_jobs"):
        ComputeSettings(workers=2, max_jobs=3)
    assert ComputeSettings().start_method == "forkserver"


# ----- shutdown and failures -------------------------------------------------------------------------


def executor_threads() -> list[threading.Thread]:
    return [
        t
        for t in threading.enumerate()
        if type(t).__name__ == "_ExecutorManagerThread" or t.name == "QueueFeederThread"
    ]


async def test_close_lets_short_jobs_finish_cuts_off_long_ones_with_503_and_leaves_no_worker_or_thread() -> None:
    threads_before = set(executor_threads())  # the shared pool's own threads are not this pool's
    compute = ComputePool(ComputeSettings(workers=2, queue_size=4, shutdown_grace_s=0.5))
    await compute.open()
    assert set(executor_threads()) - threads_before
    pids = compute.worker_pids()
    assert len(pids) == 2 and all(alive(pid) for pid in pids)
    short = asyncio.create_task(compute.run(time.sleep, 0.2))
    long = asyncio.create_task(compute.run(time.sleep, 60))
    queued = asyncio.create_task(compute.run(os.getpid))
    await asyncio.sleep(0.1)

    closing = time.monotonic()
    await compute.close()

    assert time.monotonic() - closing < 5
    assert await short is None  # finished within the grace period
    with pytest.raises(ComputeInterrupted, match="shut down before the computation finished") as cut:
        await long
    assert cut.value.status == 503 and cut.value.retry_after_s is not None
    with pytest.raises(ComputeBusy, match="shutting down"):
        await queued
    assert not any(alive(pid) for pid in pids)
    assert not set(executor_threads()) - threads_before
    with pytest.raises(ComputeBusy):
        await compute.run(os.getpid)
    assert compute.stats().interrupted == 1


async def test_a_worker_killed_mid_job_fails_that_job_with_503_and_the_pool_recovers() -> None:
    async with ComputePool(ComputeSettings(workers=1)) as compute:
        (first,) = compute.worker_pids()
        job = asyncio.create_task(compute.run(time.sleep, 30))
        await asyncio.sleep(0.2)
        os.kill(first, signal.SIGKILL)
        with pytest.raises(ComputeInterrupted, match="worker died"):
            await asyncio.wait_for(job, 10)
        replacement = await compute.run(os.getpid)
        assert replacement != first
        assert compute.stats().replaced_executors == 1
        assert compute.stats().running == 0
    assert not alive(replacement)


SERVER = textwrap.dedent(
    """
    import asyncio, sys, time
    from aiotrade.compute import ComputePool, ComputeSettings

    async def main():
        async with ComputePool(ComputeSettings(workers=2, shutdown_grace_s=0.5)) as pool:
            print(" ".join(map(str, sorted(pool.worker_pids()))), flush=True)
            await pool.run(time.sleep, 60)

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
    """
)


async def _start_server() -> tuple[asyncio.subprocess.Process, list[int]]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", SERVER, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 60)
    pids = [int(p) for p in line.split()]
    assert len(pids) == 2 and all(alive(pid) for pid in pids)
    return proc, pids


async def test_ctrl_c_on_the_server_stops_it_in_order_with_no_traceback_from_workers() -> None:
    proc, pids = await _start_server()
    await asyncio.sleep(0.3)  # the sleep job is running in a worker
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole process group
    _, stderr = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0
    assert b"Traceback" not in stderr and b"KeyboardInterrupt" not in stderr, stderr.decode()
    assert not any(alive(pid) for pid in pids)


async def test_workers_do_not_outlive_a_killed_server() -> None:
    proc, pids = await _start_server()
    proc.kill()
    await proc.wait()
    for _ in range(300):
        if not any(alive(pid) for pid in pids):
            break
        await asyncio.sleep(0.01)
    assert not any(alive(pid) for pid in pids)


def jobs_metric(state: str) -> float:
    return COMPUTE_JOBS.labels(state)._value.get()
