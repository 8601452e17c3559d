"""One venue budget for three API processes: the real thing, on loopback.

A real redis-server, the paper exchange in its own process with a 5 s weight window, and three
`python -m aiotrade serve` processes each configured with the venue's *full* budget. Clients saturate the
ticker endpoint of all three (the market-data cache switched off, so every request goes to the venue).
The venue's own ledger (`/__paper/stats`) must show no 429 and whole windows at least 90% used; then Redis
is killed mid-window, and the venue must still see no 429 while every process keeps answering.
The control: three pools with the same full budget, nothing shared (and deaf to the venue's usage header,
which would otherwise slow them down after the fact) do get 429s.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import signal
import time
from pathlib import Path

import httpx

from aiotrade.config import AccountConfig, RateLimitConfig, RetryConfig, Settings, VenueConfig
from aiotrade.exchange.pool import ExchangePool, SharedLimitSettings
from aiotrade.paper.config import PaperConfig
from aiotrade.paper.server import PaperExchange
from tests.support.servers import api_env, free_port, paper_env, serve_process, start_redis
from tests.support.stack import auth_headers

SYMBOLS = ["BTC/USDT", "ETH/USDT", "ETH/BTC", "SOL/USDT", "BNB/USDT", "XRP/USDT", "ADA/USDT", "DOGE/USDT"]
WINDOW_S = 5
WEIGHT_LIMIT = 600  # per window at the venue: 120 ccxt units, 60 tickers a second (three loaded processes keep up)
BUDGET_UNITS = WEIGHT_LIMIT / 5


class Load:
    """Closed-loop clients on each API: every answer is counted by status, before and after a moment."""

    def __init__(self) -> None:
        self.statuses: dict[int, int] = {}
        self.ok_after_kill = 0
        self.killed_at: float | None = None
        self.counter = 0

    async def run(self, url: str, clients: int, until: float) -> None:
        async with httpx.AsyncClient(base_url=url, timeout=30, headers=auth_headers()) as http:
            await asyncio.gather(*(self._client(http, until) for _ in range(clients)))

    async def _client(self, http: httpx.AsyncClient, until: float) -> None:
        while time.time() < until:
            symbol = SYMBOLS[self.counter % len(SYMBOLS)]
            self.counter += 1
            try:
                status = (await http.get("/api/v1/exchanges/paper/ticker", params={"symbol": symbol})).status_code
            except httpx.HTTPError:
                status = 0
            self.statuses[status] = self.statuses.get(status, 0) + 1
            if status == 200 and self.killed_at is not None and time.time() > self.killed_at:
                self.ok_after_kill += 1


async def test_three_api_processes_keep_one_venue_budget_and_keep_it_without_redis(tmp_path: Path) -> None:
    redis = start_redis()
    paper_port, api_ports = free_port(), [free_port() for _ in range(3)]
    paper_settings = {"weight_limit": WEIGHT_LIMIT, "weight_window_ms": WINDOW_S * 1000, "latency_ms": 1}
    try:
        async with contextlib.AsyncExitStack() as stack:
            paper = await stack.enter_async_context(
                serve_process(
                    "paper",
                    ["paper"],
                    paper_env(paper_port, **paper_settings),
                    port=paper_port,
                    ready_path="/api/v3/ping",
                    log_dir=tmp_path,
                )
            )

            def api(i: int) -> contextlib.AbstractAsyncContextManager:
                data_dir = tmp_path / f"api{i}"
                env = api_env(
                    paper.url,
                    data_dir,
                    redis_url=redis.url,
                    redis_fallback_replicas=3,
                    cache__enabled="false",  # every request goes upstream: the budget, not the cache, is tested
                    venues__paper__rate_limit__budget=BUDGET_UNITS,  # every process: the venue's whole budget
                    venues__paper__rate_limit__window_s=WINDOW_S,
                    venues__paper__rate_limit__burst=0.03,
                    venues__paper__rate_limit__latency_allowance_s=0.2,
                )
                args = ["serve", "--port", str(api_ports[i])]
                return serve_process(f"api{i}", args, env, port=api_ports[i], ready_path="/readyz", log_dir=tmp_path)

            apis = await asyncio.gather(*(stack.enter_async_context(api(i)) for i in range(3)))

            load = Load()
            started = time.time()
            first_window = (math.floor(started / WINDOW_S) + 1) * WINDOW_S  # the first whole window
            kill_at = first_window + 2 * WINDOW_S + 1.0  # two whole windows shared, then Redis dies mid-window
            until = kill_at + 6.0
            runs = asyncio.gather(*(load.run(served.url, 12, until) for served in apis))
            await asyncio.sleep(kill_at - time.time())
            load.killed_at = time.time()
            redis.stop(signal.SIGKILL)
            await runs
            async with httpx.AsyncClient(base_url=paper.url) as http:
                stats = (await http.get("/__paper/stats")).json()
            alive = [served.proc.returncode is None for served in apis]
            logs = [served.log_text() for served in apis]
    finally:
        redis.stop(signal.SIGKILL)

    windows = {int(w["window_start"]) // 1000: int(w["used"]) for w in stats["weight"]}
    shared = [windows.get(first_window + k * WINDOW_S, 0) for k in range(2)]
    assert stats["statuses"].get("429", 0) == 0 and stats["rate_limited"] == 0, stats
    assert stats["statuses"].get("418", 0) == 0, stats
    assert all(used >= 0.9 * WEIGHT_LIMIT for used in shared), (shared, windows)
    assert max(windows.values()) <= WEIGHT_LIMIT
    assert all(alive)
    assert set(load.statuses) == {200}, load.statuses  # no error while Redis went away
    assert load.ok_after_kill > 50, load.ok_after_kill  # and the processes kept answering on their shares
    assert all("falls back" in text for text in logs), logs[0][-2000:]


async def test_control_three_pools_with_the_full_budget_sharing_nothing_overrun_the_venue() -> None:
    window_s, weight_limit = 2, 400
    paper_config = PaperConfig(port=0, weight_limit=weight_limit, weight_window_ms=window_s * 1000)
    async with PaperExchange(paper_config) as paper:
        config = Settings(
            venues={
                "paper": VenueConfig(
                    base_url=paper.url, rate_limit=RateLimitConfig(budget=weight_limit / 5, window_s=window_s)
                )
            },
            accounts={"paper": AccountConfig(venue="paper", api_key="paper-api-key", secret="paper-secret")},
            retry=RetryConfig(attempts=1),
        )
        async with contextlib.AsyncExitStack() as stack:
            pools = [
                await stack.enter_async_context(ExchangePool(config, shared=SharedLimitSettings())) for _ in range(3)
            ]
            for pool in pools:
                await pool.markets("paper")
                # Deaf to the venue's usage header as well: re-sync alone would slow them down after the fact.
                pool.limiter("paper").observe_usage = lambda headers, account=None: None  # type: ignore[method-assign]

            async def saturate(pool: ExchangePool, until: float) -> None:
                i = 0
                while time.monotonic() < until:
                    i += 1
                    symbol = SYMBOLS[i % len(SYMBOLS)]
                    with contextlib.suppress(Exception):
                        await pool.read("paper", lambda c, s=symbol: c.fetch_ticker(s))

            until = time.monotonic() + 2.5 * window_s
            await asyncio.gather(*(saturate(pool, until) for pool in pools for _ in range(8)))
    assert paper.stats.rate_limited > 0
