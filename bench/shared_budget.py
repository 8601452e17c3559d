"""`make bench` section `shared_budget`: three API processes on one Redis keep one venue budget, and keep it when
Redis dies mid-run.

The paper exchange counts weight in 10 s windows (1,500 weight each: 300 ccxt units, ~75 tickers a second),
three `aiotrade serve` processes are each configured with the venue's *whole* budget, share it through one
redis-server (`AIOTRADE_REDIS_FALLBACK_REPLICAS=3`), and 16 closed-loop clients per process saturate the ticker
endpoint (the market-data cache off, so every request goes to the venue). After four whole windows Redis is
SIGKILLed; the run goes on for two more windows on the processes' fallback shares. Targets (issue 11): every
whole window >= 90% used with Redis, 0 x 429 throughout, every request answered.

Usage: python -m bench --only shared_budget [--quick]
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import signal
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from bench.common import api_args, api_env, free_port, load, paper_args, paper_env, process

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.support: the redis-server helper the tests use
from tests.support.servers import start_redis  # noqa: E402

WINDOW_S = 10
WEIGHT_LIMIT = 1_500
CLIENTS_PER_PROCESS = 16


async def shared_budget_section(quick: bool) -> str:
    shared_windows, fallback_windows = (2, 1) if quick else (4, 2)
    redis = start_redis()
    paper_port, ports = free_port(), [free_port() for _ in range(3)]
    try:
        with contextlib.ExitStack() as dirs:
            data_dirs = [dirs.enter_context(tempfile.TemporaryDirectory()) for _ in ports]
            async with contextlib.AsyncExitStack() as stack:
                await stack.enter_async_context(
                    process(
                        "paper-shared-budget",
                        paper_args(paper_port),
                        paper_env(
                            paper_port, latency_ms=5, weight_limit=WEIGHT_LIMIT, weight_window_ms=str(WINDOW_S * 1000)
                        ),
                        f"http://127.0.0.1:{paper_port}/api/v3/ping",
                    )
                )
                for i, port in enumerate(ports):
                    env = {
                        **api_env(paper_port, data_dirs[i], budget=WEIGHT_LIMIT / 5),  # the whole budget, each
                        "AIOTRADE_VENUES__PAPER__RATE_LIMIT__WINDOW_S": str(WINDOW_S),
                        "AIOTRADE_VENUES__PAPER__RATE_LIMIT__BURST": "0.03",
                        "AIOTRADE_VENUES__PAPER__RATE_LIMIT__LATENCY_ALLOWANCE_S": "0.2",
                        "AIOTRADE_REDIS_URL": redis.url,
                        "AIOTRADE_REDIS_FALLBACK_REPLICAS": "3",
                        "AIOTRADE_CACHE__ENABLED": "false",
                    }
                    await stack.enter_async_context(
                        process(f"aiotrade-shared-{i}", api_args(port), env, f"http://127.0.0.1:{port}/readyz")
                    )
                first = (math.floor(time.time() / WINDOW_S) + 1) * WINDOW_S  # the first whole window
                kill_at = first + shared_windows * WINDOW_S + WINDOW_S / 2  # mid-window
                until = first + (shared_windows + fallback_windows + 1) * WINDOW_S
                runs = asyncio.gather(
                    *(
                        load(f"http://127.0.0.1:{port}", f"api{i}", CLIENTS_PER_PROCESS, until - time.time(), 0)
                        for i, port in enumerate(ports)
                    )
                )
                await asyncio.sleep(kill_at - time.time())
                redis.stop(signal.SIGKILL)
                results = await runs
                async with (
                    aiohttp.ClientSession() as session,
                    session.get(f"http://127.0.0.1:{paper_port}/__paper/stats") as response,
                ):
                    stats = await response.json()
    finally:
        redis.stop(signal.SIGKILL)
    used = {int(w["window_start"]) // 1000: int(w["used"]) for w in stats["weight"]}
    rows = []
    for k in range(shared_windows + fallback_windows):
        start = first + k * WINDOW_S
        phase = "shared" if start + WINDOW_S <= kill_at else "Redis killed" if start < kill_at else "fallback"
        weight = used.get(start, 0)
        rows.append(f"| {k + 1} | {phase} | {weight} | {WEIGHT_LIMIT} | {weight / WEIGHT_LIMIT:.1%} |")
    ok = sum(r.ok for r in results)
    errors = sum(r.errors for r in results)
    return "\n".join(
        [
            f"Three `serve` processes, each configured with the venue's whole budget ({WEIGHT_LIMIT} weight per "
            f"{WINDOW_S} s window), sharing it through one Redis; {CLIENTS_PER_PROCESS} closed-loop clients per "
            "process on the ticker endpoint (cache off); Redis SIGKILLed mid-window after "
            f"{shared_windows} whole windows.",
            "",
            "| window | phase | weight the venue counted | budget | used |",
            "|---:|---|---:|---:|---:|",
            *rows,
            "",
            f"429 from the venue: {stats['statuses'].get('429', 0)}, 418: {stats['statuses'].get('418', 0)} "
            f"(target 0). Answers: {ok} ok, {errors} errors (target 0). Targets: whole windows with Redis >= 90% "
            "used; after Redis is gone each process keeps 1/3 of the budget.",
        ]
    )
