"""`make bench`: the numbers in docs/benchmarks.md, measured side by side in one run.

Sections (all against the paper exchange in its own process, on loopback):
- ticker: throughput and p50/p99 of GET /api/v1/exchanges/paper/ticker at several concurrencies,
  aiotrade vs the design we replace (sync ccxt in run_in_executor, bench/baseline_app.py),
  with 50 ms injected upstream latency, distinct symbols round-robin, no caching.
- limiter: requests the exchange accepted per minute window against its weight budget, and 429s.
- auth: what checking an API key costs at c=256, the key checked vs the check bypassed (bench/auth.py).
- logging: what logging and metrics cost on the ticker path, with and without them (bench/logging_cost.py).
- compute: /healthz beside four maximum probability requests, one request against its maths alone, portfolio
  risk's loop stall and ticker p99 with and without the load (bench/compute.py).

Usage: python -m bench [--quick] [--only ticker,limiter]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence

import aiohttp

from bench.common import (
    TICKER_PATH,
    LoadResult,
    api_env,
    free_port,
    load,
    paper_args,
    paper_env,
    paper_ticker,
    process,
)


async def ticker_section(quick: bool) -> str:
    seconds, warmup = (4.0, 1.0) if quick else (10.0, 2.0)
    paper_port, ours_port, base_port = free_port(), free_port(), free_port()
    rows: list[tuple[LoadResult, LoadResult]] = []
    with tempfile.TemporaryDirectory() as data_dir:
        async with (
            process(
                "paper",
                paper_args(paper_port),
                paper_env(paper_port, latency_ms=50, weight_limit=1_000_000_000),
                f"http://127.0.0.1:{paper_port}/api/v3/ping",
            ),
            process(
                "aiotrade",
                [sys.executable, "-m", "aiotrade", "serve", "--port", str(ours_port)],
                # The uncached path, as the text says (the cache has its own section).
                {**api_env(paper_port, data_dir, budget=1e9), "AIOTRADE_CACHE__ENABLED": "false"},
                f"http://127.0.0.1:{ours_port}/readyz",
            ),
            process(
                "baseline",
                [sys.executable, "-m", "uvicorn", "bench.baseline_app:app", "--port", str(base_port),
                 "--log-level", "warning", "--no-access-log"],
                {"AIOTRADE_BASELINE_PAPER_URL": f"http://127.0.0.1:{paper_port}"},
                f"http://127.0.0.1:{base_port}{TICKER_PATH}?symbol=BTC/USDT",
            ),
        ):  # fmt: skip
            for concurrency in (8, 64, 256):
                ours = await load(f"http://127.0.0.1:{ours_port}", "aiotrade", concurrency, seconds, warmup)
                base = await load(f"http://127.0.0.1:{base_port}", "baseline", concurrency, seconds, warmup)
                rows.append((ours, base))
            # The upstream as a client sees it, without us: what "50 ms injected" really costs here.
            direct = await load(f"http://127.0.0.1:{paper_port}", "paper", 8, seconds, warmup, paper_ticker)
            ours_again = await load(f"http://127.0.0.1:{ours_port}", "aiotrade", 8, seconds, warmup)
    lines = [
        f"Ticker endpoint, paper exchange with 50 ms injected latency, {seconds:.0f} s per cell "
        f"after {warmup:.0f} s warm-up, closed-loop clients, 12 symbols round-robin, no caching.",
        "",
        "| concurrency | aiotrade req/s | p50 ms | p99 ms | errors | baseline req/s | p50 ms | p99 ms | errors "
        "| throughput ratio |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for ours, base in rows:
        ratio = ours.throughput / base.throughput if base.throughput else float("inf")
        lines.append(
            f"| {ours.concurrency} | {ours.throughput:.0f} | {ours.percentile(0.5):.1f} | "
            f"{ours.percentile(0.99):.1f} | {ours.errors} | {base.throughput:.0f} | {base.percentile(0.5):.1f} | "
            f"{base.percentile(0.99):.1f} | {base.errors} | {ratio:.1f}x |"
        )
    light = rows[0][0]
    top_ratio = rows[-1][0].throughput / max(rows[-1][1].throughput, 1e-9)
    overhead = ours_again.percentile(0.5) - direct.percentile(0.5)
    lines += [
        "",
        f"Concurrency 8, measured back to back: the paper exchange asked directly p50 {direct.percentile(0.5):.1f} ms "
        f"(p99 {direct.percentile(0.99):.1f}); through aiotrade p50 {ours_again.percentile(0.5):.1f} ms "
        f"(p99 {ours_again.percentile(0.99):.1f}); our overhead at p50 {overhead:.1f} ms (target: at most 2 ms above "
        f"the upstream; first pass p50 {light.percentile(0.5):.1f} ms).",
        f"Throughput ratio at 256: {top_ratio:.1f}x (target: at least 10x).",
    ]
    return "\n".join(lines)


async def limiter_section(quick: bool) -> str:
    """Saturate a small budget for whole minute windows and read the paper exchange's own counters."""
    weight_limit = 600  # Binance weight per minute at the paper exchange
    budget_units = weight_limit / 5  # ccxt cost units: binance cost 1 = weight 5
    windows = 1 if quick else 2
    paper_port, ours_port = free_port(), free_port()
    with tempfile.TemporaryDirectory() as data_dir:
        async with (
            process(
                "paper-limiter",
                paper_args(paper_port),
                paper_env(paper_port, latency_ms=5, weight_limit=weight_limit),
                f"http://127.0.0.1:{paper_port}/api/v3/ping",
            ),
            process(
                "aiotrade-limiter",
                [sys.executable, "-m", "aiotrade", "serve", "--port", str(ours_port)],
                # Keep the equity recorder out of the measured minutes: they show the ticker load alone.
                # And the market-data cache off: every request goes to the venue, which is what is measured.
                {
                    **api_env(paper_port, data_dir, budget=budget_units),
                    "AIOTRADE_EQUITY_INTERVAL_S": "3600",
                    "AIOTRADE_CACHE__ENABLED": "false",
                },
                f"http://127.0.0.1:{ours_port}/readyz",
            ),
        ):
            # Start at the next minute boundary + 1 s, run `windows` whole windows plus a margin.
            now = time.time()
            start = (int(now // 60) + 1) * 60 + 1
            await asyncio.sleep(start - now)
            await load(f"http://127.0.0.1:{ours_port}", "aiotrade", 32, windows * 60 + 2, 0)
            async with (
                aiohttp.ClientSession() as session,
                session.get(f"http://127.0.0.1:{paper_port}/__paper/stats") as response,
            ):
                stats = await response.json()
    per_window = _weight_windows(stats)
    whole = [w for minute, w in per_window.items() if start // 60 <= minute < start // 60 + windows]
    rejected = _rejections(stats)
    utilisation = [w / weight_limit for w in whole]
    return "\n".join(
        [
            f"Rate limiter: paper exchange budget {weight_limit} weight/min (= {budget_units:.0f} ccxt units), "
            f"aiotrade limiter set to the same budget, 32 clients saturating the ticker endpoint for {windows} "
            "whole minute windows.",
            "",
            "| window | weight accepted | budget | utilisation |",
            "|---:|---:|---:|---:|",
            *(
                f"| {i + 1} | {w} | {weight_limit} | {u:.1%} |"
                for i, (w, u) in enumerate(zip(whole, utilisation, strict=True))
            ),
            "",
            f"429 answers from the exchange: {rejected} (target 0). Target utilisation: at least 95%.",
            "",
            "Raw stats: `" + json.dumps(stats)[:400] + "`",
        ]
    )


def _weight_windows(stats: dict) -> dict[int, int]:
    """{minute index: weight used} from the paper exchange's `GET /__paper/stats`."""
    return {int(w["window_start"]) // 60_000: int(w["used"]) for w in stats["weight"]}


def _rejections(stats: dict) -> int:
    return int(stats["statuses"].get("429", 0))


async def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--quick", action="store_true", help="shorter runs (noisier figures)")
    parser.add_argument(
        "--only",
        default="ticker,limiter,cache,shared_budget,orders,gate,risk,live,auth,compute,logging",
        help="comma-separated sections",
    )
    args = parser.parse_args(argv)
    from bench.auth import auth_section
    from bench.cache import cache_section
    from bench.compute import compute_section
    from bench.gate import gate_section
    from bench.live import live_section
    from bench.logging_cost import logging_section
    from bench.orders import orders_section
    from bench.risk import risk_section
    from bench.shared_budget import shared_budget_section

    sections = {
        "ticker": ticker_section,
        "limiter": limiter_section,
        "cache": cache_section,
        "shared_budget": shared_budget_section,
        "orders": orders_section,
        "gate": gate_section,
        "risk": risk_section,
        "live": live_section,
        "compute": compute_section,
        "auth": auth_section,
        "logging": logging_section,
    }
    print(f"# aiotrade benchmark — {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
          f"{os.cpu_count()} cores, `python -m bench {' '.join(argv or sys.argv[1:])}`\n")  # fmt: skip
    for name in args.only.split(","):
        print(f"## {name}\n")
        print(await sections[name.strip()](args.quick))
        print()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
