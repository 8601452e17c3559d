"""Live portfolio: snapshot latency for 20 assets, and the stream's fan-out to 1,000 subscribers."""

from __future__ import annotations

import asyncio
import json
import tempfile
import time

import aiohttp
import psutil
import websockets

from bench.common import BENCH_HEADERS, api_args, api_env, free_port, paper_args, paper_env, process, summary

HOLDINGS = [
    "BTC",
    "ETH",
    "SOL",
    "BNB",
    "XRP",
    "ADA",
    "DOGE",
    "LTC",
    "DOT",
    "LINK",
    *(f"ALT{i:02d}" for i in range(1, 11)),
]
ACCOUNTS = json.dumps(
    [
        {
            "api_key": "paper-api-key",
            "secret": "paper-secret",
            "balances": {"USDT": "100000", **dict.fromkeys(HOLDINGS, "10")},
        }
    ]
)
TICKERS = "/api/v3/ticker/24hr"


async def _paper_stats(session: aiohttp.ClientSession, paper: str) -> dict:
    async with session.get(paper + "/__paper/stats") as r:
        return await r.json()


async def _fan_out(api_port: int, paper: str, subscribers: int, seconds: float, pid: int) -> dict[str, float]:
    url = f"ws://127.0.0.1:{api_port}/api/v1/portfolio/live/stream?account=paper"
    frames = 0
    async with aiohttp.ClientSession(headers=BENCH_HEADERS) as session:
        rss_before = psutil.Process(pid).memory_info().rss
        sockets = []
        for i in range(0, subscribers, 100):  # connect in waves, as clients would
            sockets += await asyncio.gather(
                *(
                    websockets.connect(url, max_queue=64, additional_headers=BENCH_HEADERS)
                    for _ in range(min(100, subscribers - i))
                )
            )
        await asyncio.gather(*(ws.recv() for ws in sockets))  # everyone has the first snapshot
        rss_connected = psutil.Process(pid).memory_info().rss
        before = (await _paper_stats(session, paper))["requests"].get(TICKERS, 0)
        first = sockets[0]
        stop_at = time.perf_counter() + seconds

        async def drain(ws) -> int:  # type: ignore[no-untyped-def]
            count = 0
            while (remaining := stop_at - time.perf_counter()) > 0:
                try:
                    await asyncio.wait_for(ws.recv(), remaining)
                    count += 1
                except TimeoutError:
                    break
            return count

        counts = await asyncio.gather(*(drain(ws) for ws in sockets))
        frames = counts[0]
        after = (await _paper_stats(session, paper))["requests"].get(TICKERS, 0)
        await asyncio.gather(*(ws.close() for ws in sockets))
        del first
    return {
        "updates": frames,
        "ticker_requests": after - before,
        "per_update": (after - before) / max(frames, 1),
        "min_frames": min(counts),
        "rss_before_mb": rss_before / 2**20,
        "rss_connected_mb": rss_connected / 2**20,
    }


async def live_section(quick: bool) -> str:
    seconds = 5.0 if quick else 10.0
    subscribers = 1000
    paper_port, api_port = free_port(), free_port()
    paper = f"http://127.0.0.1:{paper_port}"
    with tempfile.TemporaryDirectory() as data_dir:
        async with (
            process("paper-live", paper_args(paper_port),
                    paper_env(paper_port, latency_ms=5, weight_limit=10**9, extra_assets="10", accounts=ACCOUNTS),
                    paper + "/api/v3/ping"),
            process("aiotrade-live", api_args(api_port),
                    {**api_env(paper_port, data_dir, budget=1e9), "AIOTRADE_LIVE_INTERVAL_S": "1"},
                    f"http://127.0.0.1:{api_port}/readyz") as api_process,
        ):  # fmt: skip
            base = f"http://127.0.0.1:{api_port}"
            latencies: list[float] = []
            async with aiohttp.ClientSession(headers=BENCH_HEADERS) as session:
                for _ in range(30):
                    started = time.perf_counter()
                    async with session.get(base + "/api/v1/portfolio/live/snapshot") as r:
                        body = await r.json()
                    latencies.append((time.perf_counter() - started) * 1000)
            positions = len(body["snapshot"]["positions"])
            one = await _fan_out(api_port, paper, 1, seconds, api_process.pid)
            many = await _fan_out(api_port, paper, subscribers, seconds, api_process.pid)
    p50, p99 = summary(latencies)
    per_sub_kb = (many["rss_connected_mb"] - many["rss_before_mb"]) * 1024 / subscribers
    return "\n".join(
        [
            f"Snapshot of an account holding {positions} assets (20 priced against USDT, plus USDT), one ticker batch "
            "and one balance read per snapshot, paper exchange with 5 ms latency.",
            "",
            "| measure | value | target |",
            "|---|---:|---:|",
            f"| GET /portfolio/live/snapshot, p50 / p99 of 30 | {p50:.1f} / {p99:.1f} ms | |",
            f"| stream, 1 subscriber: updates in {seconds:.0f} s / ticker requests upstream / per update | "
            f"{one['updates']} / {one['ticker_requests']} / {one['per_update']:.2f} | |",
            f"| stream, {subscribers} subscribers: updates / ticker requests upstream / per update | "
            f"{many['updates']} / {many['ticker_requests']} / {many['per_update']:.2f} | same as 1 subscriber |",
            f"| slowest of the {subscribers} subscribers: updates received | {many['min_frames']} | |",
            f"| API process memory before / with {subscribers} subscribers | {many['rss_before_mb']:.0f} / "
            f"{many['rss_connected_mb']:.0f} MB ({per_sub_kb:.0f} KB each) | |",
        ]
    )
