"""The bounded offload for heavy maths: worker processes, admission, 503 + Retry-After.

`ComputePool` owns one `ProcessPoolExecutor` (an explicit start method, forkserver by default on Linux) for
the life of the app. Its promises:

- **Nothing heavy on the loop**: `run(fn, ...)` awaits `fn` in a worker process; the loop only hands over
  the arguments and takes the result (the executor's own threads pickle them). Workers can be given a lower
  CPU priority (`worker_niceness`); the default is none, because measured on 2 cores two busy workers at
  nice 0 kept the loop's lag under 10 ms, while at nice 10 a job took 4× as long whenever anything else
  wanted the CPU.
- **Bounded**: at most `max_jobs` jobs run at once (never more than there are workers, so an admitted job
  starts at once); up to `queue_size` more wait, first come first served, for at most `queue_timeout_s`.
  Beyond that `run` raises `errors.ComputeBusy` (503 with Retry-After) without computing anything. A
  service holds a place (`reserve`, `max_jobs + queue_size` of them) from before it fetches a request's
  data, so heavy requests in progress — and the memory they hold — are bounded too.
- **No leaked slot**: a caller cancelled while waiting leaves the queue; a caller cancelled while its job
  runs leaves the job to finish in its worker (a running process cannot be interrupted safely), and the
  slot is released when the job ends — so the count of running jobs is always the workers' real load.
- **Warm**: `open()` starts every worker and runs `quant.jobs.warm_up` in each before returning.
- **Quiet and clean shutdown**: workers ignore SIGINT (Ctrl-C reaches the server, which shuts down in
  order; no traceback from workers). `close()` refuses new work, tells waiters `ComputeBusy`, gives running
  jobs `shutdown_grace_s`, then cancels what is left, terminates (finally kills) the workers, and returns
  only when no worker process and none of the executor's threads remain. A job cut off this way, or by a
  worker dying, fails with `errors.ComputeInterrupted` (503); a pool broken by a dead worker is replaced.
- **Request budgets** (`ComputeSettings.max_path_steps`, `max_candles`; see `check_budget`) bound the work
  and memory of one request before anything is fetched or computed: a request over budget is a 422 naming
  its fields.

The forkserver and resource-tracker processes (one each per interpreter, started by multiprocessing on
first use) are not workers: they hold no job, and they exit when this process does. Workers ask the kernel
to kill them when their parent dies (Linux; a forkserver worker's parent is the forkserver, which exits
with the server once the workers have let go of its "alive" pipe), so not even a SIGKILL of the server
leaves a worker behind.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import logging
import math
import multiprocessing
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Literal, ParamSpec, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from aiotrade.errors import ComputeBusy, ComputeInterrupted, InvalidInput, InvalidParam
from aiotrade.observability.metrics import COMPUTE_JOBS

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")

StartMethod = Literal["forkserver", "spawn"]

#: paths × horizon_bars of the largest documented probability request (100,000 paths of 1,000 bars).
DOCUMENTED_MAX_PATH_STEPS = 100_000 * 1_000
#: symbols × lookback of the largest documented portfolio request (100 symbols of 5,000 candles).
DOCUMENTED_MAX_CANDLES = 100 * 5_000

#: Set by `python -m aiotrade serve --workers N` for its worker processes (read here and by the limiter).
WORKER_COUNT_ENV = "AIOTRADE_WORKER_COUNT"

_STARTUP_TIMEOUT_S = 60.0
_KILL_AFTER_S = 2.0
_POLL_S = 0.01
_RETRY_AFTER_CAP_S = 60.0
_FORKSERVER_PRELOAD = [__name__, "aiotrade.quant.jobs", "numpy.random", "numpy.ma"]


def _default_start_method() -> StartMethod:
    return "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


class ComputeSettings(BaseModel):
    """How much heavy maths a serve process runs at once, and how big one request may be."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # Worker processes; None: the CPUs available divided among the uvicorn workers, at least 1.
    workers: int | None = Field(default=None, ge=1, le=256)
    # Jobs running at once; None: one per worker. More than the workers is refused (a job admitted would
    # then wait inside the executor, where it can neither be timed out nor counted).
    max_jobs: int | None = Field(default=None, ge=1, le=256)
    # Jobs waiting for a slot; one more is refused with 503 at once.
    queue_size: int = Field(default=16, ge=0, le=10_000)
    # How long a job may wait for a slot before it is refused with 503 (a full queue of maximum-size
    # probability jobs on 2 workers drains in ~20 s).
    queue_timeout_s: float = Field(default=30.0, gt=0, le=3_600)
    # How long close() lets running jobs finish before it terminates the workers.
    shutdown_grace_s: float = Field(default=5.0, ge=0, le=600)
    start_method: StartMethod = Field(default_factory=_default_start_method)
    # Added to the workers' nice value (0: same priority as the server; see the module docstring).
    worker_niceness: int = Field(default=0, ge=0, le=19)
    # Retry-After when no job has finished yet to estimate from (later: the expected wait, 1-60 s).
    retry_after_s: float = Field(default=1.0, gt=0, le=_RETRY_AFTER_CAP_S)
    # Budget of one probability request: paths × horizon_bars Monte Carlo steps. CPU ≈ 10-20 ns a step on
    # one core (1e8: ~1-2 s); memory is bounded by the chunking in quant.probability (≈ 32 MB a job).
    max_path_steps: int = Field(default=DOCUMENTED_MAX_PATH_STEPS, ge=1, le=200_000_000)
    # Budget of one portfolio risk or allocation request: symbols × lookback candles. About 0.4 KB a
    # candle in the serve process while the request runs (the venue's exact text is kept per value), 16
    # bytes on the way to the worker, ≈ 80 in the worker at its peak: 500,000 candles ≈ 190 + 8 + 40 MB.
    max_candles: int = Field(default=DOCUMENTED_MAX_CANDLES, ge=1, le=10_000_000)

    @model_validator(mode="after")
    def _jobs_fit_workers(self) -> ComputeSettings:
        if self.workers is not None and self.max_jobs is not None and self.max_jobs > self.workers:
            raise ValueError(f"max_jobs ({self.max_jobs}) cannot exceed workers ({self.workers})")
        return self

    def resolved_workers(self, uvicorn_workers: int = 1) -> int:
        """Worker processes for one of `uvicorn_workers` serve processes sharing this machine."""
        if self.workers is not None:
            return self.workers
        return max(1, available_cpus() // max(1, uvicorn_workers))

    def resolved_max_jobs(self, uvicorn_workers: int = 1) -> int:
        workers = self.resolved_workers(uvicorn_workers)
        return workers if self.max_jobs is None else min(self.max_jobs, workers)

    def check_path_steps(self, paths: int, horizon_bars: int) -> None:
        """422 naming `paths` and `horizon_bars` when paths × horizon_bars exceeds `max_path_steps`."""
        check_budget(("paths", "horizon_bars"), paths * horizon_bars, self.max_path_steps)

    def check_candles(self, symbols: int, lookback: int) -> None:
        """422 naming `symbols` and `lookback` when symbols × lookback exceeds `max_candles`."""
        check_budget(("symbols", "lookback"), symbols * lookback, self.max_candles)


def serve_worker_count() -> int:
    """The uvicorn worker processes of this serve instance (`serve --workers N` exports `AIOTRADE_WORKER_COUNT`)."""
    try:
        return max(1, int(os.environ.get(WORKER_COUNT_ENV, "1")))
    except ValueError:
        return 1


async def map_yielding(fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """`fn` over `items` on the loop, yielding to it between items.

    For the cheap per-item preparation of a job's inputs (text to floats, one series at a time): the loop
    serves other requests between items instead of once at the end.
    """
    out = []
    for item in items:
        out.append(fn(item))
        await asyncio.sleep(0)
    return out


async def gather_bounded(limit: int, awaitables: Iterable[Awaitable[T]]) -> list[T]:
    """`asyncio.gather` with at most `limit` of `awaitables` running at once, results in order.

    For fetching a heavy request's inputs: when they come from a cache, each finishes in the loop iteration
    it starts in, with its parsing; unbounded, fifty of them would all be parsed in one iteration.
    """
    slots = asyncio.Semaphore(limit)

    async def one(awaitable: Awaitable[T]) -> T:
        async with slots:
            return await awaitable

    return list(await asyncio.gather(*(one(a) for a in awaitables)))


def check_budget(name_fields: tuple[str, ...], size: int, limit: int) -> None:
    """Raise `InvalidInput` (422) naming every field in `name_fields` when their product `size` exceeds `limit`."""
    if size <= limit:
        return
    product = " × ".join(name_fields)
    reason = f"{product} = {size:,} exceeds the budget of {limit:,} per request"
    raise InvalidInput(reason, invalid_params=[InvalidParam(name, reason) for name in name_fields])


@dataclass(frozen=True, slots=True)
class ComputeStats:
    """Counters since the pool opened (`running` and `queued` are the current figures)."""

    workers: int
    max_jobs: int
    running: int
    queued: int
    completed: int  # finished, with a result or an exception of the job's own
    rejected: int  # refused with ComputeBusy: queue full, waited too long, or shutting down
    interrupted: int  # cut off: shutdown or a worker that died
    replaced_executors: int
    in_progress: int = 0  # heavy requests holding a place (`reserve`): fetching, waiting or running


class ComputePool:
    """Worker processes for heavy maths, behind a bounded admission queue. Open with ``async with``."""

    def __init__(self, settings: ComputeSettings | None = None, *, uvicorn_workers: int = 1) -> None:
        self.settings = settings or ComputeSettings()
        self.workers = self.settings.resolved_workers(uvicorn_workers)
        self.max_jobs = self.settings.resolved_max_jobs(uvicorn_workers)
        self._executor: ProcessPoolExecutor | None = None
        self._worker_pids: set[int] = set()
        self._closing = False
        self._running = 0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._inflight: set[asyncio.Future[object]] = set()
        self._stopping: set[asyncio.Task[None]] = set()
        self._completed = self._rejected = self._interrupted = self._replaced = 0
        self._reserved = 0
        self._mean_job_s: float | None = None

    # ----- lifecycle -------------------------------------------------------------------------

    async def open(self) -> None:
        """Start every worker and warm it up (imports and first calls) before returning."""
        if self._executor is not None:
            return
        self._closing = False
        self._executor = self._new_executor()
        await self._warm_up(self._executor)

    async def close(self) -> None:
        """Refuse new work, let running jobs finish for `shutdown_grace_s`, then stop every worker."""
        executor = self._executor
        if executor is None:
            return
        self._closing = True
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(self._busy("the server is shutting down"))
        if self._inflight:
            await asyncio.wait(set(self._inflight), timeout=self.settings.shutdown_grace_s)
        self._executor = None
        cut_off = [f for f in self._inflight if not f.done()]
        if cut_off:
            log.warning("compute: %d job(s) still running after the grace period are cut off", len(cut_off))
        pids, self._worker_pids = self._worker_pids | set(_processes(executor)), set()
        await self._stop(executor, pids, terminate=bool(cut_off))
        if self._stopping:  # pools replaced after a worker died
            await asyncio.gather(*self._stopping, return_exceptions=True)
        if self._inflight:  # their futures fail with BrokenProcessPool once the manager sees the workers gone
            await asyncio.wait(set(self._inflight), timeout=_KILL_AFTER_S)

    async def __aenter__(self) -> ComputePool:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # ----- what callers use --------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def reserve(self) -> AsyncIterator[None]:
        """Hold a place for one heavy request, from before its data is fetched until its job is done.

        There are `max_jobs + queue_size` places; with none free this raises `ComputeBusy` (503) at once,
        before anything is fetched. So the data that heavy requests hold in this process is bounded by the
        places times the per-request budget, however many such requests arrive.
        """
        if self._closing or self._executor is None:
            raise self._busy("the compute pool is not running (shutting down)")
        places = self.max_jobs + self.settings.queue_size
        if self._reserved >= places:
            raise self._busy(f"all {places} places for heavy requests are taken")
        self._reserved += 1
        try:
            yield
        finally:
            self._reserved -= 1

    async def run(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """``fn(*args, **kwargs)`` in a worker process; its exception, if any, is raised here unchanged.

        `fn` must be a top-level function and its arguments and result picklable. Raises `ComputeBusy`
        (503) when the queue is full, after `queue_timeout_s` of waiting, or while shutting down, and
        `ComputeInterrupted` (503) when the job is cut off by shutdown or by a worker's death.
        """
        await self._acquire()
        call = functools.partial(fn, *args, **kwargs)
        try:
            future = self._submit(call)
        except BaseException:
            self._release()
            raise
        self._inflight.add(future)
        future.add_done_callback(functools.partial(self._job_done, time.monotonic()))
        try:
            # shield: a cancelled caller leaves the job running; _job_done releases the slot when it ends.
            return await asyncio.shield(future)
        except BrokenProcessPool as exc:
            if self._closing:
                raise self._interrupted_error("the server shut down before the computation finished") from exc
            self._replace_broken()
            raise self._interrupted_error("a compute worker died during the computation") from exc
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if future.cancelled() and (task is None or not task.cancelling()):
                # The executor dropped the job at shutdown before it started: not the caller's cancellation.
                raise self._interrupted_error("the server shut down before the computation started") from None
            raise

    def stats(self) -> ComputeStats:
        return ComputeStats(
            workers=self.workers,
            max_jobs=self.max_jobs,
            running=self._running,
            queued=sum(1 for w in self._waiters if not w.done()),
            completed=self._completed,
            rejected=self._rejected,
            interrupted=self._interrupted,
            replaced_executors=self._replaced,
            in_progress=self._reserved,
        )

    def worker_pids(self) -> frozenset[int]:
        """Process ids of the current workers (for metrics and tests)."""
        executor = self._executor
        return frozenset(self._worker_pids | set(_processes(executor))) if executor is not None else frozenset()

    # ----- admission ---------------------------------------------------------------------------

    async def _acquire(self) -> None:
        if self._closing or self._executor is None:
            raise self._busy("the compute pool is not running (shutting down)")
        if self._running < self.max_jobs and not self._waiters:
            self._running += 1
            self._report()
            return
        if len(self._waiters) >= self.settings.queue_size:
            raise self._busy(f"all {self.max_jobs} compute slots are busy and {len(self._waiters)} requests wait")
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        self._report()
        try:
            async with asyncio.timeout(self.settings.queue_timeout_s):
                await waiter
            self._report()
        except TimeoutError:
            self._give_back(waiter)
            raise self._busy(f"no compute slot within {self.settings.queue_timeout_s:g} s") from None
        except BaseException:  # cancelled (or told the pool is closing): a slot handed over goes on
            self._give_back(waiter)
            raise

    def _give_back(self, waiter: asyncio.Future[None]) -> None:
        """A waiter leaves: out of the queue, and if a slot was handed to it just now, on to the next."""
        with contextlib.suppress(ValueError):
            self._waiters.remove(waiter)
        if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
            self._release()
        self._report()

    def _release(self) -> None:
        """A slot frees up: hand it to the first waiter still waiting, else count it free."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot passes on; _running stays as it is
                self._report()
                return
        self._running -= 1
        self._report()

    def _report(self) -> None:
        """The admission counts as metrics (`aiotrade_compute_jobs`)."""
        COMPUTE_JOBS.labels("running").set(self._running)
        COMPUTE_JOBS.labels("queued").set(len(self._waiters))

    def _job_done(self, started: float, future: asyncio.Future[object]) -> None:
        self._inflight.discard(future)
        error = None if future.cancelled() else future.exception()  # retrieved: no "never retrieved" log
        if future.cancelled() or isinstance(error, BrokenProcessPool):
            self._interrupted += 1
        else:
            self._completed += 1
            elapsed = time.monotonic() - started
            self._mean_job_s = elapsed if self._mean_job_s is None else 0.8 * self._mean_job_s + 0.2 * elapsed
        self._release()

    def _busy(self, detail: str) -> ComputeBusy:
        self._rejected += 1
        return ComputeBusy(detail, retry_after_s=self._retry_after())

    def _interrupted_error(self, detail: str) -> ComputeInterrupted:
        return ComputeInterrupted(detail, retry_after_s=self._retry_after())

    def _retry_after(self) -> float:
        """The wait a new request would see: the jobs ahead of it over the slots, times a job's mean time."""
        if self._mean_job_s is None:
            return self.settings.retry_after_s
        ahead = self._running + len(self._waiters) + 1
        estimate = self._mean_job_s * math.ceil(ahead / self.max_jobs)
        return min(max(1.0, estimate), _RETRY_AFTER_CAP_S)

    # ----- the executor ------------------------------------------------------------------------

    def _new_executor(self) -> ProcessPoolExecutor:
        context = multiprocessing.get_context(self.settings.start_method)
        if self.settings.start_method == "forkserver":
            # The forkserver imports the maths once (~1.5 s, numpy's lazy submodules included); each worker
            # forked from it has them already. Takes effect when the forkserver starts (once per interpreter).
            context.set_forkserver_preload(_FORKSERVER_PRELOAD)
        return ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=context,
            initializer=_init_worker,
            initargs=(self.settings.worker_niceness, self.settings.start_method),
        )

    def _submit(self, call: Callable[[], R]) -> asyncio.Future[R]:
        if self._executor is None:
            raise self._busy("the compute pool is not running (shutting down)")
        loop = asyncio.get_running_loop()
        try:
            return loop.run_in_executor(self._executor, call)
        except BrokenProcessPool:  # a worker died while idle: the job never started, so it may go to a new pool
            self._replace_broken()
            if self._executor is None:
                raise self._busy("the compute pool is not running (shutting down)") from None
            return loop.run_in_executor(self._executor, call)

    def _replace_broken(self) -> None:
        """Swap a pool broken by a dead worker for a fresh one (its workers start on first use)."""
        broken = self._executor
        if broken is None or self._closing or not getattr(broken, "_broken", False):
            return
        log.error("compute: a worker process died; starting a new process pool")
        pids, self._worker_pids = self._worker_pids | set(_processes(broken)), set()
        self._executor = self._new_executor()
        self._replaced += 1
        # The broken pool's manager terminates its remaining workers itself; make sure they are gone.
        task = asyncio.get_running_loop().create_task(self._stop(broken, pids, terminate=True))
        self._stopping.add(task)
        task.add_done_callback(self._stopping.discard)

    async def _warm_up(self, executor: ProcessPoolExecutor) -> None:
        """Start all workers and run the warm-up in each (each submit past the idle ones starts a worker)."""
        loop = asyncio.get_running_loop()
        deadline = time.monotonic() + _STARTUP_TIMEOUT_S
        while len(self._worker_pids) < self.workers:
            if time.monotonic() > deadline:
                raise RuntimeError(f"compute workers did not all start within {_STARTUP_TIMEOUT_S:g} s")
            jobs = [loop.run_in_executor(executor, _warm_up_worker) for _ in range(self.workers)]
            self._worker_pids.update(await asyncio.gather(*jobs))
        log.info("compute: %d worker(s) ready (%s)", self.workers, self.settings.start_method)

    async def _stop(self, executor: ProcessPoolExecutor, pids: set[int], *, terminate: bool) -> None:
        """Shut `executor` down; return when the workers `pids` and the executor's threads are gone."""
        processes = _processes(executor)
        manager = getattr(executor, "_executor_manager_thread", None)
        executor.shutdown(wait=False, cancel_futures=True)  # idle workers get their stop sentinel
        if terminate:
            for process in processes.values():
                with contextlib.suppress(Exception):
                    process.terminate()
        await _wait_until(lambda: not any(_alive(pid) for pid in pids), _KILL_AFTER_S)
        for pid in [p for p in pids if _alive(p)]:
            log.warning("compute: worker %d did not stop; killing it", pid)
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        await _wait_until(
            lambda: not any(_alive(pid) for pid in pids) and (manager is None or not manager.is_alive()), _KILL_AFTER_S
        )


# ----- in the workers ------------------------------------------------------------------------------


def _init_worker(niceness: int, start_method: StartMethod) -> None:
    """Runs first in each worker: ignore Ctrl-C, step back on CPU, die with the parent, import the maths."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server handles Ctrl-C and stops us in order
    if niceness:
        with contextlib.suppress(OSError):
            os.nice(niceness)
    if start_method == "forkserver":
        _let_the_forkserver_go()
    if sys.platform == "linux":
        _die_with_parent()
    import aiotrade.quant.jobs  # noqa: F401 - loaded once per worker, not on the first request


def _warm_up_worker() -> int:
    from aiotrade.quant import jobs

    jobs.warm_up()
    time.sleep(0.05)  # hold this worker a moment so the next warm-up lands on another one
    return os.getpid()


def _let_the_forkserver_go() -> None:
    """Close this worker's copy of the forkserver's "alive" pipe.

    The forkserver exits when every write end of that pipe is closed; multiprocessing hands one to each
    child (so it could start processes of its own), which would keep the forkserver — our parent — alive
    after the server died, and with it us. A worker starts no processes, so it gives its copy back: then
    the server's death ends the forkserver, and the forkserver's death ends us (`_die_with_parent`).
    """
    from multiprocessing import forkserver

    server = getattr(forkserver, "_forkserver", None)
    fd = getattr(server, "_forkserver_alive_fd", None)
    if server is not None and fd is not None:
        with contextlib.suppress(OSError):
            os.close(fd)
        server._forkserver_alive_fd = None


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent exits (prctl PR_SET_PDEATHSIG)."""
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # 1 = PR_SET_PDEATHSIG


# ----- helpers -------------------------------------------------------------------------------------


async def _wait_until(done: Callable[[], bool], timeout_s: float) -> bool:
    """Poll `done` every few ms for up to `timeout_s` (a process's exit has no event on the loop to await)."""
    for _ in range(max(1, math.ceil(timeout_s / _POLL_S))):
        if done():
            return True
        await asyncio.sleep(_POLL_S)
    return done()


def _processes(executor: ProcessPoolExecutor | None) -> dict[int, multiprocessing.process.BaseProcess]:
    """The executor's worker processes by pid (`_processes` is private but stable since Python 3.2)."""
    return dict(getattr(executor, "_processes", None) or {})


def _alive(pid: int) -> bool:
    """Whether `pid` is a running process (a zombie waiting to be reaped counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            state = stat.read().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in (b"Z", b"X")


__all__ = [
    "DOCUMENTED_MAX_CANDLES",
    "DOCUMENTED_MAX_PATH_STEPS",
    "ComputePool",
    "ComputeSettings",
    "ComputeStats",
    "available_cpus",
    "check_budget",
    "gather_bounded",
    "map_yielding",
    "serve_worker_count",
]
