"""The load profile cannot rot: a few seconds of it, every task of every user class run at least once, against
the real app on a real socket (uvicorn, in this process) over real ccxt and the paper exchange. Any failure,
any endpoint the profile no longer reaches, fails the test."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest
import uvicorn
from loadtest.__main__ import LOCUSTFILE, read_failures, read_stats

from aiotrade.paper.config import PaperConfig
from aiotrade.paper.server import PaperExchange
from tests.support.servers import free_port
from tests.support.stack import TEST_API_KEY, app_instance, stack_settings

EVERY_REQUEST = {
    "GET ticker", "GET tickers", "GET orderbook", "GET trades", "GET ohlcv", "GET markets", "GET status",
    "POST order", "DELETE order", "GET orders", "GET live snapshot", "POST validate-trade",
    "POST position-size", "POST risk portfolio", "POST probability", "POST allocations", "WS first snapshot",
}  # fmt: skip


@pytest.mark.timeout(60)
async def test_a_short_run_of_the_profile_reaches_every_endpoint_without_a_failure(tmp_path: Path) -> None:
    async with PaperExchange(PaperConfig(port=0, seed=7, weight_limit=500_000)) as paper:
        settings = stack_settings(paper.url, tmp_path, live_interval_s=0.2)
        async with app_instance(settings) as (app, _):
            port = free_port()
            server = uvicorn.Server(
                uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning")
            )
            serving = asyncio.create_task(server.serve())
            try:
                while not server.started:  # noqa: ASYNC110 (uvicorn offers no event to wait on)
                    await asyncio.sleep(0.05)
                await run_locust(f"http://127.0.0.1:{port}", tmp_path, seconds=6)
            finally:
                server.should_exit = True
                await serving

    figures = {f.name: f for f in read_stats(tmp_path / "locust_stats.csv")}
    assert read_failures(tmp_path / "locust_failures.csv") == []
    assert set(figures) >= EVERY_REQUEST, EVERY_REQUEST - set(figures)
    assert figures["Aggregated"].failures == 0 and figures["Aggregated"].requests >= len(EVERY_REQUEST)
    frames = json.loads((tmp_path / "stream_frames.json").read_text())
    assert frames.get("snapshot", 0) >= 1 and frames.get("event", 0) >= 1  # the trader's orders reach the stream


async def run_locust(host: str, folder: Path, *, seconds: int) -> None:
    env = {
        **os.environ,
        "LOADTEST_HOSTS": host,
        "LOADTEST_API_KEY": TEST_API_KEY,
        "LOADTEST_STREAMS": "1",  # and 9 HTTP users: 6 market data, 2 traders, 1 quant
        "LOADTEST_PACE": "0.2",
        "LOADTEST_SMOKE": "1",
        "LOADTEST_STREAM_FILE": str(folder / "stream_frames.json"),
    }
    command = [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--only-summary", "-u", "10", "-r", "10",
        "-t", f"{seconds}s", "--stop-timeout", "5", "--host", host, "--csv", str(folder / "locust"),
    ]  # fmt: skip
    proc = await asyncio.create_subprocess_exec(
        *command, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    try:
        _, errors = await asyncio.wait_for(proc.communicate(), seconds + 30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert (folder / "locust_stats.csv").exists(), errors.decode(errors="replace")[-3000:]
