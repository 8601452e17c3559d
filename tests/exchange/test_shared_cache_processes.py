"""One market-data cache for three API processes: the real thing, on loopback.

A real redis-server, the paper exchange in its own process (100 ms per answer, so a fetch is in flight while
the others arrive), and three `python -m aiotrade serve` processes sharing the Redis. A thousand identical
ticker requests hit all three at once: the venue's own counter must show one request between them (without
Redis it would be one per process at least)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from pathlib import Path

import httpx

from tests.support.servers import api_env, free_port, paper_env, serve_process, start_redis
from tests.support.stack import auth_headers

TICKER_PATH = "/api/v3/ticker/24hr"
PROCESSES = 3
PER_PROCESS = 334  # about a thousand in all


async def upstream_requests(http: httpx.AsyncClient) -> dict[str, int]:
    return (await http.get("/__paper/stats")).json()["requests"]


async def settled(http: httpx.AsyncClient) -> None:
    """Until the processes' start-up work (equity recorders, warm-up) stops asking the venue anything."""
    last: dict[str, int] = {}
    for _ in range(50):
        now = await upstream_requests(http)
        if now == last:
            return
        last = now
        await asyncio.sleep(0.4)


async def test_three_api_processes_sharing_redis_make_one_upstream_request_for_identical_reads(
    tmp_path: Path,
) -> None:
    redis = start_redis()
    paper_port, api_ports = free_port(), [free_port() for _ in range(PROCESSES)]
    try:
        async with contextlib.AsyncExitStack() as stack:
            paper = await stack.enter_async_context(
                serve_process(
                    "paper",
                    ["paper"],
                    paper_env(paper_port, latency_ms=100),
                    port=paper_port,
                    ready_path="/api/v3/ping",
                    log_dir=tmp_path,
                )
            )

            def api(i: int) -> contextlib.AbstractAsyncContextManager:
                env = api_env(paper.url, tmp_path / f"api{i}", redis_url=redis.url, cache__ticker_ttl_s=30)
                args = ["serve", "--port", str(api_ports[i])]
                return serve_process(f"api{i}", args, env, port=api_ports[i], ready_path="/readyz", log_dir=tmp_path)

            apis = await asyncio.gather(*(stack.enter_async_context(api(i)) for i in range(PROCESSES)))
            venue = await stack.enter_async_context(httpx.AsyncClient(base_url=paper.url))
            limits = httpx.Limits(max_connections=PER_PROCESS)
            clients = [
                await stack.enter_async_context(
                    httpx.AsyncClient(base_url=served.url, headers=auth_headers(), timeout=30, limits=limits)
                )
                for served in apis
            ]
            for client in clients:  # each process has verified the key and loaded its markets
                assert (await client.get("/api/v1/exchanges/paper/markets")).status_code == 200
            await settled(venue)
            before = (await upstream_requests(venue)).get(TICKER_PATH, 0)
            answers = await asyncio.gather(
                *(
                    client.get("/api/v1/exchanges/paper/ticker", params={"symbol": "ETH/BTC"})
                    for client in clients
                    for _ in range(PER_PROCESS)
                )
            )
            after = (await upstream_requests(venue)).get(TICKER_PATH, 0)
    finally:
        redis.stop(signal.SIGKILL)
    assert {r.status_code for r in answers} == {200}
    assert after - before == 1, {r.json()["last"] for r in answers}
    assert len({r.json()["last"] for r in answers}) == 1
    assert all("Age" in r.headers for r in answers)
