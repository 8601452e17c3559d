"""`python -m loadtest`: the locust profile (loadtest/locustfile.py) headless against the production shape
on loopback (loadtest/stack.py), for a bounded time; prints and records rps, p50/p95/p99 and failures per
endpoint, the venue's 429s and duplicate orders at the venue.

``--soak`` runs longer and also judges: the memory of every API process and compute worker flat after
warm-up (growth < 10 %; the paper exchange is reported, not judged: it keeps every order), open descriptors
flat, 0 failures, 0 duplicate orders, 0 × 429 at the venue; the exit code says whether it held. Reports go
to ``--report-dir`` (default: $TMPDIR/aiotrade-loadtest) as JSON and Markdown.

Usage: python -m loadtest [--seconds 60 | --soak --minutes 10] [--users 30] [--replicas 2] [--streams 3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import hashlib
import hmac
import json
import os
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlencode

import httpx
import psutil

from aiotrade.config import PAPER_API_KEY, PAPER_SECRET
from loadtest.stack import API_KEY, Server, Shape, production_shape, stop

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
ACCOUNT = "paper"
TRADED = ["BTCUSDT"]  # what the Trader places orders on
SAMPLE_EVERY_S = 5.0
MEMORY_GROWTH_LIMIT = 0.10


@dataclass
class Sample:
    at_s: float
    rss_mb: float
    fds: int
    cpu_s: float  # user + system since the process started


@dataclass
class EndpointFigures:
    name: str
    requests: int
    failures: int
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m loadtest", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60, help="length of a load run (default 60)")
    parser.add_argument("--soak", action="store_true", help="a soak: longer, judged for growth and errors")
    parser.add_argument("--minutes", type=float, default=float(os.environ.get("AIOTRADE_SOAK_MINUTES", 10)))
    parser.add_argument("--users", type=int, default=30, help="HTTP users (market data : trader : quant = 6:2:1)")
    parser.add_argument("--streams", type=int, default=3, help="live-stream subscribers")
    parser.add_argument("--replicas", type=int, default=2, help="`aiotrade serve` processes")
    parser.add_argument("--venue-latency-ms", type=float, default=20, help="added by the paper exchange")
    parser.add_argument("--no-redis", action="store_true", help="replicas share nothing but the database")
    parser.add_argument("--pace", type=float, default=1.0, help="multiplies every user's wait (< 1: busier)")
    parser.add_argument("--report-dir", type=Path, default=Path(tempfile.gettempdir()) / "aiotrade-loadtest")
    args = parser.parse_args()
    seconds = args.minutes * 60 if args.soak else args.seconds
    report = asyncio.run(run(args, seconds))
    sys.exit(0 if report["verdict"]["ok"] else 1)


async def run(args: argparse.Namespace, seconds: float) -> dict:
    args.report_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="aiotrade-loadtest-") as folder:
        work = Path(folder)
        async with production_shape(
            work, replicas=args.replicas, venue_latency_ms=args.venue_latency_ms, redis=not args.no_redis
        ) as shape:
            await prepare(shape)
            samples: dict[str, list[Sample]] = {}
            sampler = asyncio.create_task(sample(shape, samples, time.monotonic()))
            try:
                await run_locust(shape, args, seconds, work / "locust")
            finally:
                sampler.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sampler
            venue = await venue_figures(shape.paper)
        figures = read_stats(work / "locust_stats.csv")
        failures = read_failures(work / "locust_failures.csv")
        frames_file = work / "stream_frames.json"
        frames = json.loads(frames_file.read_text()) if frames_file.exists() else {}
    report = build_report(args, seconds, shape, figures, failures, venue, samples)
    report["stream_frames"] = frames
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    kind = "soak" if args.soak else "load"
    (args.report_dir / f"{kind}-{stamp}.json").write_text(json.dumps(report, indent=2))
    markdown = render(report)
    (args.report_dir / f"{kind}-{stamp}.md").write_text(markdown)
    print(markdown)
    print(f"\nreports: {args.report_dir}/{kind}-{stamp}.{{json,md}}")
    return report


async def prepare(shape: Shape) -> None:
    """Room in the account's order rate for the traders (the default 60 a minute is a human's), stats zeroed."""
    async with httpx.AsyncClient(base_url=shape.replicas[0].url, headers={"Authorization": f"Bearer {API_KEY}"}) as api:
        limits = (await api.get(f"/api/v1/accounts/{ACCOUNT}/risk-limits")).json()
        limits["max_orders_per_minute"] = 6000
        answer = await api.put(f"/api/v1/accounts/{ACCOUNT}/risk-limits", json=limits)
        answer.raise_for_status()
    async with httpx.AsyncClient() as client:
        (await client.post(shape.paper.url + "/__paper/stats/reset")).raise_for_status()


async def run_locust(shape: Shape, args: argparse.Namespace, seconds: float, prefix: Path) -> None:
    env = {
        **os.environ,
        "LOADTEST_HOSTS": ",".join(r.url for r in shape.replicas),
        "LOADTEST_API_KEY": API_KEY,
        "LOADTEST_ACCOUNT": ACCOUNT,
        "LOADTEST_STREAMS": str(args.streams),
        "LOADTEST_PACE": str(args.pace),
        "LOADTEST_STREAM_FILE": str(prefix.with_name("stream_frames.json")),
    }
    users = args.users + args.streams
    command = [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--only-summary",
        "-u", str(users), "-r", str(max(1, users // 5)), "-t", f"{int(seconds)}s", "--stop-timeout", "25",
        "--host", shape.replicas[0].url, "--csv", str(prefix), "--loglevel", "WARNING",
    ]  # fmt: skip
    proc = await asyncio.create_subprocess_exec(*command, env=env, stdout=sys.stderr, stderr=sys.stderr)
    shape.servers.append(Server("locust", proc, "", prefix))  # its CPU share is sampled too (not judged)
    try:
        await asyncio.wait_for(proc.wait(), seconds + 90)
    finally:
        await stop(proc)


async def sample(shape: Shape, samples: dict[str, list[Sample]], started: float) -> None:
    """RSS and open descriptors of every server process and its workers, every few seconds."""
    while True:
        for server in shape.servers:
            for name, process in _processes(server):
                with contextlib.suppress(psutil.Error):
                    rss = process.memory_info().rss / 2**20
                    cpu = process.cpu_times()
                    at = round(time.monotonic() - started, 1)
                    samples.setdefault(name, []).append(
                        Sample(at, round(rss, 1), process.num_fds(), round(cpu.user + cpu.system, 2))
                    )
        await asyncio.sleep(SAMPLE_EVERY_S)


def _processes(server: Server) -> list[tuple[str, psutil.Process]]:
    try:
        top = psutil.Process(server.proc.pid)
        children = top.children(recursive=True)
    except psutil.Error:
        return []
    return [(server.name, top)] + [(f"{server.name}/worker {child.pid}", child) for child in children]


async def venue_figures(paper: Server) -> dict:
    """The venue's own account: its 429s, and every order it holds grouped by our client order id."""
    async with httpx.AsyncClient(base_url=paper.url, timeout=30) as venue:
        stats = (await venue.get("/__paper/stats")).json()
        by_client_id: Counter[str] = Counter()
        for symbol in TRADED:
            from_id = 0
            while True:
                page = await _signed(venue, "/api/v3/allOrders", symbol=symbol, orderId=from_id, limit=1000)
                for order in page:
                    by_client_id[order["clientOrderId"]] += 1
                if len(page) < 1000:
                    break
                from_id = page[-1]["orderId"] + 1
    return {
        "http_429": stats["statuses"].get("429", 0),
        "rate_limited": stats["rate_limited"],
        "requests": stats["requests_total"],
        "orders": sum(by_client_id.values()),
        "duplicate_orders": sum(n - 1 for n in by_client_id.values() if n > 1),
    }


async def _signed(venue: httpx.AsyncClient, path: str, **params: object) -> list[dict]:
    query = urlencode({**params, "timestamp": int(time.time() * 1000), "recvWindow": 10_000})
    signature = hmac.new(PAPER_SECRET.encode(), query.encode(), hashlib.sha256).hexdigest()
    answer = await venue.get(f"{path}?{query}&signature={signature}", headers={"X-MBX-APIKEY": PAPER_API_KEY})
    answer.raise_for_status()
    return answer.json()


def read_stats(path: Path) -> list[EndpointFigures]:
    with path.open() as file:
        return [
            EndpointFigures(
                name=row["Name"] if row["Type"] in ("", "None") else f"{row['Name']}",
                requests=int(row["Request Count"]),
                failures=int(row["Failure Count"]),
                rps=round(float(row["Requests/s"]), 1),
                p50_ms=_ms(row["50%"]),
                p95_ms=_ms(row["95%"]),
                p99_ms=_ms(row["99%"]),
            )
            for row in csv.DictReader(file)
        ]


def read_failures(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with path.open() as file:
        return [{"name": r["Name"], "error": r["Error"][:300], "count": r["Occurrences"]} for r in csv.DictReader(file)]


def _ms(value: str) -> float:
    return float(value) if value not in ("", "N/A") else float("nan")


def build_report(
    args: argparse.Namespace,
    seconds: float,
    shape: Shape,
    figures: list[EndpointFigures],
    failures: list[dict[str, str]],
    venue: dict,
    samples: dict[str, list[Sample]],
) -> dict:
    warm_up_s = min(120.0, seconds * 0.2)
    memory = {name: _growth(series, warm_up_s) for name, series in samples.items()}
    total = next((f for f in figures if f.name == "Aggregated"), None)
    checks = {
        "no failures": total is not None and total.failures == 0,
        "no duplicate orders": venue["duplicate_orders"] == 0,
        "no 429 at the venue": venue["http_429"] == 0,
    }
    if args.soak:
        # Our processes are judged; the paper exchange stands in for the venue and keeps every order it took,
        # and locust is the load.
        ours = [m for name, m in memory.items() if name.startswith("api")]
        checks["memory flat after warm-up (< 10 %)"] = all(m["growth"] < MEMORY_GROWTH_LIMIT for m in ours)
        checks["descriptors flat after warm-up"] = all(
            m["fd_growth"] <= max(10, m["fds_start"] // 10) for m in memory.values()
        )
    return {
        "kind": "soak" if args.soak else "load",
        "command": " ".join(["python -m loadtest", *sys.argv[1:]]),
        "seconds": seconds,
        "users": args.users,
        "streams": args.streams,
        "replicas": len(shape.replicas),
        "database": shape.database,
        "redis": shape.redis,
        "venue_latency_ms": args.venue_latency_ms,
        "cpus": os.cpu_count(),
        "endpoints": [asdict(f) for f in figures],
        "failures": failures,
        "venue": venue,
        "memory": memory,
        "verdict": {"checks": checks, "ok": all(checks.values())},
    }


def _growth(series: list[Sample], warm_up_s: float) -> dict:
    after = [s for s in series if s.at_s >= warm_up_s] or series
    start, end = after[0], after[-1]
    return {
        "rss_start_mb": start.rss_mb,
        "rss_end_mb": end.rss_mb,
        "rss_peak_mb": max(s.rss_mb for s in after),
        "growth": round((end.rss_mb - start.rss_mb) / start.rss_mb, 4) if start.rss_mb else 0.0,
        "fds_start": start.fds,
        "fd_growth": end.fds - start.fds,
        "samples": len(series),
        # Share of one CPU over the whole run (from the first sample to the last).
        "cpu_pct": round(100 * (series[-1].cpu_s - series[0].cpu_s) / max(1e-9, series[-1].at_s - series[0].at_s)),
    }


def render(report: dict) -> str:
    lines = [
        f"## {report['kind']} run: {report['seconds']:.0f} s, {report['users']} users + {report['streams']} stream "
        f"subscribers, {report['replicas']} replicas ({report['database']}, "
        f"Redis {'on' if report['redis'] else 'off'}), "
        f"venue latency {report['venue_latency_ms']:g} ms, {report['cpus']} CPUs",
        "",
        "| endpoint | requests | failures | rps | p50 ms | p95 ms | p99 ms |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for f in report["endpoints"]:
        lines.append(
            f"| {f['name']} | {f['requests']} | {f['failures']} | {f['rps']} | {f['p50_ms']:g} | {f['p95_ms']:g} "
            f"| {f['p99_ms']:g} |"
        )
    venue = report["venue"]
    lines += [
        "",
        f"Venue: {venue['requests']} requests, {venue['http_429']} × 429, {venue['orders']} orders, "
        f"{venue['duplicate_orders']} duplicates. Stream frames received: "
        + (", ".join(f"{n} × {kind}" for kind, n in sorted(report.get("stream_frames", {}).items())) or "none")
        + ".",
        "",
        "| process | CPU % of one core | RSS after warm-up MB | at the end MB | peak MB | growth | FDs | FD growth |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, m in sorted(report["memory"].items()):
        lines.append(
            f"| {name} | {m['cpu_pct']} | {m['rss_start_mb']} | {m['rss_end_mb']} | {m['rss_peak_mb']} "
            f"| {m['growth']:.1%} | {m['fds_start']} | {m['fd_growth']:+d} |"
        )
    if report["failures"]:
        lines += ["", "Failures:"] + [f"- {f['count']} × {f['name']}: {f['error']}" for f in report["failures"]]
    lines += [
        "",
        "Checks: " + ", ".join(f"{k}: {'yes' if v else 'NO'}" for k, v in report["verdict"]["checks"].items()),
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
